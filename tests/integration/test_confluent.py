"""confluent-kafka-python 1.7 (librdkafka) against the real broker: every
record field through every compression, offsets by timestamp, watermarks,
the admin API, durability across clean and unclean restarts, retention.
"""

import threading
import time

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_CREATE_TIME,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import ConfigResource, ConfigSource, NewPartitions, NewTopic

import kwire
from clients import (
    LIBRDKAFKA_CODEC_NOTE,
    admin,
    consume,
    consume_none,
    consumer,
    create_topic,
    produce_all,
    producer,
    topic_partitions,
    watermarks,
)
from conftest import wait_for

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
INVALID_TOPIC_EXCEPTION = 17


def now_ms():
    return int(time.time() * 1000)


def check_records(msgs, expected):
    """msgs (confluent Messages) against expected [(offset, record dict)]."""
    assert len(msgs) == len(expected)
    for m, (off, r) in zip(msgs, expected):
        where = f"offset {off}"
        assert m.offset() == off, where
        assert m.key() == r.get("key"), where
        assert m.value() == r["value"], where
        assert (m.headers() or []) == r.get("headers", []), where
        if "timestamp" in r:
            assert m.timestamp() == (TIMESTAMP_CREATE_TIME, r["timestamp"]), where


def field_records(codec, ci, p, base_ts):
    """Five records using every field; j == 3: null key, j == 4: null
    value (a tombstone)."""
    return [
        {
            "key": None if j == 3 else f"{codec}-k{p}-{j}".encode(),
            "value": None if j == 4 else bytes([ci, p, j, 0, 255]) + f"{codec} {p} {j} ".encode() * (j + 1),
            "partition": p,
            "headers": [("h1", f"{codec}{j}".encode()), ("empty", b""), ("null", None)],
            "timestamp": base_ts + ci * 1000 + p * 10 + j,
        }
        for j in range(5)
    ]


def test_every_field_every_codec_three_partitions(broker):
    """librdkafka produces every field with every codec and reads it all
    back. How librdkafka splits the records into batches is its own
    business (linger.ms, load), so only what holds for any split is
    checked on disk; test_stored_batches_are_the_sent_bytes checks exact
    batches."""
    bs, topic = broker.bootstrap, "fields"
    create_topic(bs, topic, partitions=3)
    base_ts = now_ms() - 100_000
    expected = {p: [] for p in range(3)}
    for ci, codec in enumerate(CODECS):
        recs = [r for p in range(3) for r in field_records(codec, ci, p, base_ts)]
        positions = produce_all(bs, topic, recs, conf={"compression.type": codec})
        for r, (part, off) in zip(recs, positions):
            assert part == r["partition"]
            expected[part].append((off, r))

    for p in range(3):
        offsets = [off for off, _ in expected[p]]
        # One producer, no retries: offsets in send order, from 0, no gaps.
        assert offsets == list(range(len(CODECS) * 5))
        msgs = consume(bs, topic, p, OFFSET_BEGINNING, len(offsets))
        check_records(msgs, expected[p])
        assert watermarks(bs, topic, p) == (0, len(offsets))
        # Reading from the middle returns the same records.
        check_records(consume(bs, topic, p, 7, 3), expected[p][7:10])
        # On disk, whatever the split: batches tile offsets 0-24 in order
        # (a broker that renumbered, lost or repeated records fails), none
        # spans two produce_all calls (merged batches fail), and each
        # keeps the codec it was sent with or none, since librdkafka sends
        # a batch uncompressed when compressing would not shrink it (a
        # broker that recompressed one group's batches with another codec
        # fails).
        seg = broker.partition_dir(topic, p) / "00000000000000000000.log"
        batches = kwire.read_batches(seg)
        assert [b[0] for b in batches] == sorted(b[0] for b in batches), batches
        covered = [o for b in batches for o in range(b[0], b[0] + b[3])]
        assert covered == list(range(len(CODECS) * 5)), batches
        for base, _magic, attrs, count in batches:
            group = base // 5
            assert (base + count - 1) // 5 == group, f"batch at {base} spans two groups: {batches}"
            assert attrs & 7 in (0, group), (
                f"batch at {base} of the {CODECS[group]} group stored with codec {attrs & 7}; "
                + LIBRDKAFKA_CODEC_NOTE
            )


