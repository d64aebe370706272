"""Transactional half messages (docs/delivery.md) through confluent-kafka and
raw Produce requests: commit makes the half message visible once, where it
was sent, as it was sent; rollback never; the broker's check records on
__runnel.check.<PG> answered with commit or rollback, or never answered
until half.check.max; a SIGKILL between half and commit; and the bad
records that reject their whole batch with INVALID_RECORD.

Brokers here check after 1 s, then every 1 s, at most 2 times.
"""

import time

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, KafkaError

from clients import create_topic, topic_partitions
from conftest import wait_for
from delivery_util import (
    DELAY_MS,
    INVALID_RECORD,
    LATE_SLACK,
    PRODUCER_GROUP,
    TXN,
    TXN_CHECK,
    TXN_ID,
    TXN_PARTITION,
    TXN_TOPIC,
    high,
    now_ms,
    produce_one,
    produce_v8,
    read_partition,
    wait_topic,
)

CHECK_TIMEOUT_MS = 1000
CHECK_INTERVAL_MS = 1000
CHECK_MAX = 2
FAST_CHECKS = {
    "half.check.timeout.ms": str(CHECK_TIMEOUT_MS),
    "half.check.interval.ms": str(CHECK_INTERVAL_MS),
    "half.check.max": str(CHECK_MAX),
}

PG = "pg-orders"
CHECK_TOPIC = f"__runnel.check.{PG}"


def txn_topic(b, name="orders", partitions=3, kind="transaction"):
    create_topic(b.bootstrap, name, partitions=partitions, config={"message.type": kind})


def half_headers(txn_id, extra=()):
    return [(TXN, b"half"), (TXN_ID, txn_id), (PRODUCER_GROUP, PG.encode()), *extra]


def decide(b, txn_id, decision, topic="orders", partition=0):
    """Sends a commit/rollback record; returns the delivery error or None."""
    err, _, _ = produce_one(b.bootstrap, topic, b"ignored", key=b"ignored", partition=partition,
                            headers=[(TXN, decision), (TXN_ID, txn_id)])
    return err


def send_half(b, txn_id, value, partition, key=b"order-1", extra=(), timestamp=None, topic="orders"):
    res = produce_v8(b.bootstrap, {(topic, partition): [(key, value, half_headers(txn_id, extra))]},
                     timestamp=timestamp)
    r = res[(topic, partition)]
    # Stored, not appended: no offset yet.
    assert (r.error, r.base_offset) == (0, -1), r
    return r


def highs(b, topic="orders", partitions=3):
    return [high(b.bootstrap, topic, p) for p in range(partitions)]


def check_records(b):
    if topic_partitions(b.bootstrap, CHECK_TOPIC) is None:
        return []
    return read_partition(b.bootstrap, CHECK_TOPIC, 0)


# The first check-back comes 3 s after the half message here: tests that
# decide at once are sure to have decided before it.
DECIDE_FIRST = {**FAST_CHECKS, "half.check.timeout.ms": "3000"}


def no_checks_until(b, sent_ms, decided_ms):
    """The decision beat the first check-back; none comes later either
    (bounded look until after the first and second would be due)."""
    first_due = sent_ms + int(DECIDE_FIRST["half.check.timeout.ms"])
    assert decided_ms < first_due, "decided too late to test anything"
    while now_ms() < first_due + CHECK_INTERVAL_MS + LATE_SLACK * 1000:
        assert check_records(b) == [], "a check record for a decided half message"
        time.sleep(0.1)


def test_commit_appends_once_where_and_as_sent(make_broker):
    b = make_broker(DECIDE_FIRST)
    txn_topic(b)
    ts = now_ms() - 3000
    sent_ms = now_ms()
    send_half(b, b"tx-1", b"pay 12", partition=2, extra=[("app", b"a1")], timestamp=ts)
    # Consumers do not see it.
    assert highs(b) == [0, 0, 0]

    # The commit goes to another partition; it is not stored itself.
    assert decide(b, b"tx-1", b"commit", partition=0) is None
    decided_ms = now_ms()
    assert highs(b) == [0, 0, 1]
    (m,) = read_partition(b.bootstrap, "orders", 2)
    assert (m.offset(), m.key(), m.value()) == (0, b"order-1", b"pay 12")
    assert m.headers() == half_headers(b"tx-1", [("app", b"a1")])
    assert m.timestamp() == (TIMESTAMP_CREATE_TIME, ts)

    # The same decision again is not an error and appends nothing; the
    # opposite one is refused.
    assert decide(b, b"tx-1", b"commit", partition=1) is None
    err = decide(b, b"tx-1", b"rollback")
    assert err is not None and err.code() == KafkaError.INVALID_RECORD == INVALID_RECORD, err
    # Decided: never checked.
    no_checks_until(b, sent_ms, decided_ms)
    assert highs(b) == [0, 0, 1]


