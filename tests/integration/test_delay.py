"""Delayed and scheduled messages (docs/delivery.md) through confluent-kafka
and raw Produce requests: due-time order, never early, released once
across clean and SIGKILLed restarts (also when the due time passed while
the broker was down), the produce answer for held-back batches, bad delay
headers rejected whole with INVALID_RECORD, `normal` topics ignoring the
headers, and `runnel delayed count/list`.

"Never early" is checked against a poller of the high watermark: the
time a poll first shows an offset is later than the moment the broker
made it visible, so a poll that shows it before the producer's send time
plus the delay proves an early release. Lateness is allowed LATE_SLACK
(1 s) over the broker's 100 ms promise: the machine is shared.
"""

import time
from datetime import datetime, timezone

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME, KafkaError

import kwire
from clients import create_topic, produce_all
from conftest import run_cli, wait_for
from delivery_util import (
    DELAY_LEVEL,
    DELAY_MS,
    DELIVER_AT_MS,
    INVALID_RECORD,
    LATE_SLACK,
    Receiver,
    Visibility,
    high,
    now_ms,
    produce_one,
    produce_v8,
    read_partition,
)


def delay_topic(b, name, partitions=1, **config):
    conf = {"message.type": "delay"}
    conf.update(config)
    create_topic(b.bootstrap, name, partitions=partitions, config=conf)


def ok(r):
    assert r.rc == 0, r
    return r


# ------------------------------------------------------------ ordering
def test_delays_and_levels_come_out_in_due_order_never_early(make_broker):
    b = make_broker()
    delay_topic(b, "d")
    tp = ("d", 0)
    vis = Visibility(b.bootstrap, [tp]).start()
    rcv = Receiver(b.bootstrap, [tp]).start()
    try:
        sent_s = time.time()
        sent_ms = int(sent_s * 1000)  # floor: the broker's receipt is at or after it
        # The absolute time comes last with 1.5 s to spare over the
        # latest relative one, so a slow send (a busy machine) cannot
        # move the broker's receipt, which the relative ones count from,
        # past it.
        at_ms = sent_ms + 4000
        # (value, control header, due relative to receipt in ms or None
        # for the absolute one)
        plan = [
            ("d2500", (DELAY_MS, b"2500"), 2500),
            ("lvl1-a", (DELAY_LEVEL, b"1"), 1000),
            ("d1000-a", (DELAY_MS, b"1000"), 1000),
            ("d1500", (DELAY_MS, b"1500"), 1500),
            ("at4000", (DELIVER_AT_MS, str(at_ms).encode()), None),
            ("lvl1-b", (DELAY_LEVEL, b"1"), 1000),
            ("d1000-b", (DELAY_MS, b"1000"), 1000),
            ("d1000-c", (DELAY_MS, b"1000"), 1000),
        ]
        # One exact batch in one request: the relative delays share one
        # receipt time, so their order is the one the test expects (a
        # client's linger.ms could split them, and then records of equal
        # delay in different batches would be due at different times).
        # CreateTime sent_ms - 5000 + i, kept as set.
        batch = kwire.record_batch(
            [(f"k{i}".encode(), value.encode(), [("app", f"h{i}".encode()), ctl])
             for i, (value, ctl, _) in enumerate(plan)],
            base_timestamp=sent_ms - 5000, timestamp_deltas=list(range(len(plan))))
        res = kwire.produce_batches(b.host, b.port, {tp: batch})
        assert res == {tp: (0, -1)}, res  # held back: no offset yet
        acked_s = time.time()
        # Everything is held back: nothing was appended by the ack.
        assert high(b.bootstrap, "d", 0) == 0

        wait_for(lambda: rcv.count() >= len(plan), timeout=4 + 2 * LATE_SLACK + 3,
                 what="every delayed record")
        got = rcv.snapshot()
    finally:
        rcv.stop()
        vis.stop()

    # Due order; equal due times in the order sent.
    expected = ["lvl1-a", "d1000-a", "lvl1-b", "d1000-b", "d1000-c", "d1500", "d2500", "at4000"]
    assert [(r.offset, r.value.decode()) for r in got] == list(enumerate(expected))
    assert rcv.errors == []

    by_value = {v: (i, ctl, d) for i, (v, ctl, d) in enumerate(plan)}
    for r in got:
        i, ctl, delay = by_value[r.value.decode()]
        # The record as sent: key, value, headers (the delay header too)
        # and the producer's CreateTime.
        assert r.key == f"k{i}".encode()
        assert r.headers == [("app", f"h{i}".encode()), ctl]
        assert r.timestamp == (TIMESTAMP_CREATE_TIME, sent_ms - 5000 + i)
        if delay is None:
            due_lo = due_hi = at_ms / 1000
        else:
            due_lo, due_hi = sent_ms / 1000 + delay / 1000, acked_s + delay / 1000
        seen = vis.seen_at(tp, r.offset)
        assert seen is not None
        assert seen >= due_lo, f"{r.value} visible {due_lo - seen:.3f}s before its due time"
        assert r.at >= due_lo, f"{r.value} received {due_lo - r.at:.3f}s before its due time"
        assert r.at <= due_hi + LATE_SLACK, f"{r.value} received {r.at - due_hi:.3f}s after its due time"


