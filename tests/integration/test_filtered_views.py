"""Filtered views (docs/filtered-views.md) with real clients: producers
send a mix of tags and headers to a 3-partition topic; group consumers
(confluent-kafka / librdkafka, kafka-python) of views with TAG and SQL92
filters get exactly the matching records, in order, at their source
offsets; groups commit and resume; long non-matching stretches are
skipped; writes to a view and bad expressions get clear errors; views
survive a restart and follow their source's new partitions.
"""

import json
import random
import struct
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import ConfigResource, NewPartitions, NewTopic

import kwire
from clients import QUIET, admin, create_topic, produce_all, producer, topic_partitions
from conftest import wait_for

FAST = {"group.initial.rebalance.delay.ms": "0", "group.min.session.timeout.ms": "1000"}

API_FETCH = 1
API_DELETE_RECORDS = 21
API_DELETE_TOPICS = 20
NONE = 0
INVALID_PARTITIONS = 37
INVALID_CONFIG = 40
POLICY_VIOLATION = 44

TAG_EXPR = "paid || refunded"
SQL_EXPR = "tag IN ('paid','refunded') AND region = 'eu'"
NUM_EXPR = "amount > 100 AND NOT region = 'us'"


def hdr(headers, key):
    """The last value of a header, as the filter sees it (None: absent)."""
    found = None
    for k, v in headers or []:
        if k == key:
            found = v
    return found


def tag_match(headers):
    return hdr(headers, "tag") in (b"paid", b"refunded")


def sql_match(headers):
    return tag_match(headers) and hdr(headers, "region") == b"eu"


def num_match(headers):
    amount, region = hdr(headers, "amount"), hdr(headers, "region")
    return amount is not None and int(amount) > 100 and region is not None and region != b"us"


def mixed_records(n, seed, start=0):
    """n records over partitions 0-2 with a mix of tags, regions and
    amounts, some with no headers at all."""
    rnd = random.Random(seed)
    out = []
    for i in range(start, start + n):
        headers = []
        tag = rnd.choice([b"paid", b"new", b"refunded", b"shipped", None])
        if tag is not None:
            headers.append(("tag", tag))
        region = rnd.choice([b"eu", b"us", None])
        if region is not None:
            headers.append(("region", region))
        if rnd.random() < 0.7:
            headers.append(("amount", str(rnd.randint(1, 300)).encode()))
        if rnd.random() < 0.1:
            headers = []
        out.append({"key": f"k{i}".encode(), "value": f"v{i}".encode(), "partition": i % 3,
                    "headers": headers})
    return out


def produce_mixed(bs, topic, records):
    """Produces; returns {partition: [(offset, value, headers)]}."""
    placed = produce_all(bs, topic, records)
    by_part = {}
    for r, (part, off) in zip(records, placed):
        by_part.setdefault(part, []).append((off, r["value"], r["headers"]))
    for v in by_part.values():
        v.sort()
    return by_part


def expected(by_part, match, after=None):
    """The records of by_part that match, per partition, past `after`
    ({partition: first offset wanted})."""
    out = {}
    for p, recs in by_part.items():
        lo = (after or {}).get(p, 0)
        out[p] = [(o, v) for o, v, h in recs if match(h) and o >= lo]
    return out


def group_consumer(bs, group, **conf):
    base = {
        "bootstrap.servers": bs,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    }
    base.update(QUIET)
    base.update(conf)
    return Consumer(base)


def consume_group(c, topic, want, timeout=30):
    """Polls a subscribed consumer until `want` records came; returns
    {partition: [(offset, value, headers)]}.  Fails on any error."""
    got, n = {}, 0
    deadline = time.monotonic() + timeout
    while n < want and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        assert m.error() is None, m.error()
        assert m.topic() == topic
        got.setdefault(m.partition(), []).append((m.offset(), m.value(), m.headers()))
        n += 1
    assert n == want, f"got {n} of {want} records within {timeout}s"
    return got


def no_more(c, wait=2.0):
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        m = c.poll(0.2)
        assert m is None or m.error() is not None, f"unexpected record at {m.partition()}:{m.offset()}"


