"""Retry with backoff and the dead-letter queue (docs/delivery.md) with a
confluent-kafka consumer in a group that follows the documented recipe:
subscribe to the topic and to __runnel.retry.G, produce every failed
record to the retry topic, commit. The record must come back at the
configured backoffs with its retry count, land in __runnel.dlq.G with its
history once the attempts are spent, show in `runnel dlq list`, and come
back once (count 0) after `runnel dlq redrive`.
"""

import time

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import ConfigResource

from clients import QUIET, admin, create_topic, produce_all, producer, topic_partitions
from conftest import run_cli, wait_for
from delivery_util import (
    DLQ_AT_MS,
    DLQ_REASON,
    LATE_SLACK,
    ORIGINAL_OFFSET,
    ORIGINAL_PARTITION,
    ORIGINAL_TOPIC,
    REDRIVE,
    RETRY_COUNT,
    RETRY_FIRST_MS,
    high,
    metadata_create,
    now_ms,
    produce_one,
    read_partition,
    wait_topic,
)

FAST = {"group.initial.rebalance.delay.ms": "0", "group.min.session.timeout.ms": "1000"}


def ok(r):
    assert r.rc == 0, r
    return r


def hmap(headers):
    """Headers as a dict; a name present twice is a bug in what the broker
    added or replaced."""
    names = [k for k, _ in headers or []]
    assert len(names) == len(set(names)), f"duplicate headers: {headers}"
    return dict(headers or [])


