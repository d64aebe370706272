"""Exactly-once release of held-back records across a crash.

The broker releases a due record in three steps: it writes an intent
(which partition, its log end, a fingerprint of the batch), appends, then
marks the record done. RUNNEL_CRASH_AT makes it exit between two steps, as
kill -9 would; after a restart each record must be in its partition once.
"""
import time

import pytest
from confluent_kafka import Consumer, TopicPartition

import kwire
from clients import create_topic


def read_all(bootstrap, topic, expect, timeout=20.0):
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "reader",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(got) < expect:
        m = c.poll(0.2)
        if m is not None and not m.error():
            got.append((m.offset(), m.value()))
    # A little longer: a duplicate would show up right behind.
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        m = c.poll(0.1)
        if m is not None and not m.error():
            got.append((m.offset(), m.value()))
    c.close()
    return got


@pytest.mark.parametrize("point", ["release-after-intent", "release-after-append"])
def test_crash_during_release(make_broker, monkeypatch, point):
    broker = make_broker()
    create_topic(broker.bootstrap, "later", 1, {"message.type": "delay"})
    broker.stop()
    monkeypatch.setenv("RUNNEL_CRASH_AT", point)
    broker.start()
    # One exact batch, so the five are due together and go in one
    # release, the one the crash interrupts (a client could have split
    # them over several due times).
    values = [f"v{i}".encode() for i in range(5)]
    batch = kwire.record_batch([(None, v, [("runnel-delay-ms", b"1500")]) for v in values])
    res = kwire.produce_batches(broker.host, broker.port, {("later", 0): batch})
    assert res == {("later", 0): (0, -1)}, res  # held back: no offset yet
    # The release of the batch kills the broker at the chosen point.
    deadline = time.monotonic() + 20
    while broker.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert broker.proc.poll() == 86, broker.stderr_text()
    broker.proc = None
    monkeypatch.delenv("RUNNEL_CRASH_AT")
    broker.start()
    got = read_all(broker.bootstrap, "later", len(values))
    assert [v for _, v in got] == values
    assert [o for o, _ in got] == list(range(len(values)))
    log = broker.stderr_text()
    if point == "release-after-append":
        assert "completed before the crash" in log
    else:
        assert "did not happen; releasing again" in log