def test_stored_batches_are_the_sent_bytes(broker):
    """Exact batches, one per codec per partition (snappy in both the
    Java client's xerial framing and librdkafka's raw form), each Produce
    carrying the three partitions: the broker must store each byte for
    byte, only baseOffset and partitionLeaderEpoch set by it (a broker that
    decompressed, recompressed, split or merged a batch, or renumbered its
    offsets, fails here), and librdkafka must read every field of every
    record back at its offset."""
    bs, topic = broker.bootstrap, "exact"
    create_topic(bs, topic, partitions=3)
    base_ts = now_ms() - 100_000
    groups = [(c, "xerial") for c in CODECS] + [("snappy", "raw")]
    sent = {p: [] for p in range(3)}
    expected = {p: [] for p in range(3)}
    for ci, (codec, framing) in enumerate(groups):
        parts = {}
        for p in range(3):
            recs = field_records(codec, ci, p, base_ts)
            ts0 = recs[0]["timestamp"]
            batch = kwire.record_batch(
                [(r["key"], r["value"], r["headers"]) for r in recs],
                base_timestamp=ts0, codec=codec, snappy_framing=framing,
                timestamp_deltas=[r["timestamp"] - ts0 for r in recs])
            parts[(topic, p)] = batch
            sent[p].append(batch)
            expected[p] += [(ci * 5 + j, r) for j, r in enumerate(recs)]
        res = kwire.produce_batches(broker.host, broker.port, parts)
        assert res == {(topic, p): (0, ci * 5) for p in range(3)}, res

    for p in range(3):
        seg = broker.partition_dir(topic, p) / "00000000000000000000.log"
        stored = kwire.read_batch_bytes(seg)
        assert [(b[0], b[2] & 7, b[3]) for b in stored] == [
            (ci * 5, kwire.CODEC_IDS[c], 5) for ci, (c, _) in enumerate(groups)]
        for (base, _m, _a, _c, data), want in zip(stored, sent[p]):
            assert kwire.same_batch(data, want), f"partition {p}: batch at {base} not stored as sent"
        check_records(consume(bs, topic, p, OFFSET_BEGINNING, len(expected[p])), expected[p])
        # From inside a compressed batch: the client skips the records
        # before the offset asked for.
        check_records(consume(bs, topic, p, 7, 3), expected[p][7:10])


def test_offsets_for_times_and_watermarks(broker):
    bs, topic = broker.bootstrap, "times"
    create_topic(bs, topic, partitions=1)
    base = now_ms() - 60_000
    # Two exact batches (0-1 and 2-4), sent raw, so the lookup has to pick
    # within and across batches whatever a client's batching would be.
    for want, (ts0, values) in [(0, (base, [b"a", b"b"])), (2, (base + 2000, [b"c", b"d", b"e"]))]:
        batch = kwire.record_batch([(None, v, []) for v in values], base_timestamp=ts0,
                                   timestamp_deltas=[1000 * i for i in range(len(values))])
        assert kwire.produce_batches(broker.host, broker.port, {(topic, 0): batch}) == {(topic, 0): (0, want)}
    assert watermarks(bs, topic, 0) == (0, 5)
    c = consumer(bs)
    try:
        for ts, want in [
            (base - 1, 0),
            (base, 0),
            (base + 1, 1),
            (base + 1000, 1),
            (base + 2500, 3),
            (base + 4000, 4),
            (base + 4001, -1),  # later than every record: Kafka answers -1
        ]:
            (r,) = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)
            assert r.error is None, f"timestamp {ts}: {r.error}"
            assert r.offset == want, f"timestamp {ts}"
    finally:
        c.close()
    assert [m.value() for m in consume(bs, topic, 0, 3, 2)] == [b"d", b"e"]


