"""OffsetForLeaderEpoch (API 23) on the wire against a single broker:
the end offset of a known epoch (the latest: the log end; an older one:
where the next one starts), an epoch between two known ones, an unknown
newer one (-1, -1, no error), the current_leader_epoch check, an
unknown topic, and version 0's layout.

The partition gets epochs 0 (from offset 0) and 3 (from offset 1) the
way a leader change would leave them: in its leader-epoch-checkpoint,
read at the next start."""

import struct

import kwire
from clients import create_topic, produce_all

API_OFFSET_FOR_LEADER_EPOCH = 23

NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75


def request_v3(topic, current_leader_epoch, leader_epoch, replica_id=-1):
    return struct.pack(">i", replica_id) + kwire.array(
        [topic],
        lambda t: kwire.string(t)
        + kwire.array([0], lambda p: struct.pack(">iii", p, current_leader_epoch, leader_epoch)),
    )


def parse_v3(body):
    """(error, leader_epoch, end_offset) of the one partition."""
    r = kwire.Reader(body)
    r.int32()  # throttle_time_ms
    out = []
    for _ in range(r.int32()):
        r.string()
        for _ in range(r.int32()):
            err, _part, epoch, end = r.int16(), r.int32(), r.int32(), r.int64()
            out.append((err, epoch, end))
    (only,) = out
    return only


def test_offset_for_leader_epoch(broker):
    create_topic(broker.bootstrap, "ofle", partitions=1)
    produce_all(broker.bootstrap, "ofle", [{"value": b"a"}, {"value": b"b"}])
    broker.stop()
    ckpt = broker.partition_dir("ofle", 0) / "leader-epoch-checkpoint"
    ckpt.write_text("0\n2\n0 0\n3 1\n")
    broker.start()

    err, versions = kwire.api_versions(broker.host, broker.port)
    assert err == 0
    assert versions.get(API_OFFSET_FOR_LEADER_EPOCH) == (0, 4)

    with kwire.Conn(broker.host, broker.port) as c:

        def ask(current, epoch, topic="ofle", replica_id=-1):
            body = request_v3(topic, current, epoch, replica_id)
            return parse_v3(c.request(API_OFFSET_FOR_LEADER_EPOCH, 3, body))

        assert ask(3, 3) == (NONE, 3, 2)  # the latest epoch: the log end
        assert ask(-1, 3) == (NONE, 3, 2)  # no current epoch check
        assert ask(3, 0) == (NONE, 0, 1)  # older: where epoch 3 starts
        assert ask(3, 2) == (NONE, 0, 1)  # unknown in between: the one below
        assert ask(3, 7) == (NONE, -1, -1)  # newer than any
        assert ask(3, 3, replica_id=2) == (NONE, 3, 2)  # a follower asking
        assert ask(2, 3)[0] == FENCED_LEADER_EPOCH
        assert ask(4, 3)[0] == UNKNOWN_LEADER_EPOCH
        assert ask(-1, 3, topic="no-such-topic")[0] == UNKNOWN_TOPIC_OR_PARTITION

        # Version 0: no current epoch, no throttle time, no epoch answered.
        body = kwire.array(
            ["ofle"], lambda t: kwire.string(t) + kwire.array([0], lambda p: struct.pack(">ii", p, 0))
        )
        r = kwire.Reader(c.request(API_OFFSET_FOR_LEADER_EPOCH, 0, body))
        assert r.int32() == 1
        assert r.string() == "ofle"
        assert r.int32() == 1
        assert (r.int16(), r.int32(), r.int64()) == (NONE, 0, 1)
