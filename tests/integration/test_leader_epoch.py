"""The leader epoch check of Fetch (v9+) and ListOffsets (v4+), on the
wire: a current_leader_epoch older than the partition's gets
FENCED_LEADER_EPOCH, a newer one UNKNOWN_LEADER_EPOCH, the partition's
own (what Metadata reports) or -1 (no check) an answer.

A new partition starts at epoch 0, below which no epoch can be older
(negative means "none"), so the test gives the partition epoch 3 the way
a leader change would leave it: in its leader-epoch-checkpoint, read at
the next start."""

import struct

import kwire
from clients import create_topic, produce_all

API_FETCH = 1
API_LIST_OFFSETS = 2

NONE = 0
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75
EPOCH = 3


def fetch_v9_body(topic, partition, offset, current_leader_epoch):
    return (
        # replica_id, max_wait_ms, min_bytes, max_bytes, isolation_level,
        # session_id, session_epoch
        struct.pack(">iiiibii", -1, 0, 1, 1 << 20, 0, 0, -1)
        + kwire.array(
            [topic],
            lambda t: kwire.string(t)
            + kwire.array(
                [partition],
                # partition, current_leader_epoch, fetch_offset,
                # log_start_offset, partition_max_bytes
                lambda p: struct.pack(">iiqqi", p, current_leader_epoch, offset, -1, 1 << 20),
            ),
        )
        + kwire.array([], None)  # forgotten_topics_data
    )


def parse_fetch_v9(body):
    """(error, high_watermark, records bytes) of the one partition."""
    r = kwire.Reader(body)
    r.int32()  # throttle_time_ms
    assert r.int16() == 0  # top-level error_code
    r.int32()  # session_id
    out = []
    for _ in range(r.int32()):
        r.string()
        for _ in range(r.int32()):
            r.int32()  # partition_index
            err, hw = r.int16(), r.int64()
            r.int64(), r.int64()  # last_stable_offset, log_start_offset
            for _ in range(max(r.int32(), 0)):  # aborted_transactions
                r.int64(), r.int64()
            n = r.int32()
            out.append((err, hw, b"" if n < 0 else r._take(n)))
    (only,) = out
    return only


def list_offsets_v4_body(topic, partition, timestamp, current_leader_epoch):
    return struct.pack(">ib", -1, 0) + kwire.array(  # replica_id, isolation_level
        [topic],
        lambda t: kwire.string(t)
        + kwire.array(
            [partition], lambda p: struct.pack(">iiq", p, current_leader_epoch, timestamp)
        ),
    )


def parse_list_offsets_v4(body):
    """(error, offset, leader_epoch) of the one partition."""
    r = kwire.Reader(body)
    r.int32()  # throttle_time_ms
    out = []
    for _ in range(r.int32()):
        r.string()
        for _ in range(r.int32()):
            r.int32()  # partition_index
            err, _ts, off, epoch = r.int16(), r.int64(), r.int64(), r.int32()
            out.append((err, off, epoch))
    (only,) = out
    return only


def metadata_v7_leader_epoch(c, topic):
    body = kwire.array([topic], kwire.string) + struct.pack(">b", 0)
    r = kwire.Reader(c.request(kwire.API_METADATA, 7, body))
    r.int32()  # throttle_time_ms
    r.array(lambda r: (r.int32(), r.string(), r.int32(), r.string()))  # brokers
    r.string()  # cluster_id
    r.int32()  # controller_id

    def partition(r):
        err, _idx, _leader, epoch = r.int16(), r.int32(), r.int32(), r.int32()
        r.array(lambda r: r.int32())  # replicas
        r.array(lambda r: r.int32())  # isr
        r.array(lambda r: r.int32())  # offline replicas
        return err, epoch

    def one_topic(r):
        err, _name = r.int16(), r.string()
        r.int8()  # is_internal
        return err, r.array(partition)

    ((err, parts),) = r.array(one_topic)
    assert err == 0
    ((perr, epoch),) = parts
    assert perr == 0
    return epoch


def test_fetch_and_list_offsets_check_the_current_leader_epoch(broker):
    create_topic(broker.bootstrap, "epochs", partitions=1)
    produce_all(broker.bootstrap, "epochs", [{"value": b"a"}, {"value": b"b"}])
    broker.stop()
    # Kafka's format: version, count, then "epoch start_offset" lines.
    ckpt = broker.partition_dir("epochs", 0) / "leader-epoch-checkpoint"
    ckpt.write_text(f"0\n2\n0 0\n{EPOCH} 1\n")
    broker.start()

    with kwire.Conn(broker.host, broker.port) as c:
        assert metadata_v7_leader_epoch(c, "epochs") == EPOCH

        def list_latest(epoch):
            return parse_list_offsets_v4(
                c.request(API_LIST_OFFSETS, 4, list_offsets_v4_body("epochs", 0, -1, epoch))
            )

        assert list_latest(-1) == (NONE, 2, EPOCH)
        assert list_latest(EPOCH) == (NONE, 2, EPOCH)
        assert list_latest(EPOCH - 1)[0] == FENCED_LEADER_EPOCH
        assert list_latest(EPOCH + 1)[0] == UNKNOWN_LEADER_EPOCH

        def fetch(epoch):
            return parse_fetch_v9(c.request(API_FETCH, 9, fetch_v9_body("epochs", 0, 0, epoch)))

        for epoch in (-1, EPOCH):
            err, hw, records = fetch(epoch)
            assert (err, hw) == (NONE, 2)
            assert b"a" in records and b"b" in records
        for epoch, want in ((EPOCH - 1, FENCED_LEADER_EPOCH), (EPOCH + 1, UNKNOWN_LEADER_EPOCH)):
            err, _hw, records = fetch(epoch)
            assert err == want and records == b""
