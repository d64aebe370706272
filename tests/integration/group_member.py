"""One consumer-group member in its own process, for test_groups.py.

    /usr/bin/python3 group_member.py '{"conf": {...}, "topics": [...], ...}'

It subscribes with confluent-kafka (librdkafka) and reports everything it
does as JSON lines on stdout, each flushed at once so that a SIGKILL loses
nothing it already reported:

    {"ev": "assign" | "revoke" | "lost", "parts": [[topic, partition], ...]}
    {"ev": "rec", "topic", "p", "o", "key", "value"}   a record, once processed
    {"ev": "commit", "topic", "p", "o"}                committed o (next to read)
    {"ev": "commit_failed", "topic", "p", "o", "error"}
    {"ev": "closed"}                                   after close() returned

Every line carries "t", time.monotonic(): CLOCK_MONOTONIC is one clock for
every process on the machine, so events of different members can be
ordered.  After each record it sleeps `delay_ms` (the "processing") and
then, with "commit": true, commits that record synchronously.  SIGTERM
makes it close() the consumer (a clean LeaveGroup, except for static
members, which librdkafka never makes leave) and exit 0.
"""

import json
import signal
import sys
import time

from confluent_kafka import Consumer, KafkaException

stop = False


def on_term(signum, frame):
    global stop
    stop = True


def emit(ev, **kw):
    kw["ev"] = ev
    kw["t"] = time.monotonic()
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def parts(ps):
    return [[p.topic, p.partition] for p in ps]


def main():
    opts = json.loads(sys.argv[1])
    signal.signal(signal.SIGTERM, on_term)
    conf = {
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        "auto.offset.reset": "earliest",
        "log_level": 0,
    }
    conf.update(opts["conf"])
    c = Consumer(conf)
    c.subscribe(
        opts["topics"],
        on_assign=lambda cons, ps: emit("assign", parts=parts(ps)),
        on_revoke=lambda cons, ps: emit("revoke", parts=parts(ps)),
        on_lost=lambda cons, ps: emit("lost", parts=parts(ps)),
    )
    delay = opts.get("delay_ms", 0) / 1000.0
    commit = opts.get("commit", True)
    emit("started")
    while not stop:
        m = c.poll(0.1)
        if m is None:
            continue
        if m.error():
            emit("error", error=str(m.error()))
            continue
        key = m.key().decode() if m.key() is not None else None
        value = m.value().decode() if m.value() is not None else None
        if delay:
            time.sleep(delay)
        emit("rec", topic=m.topic(), p=m.partition(), o=m.offset(), key=key, value=value)
        if commit:
            try:
                c.commit(message=m, asynchronous=False)
                emit("commit", topic=m.topic(), p=m.partition(), o=m.offset() + 1)
            except KafkaException as e:
                emit("commit_failed", topic=m.topic(), p=m.partition(), o=m.offset() + 1,
                     error=str(e))
    c.close()
    emit("closed")


if __name__ == "__main__":
    main()
