"""Small wrappers around confluent-kafka (librdkafka) used by several test
files: produce and wait for every delivery report, consume a known number
of records from a manually assigned partition, read watermarks.

Consumers never join a group (the broker has no group coordinator yet):
confluent-kafka insists on a group.id, so one is set, with auto-commit off,
and partitions are assign()ed with explicit offsets.
"""

import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

QUIET = {"log_level": 0}

# Why a codec asked of librdkafka may be stored as "none" (see its
# rdkafka_msgset_writer.c); quoted in assertion messages.
LIBRDKAFKA_CODEC_NOTE = (
    "librdkafka 2.0 sends gzip/snappy/lz4 uncompressed unless the broker's ApiVersions "
    "includes Produce v0 (its codec check wants a Produce version in [0, 0]); lz4 also "
    "wants FindCoordinator, zstd Produce v7 and Fetch v10"
)


def producer(bootstrap, **conf):
    base = {"bootstrap.servers": bootstrap, "linger.ms": 5, "message.timeout.ms": 30000}
    base.update(QUIET)
    base.update(conf)
    return Producer(base)


def produce_all(bootstrap, topic, records, conf=None, timeout=30):
    """Produces records (dicts with value and optional key, partition,
    headers, timestamp) and returns [(partition, offset)] in input order.
    Fails on any delivery error."""
    p = producer(bootstrap, **(conf or {}))
    results = [None] * len(records)

    def on_delivery(i):
        def cb(err, msg):
            results[i] = (err, msg.partition(), msg.offset())

        return cb

    for i, r in enumerate(records):
        kw = {"value": r.get("value"), "on_delivery": on_delivery(i)}
        for f in ("key", "partition", "headers", "timestamp"):
            if f in r:
                kw[f] = r[f]
        p.produce(topic, **kw)
        p.poll(0)
    left = p.flush(timeout)
    assert left == 0, f"{left} records not delivered within {timeout}s"
    errors = [(i, r[0]) for i, r in enumerate(results) if r[0] is not None]
    assert not errors, f"delivery errors: {errors[:5]}"
    return [(part, off) for _, part, off in results]


def consumer(bootstrap, **conf):
    base = {
        "bootstrap.servers": bootstrap,
        "group.id": "runnel-tests",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": False,
        "auto.offset.reset": "error",
    }
    base.update(QUIET)
    base.update(conf)
    return Consumer(base)


def consume(bootstrap, topic, partition, offset=OFFSET_BEGINNING, count=1, timeout=20):
    """Exactly `count` records from one partition, starting at `offset`;
    fails when fewer arrive within `timeout` seconds."""
    c = consumer(bootstrap)
    try:
        c.assign([TopicPartition(topic, partition, offset)])
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                raise AssertionError(f"consume error: {m.error()}")
            got.append(m)
        assert len(got) == count, f"got {len(got)} of {count} records from {topic}-{partition}"
        return got
    finally:
        c.close()


def consume_none(bootstrap, topic, partition, offset, wait=1.5):
    """Asserts no record arrives at `offset` within `wait` seconds."""
    c = consumer(bootstrap)
    try:
        c.assign([TopicPartition(topic, partition, offset)])
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                raise AssertionError(f"unexpected record at offset {m.offset()}: {m.value()!r}")
    finally:
        c.close()


def watermarks(bootstrap, topic, partition, timeout=10):
    c = consumer(bootstrap)
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
    finally:
        c.close()


def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap, **QUIET})


def create_topic(bootstrap, name, partitions=1, config=None, timeout=15):
    adm = admin(bootstrap)  # must outlive the future: destroying it fails the call
    fs = adm.create_topics([NewTopic(name, partitions, 1, config=config or {})], request_timeout=timeout)
    fs[name].result(timeout)


def topic_partitions(bootstrap, name, timeout=10):
    """Sorted partition ids of a topic, None when it does not exist.

    Asks for all topics: a producer-type client asking for one topic by
    name would have the broker auto-create it."""
    md = admin(bootstrap).list_topics(timeout=timeout)
    t = md.topics.get(name)
    if t is None:
        return None
    assert t.error is None, f"metadata error for {name}: {t.error}"
    return sorted(t.partitions)