def test_due_now_or_past_is_appended_with_its_batch(make_broker):
    b = make_broker()
    delay_topic(b, "d", partitions=2)
    sent_ms = now_ms()
    res = produce_v8(b.bootstrap, {
        ("d", 0): [
            (b"k0", b"zero", [(DELAY_MS, b"0")]),
            (b"k1", b"past", [(DELIVER_AT_MS, str(sent_ms - 60000).encode())]),
            (b"k2", b"later", [(DELAY_MS, b"1500")]),
            (b"k3", b"plain", []),
        ],
        ("d", 1): [
            (b"k4", b"p1-plain", []),
            (b"k5", b"p1-zero", [(DELAY_MS, b"0")]),
        ],
    })
    # A batch that held a record back has no base offset yet (-1); one
    # that held nothing back is an ordinary append.
    assert (res[("d", 0)].error, res[("d", 0)].base_offset) == (0, -1), res
    assert (res[("d", 1)].error, res[("d", 1)].base_offset) == (0, 0), res

    # The records that are due already were appended with the batch.
    p0 = read_partition(b.bootstrap, "d", 0)
    assert [(m.offset(), m.value()) for m in p0] == [(0, b"zero"), (1, b"past"), (2, b"plain")]
    p1 = read_partition(b.bootstrap, "d", 1)
    assert [(m.offset(), m.value()) for m in p1] == [(0, b"p1-plain"), (1, b"p1-zero")]

    wait_for(lambda: high(b.bootstrap, "d", 0) >= 4, timeout=1.5 + LATE_SLACK + 3, what="the 1.5s record")
    last = read_partition(b.bootstrap, "d", 0)[3]
    assert (last.offset(), last.key(), last.value()) == (3, b"k2", b"later")
    assert last.headers() == [(DELAY_MS, b"1500")]
    assert time.time() >= sent_ms / 1000 + 1.5


def test_timestamps_and_topic_types(make_broker):
    """CreateTime as the producer set it; a LogAppendTime topic stamps the
    release; `mixed` delays as `delay` does; `normal` ignores the headers
    (even ones that would be bad on a delay topic)."""
    b = make_broker()
    delay_topic(b, "ct")
    delay_topic(b, "lat", **{"message.timestamp.type": "LogAppendTime"})
    create_topic(b.bootstrap, "mx", config={"message.type": "mixed"})
    create_topic(b.bootstrap, "plain")  # message.type defaults to normal
    create_topic(b.bootstrap, "plain2", config={"message.type": "normal"})

    sent_ms = now_ms()
    ts = sent_ms - 10000
    for t in ("ct", "lat", "mx"):
        err, part, _ = produce_one(b.bootstrap, t, b"v-" + t.encode(), key=b"k",
                                   headers=[(DELAY_MS, b"1000")], timestamp=ts)
        assert err is None and part == 0, err
        assert high(b.bootstrap, t, 0) == 0, f"{t}: the delayed record was appended at once"

    # On normal topics runnel-* headers mean nothing: visible at once,
    # with the offset in the delivery report, headers kept.
    for t in ("plain", "plain2"):
        hs = [[(DELAY_MS, b"60000")], [(DELAY_MS, b"not-a-number")], [(DELAY_LEVEL, b"99"), (DELAY_MS, b"5")]]
        for i, h in enumerate(hs):
            err, part, off = produce_one(b.bootstrap, t, f"n{i}".encode(), headers=h)
            assert (err, part, off) == (None, 0, i)
        got = read_partition(b.bootstrap, t, 0)
        assert [(m.offset(), m.value(), m.headers()) for m in got] == [
            (i, f"n{i}".encode(), h) for i, h in enumerate(hs)
        ]

    for t in ("ct", "lat", "mx"):
        wait_for(lambda: high(b.bootstrap, t, 0) >= 1, timeout=1 + LATE_SLACK + 3, what=f"{t}'s record")
    released_by = now_ms()
    for t in ("ct", "mx"):
        (m,) = read_partition(b.bootstrap, t, 0)
        assert (m.key(), m.value(), m.headers()) == (b"k", b"v-" + t.encode(), [(DELAY_MS, b"1000")])
        assert m.timestamp() == (TIMESTAMP_CREATE_TIME, ts)
    (m,) = read_partition(b.bootstrap, "lat", 0)
    assert m.value() == b"v-lat"
    kind, stamp = m.timestamp()
    assert kind == TIMESTAMP_LOG_APPEND_TIME
    # The release time, not the receipt: at or after the due time.
    assert sent_ms + 1000 <= stamp <= released_by, (sent_ms, stamp, released_by)