def create_view(bs, name, source, expr, ftype=None, partitions=-1):
    config = {"view.source": source, "view.filter": expr}
    if ftype:
        config["view.filter.type"] = ftype
    adm = admin(bs)
    fs = adm.create_topics([NewTopic(name, partitions, 1, config=config)], request_timeout=15)
    fs[name].result(15)


def create_error(bs, name, config, partitions=-1):
    """The KafkaError of a refused CreateTopics."""
    adm = admin(bs)
    fs = adm.create_topics([NewTopic(name, partitions, 1, config=config)], request_timeout=15)
    with pytest.raises(KafkaException) as ei:
        fs[name].result(15)
    return ei.value.args[0]


def check_per_partition(got, want):
    for p in range(3):
        assert [(o, v) for o, v, _ in got.get(p, [])] == want.get(p, []), f"partition {p}"


def delete_topic_v5(broker, name):
    """(error_code, error_message) of DeleteTopics v5 (flexible) by hand."""
    body = (kwire.uvarint(2) + kwire.uvarint(len(name) + 1) + name.encode()
            + struct.pack(">i", 10000) + b"\x00")
    with kwire.Conn(broker.host, broker.port) as c:
        resp = c.request(API_DELETE_TOPICS, 5, body, flexible_header=True)
    r = kwire.Reader(resp)
    assert r.int8() == 0  # response header tags
    r.int32()  # throttle
    assert r.int8() == 2  # one result
    r._take(r.int8() - 1)  # name
    code = r.int16()
    n = r.int8()
    return code, (None if n == 0 else r._take(n - 1).decode())


# ------------------------------------------------------------------ tests
def test_group_consumers_get_exactly_the_matching_records_and_resume(make_broker):
    broker = make_broker(FAST)
    bs = broker.bootstrap
    create_topic(bs, "orders", partitions=3)
    first = produce_mixed(bs, "orders", mixed_records(600, seed=1))
    create_view(bs, "orders-paid", "orders", TAG_EXPR)  # TAG is the default type
    create_view(bs, "orders-paid-eu", "orders", SQL_EXPR, "SQL92")
    create_view(bs, "orders-big", "orders", NUM_EXPR, "SQL92")
    # Metadata lists the views with the source's partitions.
    assert topic_partitions(bs, "orders-paid") == [0, 1, 2]

    for view, match in (("orders-paid", tag_match), ("orders-paid-eu", sql_match),
                        ("orders-big", num_match)):
        want = expected(first, match)
        total = sum(len(v) for v in want.values())
        assert 0 < total < 600
        group = f"g-{view}"
        c = group_consumer(bs, group)
        c.subscribe([view])
        got = consume_group(c, view, total)
        check_per_partition(got, want)
        for p, recs in got.items():  # every record delivered matches, headers intact
            assert all(match(h) for _, _, h in recs), view
        no_more(c, 1.0)
        c.commit(asynchronous=False)
        committed = c.committed([TopicPartition(view, p) for p in range(3)], timeout=10)
        for tp in committed:
            assert tp.error is None
            assert tp.offset == want[tp.partition][-1][0] + 1, (view, tp.partition)
        c.close()

    # More records; a new member of each group resumes after its commit and
    # gets only the new matching ones.
    second = produce_mixed(bs, "orders", mixed_records(300, seed=2, start=600))
    for view, match in (("orders-paid", tag_match), ("orders-paid-eu", sql_match)):
        want = expected(second, match)
        total = sum(len(v) for v in want.values())
        c = group_consumer(bs, f"g-{view}")
        c.subscribe([view])
        got = consume_group(c, view, total)
        check_per_partition(got, want)
        no_more(c, 1.0)
        c.close()


