"""Releasing held-back records stays within the target topic's
max.message.bytes: records due together go in as many batches as the
limit needs, and a record that no longer fits (the limit shrank after it
was accepted) is discarded with a log line instead of blocking the rest.
"""
import time

from confluent_kafka import Consumer, Producer, TopicPartition

from confluent_kafka.admin import ConfigResource

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
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 100,
                  "batch.size": 15000})
    values = [(b"%03d" % i) * 300 for i in range(60)]  # 900 B each, 54 KB due together
    for v in values:
        p.produce("big", v, headers={"runnel-delay-ms": "1500"})
    assert p.flush(10) == 0
    got = read(broker.bootstrap, "big", len(values))
    assert [v for _, v in got] == values
    assert [o for o, _ in got] == list(range(len(values)))


def test_a_record_over_a_shrunk_limit_is_discarded_alone(broker):
    create_topic(broker.bootstrap, "shrink", 1, {"message.type": "delay"})
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 50})
    p.produce("shrink", b"small-1", headers={"runnel-delay-ms": "2000"})
    p.produce("shrink", b"x" * 5000, headers={"runnel-delay-ms": "2000"})
    p.produce("shrink", b"small-2", headers={"runnel-delay-ms": "2000"})
    assert p.flush(10) == 0
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
