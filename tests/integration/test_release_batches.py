"""Releasing held-back records stays within the target topic's
max.message.bytes: records due together go in as many batches as the
limit needs, and a record that no longer fits (the limit shrank after it
was accepted) is discarded with a log line instead of blocking the rest.
"""
import time

from confluent_kafka import Consumer, TopicPartition

from confluent_kafka.admin import ConfigResource

import kwire
from clients import admin, create_topic


def read(bootstrap, topic, want, timeout=20.0):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "r", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(got) < want:
        m = c.poll(0.2)
        if m is not None and not m.error():
            got.append((m.offset(), m.value()))
    c.close()
    return got


def test_many_due_records_are_split_into_batches(broker):
    create_topic(broker.bootstrap, "big", 1,
                 {"message.type": "delay", "max.message.bytes": "20000"})
    values = [(b"%03d" % i) * 300 for i in range(60)]  # 900 B each, 54 KB due together
    # Due together for certain: four exact batches of 15 records (13.5 KB,
    # each within the limit) in one Produce request, so one receipt time
    # and one due time (a client's batches would go out whenever its
    # linger.ms and the load let them).
    hdr = [("runnel-delay-ms", b"1500")]
    batches = [kwire.record_batch([(None, v, hdr) for v in values[i:i + 15]])
               for i in range(0, 60, 15)]
    res = kwire.produce_batches(broker.host, broker.port, {("big", 0): batches})
    assert res == {("big", 0): (0, -1)}, res  # all held back: no offset yet
    got = read(broker.bootstrap, "big", len(values))
    assert [v for _, v in got] == values
    assert [o for o, _ in got] == list(range(len(values)))
    # What the release appended: 54 KB in batches within the 20 000-byte
    # limit, so more than one (a release that put everything due in one
    # batch, or one batch over the limit, fails).
    seg = broker.partition_dir("big", 0) / "00000000000000000000.log"
    stored = kwire.read_batch_bytes(seg)
    assert sum(b[3] for b in stored) == len(values), [b[:4] for b in stored]
    assert len(stored) >= 3 and all(len(b[4]) <= 20000 for b in stored), [
        (b[0], b[3], len(b[4])) for b in stored]


def test_a_record_over_a_shrunk_limit_is_discarded_alone(broker):
    create_topic(broker.bootstrap, "shrink", 1, {"message.type": "delay"})
    # One exact batch: the three are due together, the big one between
    # the two small ones.
    hdr = [("runnel-delay-ms", b"2000")]
    batch = kwire.record_batch([(None, v, hdr) for v in (b"small-1", b"x" * 5000, b"small-2")])
    res = kwire.produce_batches(broker.host, broker.port, {("shrink", 0): batch})
    assert res == {("shrink", 0): (0, -1)}, res
    res = ConfigResource(ConfigResource.Type.TOPIC, "shrink",
                         set_config={"message.type": "delay", "max.message.bytes": "1000"})
    adm = admin(broker.bootstrap)
    adm.alter_configs([res])[res].result(15)
    got = read(broker.bootstrap, "shrink", 2)
    assert [v for _, v in got] == [b"small-1", b"small-2"]
    deadline = time.monotonic() + 10
    while "larger than the topic's max.message.bytes" not in broker.stderr_text():
        assert time.monotonic() < deadline, broker.stderr_text()
        time.sleep(0.1)