@pytest.mark.parametrize("isolation", ["read_committed", "read_uncommitted"])
def test_long_non_matching_stretch_is_skipped(make_broker, isolation):
    """read_committed (librdkafka's default) is sent a marker over the
    stretch and moves its fetch offset past it; read_uncommitted is sent
    nothing and gets there through the view's memory of what it scanned
    (and must see no MSG_SIZE_TOO_LARGE, which answers without records
    would cause)."""
    broker = make_broker(FAST)
    bs = broker.bootstrap
    create_topic(bs, "events", partitions=1)
    produce_all(bs, "events", [{"value": b"first", "headers": [("tag", b"rare")]}])
    # 20 000 records that do not match, in 400 exact batches of 50: far
    # more than one fetch may scan with the small fetch sizes below.
    noise = kwire.record_batch([(None, b"x" * 100, [("tag", b"noise")])] * 50)
    for i in range(8):
        res = kwire.produce_batches(broker.host, broker.port, {("events", 0): [noise] * 50})
        assert res == {("events", 0): (NONE, 1 + i * 2500)}, res
    create_view(bs, "rare", "events", "rare")
    # librdkafka's statistics tell its next fetch offset (not the
    # application's position, which only delivered records move).
    stats = {}

    def on_stats(text):
        parts = json.loads(text)["topics"].get("rare", {}).get("partitions", {})
        if "0" in parts:
            stats["next_offset"] = parts["0"]["next_offset"]

    c = group_consumer(bs, "g-rare", **{"fetch.max.bytes": 4096, "message.max.bytes": 4096,
                                         "max.partition.fetch.bytes": 4096,
                                         "fetch.wait.max.ms": 200,
                                         "statistics.interval.ms": 100, "stats_cb": on_stats,
                                         "isolation.level": isolation})
    c.subscribe(["rare"])
    got = consume_group(c, "rare", 1)
    assert [(o, v) for o, v, _ in got[0]] == [(0, b"first")]
    if isolation == "read_committed":
        # The fetch offset moves past the stretch although nothing in it
        # is delivered, and so do the position and what a commit stores.
        def fetch_offset():
            m = c.poll(0.1)
            assert m is None or m.error() is None, m.error()
            return stats.get("next_offset") == 20001

        wait_for(fetch_offset, timeout=60, what="fetch offset past the non-matching records")
        assert c.position([TopicPartition("rare", 0)])[0].offset == 20001
    produce_all(bs, "events", [{"value": b"last", "headers": [("tag", b"rare")]}])
    got = consume_group(c, "rare", 1)
    assert [(o, v) for o, v, _ in got[0]] == [(20001, b"last")]
    c.close()


def test_kafka_python_reads_a_view(make_broker):
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP

    broker = make_broker(FAST)
    bs = broker.bootstrap
    create_topic(bs, "orders", partitions=3)
    recs = produce_mixed(bs, "orders", mixed_records(300, seed=3))
    # A non-matching tail the consumer must step over before the last match.
    tail = [{"value": f"t{i}".encode(), "partition": 0, "headers": [("tag", b"new")]}
            for i in range(2000)]
    produce_all(bs, "orders", tail, conf={"batch.num.messages": 100})
    late = produce_mixed(bs, "orders", [{"value": b"late", "partition": 0,
                                         "headers": [("tag", b"paid"), ("region", b"eu")]}])
    create_view(bs, "eu-paid", "orders", SQL_EXPR, "SQL92")
    want = expected(recs, sql_match)
    want[0] = want[0] + [(late[0][0][0], b"late")]
    total = sum(len(v) for v in want.values())
    c = KafkaConsumer("eu-paid", bootstrap_servers=bs, group_id="kp-view",
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      max_partition_fetch_bytes=8192, consumer_timeout_ms=20000)
    got = {}
    n = 0
    for m in c:
        got.setdefault(m.partition, []).append((m.offset, m.value))
        n += 1
        if n == total:
            break
    assert n == total
    for p in range(3):
        assert got.get(p, []) == want[p], f"partition {p}"
    c.commit()
    assert c.committed(KTP("eu-paid", 0)) == late[0][0][0] + 1
    c.close()


