"""Wire-level behaviour of the connection layer: pipelined requests are
answered in order, acks=0 gets no answer, a long-poll fetch is woken by
an append, and ApiVersions v3 (flexible) keeps header v0."""

import struct

import kwire
from clients import create_topic, produce_all, watermarks

API_FETCH = 1


def fetch_v4_body(topic, partition, offset, max_wait_ms, min_bytes=1):
    return (
        struct.pack(">iiiib", -1, max_wait_ms, min_bytes, 1 << 20, 0)
        + struct.pack(">i", 1)
        + kwire.string(topic)
        + struct.pack(">i", 1)
        + struct.pack(">iqi", partition, offset, 1 << 20)
    )


def parse_fetch_v4(body):
    """[(topic, partition, error, high_watermark, records bytes)]"""
    r = kwire.Reader(body)
    r.int32()  # throttle
    out = []
    for _ in range(r.int32()):
        topic = r.string()
        for _ in range(r.int32()):
            part, err, hw, _lso = r.int32(), r.int16(), r.int64(), r.int64()
            n_aborted = r.int32()
            for _ in range(max(n_aborted, 0)):
                r.int64(), r.int64()
            n = r.int32()
            out.append((topic, part, err, hw, b"" if n < 0 else r._take(n)))
    return out


def test_pipelined_requests_answered_in_order_and_long_poll_woken(broker):
    create_topic(broker.bootstrap, "pipe", partitions=1)
    produce_all(broker.bootstrap, "pipe", [{"key": b"k0", "value": b"first"}])
    with kwire.Conn(broker.host, broker.port, timeout=20.0) as c:
        # A fetch at the log end that can only be answered by new data
        # (max wait 60 s, far past the socket timeout), then a metadata
        # request that the broker can answer at once.
        c.send(kwire.frame(kwire.request_header(API_FETCH, 4, 101) + fetch_v4_body("pipe", 0, 1, 60000)))
        c.send(kwire.frame(kwire.request_header(kwire.API_METADATA, 1, 102) + struct.pack(">i", -1)))
        # The append from another client wakes the waiting fetch.
        produce_all(broker.bootstrap, "pipe", [{"key": b"k1", "value": b"second"}])
        first = c.recv_frame()
        second = c.recv_frame()
    assert struct.unpack(">i", first[:4])[0] == 101
    assert struct.unpack(">i", second[:4])[0] == 102
    (topic, part, err, hw, records), = parse_fetch_v4(first[4:])
    assert (topic, part, err, hw) == ("pipe", 0, 0, 2)
    assert b"second" in records and b"first" not in records
    # Offset of the returned batch is 1.
    assert struct.unpack(">q", records[:8])[0] == 1


def test_fetch_long_poll_times_out_empty(broker):
    create_topic(broker.bootstrap, "idle", partitions=1)
    with kwire.Conn(broker.host, broker.port, timeout=20.0) as c:
        (topic, part, err, hw, records), = parse_fetch_v4(
            c.request(API_FETCH, 4, fetch_v4_body("idle", 0, 0, 300)))
    assert (topic, part, err, hw, records) == ("idle", 0, 0, 0, b"")


def test_fetch_out_of_range_and_unknown_partition(broker):
    create_topic(broker.bootstrap, "rng", partitions=1)
    produce_all(broker.bootstrap, "rng", [{"value": b"x"}])
    with kwire.Conn(broker.host, broker.port) as c:
        res = parse_fetch_v4(c.request(API_FETCH, 4, fetch_v4_body("rng", 0, 5, 0)))
        assert res[0][2] == 1  # OFFSET_OUT_OF_RANGE
        res = parse_fetch_v4(c.request(API_FETCH, 4, fetch_v4_body("rng", 7, 0, 0)))
        assert res[0][2] == 3  # UNKNOWN_TOPIC_OR_PARTITION


def test_acks_zero_gets_no_response_but_is_written(broker):
    create_topic(broker.bootstrap, "fire", partitions=1)
    batch = kwire.record_batch([(b"k", b"fire-and-forget", ())])
    with kwire.Conn(broker.host, broker.port) as c:
        c.send(kwire.frame(kwire.request_header(kwire.API_PRODUCE, 3, 201)
                           + kwire.produce_v3_body("fire", 0, batch, acks=0)))
        c.send(kwire.frame(kwire.request_header(kwire.API_METADATA, 1, 202) + struct.pack(">i", -1)))
        resp = c.recv_frame()
    # The first (and only) answer is the metadata's.
    assert struct.unpack(">i", resp[:4])[0] == 202
    assert watermarks(broker.bootstrap, "fire", 0) == (0, 1)


def test_api_versions_v3_flexible_request_gets_v0_header(broker):
    with kwire.Conn(broker.host, broker.port) as c:
        # v3 body: client_software_name, client_software_version (compact), tags.
        body = b"\x07runnel\x041.0\x00"
        resp = c.request(kwire.API_API_VERSIONS, 3, body, flexible_header=True)
    # Header v0: the body starts right after the correlation id with the
    # error code; a v1 header would put a tag byte first.
    assert struct.unpack(">h", resp[:2])[0] == 0
    n = resp[2] - 1  # compact array length
    keys = {}
    pos = 3
    for _ in range(n):
        k, lo, hi = struct.unpack_from(">hhh", resp, pos)
        keys[k] = (lo, hi)
        pos += 7  # three int16 and an empty tag section
    assert keys[0] == (0, 9)  # Produce (from 0: see docs/decisions/0006)
    assert keys[1] == (4, 12)  # Fetch
    assert keys[18] == (0, 3)  # ApiVersions
    assert keys[11] == (0, 9)  # JoinGroup
    assert 22 not in keys  # InitProducerId: not advertised until implemented


def test_log_append_time_stamps_batches(broker):
    from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME

    from clients import consume

    create_topic(broker.bootstrap, "stamped", partitions=1,
                 config={"message.timestamp.type": "LogAppendTime"})
    create_topic(broker.bootstrap, "created", partitions=1)
    old = 1_000_000_000_000  # 2001: far from the broker's clock
    for topic in ("stamped", "created"):
        produce_all(broker.bootstrap, topic, [{"value": b"x", "timestamp": old, "partition": 0}])
    (m,) = consume(broker.bootstrap, "stamped", 0, count=1)
    ts_type, ts = m.timestamp()
    assert ts_type == TIMESTAMP_LOG_APPEND_TIME and ts > old + 10 * 365 * 86400 * 1000
    (m,) = consume(broker.bootstrap, "created", 0, count=1)
    assert m.timestamp() == (TIMESTAMP_CREATE_TIME, old)
