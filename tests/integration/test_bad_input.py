"""Malformed and hostile requests over raw sockets. Each must cost the
sender its connection (or earn it an error response) and nothing else:
the broker stays up, other clients keep working and stored data is intact.
"""

import os
import socket
import struct
import time

import kwire
from clients import consume, create_topic, produce_all, producer, watermarks
from conftest import wait_for

CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_TOPIC_EXCEPTION = 17
UNSUPPORTED_VERSION = 35

SEED = [{"key": f"k{i}".encode(), "value": f"seed-{i}".encode(), "partition": 0} for i in range(5)]


def seed(broker):
    create_topic(broker.bootstrap, "intact", partitions=1)
    assert produce_all(broker.bootstrap, "intact", SEED) == [(0, i) for i in range(5)]


def check_intact(broker, end=len(SEED)):
    """The seeded records are all there, and the log ends at `end`."""
    assert broker.alive(), "broker died:\n" + broker.stderr_text()
    msgs = consume(broker.bootstrap, "intact", 0, 0, len(SEED))
    assert [(m.offset(), m.key(), m.value()) for m in msgs] == [
        (i, r["key"], r["value"]) for i, r in enumerate(SEED)
    ]
    assert watermarks(broker.bootstrap, "intact", 0) == (0, end)


def conn(broker):
    return kwire.Conn(broker.host, broker.port)


def vm_size_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1])
    raise AssertionError("no VmSize")


def test_garbage_closes_only_that_connection(broker):
    seed(broker)
    # An established client, connected before the garbage arrives.
    p = producer(broker.bootstrap)
    p.produce("intact", value=b"before", partition=0)
    assert p.flush(10) == 0

    for junk in [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # the length reads as ~1.2 GB
        struct.pack(">i", 16) + os.urandom(16),  # random header in a sane frame
        struct.pack(">i", -5) + b"\x00" * 8,  # negative length
        struct.pack(">i", 0),  # empty frame: no header at all
    ]:
        with conn(broker) as c:
            c.send(junk)
            assert c.closed_by_peer(5), f"connection kept open after {junk[:16]!r}"

    delivered = []
    p.produce("intact", value=b"after", partition=0, on_delivery=lambda e, m: delivered.append((e, m.offset())))
    assert p.flush(10) == 0
    assert delivered == [(None, 6)]
    assert [m.value() for m in consume(broker.bootstrap, "intact", 0, 5, 2)] == [b"before", b"after"]
    assert broker.alive()


def test_oversized_frame_closed_without_allocating(make_broker):
    broker = make_broker(settings={"socket.request.max.bytes": "1048576"})
    seed(broker)
    before = vm_size_kb(broker.proc.pid)
    # Ten connections each claiming a 100 MB request: had the broker
    # allocated for them it would have reserved ~1 GB.
    conns = [conn(broker) for _ in range(10)]
    try:
        for c in conns:
            c.send(struct.pack(">i", 100 * 1024 * 1024) + kwire.request_header(kwire.API_PRODUCE, 3, 1))
        for c in conns:
            assert c.closed_by_peer(5), "oversized frame not refused"
    finally:
        for c in conns:
            c.close()
    grown = vm_size_kb(broker.proc.pid) - before
    assert grown < 200 * 1024, f"virtual size grew by {grown} kB"
    # Just over the limit is refused too; a frame at the limit is read.
    with conn(broker) as c:
        c.send(struct.pack(">i", 1048576 + 1))
        assert c.closed_by_peer(5)
    check_intact(broker)