def test_writes_to_a_view_are_refused(make_broker):
    broker = make_broker()
    bs = broker.bootstrap
    create_topic(bs, "src", partitions=2)
    produce_all(bs, "src", [{"value": b"a", "partition": 0, "headers": [("tag", b"t")]}])
    create_view(bs, "src-t", "src", "t")
    # Produce: POLICY_VIOLATION, nothing written anywhere.
    errors = []
    p = producer(bs, **{"message.send.max.retries": 0})
    p.produce("src-t", value=b"nope", partition=0, on_delivery=lambda err, m: errors.append(err))
    p.flush(15)
    assert len(errors) == 1 and errors[0] is not None
    assert errors[0].code() == KafkaError.POLICY_VIOLATION
    # DeleteRecords: POLICY_VIOLATION; the source keeps its records.
    with kwire.Conn(broker.host, broker.port) as conn:
        resp = kwire.parse_delete_records_v0(
            conn.request(API_DELETE_RECORDS, 0, kwire.delete_records_v0_body("src-t", 0, 1)))
    assert resp[("src-t", 0)] == (POLICY_VIOLATION, -1)
    c = Consumer({"bootstrap.servers": bs, "group.id": "x", **QUIET})
    assert c.get_watermark_offsets(TopicPartition("src", 0), timeout=10) == (0, 1)
    # ListOffsets on the view: the source's offsets.
    assert c.get_watermark_offsets(TopicPartition("src-t", 0), timeout=10) == (0, 1)
    c.close()
    # CreatePartitions on the view: refused; on the source: the view follows.
    adm = admin(bs)
    fs = adm.create_partitions([NewPartitions("src-t", 4)], request_timeout=15)
    with pytest.raises(KafkaException) as ei:
        fs["src-t"].result(15)
    assert ei.value.args[0].code() == KafkaError.POLICY_VIOLATION
    fs = adm.create_partitions([NewPartitions("src", 3)], request_timeout=15)
    fs["src"].result(15)
    wait_for(lambda: topic_partitions(bs, "src-t") == [0, 1, 2], what="view with 3 partitions")
    # The source cannot be deleted under its view; in order, both go.
    fs = adm.delete_topics(["src"], request_timeout=15)
    with pytest.raises(KafkaException) as ei:
        fs["src"].result(15)
    assert ei.value.args[0].code() == KafkaError.POLICY_VIOLATION
    # The message (DeleteTopics v5+) names the view.
    assert delete_topic_v5(broker, "src") == (
        POLICY_VIOLATION, "topic 'src' is the source of views (src-t): delete them first")
    adm.delete_topics(["src-t"], request_timeout=15)["src-t"].result(15)
    adm.delete_topics(["src"], request_timeout=15)["src"].result(15)
    assert topic_partitions(bs, "src") is None