def test_rollback_is_never_visible(make_broker):
    b = make_broker(DECIDE_FIRST)
    txn_topic(b)
    sent_ms = now_ms()
    send_half(b, b"tx-2", b"cancelled", partition=1)
    assert decide(b, b"tx-2", b"rollback", partition=1) is None
    decided_ms = now_ms()
    assert decide(b, b"tx-2", b"rollback", partition=2) is None
    err = decide(b, b"tx-2", b"commit")
    assert err is not None and err.code() == INVALID_RECORD, err
    no_checks_until(b, sent_ms, decided_ms)
    assert highs(b) == [0, 0, 0]


def wait_checks(b, n, timeout):
    return wait_for(lambda: (lambda got: got if len(got) >= n else None)(check_records(b)),
                    timeout=timeout, interval=0.05, what=f"{n} check records")


def assert_check(rec, n, txn_id, value, partition, extra=()):
    assert rec.key() == txn_id
    assert rec.value() == value
    assert rec.headers() == half_headers(txn_id, extra) + [
        (TXN_TOPIC, b"orders"),
        (TXN_PARTITION, str(partition).encode()),
        (TXN_CHECK, str(n).encode()),
    ]


@pytest.mark.parametrize("answer", [b"commit", b"rollback"])
def test_check_back_answered(make_broker, answer):
    # A longer interval: the answer must surely beat the second check.
    interval_ms = 3000
    b = make_broker({**FAST_CHECKS, "half.check.interval.ms": str(interval_ms)})
    txn_topic(b)
    sent_ms = now_ms()
    send_half(b, b"tx-3", b"maybe", partition=1, extra=[("app", b"z")])
    acked_ms = now_ms()

    (check,) = wait_checks(b, 1, CHECK_TIMEOUT_MS / 1000 + LATE_SLACK + 3)
    seen_ms = now_ms()
    # The producer application answers from the check record.
    assert decide(b, check.key(), answer, partition=2) is None
    answered_ms = now_ms()
    assert answered_ms < sent_ms + CHECK_TIMEOUT_MS + interval_ms, "answered too late to test anything"

    assert seen_ms >= sent_ms + CHECK_TIMEOUT_MS, "checked before half.check.timeout.ms"
    assert seen_ms <= acked_ms + CHECK_TIMEOUT_MS + LATE_SLACK * 1000 + 500
    assert wait_topic(b.bootstrap, CHECK_TOPIC) == [0]
    assert_check(check, 1, b"tx-3", b"maybe", 1, [("app", b"z")])
    if answer == b"commit":
        assert highs(b) == [0, 1, 0]
        (m,) = read_partition(b.bootstrap, "orders", 1)
        assert (m.key(), m.value(), m.headers()) == (b"order-1", b"maybe", half_headers(b"tx-3", [("app", b"z")]))
    else:
        assert highs(b) == [0, 0, 0]
    # Answered: no second check (due interval_ms after the first), nothing
    # else appended.
    while now_ms() < acked_ms + CHECK_TIMEOUT_MS + interval_ms + LATE_SLACK * 1000:
        assert len(check_records(b)) == 1
        time.sleep(0.1)
    assert len(check_records(b)) == 1
    assert highs(b) == ([0, 1, 0] if answer == b"commit" else [0, 0, 0])


def test_never_answered_is_discarded_after_max_checks(make_broker):
    b = make_broker(FAST_CHECKS)
    txn_topic(b)
    sent_ms = now_ms()
    send_half(b, b"tx-lost", b"orphan", partition=0)

    checks = wait_checks(b, CHECK_MAX, (CHECK_TIMEOUT_MS + CHECK_INTERVAL_MS) / 1000 + 2 * LATE_SLACK + 3)
    for n, rec in enumerate(checks, start=1):
        assert_check(rec, n, b"tx-lost", b"orphan", 0)
    assert now_ms() >= sent_ms + CHECK_TIMEOUT_MS + (CHECK_MAX - 1) * CHECK_INTERVAL_MS

    # After the last unanswered check the broker discards it and says so.
    said = lambda: any("discard" in l and "tx-lost" in l for l in b.stderr_text().splitlines())
    wait_for(said, timeout=CHECK_INTERVAL_MS / 1000 + LATE_SLACK + 3,
             what="the broker's log line about the discarded half message")
    discard_due = sent_ms + CHECK_TIMEOUT_MS + CHECK_MAX * CHECK_INTERVAL_MS
    while now_ms() < discard_due + LATE_SLACK * 1000 + CHECK_INTERVAL_MS:
        time.sleep(0.1)
    assert len(check_records(b)) == CHECK_MAX
    # A late commit finds nothing to commit.
    err = decide(b, b"tx-lost", b"commit")
    assert err is not None and err.code() == INVALID_RECORD, err
    assert highs(b) == [0, 0, 0]
    assert b.alive()