def _source(entry):
    return getattr(entry.source, "value", entry.source)


def _describe(adm, topic):
    res = ConfigResource("topic", topic)
    (fut,) = adm.describe_configs([res], request_timeout=15).values()
    return fut.result(15)


def test_admin_topics_partitions_configs(broker):
    bs = broker.bootstrap
    adm = admin(bs)
    fs = adm.create_topics(
        [NewTopic("adm", 2, 1, config={"retention.ms": "3600000"})], request_timeout=15
    )
    fs["adm"].result(15)
    assert topic_partitions(bs, "adm") == [0, 1]
    md = adm.list_topics(timeout=10)
    for p in md.topics["adm"].partitions.values():
        assert p.leader == 1 and p.replicas == [1] and p.isrs == [1]

    # Creating it again: TOPIC_ALREADY_EXISTS (36).
    fs = adm.create_topics([NewTopic("adm", 2, 1)], request_timeout=15)
    with pytest.raises(KafkaException) as e:
        fs["adm"].result(15)
    assert e.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS

    # Grow to 4 partitions; shrinking is INVALID_PARTITIONS (37).
    adm.create_partitions([NewPartitions("adm", 4)], request_timeout=15)["adm"].result(15)
    assert topic_partitions(bs, "adm") == [0, 1, 2, 3]
    with pytest.raises(KafkaException) as e:
        adm.create_partitions([NewPartitions("adm", 3)], request_timeout=15)["adm"].result(15)
    assert e.value.args[0].code() == KafkaError.INVALID_PARTITIONS
    # The new partitions take records.
    assert produce_all(bs, "adm", [{"value": b"p3", "partition": 3}]) == [(3, 0)]

    cfg = _describe(adm, "adm")
    assert cfg["retention.ms"].value == "3600000"
    assert _source(cfg["retention.ms"]) == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert not cfg["retention.ms"].is_default
    assert _source(cfg["segment.bytes"]) != ConfigSource.DYNAMIC_TOPIC_CONFIG.value

    # AlterConfigs replaces the overrides with the given set.
    res = ConfigResource("topic", "adm", set_config={"retention.ms": "7200000", "segment.bytes": "2048"})
    (fut,) = adm.alter_configs([res], request_timeout=15).values()
    fut.result(15)
    cfg = _describe(adm, "adm")
    assert cfg["retention.ms"].value == "7200000"
    assert cfg["segment.bytes"].value == "2048"
    assert _source(cfg["segment.bytes"]) == ConfigSource.DYNAMIC_TOPIC_CONFIG.value

    # A bad value is refused with INVALID_CONFIG (40) and changes nothing.
    res = ConfigResource("topic", "adm", set_config={"retention.ms": "soon"})
    (fut,) = adm.alter_configs([res], request_timeout=15).values()
    with pytest.raises(KafkaException) as e:
        fut.result(15)
    assert e.value.args[0].code() == KafkaError.INVALID_CONFIG
    assert _describe(adm, "adm")["retention.ms"].value == "7200000"

    adm.delete_topics(["adm"], request_timeout=15)["adm"].result(15)
    assert topic_partitions(bs, "adm") is None
    # Every partition directory goes, including those that held records.
    wait_for(
        lambda: not [d.name for d in broker.data_dir.glob("adm-*")],
        what=f"adm-* removed (left: {[str(f) for f in broker.data_dir.glob('adm-*/*')]})",
    )
    fs = adm.delete_topics(["adm"], request_timeout=15)
    with pytest.raises(KafkaException) as e:
        fs["adm"].result(15)
    assert e.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_invalid_topic_names_rejected(broker):
    bs = broker.bootstrap
    adm = admin(bs)
    bad = ["bad name!", ".", "..", "a" * 250, "slash/y", "colon:z"]
    fs = adm.create_topics([NewTopic(n, 1, 1) for n in bad], request_timeout=15)
    for name in bad:
        with pytest.raises(KafkaException) as e:
            fs[name].result(15)
        assert e.value.args[0].code() == INVALID_TOPIC_EXCEPTION, name
    # The longest legal name is 249 characters.
    longest = "b" * 249
    adm.create_topics([NewTopic(longest, 1, 1)], request_timeout=15)[longest].result(15)
    names = set(adm.list_topics(timeout=10).topics)
    assert longest in names
    assert not names & set(bad)
    assert {p.name for p in broker.data_dir.iterdir()} & {f"{n}-0" for n in bad} == set()