def test_bad_views_and_filters_get_invalid_config(make_broker):
    broker = make_broker()
    bs = broker.bootstrap
    create_topic(bs, "orders", partitions=3)
    err = create_error(bs, "v1", {"view.source": "orders", "view.filter.type": "SQL92",
                                  "view.filter": "tag IN ('paid' AND region = 'eu'"})
    assert err.code() == KafkaError.INVALID_CONFIG
    assert "expected ',' or ')' in the IN list but found 'AND' at position 16" in err.str()
    err = create_error(bs, "v1", {"view.source": "orders", "view.filter": "paid | refunded"})
    assert err.code() == KafkaError.INVALID_CONFIG and "at position 6" in err.str()
    err = create_error(bs, "v1", {"view.source": "orders", "view.filter": "x",
                                  "view.filter.type": "XPATH"})
    assert err.code() == KafkaError.INVALID_CONFIG and "not TAG or SQL92" in err.str()
    err = create_error(bs, "v1", {"view.source": "orders"})
    assert err.code() == KafkaError.INVALID_CONFIG and "needs view.filter" in err.str()
    err = create_error(bs, "v1", {"view.source": "nope", "view.filter": "*"})
    assert err.code() == KafkaError.INVALID_CONFIG and "no topic 'nope'" in err.str()
    err = create_error(bs, "v1", {"view.source": "orders", "view.filter": "*",
                                  "retention.ms": "1000"})
    assert err.code() == KafkaError.INVALID_CONFIG and "no log of its own" in err.str()
    err = create_error(bs, "v1", {"view.source": "orders", "view.filter": "*"}, partitions=2)
    assert err.code() == KafkaError.INVALID_PARTITIONS and "has 3" in err.str()
    err = create_error(bs, "plain", {"view.filter": "x"}, partitions=1)
    assert err.code() == KafkaError.INVALID_CONFIG and "views only" in err.str()
    create_view(bs, "v1", "orders", "*", partitions=3)  # the source's count is fine too
    err = create_error(bs, "v2", {"view.source": "v1", "view.filter": "*"})
    assert err.code() == KafkaError.INVALID_CONFIG and "itself a view" in err.str()
    assert topic_partitions(bs, "v2") is None and topic_partitions(bs, "plain") is None

    # AlterConfigs: a bad expression is refused with its position; a good
    # one applies to the next fetch.
    recs = produce_mixed(bs, "orders", mixed_records(120, seed=4))
    adm = admin(bs)
    res = ConfigResource("topic", "v1", set_config={
        "view.source": "orders", "view.filter.type": "SQL92", "view.filter": "region = 'eu' OR"})
    with pytest.raises(KafkaException) as ei:
        adm.alter_configs([res], request_timeout=15)[res].result(15)
    assert ei.value.args[0].code() == KafkaError.INVALID_CONFIG
    assert "at position 17" in ei.value.args[0].str()
    res = ConfigResource("topic", "v1", set_config={"view.source": "other", "view.filter": "*"})
    with pytest.raises(KafkaException) as ei:
        adm.alter_configs([res], request_timeout=15)[res].result(15)
    assert ei.value.args[0].code() == KafkaError.INVALID_CONFIG
    res = ConfigResource("topic", "orders", set_config={"view.filter": "*"})
    with pytest.raises(KafkaException) as ei:
        adm.alter_configs([res], request_timeout=15)[res].result(15)
    assert ei.value.args[0].code() == KafkaError.INVALID_CONFIG
    res = ConfigResource("topic", "v1", set_config={
        "view.source": "orders", "view.filter.type": "SQL92", "view.filter": SQL_EXPR})
    adm.alter_configs([res], request_timeout=15)[res].result(15)
    described = adm.describe_configs([ConfigResource("topic", "v1")])
    configs = list(described.values())[0].result(15)
    assert configs["view.filter"].value == SQL_EXPR
    assert configs["view.source"].value == "orders"
    # A plain topic does not list the view settings.
    plain = list(adm.describe_configs([ConfigResource("topic", "orders")]).values())[0].result(15)
    assert "view.filter" not in plain and "retention.ms" in plain
    want = expected(recs, sql_match)
    c = group_consumer(bs, "g-v1")
    c.subscribe(["v1"])
    check_per_partition(consume_group(c, "v1", sum(len(v) for v in want.values())), want)
    c.close()


def test_views_survive_a_restart(make_broker):
    broker = make_broker(FAST)
    bs = broker.bootstrap
    create_topic(bs, "orders", partitions=3)
    recs = produce_mixed(bs, "orders", mixed_records(150, seed=5))
    create_view(bs, "paid-eu", "orders", SQL_EXPR, "SQL92")
    want = expected(recs, sql_match)
    total = sum(len(v) for v in want.values())
    c = group_consumer(bs, "g-restart")
    c.subscribe(["paid-eu"])
    got = consume_group(c, "paid-eu", total)
    c.commit(asynchronous=False)
    c.close()
    check_per_partition(got, want)
    broker.restart()
    more = produce_mixed(bs, "orders", mixed_records(150, seed=6, start=150))
    want = expected(more, sql_match)
    c = group_consumer(bs, "g-restart")
    c.subscribe(["paid-eu"])
    check_per_partition(consume_group(c, "paid-eu", sum(len(v) for v in want.values())), want)
    c.close()


# ------------------------------------------------------- the wire itself
def fetch_v4_body(topic, partition, offset, max_wait_ms, min_bytes=1, max_bytes=1 << 20,
                  committed=False):
    return (
        struct.pack(">iiiib", -1, max_wait_ms, min_bytes, max_bytes, 1 if committed else 0)
        + struct.pack(">i", 1) + kwire.string(topic)
        + struct.pack(">i", 1) + struct.pack(">iqi", partition, offset, max_bytes)
    )