class RecipeConsumer:
    """A group member following docs/delivery.md's recipe. `fails(msg)`
    says whether processing a record fails; a failed record is produced to
    the retry topic (with the original-* headers when it has none), then
    the record is committed. Every record seen is kept in `events` with
    when it arrived and, for failures, when the retry produce was sent and
    acknowledged."""

    def __init__(self, bootstrap, group, topics, fails):
        self.retry = f"__runnel.retry.{group}"
        self.c = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
            "fetch.wait.max.ms": 100,
            "topic.metadata.refresh.interval.ms": 1000,
            **QUIET,
        })
        self.c.subscribe(list(topics) + [self.retry])
        self.p = producer(bootstrap, **{"linger.ms": 0})
        self.fails = fails
        self.events = []
        self.errors = []

    def poll_once(self, timeout=0.1):
        m = self.c.poll(timeout)
        if m is None:
            return
        at = time.time()
        if m.error():
            self.errors.append(m.error())
            return
        ev = {"at": at, "topic": m.topic(), "partition": m.partition(), "offset": m.offset(),
              "key": m.key(), "value": m.value(), "headers": list(m.headers() or []), "failed": False}
        if self.fails(m):
            headers = list(m.headers() or [])
            if ORIGINAL_TOPIC not in {k for k, _ in headers}:
                headers += [
                    (ORIGINAL_TOPIC, m.topic().encode()),
                    (ORIGINAL_PARTITION, str(m.partition()).encode()),
                    (ORIGINAL_OFFSET, str(m.offset()).encode()),
                ]
            reports = []
            ev["sent_ms"] = now_ms()
            self.p.produce(self.retry, key=m.key(), value=m.value(), headers=headers,
                           on_delivery=lambda err, msg: reports.append(err))
            assert self.p.flush(15) == 0 and reports == [None], f"retry produce failed: {reports}"
            ev["acked_ms"] = now_ms()
            ev["failed"] = True
        self.c.commit(message=m, asynchronous=False)
        self.events.append(ev)

    def run_until(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; events {self.events}")
            self.poll_once()

    def close(self):
        self.c.close()


def dlq_records(b, group):
    if topic_partitions(b.bootstrap, f"__runnel.dlq.{group}") is None:
        return []
    return read_partition(b.bootstrap, f"__runnel.dlq.{group}", 0)


def dlq_list(group, bs):
    """Rows of `runnel dlq list`, each split at tabs."""
    lines = ok(run_cli("dlq", "list", group, *bs)).out.splitlines()
    assert lines[0].split("\t") == ["OFFSET", "TIMESTAMP", "RETRIES", "FROM", "REASON", "KEY", "VALUE"]
    return [l.split("\t") for l in lines[1:]]


def test_recipe_retries_on_schedule_then_dead_letters_and_redrives(make_broker):
    b = make_broker(FAST)
    bs = ["-b", b.bootstrap]
    group = "billing"
    retry, dlq = f"__runnel.retry.{group}", f"__runnel.dlq.{group}"
    create_topic(b.bootstrap, "payments", partitions=2)

    # The retry topic exists once named, with one partition; its topic
    # configs are the group's retry settings.
    assert metadata_create(b.bootstrap, retry) == (0, [0])
    ok(run_cli("topic", "alter", retry, "--config", "retry.backoff.schedule=1s 2s 3s",
               "--config", "retry.max.attempts=3", *bs))
    r = ok(run_cli("topic", "describe", retry, *bs))
    assert "retry.max.attempts=3" in r.out and "retry.backoff.schedule=1s 2s 3s" in r.out, r

    produce_all(b.bootstrap, "payments", [
        {"key": b"order-7", "value": b"charge 12", "partition": 1, "headers": [("trace", b"t-1")]},
        {"key": b"order-8", "value": b"fine", "partition": 0},
    ])
    rc = RecipeConsumer(b.bootstrap, group, ["payments"], lambda m: m.value() == b"charge 12")
    try:
        failures = lambda: [e for e in rc.events if e["failed"]]
        # 1 first delivery + 3 retries, each failed; the fourth failure has
        # used up retry.max.attempts and goes to the dead-letter queue.
        rc.run_until(lambda: len(failures()) >= 4, timeout=6 + 4 * LATE_SLACK + 15, what="four failures")
        wait_for(lambda: len(dlq_records(b, group)) >= 1, timeout=5, what="the dead letter")
        evs = failures()
        assert len(evs) == 4
        assert [e["value"] for e in rc.events if not e["failed"]] == [b"fine"]

        first, retries = evs[0], evs[1:]
        assert (first["topic"], first["partition"], first["offset"]) == ("payments", 1, 0)
        assert first["headers"] == [("trace", b"t-1")]
        first_ms = None
        backoffs = [1000, 2000, 3000]
        for n, (prev, e) in enumerate(zip(evs, retries), start=1):
            assert (e["topic"], e["partition"], e["offset"]) == (retry, 0, n - 1), e
            assert (e["key"], e["value"]) == (b"order-7", b"charge 12")
            h = hmap(e["headers"])
            assert h[RETRY_COUNT] == str(n).encode()
            assert h["trace"] == b"t-1"
            assert (h[ORIGINAL_TOPIC], h[ORIGINAL_PARTITION], h[ORIGINAL_OFFSET]) == (b"payments", b"1", b"0")
            # When it first failed: the broker's receipt of the first retry
            # produce, the same on every later retry.
            fm = int(h[RETRY_FIRST_MS])
            assert first["sent_ms"] <= fm <= first["acked_ms"], (first, fm)
            first_ms = first_ms or fm
            assert fm == first_ms
            # Held for step n-1 of the schedule: never early, late only by
            # scheduler slack.
            wait_ms = backoffs[n - 1]
            assert e["at"] * 1000 >= prev["sent_ms"] + wait_ms, f"retry {n} early"
            assert e["at"] * 1000 <= prev["acked_ms"] + wait_ms + LATE_SLACK * 1000, f"retry {n} late"
            assert REDRIVE not in h and DLQ_REASON not in h

        # The retry topic holds only what the broker released: 3 records.
        assert high(b.bootstrap, retry, 0) == 3
        assert topic_partitions(b.bootstrap, retry) == [0]
        assert wait_topic(b.bootstrap, dlq) == [0]

        (dead,) = dlq_records(b, group)
        assert (dead.key(), dead.value()) == (b"order-7", b"charge 12")
        h = hmap(dead.headers())
        assert h[RETRY_COUNT] == b"3"
        assert h["trace"] == b"t-1"
        assert (h[ORIGINAL_TOPIC], h[ORIGINAL_PARTITION], h[ORIGINAL_OFFSET]) == (b"payments", b"1", b"0")
        assert int(h[RETRY_FIRST_MS]) == first_ms
        assert h[DLQ_REASON], "empty runnel-dlq-reason"
        last = evs[-1]
        assert last["sent_ms"] <= int(h[DLQ_AT_MS]) <= last["acked_ms"]

        # `runnel dlq list G` shows it.
        assert dlq_list(group, bs) == [
            ["0", str(dead.timestamp()[1]), "3", "payments/1@0", h[DLQ_REASON].decode(), "order-7", "charge 12"]]

        # Redrive: back on the retry topic at once, count 0, no
        # runnel-redrive; this time the consumer succeeds.
        rc.fails = lambda m: False
        before = len(rc.events)
        r = ok(run_cli("dlq", "redrive", group, *bs))
        assert r.out.startswith("re-drove 1 records "), r
        assert high(b.bootstrap, retry, 0) == 4, "the re-driven record was not appended at once"
        rc.run_until(lambda: len(rc.events) > before, timeout=10, what="the re-driven record")
        again = rc.events[before]
        assert (again["topic"], again["offset"], again["value"]) == (retry, 3, b"charge 12")
        h = hmap(again["headers"])
        assert h[RETRY_COUNT] == b"0"
        assert REDRIVE not in h
        assert (h[ORIGINAL_TOPIC], h[ORIGINAL_PARTITION], h[ORIGINAL_OFFSET]) == (b"payments", b"1", b"0")

        # Progress is the committed offset of __runnel.redrive.G on the
        # dead-letter topic; a second redrive re-drives nothing.
        r2 = ok(run_cli("dlq", "redrive", group, *bs))
        assert r2.out.startswith("re-drove 0 records "), r2
        assert high(b.bootstrap, retry, 0) == 4, r2
        # `dlq list` marks it re-driven.
        assert [row[0] for row in dlq_list(group, bs)] == ["*0"]
        assert len(dlq_records(b, group)) == 1  # dead letters stay
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": f"__runnel.redrive.{group}", **QUIET})
        try:
            (tp,) = c.committed([TopicPartition(dlq, 0)], timeout=10)
            assert tp.offset == 1
        finally:
            c.close()
        # And the group sees nothing more (a bounded look, not a proof).
        t_end = time.monotonic() + 1.0
        while time.monotonic() < t_end:
            rc.poll_once()
        assert len(rc.events) == before + 1, rc.events[before:]
    finally:
        rc.close()


def test_settings_by_alter_configs_and_count_at_the_maximum(make_broker):
    """AlterConfigs on the retry topic sets the group's schedule and
    maximum; a record whose count already reached the maximum goes to the
    dead-letter queue at once."""
    b = make_broker(FAST)
    group = "g2"
    retry, dlq = f"__runnel.retry.{group}", f"__runnel.dlq.{group}"
    assert metadata_create(b.bootstrap, retry) == (0, [0])
    adm = admin(b.bootstrap)
    res = ConfigResource(ConfigResource.Type.TOPIC, retry,
                         set_config={"retry.backoff.schedule": "1s", "retry.max.attempts": "2"})
    for f in adm.alter_configs([res], request_timeout=10).values():
        f.result(10)
    desc = adm.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, retry)])
    cfg = list(desc.values())[0].result(10)
    assert cfg["retry.max.attempts"].value == "2"
    assert cfg["retry.backoff.schedule"].value == "1s"

    # Count 1 < 2: held for the schedule's step 1, which is the last step
    # (1s) repeated.
    sent = now_ms()
    err, _, _ = produce_one(b.bootstrap, retry, b"v1", key=b"k1", headers=[(RETRY_COUNT, b"1"), ("x", b"y")])
    assert err is None, err
    assert high(b.bootstrap, retry, 0) == 0
    # Count 2 = the maximum: dead-lettered at once.
    err, _, _ = produce_one(b.bootstrap, retry, b"v2", key=b"k2", headers=[(RETRY_COUNT, b"2")])
    assert err is None, err
    (dead,) = read_partition(b.bootstrap, dlq, 0)
    assert (dead.key(), dead.value()) == (b"k2", b"v2")
    h = hmap(dead.headers())
    assert h[RETRY_COUNT] == b"2" and h[DLQ_REASON] and int(h[DLQ_AT_MS]) >= sent

    wait_for(lambda: high(b.bootstrap, retry, 0) >= 1, timeout=1 + LATE_SLACK + 3, what="the retried record")
    assert now_ms() >= sent + 1000
    (m,) = read_partition(b.bootstrap, retry, 0)
    h = hmap(m.headers())
    assert (m.key(), m.value(), h[RETRY_COUNT], h["x"]) == (b"k1", b"v1", b"2", b"y")


def test_runnel_topic_prefix_is_reserved(make_broker):
    """Only the retry, dead-letter and check topics may start with
    __runnel.; those are created on first use whatever
    auto.create.topics.enable says."""
    b = make_broker()
    r = run_cli("topic", "create", "__runnel.mine", "-b", b.bootstrap)
    assert r.rc == 1 and len(r.err.splitlines()) == 1 and "reserved" in r.err, r
    # Auto-creation refuses the name too: INVALID_TOPIC_EXCEPTION.
    assert metadata_create(b.bootstrap, "__runnel.other") == (17, [])
    assert topic_partitions(b.bootstrap, "__runnel.mine") is None
    assert topic_partitions(b.bootstrap, "__runnel.other") is None
    # The retry topic of a group is created whatever auto-create says.
    b2 = make_broker({"auto.create.topics.enable": "false"})
    assert metadata_create(b2.bootstrap, "__runnel.retry.g3") == (0, [0])
    err, _, off = produce_one(b2.bootstrap, "__runnel.dlq.g4", b"x")
    assert err is None, err
    assert wait_topic(b2.bootstrap, "__runnel.dlq.g4") == [0]
    assert b.alive() and b2.alive()