@pytest.mark.parametrize("clean", [True, False], ids=["sigterm", "sigkill"])
def test_restart_between_half_and_commit(make_broker, clean):
    b = make_broker({"half.check.timeout.ms": "60000"})
    txn_topic(b)
    send_half(b, b"tx-r", b"survives", partition=2, key=b"kr")
    send_half(b, b"tx-r2", b"rolled back", partition=0, key=b"kr2")
    b.restart(clean=clean)
    assert highs(b) == [0, 0, 0]
    assert decide(b, b"tx-r", b"commit") is None
    assert decide(b, b"tx-r2", b"rollback") is None
    assert highs(b) == [0, 0, 1]
    (m,) = read_partition(b.bootstrap, "orders", 2)
    assert (m.key(), m.value()) == (b"kr", b"survives")
    # Once: a second restart releases nothing again; the id stays used.
    b.restart(clean=clean)
    assert decide(b, b"tx-r", b"commit") is None
    assert highs(b) == [0, 0, 1]


def test_half_headers_mean_nothing_on_normal_topics(make_broker):
    b = make_broker()
    create_topic(b.bootstrap, "plain")
    err, part, off = produce_one(b.bootstrap, "plain", b"v", headers=half_headers(b"tx-n"))
    assert (err, part, off) == (None, 0, 0)
    err, part, off = produce_one(b.bootstrap, "plain", b"w", headers=[(TXN, b"commit"), (TXN_ID, b"nobody")])
    assert (err, part, off) == (None, 0, 1)
    assert [m.value() for m in read_partition(b.bootstrap, "plain", 0)] == [b"v", b"w"]


# ----------------------------------------------------------- bad input
# case: (headers of the bad record, what the error message must name)
BAD = {
    "half-without-txn-id": ([(TXN, b"half"), (PRODUCER_GROUP, PG.encode())], TXN_ID),
    "half-without-producer-group": ([(TXN, b"half"), (TXN_ID, b"tx-x")], PRODUCER_GROUP),
    "txn-id-too-long": ([(TXN, b"half"), (TXN_ID, b"x" * 256), (PRODUCER_GROUP, PG.encode())], TXN_ID),
    "txn-id-already-used": (half_headers(b"tx-used"), "tx-used"),
    "commit-unknown-id": ([(TXN, b"commit"), (TXN_ID, b"tx-never-sent")], "tx-never-sent"),
    "rollback-unknown-id": ([(TXN, b"rollback"), (TXN_ID, b"tx-never-sent")], "tx-never-sent"),
    "half-and-delayed": (half_headers(b"tx-d", [(DELAY_MS, b"1000")]), "delay"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_transaction_record_rejects_the_whole_batch(make_broker, case):
    b = make_broker(FAST_CHECKS)
    txn_topic(b, kind="mixed")  # mixed: half-and-delayed must meet both
    # A pending half message whose id the "already used" case reuses.
    send_half(b, b"tx-used", b"first", partition=2)
    headers, names = BAD[case]
    res = produce_v8(b.bootstrap, {
        ("orders", 0): [
            (b"k", b"good-half", half_headers(b"tx-good")),
            (b"k", b"bad", headers),
            (b"k", b"good-plain", []),
        ],
        ("orders", 1): [(b"k", b"other", [])],
    })
    p0, p1 = res[("orders", 0)], res[("orders", 1)]
    assert p0.error == INVALID_RECORD, res
    # The message names the record (batch index 1) and the reason.
    assert [i for i, _ in p0.record_errors] == [1], p0
    assert p0.message and names in p0.message, p0
    assert (p1.error, p1.base_offset) == (0, 0), res
    assert highs(b) == [0, 1, 0]

    err, _, _ = produce_one(b.bootstrap, "orders", b"bad-again", headers=headers, partition=0)
    assert err is not None and err.code() == KafkaError.INVALID_RECORD, err

    # Nothing of the batch was kept: the good half's id is unknown (its
    # commit is refused) and may be used afresh.
    err = decide(b, b"tx-good", b"commit")
    assert err is not None and err.code() == INVALID_RECORD, err
    send_half(b, b"tx-good", b"good-half-2", partition=0)
    assert decide(b, b"tx-good", b"commit") is None
    assert decide(b, b"tx-used", b"commit") is None
    assert [m.value() for m in read_partition(b.bootstrap, "orders", 0)] == [b"good-half-2"]
    assert [m.value() for m in read_partition(b.bootstrap, "orders", 2)] == [b"first"]
    assert b.alive()