# ------------------------------------------------------------ restarts
@pytest.mark.parametrize("clean", [True, False], ids=["sigterm", "sigkill"])
@pytest.mark.parametrize("down_past_due", [False, True], ids=["back-before-due", "down-past-due"])
def test_restart_loses_and_repeats_nothing(make_broker, clean, down_past_due):
    b = make_broker()
    delay_topic(b, "r", partitions=2)
    tps = [("r", 0), ("r", 1)]
    # 10 records due after 300 ms (released before the restart) and 30
    # due 2.5-3.3 s after receipt (pending across it).
    records, delays = [], []
    for i in range(40):
        d = 300 if i < 10 else 2500 + (i % 5) * 200
        delays.append(d)
        records.append({"key": f"k{i}".encode(), "value": f"v{i}".encode(), "partition": i % 2,
                        "headers": [(DELAY_MS, str(d).encode())]})
    vis = Visibility(b.bootstrap, tps).start()
    try:
        sent_ms = now_ms()
        produce_all(b.bootstrap, "r", records)
        wait_for(lambda: vis.high(tps[0]) >= 5 and vis.high(tps[1]) >= 5, timeout=0.3 + LATE_SLACK + 3,
                 what="the 300 ms records")
        assert vis.high(tps[0]) == 5 and vis.high(tps[1]) == 5, "2.5 s records released early"
        if clean:
            b.stop()
        else:
            b.kill()
        if down_past_due:
            # Stay down until every record is due, then start: they are
            # released right after the start.
            last_due = sent_ms / 1000 + max(delays) / 1000
            while time.time() < last_due + 0.3:
                time.sleep(0.05)
        b.start()
        started = time.time()
        wait_for(lambda: vis.high(tps[0]) >= 20 and vis.high(tps[1]) >= 20,
                 timeout=(2.0 if down_past_due else 3.0) + LATE_SLACK + 1, what="every record after the restart")
        if down_past_due:
            last_seen = max(vis.seen_at(tp, 19) for tp in tps)
            assert last_seen - started <= LATE_SLACK + 1.0, f"released {last_seen - started:.2f}s after start"
    finally:
        vis.stop()

    # Nothing pending any more, so nothing can be released again.
    assert delayed_total(b) == 0
    for part in (0, 1):
        got = read_partition(b.bootstrap, "r", part)
        # Offsets contiguous from 0, each record exactly once.
        assert [m.offset() for m in got] == list(range(20))
        assert sorted(m.value().decode() for m in got) == sorted(
            f"v{i}" for i in range(40) if i % 2 == part)
        # The 300 ms ones first (released before the restart).
        assert {m.value().decode() for m in got[:5]} == {f"v{i}" for i in range(10) if i % 2 == part}
        for m in got:
            i = int(m.value()[1:])
            assert m.key() == f"k{i}".encode() and m.headers() == [(DELAY_MS, str(delays[i]).encode())]
            seen = vis.seen_at(("r", part), m.offset())
            assert seen >= sent_ms / 1000 + delays[i] / 1000, f"v{i} visible before due"
    assert high(b.bootstrap, "r", 0) == 20 and high(b.bootstrap, "r", 1) == 20