def test_delete_records(broker):
    """confluent-kafka 1.7's AdminClient has no delete_records (added in
    2.x), so DeleteRecords v0 goes over the wire by hand (kwire)."""
    bs, topic = broker.bootstrap, "trim"
    create_topic(bs, topic, partitions=1)
    produce_all(bs, topic, [{"value": f"r{i}".encode()} for i in range(10)])
    err, versions = kwire.api_versions(broker.host, broker.port)
    assert err == 0 and kwire.API_DELETE_RECORDS in versions
    assert versions[kwire.API_DELETE_RECORDS][0] == 0

    def delete_records(offset):
        with kwire.Conn(broker.host, broker.port) as c:
            body = c.request(kwire.API_DELETE_RECORDS, 0, kwire.delete_records_v0_body(topic, 0, offset))
        return kwire.parse_delete_records_v0(body)[(topic, 0)]

    assert delete_records(4) == (0, 4)
    assert watermarks(bs, topic, 0) == (4, 10)
    assert [m.value() for m in consume(bs, topic, 0, OFFSET_BEGINNING, 2)] == [b"r4", b"r5"]
    # Past the high watermark: OFFSET_OUT_OF_RANGE (1), nothing changes.
    err, _ = delete_records(11)
    assert err == 1
    assert watermarks(bs, topic, 0) == (4, 10)
    # -1 means "up to the high watermark".
    assert delete_records(-1) == (0, 10)
    assert watermarks(bs, topic, 0) == (10, 10)
    # The log start offset is durable, as Kafka checkpoints it.
    broker.restart(clean=True)
    assert watermarks(bs, topic, 0) == (10, 10)
    assert produce_all(bs, topic, [{"value": b"next"}]) == [(0, 10)]


def test_restart_clean_keeps_offsets(broker):
    bs, topic = broker.bootstrap, "durable"
    create_topic(bs, topic, partitions=2)
    recs = [{"key": f"k{i}".encode(), "value": f"v{i}".encode(), "partition": i % 2} for i in range(40)]
    positions = produce_all(bs, topic, recs)
    broker.restart(clean=True)
    for p in range(2):
        expected = [(off, r) for r, (part, off) in zip(recs, positions) if part == p]
        assert [off for off, _ in expected] == list(range(20))
        check_records(consume(bs, topic, p, OFFSET_BEGINNING, 20), expected)
        assert watermarks(bs, topic, p) == (0, 20)
    # Appends continue where the log ended.
    assert produce_all(bs, topic, [{"value": b"after", "partition": 1}]) == [(1, 20)]
    broker.restart(clean=True)
    assert consume(bs, topic, 1, 20, 1)[0].value() == b"after"