def test_truncated_request_closed(broker):
    seed(broker)
    # Valid frame length, but the Metadata v4 body ends inside its topic
    # array (it promises 3 names and carries one).
    body = struct.pack(">i", 3) + kwire.string("intact")
    with conn(broker) as c:
        c.send(kwire.frame(kwire.request_header(kwire.API_METADATA, 4, 1) + body))
        assert c.closed_by_peer(5)
    # A header cut inside the client id.
    with conn(broker) as c:
        c.send(kwire.frame(struct.pack(">hhih", kwire.API_METADATA, 4, 2, 20) + b"abc"))
        assert c.closed_by_peer(5)
    # A produce whose records field claims more bytes than the frame holds.
    batch = kwire.record_batch([(None, b"x", [])])
    body = kwire.produce_v3_body("intact", 0, batch)[:-10]
    with conn(broker) as c:
        c.send(kwire.frame(kwire.request_header(kwire.API_PRODUCE, 3, 3) + body))
        assert c.closed_by_peer(5)
    check_intact(broker)


def test_unknown_api_key(broker):
    seed(broker)
    with conn(broker) as c:
        c.send(kwire.frame(kwire.request_header(999, 0, 7)))
        # Kafka closes the connection; an error response is acceptable
        # too. Silence (the request left hanging) is not.
        c.sock.settimeout(5)
        try:
            resp = c.recv_frame()
            assert struct.unpack(">i", resp[:4])[0] == 7, "response to someone else's request"
        except ConnectionError:
            pass  # closed
        except socket.timeout:
            raise AssertionError("no answer and no close for API key 999")
    # The broker still answers new connections.
    err, versions = kwire.api_versions(broker.host, broker.port)
    assert err == 0 and kwire.API_PRODUCE in versions
    check_intact(broker)


def test_api_versions_unsupported_version(broker):
    seed(broker)
    with conn(broker) as c:
        # ApiVersions v99 with a v2 (flexible) header and a v3-style body;
        # the broker must answer in v0 format: error 35 plus its versions.
        body = kwire.uvarint(len("x") + 1) + b"x" + kwire.uvarint(2) + b"1" + kwire.uvarint(0)
        resp = c.request(kwire.API_API_VERSIONS, 99, body, flexible_header=True)
        err, versions = kwire.parse_api_versions_v0(resp)
        assert err == UNSUPPORTED_VERSION
        assert versions[kwire.API_API_VERSIONS][0] == 0 and versions[kwire.API_API_VERSIONS][1] >= 3
        assert kwire.API_PRODUCE in versions and kwire.API_METADATA in versions
        # The connection stays usable for a supported version.
        err, _ = kwire.parse_api_versions_v0(c.request(kwire.API_API_VERSIONS, 0, b""))
        assert err == 0
    check_intact(broker)


def _produce_raw(broker, topic, partition, batch):
    with conn(broker) as c:
        resp = c.request(kwire.API_PRODUCE, 3, kwire.produce_v3_body(topic, partition, batch))
    return kwire.parse_produce_v3(resp)


def test_produce_with_bad_crc_is_refused(broker):
    seed(broker)
    good = kwire.record_batch([(b"k", b"hand-made", [("h", b"v")]), (None, b"second", [])])
    # The hand-made batch is right: the broker takes it.
    assert _produce_raw(broker, "intact", 0, good) == {("intact", 0): (0, 5)}
    assert [m.value() for m in consume(broker.bootstrap, "intact", 0, 5, 2)] == [b"hand-made", b"second"]

    before = watermarks(broker.bootstrap, "intact", 0)
    seg = broker.partition_dir("intact", 0) / "00000000000000000000.log"
    size = seg.stat().st_size
    for where in (len(good) - 1, 30, kwire.BATCH_CRC_OFFSET):  # a value byte, a header field, the CRC
        bad = bytearray(good)
        bad[where] ^= 0x01
        result = _produce_raw(broker, "intact", 0, bytes(bad))
        assert result[("intact", 0)][0] == CORRUPT_MESSAGE, f"byte {where} flipped: {result}"
    assert watermarks(broker.bootstrap, "intact", 0) == before
    assert seg.stat().st_size == size
    check_intact(broker, end=7)