def parse_fetch_v4(body):
    """(error, high_watermark, [(base, last_offset_delta, count, [record offsets])]);
    a marker batch (control) has "marker" in place of its count."""
    r = kwire.Reader(body)
    r.int32()
    assert r.int32() == 1
    r.string()
    assert r.int32() == 1
    _part, err, hw, _lso = r.int32(), r.int16(), r.int64(), r.int64()
    for _ in range(max(r.int32(), 0)):
        r.int64(), r.int64()
    n = r.int32()
    data = b"" if n < 0 else r._take(n)
    batches, pos = [], 0
    while pos + 61 <= len(data):
        base, length = struct.unpack(">qi", data[pos:pos + 12])
        attrs, lod = struct.unpack(">hi", data[pos + 21:pos + 27])
        (count,) = struct.unpack(">i", data[pos + 57:pos + 61])
        assert attrs & 7 == 0  # the test produces uncompressed batches
        if attrs & 0x20:
            assert attrs & 0x10 and count == 1  # transactional control batch, one record
            # The record (small deltas: one-byte varints): a key of 4
            # bytes, {version 0, type 1 = COMMIT}, as Kafka's markers.
            assert data[pos + 61 + 4:pos + 61 + 9] == bytes([8, 0, 0, 0, 1])
        offs, rp = [], pos + 61
        for _ in range(count):
            rlen, rp2 = _uvarint_zz(data, rp)
            _attr = data[rp2]
            _ts, rp3 = _uvarint_zz(data, rp2 + 1)
            delta, _ = _uvarint_zz(data, rp3)
            offs.append(base + delta)
            rp = rp2 + rlen
        batches.append((base, lod, "marker" if attrs & 0x20 else count, offs))
        pos += 12 + length
    return err, hw, batches


def _uvarint_zz(b, pos):
    shift = value = 0
    while True:
        c = b[pos]
        pos += 1
        value |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return (value >> 1) ^ -(value & 1), pos


def test_fetch_answers_keep_offsets_and_end_with_a_marker(broker):
    bs = broker.bootstrap
    create_topic(bs, "src", partitions=1)
    # Exact batches, sent raw: offsets 0-3 (m n m n), 4-7 (n n n n). The
    # answers below are checked batch by batch, so the batches must not
    # depend on a client's linger.ms (librdkafka once sent the first four
    # as two batches on a busy machine).
    def batch(tags, base):
        b = kwire.record_batch([(None, t, [("tag", t)]) for t in tags])
        assert kwire.produce_batches(broker.host, broker.port, {("src", 0): b}) == {
            ("src", 0): (NONE, base)}
    batch([b"m", b"n", b"m", b"n"], 0)
    batch([b"n", b"n", b"n", b"n"], 4)
    create_view(bs, "m", "src", "m")

    def fetch(offset, committed):
        with kwire.Conn(broker.host, broker.port) as c:
            return parse_fetch_v4(c.request(
                API_FETCH, 4, fetch_v4_body("m", 0, offset, 0, committed=committed)))

    # The first batch rebuilt with records 0 and 2 and its own last offset
    # (3); the second left out. A view that renumbered the records, split
    # the batch or kept its non-matching records fails here.  A READ_COMMITTED fetch also gets a marker
    # over 4-7, its record at 7.
    assert fetch(0, False) == (NONE, 8, [(0, 3, 2, [0, 2])])
    assert fetch(0, True) == (NONE, 8, [(0, 3, 2, [0, 2]), (4, 3, "marker", [7])])
    # From offset 3 nothing matches: no records, or the marker alone.
    assert fetch(3, False) == (NONE, 8, [])
    assert fetch(3, True) == (NONE, 8, [(3, 4, "marker", [7])])

    # A caught-up fetch waits as on an idle topic: a non-matching append
    # does not end it, the next matching one does.
    with kwire.Conn(broker.host, broker.port, timeout=30) as c:
        c.send(kwire.frame(kwire.request_header(API_FETCH, 4, 77) + fetch_v4_body("m", 0, 3, 60000)))
        batch([b"n"], 8)
        batch([b"m"], 9)
        resp = c.recv_frame()
    err, hw, batches = parse_fetch_v4(resp[4:])
    assert err == NONE and hw == 10
    assert [o for b in batches for o in b[3]] == [9]