def test_restart_unclean_synced_keeps_every_acked_record(make_broker):
    broker = make_broker(settings={"log.flush.sync": "true"})
    bs, topic = broker.bootstrap, "synced"
    create_topic(bs, topic, partitions=1)

    acked = {}  # offset -> value, filled by delivery reports
    failed = []
    stop = threading.Event()

    def on_delivery(err, msg):
        if err is None:
            acked[msg.offset()] = msg.value()
        else:
            failed.append(err)

    p = producer(bs, **{"acks": "all", "linger.ms": 2, "message.timeout.ms": 4000, "retries": 0})

    def produce_loop():
        i = 0
        while not stop.is_set() and i < 100_000:
            try:
                p.produce(topic, value=f"rec-{i:06d}".encode(), on_delivery=on_delivery)
                i += 1
            except BufferError:
                pass
            p.poll(0.001)

    t = threading.Thread(target=produce_loop)
    t.start()
    try:
        wait_for(lambda: len(acked) >= 300, timeout=30, what="300 acknowledged records")
        broker.kill()  # SIGKILL while records are in flight
    finally:
        stop.set()
        t.join(10)
    p.flush(10)
    assert acked, "nothing was acknowledged"
    last = max(acked)
    broker.start()

    lo, hi = watermarks(bs, topic, 0)
    assert lo == 0 and hi >= last + 1, f"watermarks ({lo}, {hi}), last acked offset {last}"
    msgs = consume(bs, topic, 0, OFFSET_BEGINNING, last + 1, timeout=30)
    for m in msgs:
        if m.offset() in acked:
            assert m.value() == acked[m.offset()], f"offset {m.offset()}"
    assert [m.offset() for m in msgs] == list(range(last + 1))
    # Offsets go on from the recovered end, without reuse.
    assert produce_all(bs, topic, [{"value": b"after"}]) == [(0, hi)]


def _log_files(broker, topic):
    return sorted(broker.partition_dir(topic, 0).glob("*.log"))


def _fill_segments(bs, topic, n, size=200):
    """n records, one batch each (a flush per record), ~270 bytes a batch."""
    p = producer(bs, **{"linger.ms": 0})
    values = [f"{i:05d}".encode() + b"x" * size for i in range(n)]
    for v in values:
        p.produce(topic, value=v)
        assert p.flush(10) == 0
    return values


def test_retention_by_time_deletes_old_segments(make_broker):
    broker = make_broker(settings={"log.retention.check.interval.ms": "200"})
    bs, topic = broker.bootstrap, "ret-time"
    create_topic(bs, topic, config={"segment.bytes": "1024", "retention.ms": "1500"})
    values = _fill_segments(bs, topic, 30)
    first_files = _log_files(broker, topic)
    assert len(first_files) >= 5, f"segments did not roll: {first_files}"
    assert first_files[0].name == "00000000000000000000.log"

    lo, hi = wait_for(
        lambda: (w := watermarks(bs, topic, 0))[0] > 0 and w, timeout=20, what="log start to move"
    )
    assert hi == 30
    wait_for(lambda: not first_files[0].exists(), timeout=10, what="first segment deleted")
    remaining = _log_files(broker, topic)
    assert len(remaining) < len(first_files)
    # The log starts at the base offset of its first remaining segment.
    assert int(remaining[0].name.split(".")[0]) == watermarks(bs, topic, 0)[0]
    lo = watermarks(bs, topic, 0)[0]
    if lo < hi:
        (m,) = consume(bs, topic, 0, OFFSET_BEGINNING, 1)
        assert m.offset() == lo and m.value() == values[lo]


def test_retention_by_bytes_keeps_the_newest(make_broker):
    broker = make_broker(settings={"log.retention.check.interval.ms": "200"})
    bs, topic = broker.bootstrap, "ret-bytes"
    create_topic(bs, topic, config={"segment.bytes": "1024", "retention.bytes": "2048"})
    values = _fill_segments(bs, topic, 40)
    assert _log_files(broker, topic)[0].name == "00000000000000000000.log"

    wait_for(
        lambda: watermarks(bs, topic, 0)[0] > 0
        and not (broker.partition_dir(topic, 0) / "00000000000000000000.log").exists(),
        timeout=20,
        what="old segments deleted",
    )
    lo, hi = watermarks(bs, topic, 0)
    assert hi == 40
    files = _log_files(broker, topic)
    assert int(files[0].name.split(".")[0]) == lo
    total = sum(f.stat().st_size for f in files)
    # Kafka deletes the oldest segment while what remains is still at
    # least retention.bytes, so at most one segment (plus a batch) more.
    assert total <= 2048 + 1024 + 512, f"{total} bytes left in {len(files)} segments"
    msgs = consume(bs, topic, 0, OFFSET_BEGINNING, hi - lo)
    assert [m.value() for m in msgs] == values[lo:]
    consume_none(bs, topic, 0, hi, wait=0.5)