def test_old_message_format_is_converted_or_refused(broker):
    """Produce v2 with a magic-1 message set (what pre-0.11 clients send,
    and what the broker accepts by advertising Produce v0-v2). The broker
    may convert it (Kafka does) or refuse it with an error code; it must
    not store it as if it were a v2 batch, which would corrupt the log."""
    seed(broker)
    mset = kwire.legacy_message(0, b"old-key", b"old-value", timestamp=1_700_000_000_000)
    with conn(broker) as c:
        resp = c.request(kwire.API_PRODUCE, 2, kwire.produce_v2_body("intact", 0, mset))
    err, base = kwire.parse_produce_v3(resp)[("intact", 0)]
    if err == 0:
        assert base == 5
        (m,) = consume(broker.bootstrap, "intact", 0, 5, 1)
        assert (m.key(), m.value(), m.timestamp()[1]) == (b"old-key", b"old-value", 1_700_000_000_000)
        end = 6
    else:
        end = 5
    seg = broker.partition_dir("intact", 0) / "00000000000000000000.log"
    assert all(b[1] == 2 for b in kwire.read_batches(seg)), "a non-v2 batch was stored"
    check_intact(broker, end=end)
    assert produce_all(broker.bootstrap, "intact", [{"value": b"next", "partition": 0}]) == [(0, end)]


def test_produce_to_missing_partition(broker):
    seed(broker)
    batch = kwire.record_batch([(None, b"nowhere", [])])
    assert _produce_raw(broker, "intact", 5, batch)[("intact", 5)][0] == UNKNOWN_TOPIC_OR_PARTITION
    assert not broker.partition_dir("intact", 5).exists()
    check_intact(broker)


def test_invalid_topic_names(broker):
    """With auto-create on (the default), naming an illegal topic gets
    INVALID_TOPIC_EXCEPTION from Metadata. Kafka answers a Produce to a
    topic it does not have with UNKNOWN_TOPIC_OR_PARTITION, never
    creating it, so Produce may answer either code."""
    seed(broker)
    names = ["bad name!", ".", "..", "a" * 250, "a/b"]
    with conn(broker) as c:
        md = kwire.parse_metadata_v4(c.request(kwire.API_METADATA, 4, kwire.metadata_v4_body(names)))
    for n in names:
        assert md[n][0] == INVALID_TOPIC_EXCEPTION, f"{n[:20]}: {md[n]}"
    batch = kwire.record_batch([(None, b"x", [])])
    for n in names:
        err = _produce_raw(broker, n, 0, batch)[(n, 0)][0]
        assert err in (INVALID_TOPIC_EXCEPTION, UNKNOWN_TOPIC_OR_PARTITION), f"{n[:20]}: error {err}"
    names_on_disk = {p.name for p in broker.data_dir.iterdir()}
    assert not names_on_disk & {f"{n}-0" for n in names}
    # A legal name is auto-created by the same request.
    with conn(broker) as c:
        md = kwire.parse_metadata_v4(c.request(kwire.API_METADATA, 4, kwire.metadata_v4_body(["auto-ok"])))
    assert md["auto-ok"][0] in (0, 5), md  # 5: LEADER_NOT_AVAILABLE while creating
    wait_for(lambda: broker.partition_dir("auto-ok", 0).exists(), what="auto-ok-0 created")
    check_intact(broker)


def test_slow_sender_does_not_block_others(broker):
    """A client that sends half a frame and stalls holds only its own
    connection; another client is served meanwhile."""
    seed(broker)
    c = conn(broker)
    try:
        frame = kwire.frame(kwire.request_header(kwire.API_API_VERSIONS, 0, 1))
        c.send(frame[:5])
        start = time.monotonic()
        check_intact(broker)
        assert time.monotonic() - start < 15
        c.send(frame[5:])
        err, _ = kwire.parse_api_versions_v0(c.recv_frame()[4:])
        assert err == 0
    finally:
        c.close()
    try:
        s = socket.create_connection((broker.host, broker.port), timeout=5)
        s.close()
    except OSError as e:
        raise AssertionError(f"broker stopped accepting: {e}")
