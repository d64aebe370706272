"""Helpers shared by the delayed, retry/dead-letter and half-message tests
(docs/delivery.md): the control header names, a Produce v8 request that
puts one batch per partition into one request and returns the broker's
error message, a poller that records when each offset of a partition
first became visible, a consumer thread that stamps every record with
its receive time, and readers for whole partitions.

Times are wall-clock seconds (time.time()) because due times are wall
clock on the broker side (runnel-deliver-at-ms is Unix epoch ms).
"""

import struct
import threading
import time
from collections import namedtuple

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

import kwire
from clients import consume, consumer, producer, topic_partitions, watermarks

INVALID_RECORD = 87

# Control headers.
DELAY_MS = "runnel-delay-ms"
DELIVER_AT_MS = "runnel-deliver-at-ms"
DELAY_LEVEL = "runnel-delay-level"
TXN = "runnel-txn"
TXN_ID = "runnel-txn-id"
PRODUCER_GROUP = "runnel-producer-group"
TXN_TOPIC = "runnel-txn-topic"
TXN_PARTITION = "runnel-txn-partition"
TXN_CHECK = "runnel-txn-check"
RETRY_COUNT = "runnel-retry-count"
RETRY_FIRST_MS = "runnel-retry-first-ms"
ORIGINAL_TOPIC = "runnel-original-topic"
ORIGINAL_PARTITION = "runnel-original-partition"
ORIGINAL_OFFSET = "runnel-original-offset"
DLQ_REASON = "runnel-dlq-reason"
DLQ_AT_MS = "runnel-dlq-at-ms"
REDRIVE = "runnel-redrive"

# RocketMQ's default delay levels, in ms (docs/delivery.md).
LEVELS_MS = [
    s * 1000
    for s in (1, 5, 10, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 1200, 1800, 3600, 7200)
]

# How late a release may be on a busy two-core machine before a test
# calls it wrong. The broker promises 100 ms; tests never assert that
# tightly. Early is never allowed.
LATE_SLACK = 1.0

