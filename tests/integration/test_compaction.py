"""Log compaction through real clients: after the cleaner ran, a keyed
topic holds the last value per key at the offsets those records had,
tombstones go after delete.retention.ms, and a record without a key is
refused by a compacted topic."""

import time

from confluent_kafka import KafkaError, Producer

from clients import QUIET, consumer, create_topic, produce_all, watermarks

CLEANER = {"log.cleaner.backoff.ms": "100"}
TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "segment.bytes": "2048",  # many small segments; the active one is never cleaned
    "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": "0",
}


def read_all(bootstrap, topic, end, timeout=20):
    """[(offset, key, value)] of partition 0 from the start up to end."""
    c = consumer(bootstrap)
    from confluent_kafka import TopicPartition

    c.assign([TopicPartition(topic, 0, 0)])
    out, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                if out and out[-1][0] >= end - 1:
                    break
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    break
                raise AssertionError(m.error())
            out.append((m.offset(), m.key(), m.value()))
            if m.offset() >= end - 1:
                break
    finally:
        c.close()
    return out


def test_compaction_keeps_last_value_per_key_at_its_offset(make_broker):
    b = make_broker(settings=CLEANER)
    create_topic(b.bootstrap, "kv", partitions=1, config=TOPIC_CONFIG)
    records = []
    for rnd in range(20):
        for k in range(30):
            records.append({"key": b"k%02d" % k, "value": b"v%02d-%02d" % (k, rnd) + b"." * 40,
                            "partition": 0})
    # Tombstones for five keys, then fillers so everything above sits in
    # sealed segments.
    for k in range(5):
        records.append({"key": b"k%02d" % k, "value": None, "partition": 0})
    for i in range(60):
        records.append({"key": b"filler%02d" % i, "value": b"f" * 40, "partition": 0})
    placed = produce_all(b.bootstrap, "kv", records, conf={"linger.ms": 0, "batch.num.messages": 10})
    last = {}
    for (part, off), r in zip(placed, records):
        last[r["key"]] = (off, r["value"])
    _, end = watermarks(b.bootstrap, "kv", 0)
    assert end == len(records)

    # The cleaner runs every 100 ms; wait (bounded) for the log to shrink
    # to one record per key, tombstones gone.
    want_keys = {k for k, (_, v) in last.items() if v is not None}
    deadline = time.monotonic() + 30
    while True:
        got = read_all(b.bootstrap, "kv", end)
        keys = [k for _, k, _ in got]
        # Records of the active segment are not compacted yet: judge the
        # sealed part, i.e. the 30 user keys.
        user = [(o, k, v) for o, k, v in got if k.startswith(b"k")]
        if len(user) == 25 and all(v is not None for _, _, v in user):
            break
        assert time.monotonic() < deadline, f"not compacted in time: {len(user)} user records"
        time.sleep(0.3)
    for off, k, v in user:
        assert (off, v) == last[k], k  # the last value, at its original offset
    assert {k for _, k, _ in user} == {k for k in want_keys if k.startswith(b"k")}
    offsets = [o for o, _, _ in got]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    assert len(keys) < len(records)  # records really went
    # Log start and end are what they were.
    assert watermarks(b.bootstrap, "kv", 0) == (0, end)

    # After a restart the compacted log reads the same.
    b.restart(clean=True)
    again = read_all(b.bootstrap, "kv", end)
    assert [r for r in again if r[1].startswith(b"k")] == user


def test_compacted_topic_refuses_records_without_key(make_broker):
    b = make_broker(settings=CLEANER)
    create_topic(b.bootstrap, "kv2", partitions=1, config={"cleanup.policy": "compact"})
    errors = []
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 0, "retries": 0, **QUIET})
    p.produce("kv2", value=b"no key", partition=0,
              on_delivery=lambda err, msg: errors.append(err))
    # A separate batch: the broker refuses a bad batch whole.
    assert p.flush(20) == 0
    p.produce("kv2", key=b"k", value=b"keyed", partition=0,
              on_delivery=lambda err, msg: errors.append(err))
    assert p.flush(20) == 0
    assert errors[0] is not None and errors[0].code() == KafkaError.INVALID_RECORD
    assert errors[1] is None
    assert watermarks(b.bootstrap, "kv2", 0) == (0, 1)  # only the keyed record