@pytest.mark.parametrize("kill_after", [0.1, 0.2])
def test_sigkill_while_releasing_loses_and_repeats_nothing(make_broker, kill_after):
    """A SIGKILL in the middle of the release window: 3000 records due
    over 300 ms, the kill `kill_after` seconds into it. Whatever the kill interrupted
    (an intent written, a batch appended, entries not yet marked), after
    the restart every record is in its partition exactly once."""
    b = make_broker()
    delay_topic(b, "k", partitions=2)
    n = 3000
    records = [{"value": f"v{i}".encode(), "partition": i % 2,
                "headers": [(DELAY_MS, str(1500 + i // 10).encode())]} for i in range(n)]
    sent = time.time()
    produce_all(b.bootstrap, "k", records)
    while time.time() < sent + 1.5 + kill_after:
        time.sleep(0.01)
    b.kill()
    b.start()
    wait_for(lambda: high(b.bootstrap, "k", 0) + high(b.bootstrap, "k", 1) >= n, timeout=10,
             what="every record after the restart")
    assert delayed_total(b) == 0
    for part in (0, 1):
        got = read_partition(b.bootstrap, "k", part)
        assert [m.offset() for m in got] == list(range(n // 2))
        values = [int(m.value()[1:]) for m in got]
        assert sorted(values) == list(range(part, n, 2))
        # Due order survives the crash.
        assert values == sorted(values)


# ----------------------------------------------------------- bad input
MAX_60S = {"delay.max.ms": "60000"}

BAD = {
    "ms-not-a-number": ({}, [(DELAY_MS, b"abc")]),
    "ms-with-unit": ({}, [(DELAY_MS, b"10s")]),
    "ms-empty": ({}, [(DELAY_MS, b"")]),
    "ms-negative": ({}, [(DELAY_MS, b"-5")]),
    "ms-null": ({}, [(DELAY_MS, None)]),
    "at-not-a-number": ({}, [(DELIVER_AT_MS, b"tomorrow")]),
    "at-negative": ({}, [(DELIVER_AT_MS, b"-1")]),
    "at-null": ({}, [(DELIVER_AT_MS, None)]),
    "level-0": ({}, [(DELAY_LEVEL, b"0")]),
    "level-19": ({}, [(DELAY_LEVEL, b"19")]),
    "level-not-a-number": ({}, [(DELAY_LEVEL, b"x")]),
    "level-null": ({}, [(DELAY_LEVEL, None)]),
    "ms-and-level": ({}, [(DELAY_MS, b"1000"), (DELAY_LEVEL, b"1")]),
    "ms-twice": ({}, [(DELAY_MS, b"1000"), (DELAY_MS, b"1000")]),
    "ms-and-at": ({}, [(DELAY_MS, b"1000"), (DELIVER_AT_MS, b"NOW+1000")]),
    "ms-beyond-default-max": ({}, [(DELAY_MS, str(41 * 86400000).encode())]),
    "ms-beyond-configured-max": (MAX_60S, [(DELAY_MS, b"61000")]),
    "at-beyond-configured-max": (MAX_60S, [(DELIVER_AT_MS, b"NOW+120000")]),
}


def fill(headers, now):
    out = []
    for k, v in headers:
        if isinstance(v, bytes) and v.startswith(b"NOW+"):
            v = str(now + int(v[4:])).encode()
        out.append((k, v))
    return out


def mentions(headers):
    """What the error message must name: the header(s) at fault, or the
    setting for a delay that is too long."""
    if any(k == DELAY_MS and v and v.isdigit() and int(v) > 60000 for k, v in headers) or \
            any(k == DELIVER_AT_MS and v and v.startswith(b"NOW+") and int(v[4:]) > 60000
                for k, v in headers):
        return ["delay.max.ms"]
    return sorted({k for k, _ in headers})


@pytest.mark.parametrize("case", list(BAD))
def test_bad_delay_header_rejects_the_whole_batch(make_broker, case):
    settings, headers = BAD[case]
    b = make_broker(settings)
    delay_topic(b, "bad", partitions=2)

    # The bad record sits between a delayed one and a plain one; the other
    # partition's batch in the same request is fine.
    res = produce_v8(b.bootstrap, {
        ("bad", 0): [
            (b"k", b"good-delayed", [(DELAY_MS, b"1000")]),
            (b"k", b"bad", fill(headers, now_ms())),
            (b"k", b"good-plain", []),
        ],
        ("bad", 1): [(b"k", b"other", [])],
    })
    p0, p1 = res[("bad", 0)], res[("bad", 1)]
    assert p0.error == INVALID_RECORD, res
    # The message names the record (batch index 1) and the reason.
    assert [i for i, _ in p0.record_errors] == [1], p0
    assert p0.message and all(w in p0.message for w in mentions(headers)), p0
    assert (p1.error, p1.base_offset) == (0, 0), res
    assert high(b.bootstrap, "bad", 0) == 0
    assert [m.value() for m in read_partition(b.bootstrap, "bad", 1)] == [b"other"]

    # What a real client reports: the Kafka error code 87.
    err, _, _ = produce_one(b.bootstrap, "bad", b"bad-again", headers=fill(headers, now_ms()), partition=0)
    assert err is not None and err.code() == KafkaError.INVALID_RECORD == INVALID_RECORD, err

    # The partition keeps working. A marker delayed like the batch's good
    # record but sent later is due later: had that record been held back
    # it would come out first.
    marker = produce_v8(b.bootstrap, {("bad", 0): [(b"k", b"marker", [(DELAY_MS, b"1000")])]})
    assert marker[("bad", 0)][:2] == (0, -1), marker
    if settings is MAX_60S:
        # Exactly delay.max.ms away is allowed.
        edge = produce_v8(b.bootstrap, {("bad", 1): [(b"k", b"edge", [(DELAY_MS, b"60000")])]})
        assert edge[("bad", 1)][:2] == (0, -1), edge
    wait_for(lambda: high(b.bootstrap, "bad", 0) >= 1, timeout=1 + LATE_SLACK + 3, what="the marker")
    assert [m.value() for m in read_partition(b.bootstrap, "bad", 0)] == [b"marker"]
    assert b.alive()


# ----------------------------------------------------------------- CLI
def delayed_cli(b, *args):
    """`runnel delayed ARGS` against this broker's admin API."""
    return ok(run_cli("delayed", *args, "--admin", b.admin_url()[len("http://"):]))


def delayed_counts(b, *args):
    """`runnel delayed count` as ({kind: pending}, {topic: (delay, retry, half)})."""
    out = delayed_cli(b, "count", *args).out
    kinds, topics = {}, {}
    for block in out.split("\n\n"):
        lines = block.strip("\n").split("\n")
        if lines[0] == "KIND\tPENDING":
            kinds = {k: int(n) for k, n in (l.split("\t") for l in lines[1:])}
        elif lines[0] == "TOPIC\tDELAY\tRETRY\tHALF":
            for l in lines[1:]:
                t, *ns = l.split("\t")
                topics[t] = tuple(int(n) for n in ns)
        else:
            raise AssertionError(f"unexpected output of runnel delayed count:\n{out}")
    return kinds, topics


def delayed_total(b):
    return delayed_counts(b)[0]["total"]


def delayed_list(b, *args):
    """`runnel delayed list` rows as (due ms, kind, topic-partition, key, value)."""
    lines = delayed_cli(b, "list", *args).out.splitlines()
    assert lines[0] == "DUE\tKIND\tTOPIC-PARTITION\tKEY\tVALUE", lines
    rows = []
    for l in lines[1:]:
        due, kind, tp, key, value = l.split("\t")[:5]
        dt = datetime.strptime(due, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        rows.append((round(dt.timestamp() * 1000), kind, tp, key, value))
    return rows


def test_delayed_count_and_list(make_broker):
    b = make_broker()
    delay_topic(b, "a", partitions=2)
    delay_topic(b, "z")
    assert delayed_counts(b) == ({"delay": 0, "retry": 0, "half": 0, "total": 0}, {})

    sent_ms = now_ms()
    # Long delays: all stay pending while the test looks.
    plan = [
        ("a", 0, "a-60s", [(DELAY_MS, b"60000")], 60000),
        ("a", 1, "a-30s", [(DELAY_MS, b"30000")], 30000),
        ("a", 0, "a-at45s", [(DELIVER_AT_MS, str(sent_ms + 45000).encode())], None),
        ("a", 1, "a-lvl4", [(DELAY_LEVEL, b"4")], 30000),  # sent after a-30s
        ("z", 0, "z-20s", [(DELAY_MS, b"20000")], 20000),
    ]
    for t, p, v, h, _ in plan:
        err, _, _ = produce_one(b.bootstrap, t, v.encode(), key=b"k", headers=h, partition=p)
        assert err is None, err
    acked_ms = now_ms()

    assert delayed_counts(b) == ({"delay": 5, "retry": 0, "half": 0, "total": 5},
                                 {"a": (4, 0, 0), "z": (1, 0, 0)})
    assert delayed_counts(b, "--topic", "a")[1] == {"a": (4, 0, 0)}
    assert delayed_counts(b, "--topic", "z")[1] == {"z": (1, 0, 0)}

    rows = delayed_list(b, "--topic", "a")
    # Due-time order; a-30s and a-lvl4 share a delay, so arrival order.
    assert [(kind, tp, key, value) for _, kind, tp, key, value in rows] == [
        ("delay", "a-1", "k", "a-30s"),
        ("delay", "a-1", "k", "a-lvl4"),
        ("delay", "a-0", "k", "a-at45s"),
        ("delay", "a-0", "k", "a-60s"),
    ]
    dues = [r[0] for r in rows]
    assert dues == sorted(dues)
    for due, *_, value in rows:
        _, _, _, _, delay = next(x for x in plan if x[2] == value)
        if delay is None:
            assert due == sent_ms + 45000
        else:
            assert sent_ms + delay <= due <= acked_ms + delay, (value, due - sent_ms)
    everything = delayed_list(b)
    assert [r[4] for r in everything] == ["z-20s", "a-30s", "a-lvl4", "a-at45s", "a-60s"]
    assert [r[4] for r in delayed_list(b, "--topic", "z")] == ["z-20s"]
    assert [r[4] for r in delayed_list(b, "--limit", "2")] == ["z-20s", "a-30s"]
    # Nothing was appended meanwhile.
    assert [high(b.bootstrap, "a", p) for p in (0, 1)] == [0, 0]


def test_configured_levels_and_listing_by_kind(make_broker):
    """delay.levels replaces the 18 RocketMQ levels; `delayed list --kind`
    shows one kind of held-back record."""
    b = make_broker({"delay.levels": "2s 1h"})
    delay_topic(b, "m", **{"message.type": "mixed"})
    err, _, _ = produce_one(b.bootstrap, "m", b"in-1h", headers=[(DELAY_LEVEL, b"2")])
    assert err is None, err
    err, _, _ = produce_one(b.bootstrap, "m", b"in-2s", headers=[(DELAY_LEVEL, b"1")])
    assert err is None, err
    # Level 3 no longer exists.
    err, _, _ = produce_one(b.bootstrap, "m", b"bad", headers=[(DELAY_LEVEL, b"3")])
    assert err is not None and err.code() == KafkaError.INVALID_RECORD, err
    err, _, _ = produce_one(b.bootstrap, "m", b"half", headers=[
        ("runnel-txn", b"half"), ("runnel-txn-id", b"t-1"), ("runnel-producer-group", b"pg")])
    assert err is None, err

    assert [r[4] for r in delayed_list(b, "--kind", "delay")] == ["in-2s", "in-1h"]
    half = delayed_list(b, "--kind", "half")
    assert [(r[1], r[4]) for r in half] == [("half", "half")]
    assert [r[4] for r in delayed_list(b, "--kind", "delay", "--limit", "1")] == ["in-2s"]
    bad = run_cli("delayed", "list", "--kind", "later", "--admin", b.admin_url()[len("http://"):])
    assert bad.rc == 2 and "--kind" in bad.err

    # Level 1 is 2 s now: released, the 1-hour one and the half stay.
    wait_for(lambda: high(b.bootstrap, "m", 0) == 1, timeout=10, what="the 2 s record")
    assert delayed_counts(b)[0] == {"delay": 1, "retry": 0, "half": 1, "total": 2}