# librdkafka backs off reconnects up to 10 s; tests that restart the
# broker want the client back at once.
RECONNECT_FAST = {"reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 200}


def now_ms():
    return int(time.time() * 1000)


def hdr(headers, name):
    """The value of the one header `name` in a list of (key, value)
    pairs; asserts there is exactly one."""
    vals = [v for k, v in (headers or []) if k == name]
    assert len(vals) == 1, f"header {name}: {len(vals)} copies in {headers}"
    return vals[0]


def hdr_int(headers, name):
    return int(hdr(headers, name).decode())


def without(headers, *names):
    return [(k, v) for k, v in (headers or []) if k not in names]


# ------------------------------------------------------------- Produce v8
ProduceResult = namedtuple("ProduceResult", "error base_offset message record_errors")

API_PRODUCE = 0


def produce_v8(bootstrap, parts, acks=-1, timestamp=None):
    """One Produce v8 request holding one uncompressed batch per
    (topic, partition); parts maps (topic, partition) to a list of
    (key, value, headers) with headers [(str, bytes or None)].

    Returns {(topic, partition): ProduceResult}. v8 is the first version
    whose answer carries the broker's error message (and it is not yet
    flexible, so kwire's framing fits)."""
    by_topic = {}
    for (topic, partition), records in parts.items():
        batch = kwire.record_batch(records, base_timestamp=timestamp)
        by_topic.setdefault(topic, []).append((partition, batch))
    body = (
        kwire.string(None)
        + struct.pack(">hi", acks, 10000)
        + kwire.array(
            list(by_topic.items()),
            lambda t: kwire.string(t[0])
            + kwire.array(t[1], lambda pb: struct.pack(">i", pb[0]) + kwire.nbytes(pb[1])),
        )
    )
    host, port = bootstrap.split(":")
    with kwire.Conn(host, int(port)) as c:
        return parse_produce_v8(c.request(API_PRODUCE, 8, body))


def parse_produce_v8(body):
    r = kwire.Reader(body)
    out = {}

    def part(r, topic):
        idx, err, base = r.int32(), r.int16(), r.int64()
        r.int64()  # log_append_time_ms
        r.int64()  # log_start_offset
        rec_errs = r.array(lambda r: (r.int32(), r.string()))
        msg = r.string()
        out[(topic, idx)] = ProduceResult(err, base, msg, rec_errs)

    def topic(r):
        name = r.string()
        r.array(lambda r: part(r, name))

    r.array(topic)
    r.int32()  # throttle_time_ms
    assert r.remaining() == 0, f"{r.remaining()} bytes left in a Produce v8 answer"
    return out


def metadata_create(bootstrap, topic):
    """Names `topic` in a Metadata v4 request (allow_auto_create true) and
    returns (error_code, partition ids)."""
    host, port = bootstrap.split(":")
    with kwire.Conn(host, int(port)) as c:
        md = kwire.parse_metadata_v4(
            c.request(kwire.API_METADATA, 4, kwire.metadata_v4_body([topic]))
        )
    return md[topic]


# -------------------------------------------------------- producing with
def produce_one(bootstrap, topic, value, key=None, headers=None, partition=None, timestamp=None,
                timeout=30):
    """Produces one record with confluent-kafka and returns the delivery
    report as (KafkaError or None, partition, offset). Does not assert
    success: error tests look at the code the client reports."""
    p = producer(bootstrap, **{"linger.ms": 0, "retries": 0})
    out = []
    kw = {"value": value, "on_delivery": lambda err, msg: out.append((err, msg.partition(), msg.offset()))}
    if key is not None:
        kw["key"] = key
    if headers is not None:
        kw["headers"] = headers
    if partition is not None:
        kw["partition"] = partition
    if timestamp is not None:
        kw["timestamp"] = timestamp
    p.produce(topic, **kw)
    left = p.flush(timeout)
    assert left == 0 and len(out) == 1, f"no delivery report within {timeout}s"
    return out[0]


# ----------------------------------------------------------- reading back
def high(bootstrap, topic, partition):
    return watermarks(bootstrap, topic, partition)[1]


def read_partition(bootstrap, topic, partition, timeout=20):
    """Every record of a partition from its start to its current end."""
    lo, hi = watermarks(bootstrap, topic, partition)
    if hi == lo:
        return []
    return consume(bootstrap, topic, partition, OFFSET_BEGINNING, count=hi - lo, timeout=timeout)


def wait_topic(bootstrap, name, timeout=10.0):
    """Partition ids of `name` once it exists (Metadata for all topics, so
    asking never creates it)."""
    deadline = time.monotonic() + timeout
    while True:
        parts = topic_partitions(bootstrap, name)
        if parts is not None:
            return parts
        if time.monotonic() >= deadline:
            raise AssertionError(f"topic {name} did not appear within {timeout}s")
        time.sleep(0.05)


class Visibility:
    """Polls the high watermarks of some partitions from a thread and
    remembers, per partition, the wall time at which a poll first showed
    each offset. That time is taken after the answer arrived, so it is an
    upper bound of when the broker made the record visible: a record seen
    before its due time was certainly released early."""

    def __init__(self, bootstrap, tps, interval=0.01):
        # Short reconnect backoff: restart tests take the broker away.
        self._c = consumer(bootstrap, **RECONNECT_FAST)
        self.tps = list(tps)
        self.interval = interval
        self.first_seen = {tp: {} for tp in self.tps}  # tp -> {offset: wall time}
        self.highs = {tp: 0 for tp in self.tps}
        self.polls = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error = None

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        try:
            while not self._stop.is_set():
                for tp in self.tps:
                    try:
                        _, hi = self._c.get_watermark_offsets(TopicPartition(*tp), timeout=0.5, cached=False)
                    except Exception:  # the broker may be down in restart tests
                        continue
                    t = time.time()
                    with self._lock:
                        for off in range(self.highs[tp], hi):
                            self.first_seen[tp].setdefault(off, t)
                        self.highs[tp] = max(self.highs[tp], hi)
                        self.polls += 1
                self._stop.wait(self.interval)
        except BaseException as e:  # reported by stop()
            self.error = e

    def high(self, tp):
        with self._lock:
            return self.highs[tp]

    def seen_at(self, tp, offset):
        with self._lock:
            return self.first_seen[tp].get(offset)

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        self._c.close()
        assert self.error is None, f"visibility poller failed: {self.error!r}"


Received = namedtuple("Received", "at topic partition offset key value headers timestamp")


class Receiver:
    """A consumer thread assigned to some partitions from their start;
    every record it gets is kept with its receive wall time."""

    def __init__(self, bootstrap, tps, **conf):
        conf.setdefault("fetch.wait.max.ms", 100)
        for k, v in RECONNECT_FAST.items():
            conf.setdefault(k, v)
        self._c = consumer(bootstrap, **conf)
        self._c.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in tps])
        self.got = []
        self.errors = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            m = self._c.poll(0.05)
            if m is None:
                continue
            t = time.time()
            if m.error():
                with self._lock:
                    self.errors.append(m.error())
                continue
            r = Received(t, m.topic(), m.partition(), m.offset(), m.key(), m.value(), m.headers() or [],
                         m.timestamp())
            with self._lock:
                self.got.append(r)

    def snapshot(self):
        with self._lock:
            return list(self.got)

    def count(self):
        with self._lock:
            return len(self.got)

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        self._c.close()
