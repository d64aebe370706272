"""Topic configs altered while the topic is in use.

AlterConfigs replaces a topic's settings while network threads produce to
it and the cleaner, the key indexer, the timer thread and the admin API
read them without the registry lock (src/broker/topics.h: an immutable
snapshot behind an atomic pointer). The data must come through whole
whatever the order, and under the ThreadSanitizer build (scripts/test's
TSan pass) any unsynchronised access between those threads halts the
broker, which fails the test: the clean stop must exit 0.
"""

import json
import threading
import urllib.error
import urllib.request

from confluent_kafka.admin import ConfigResource

from clients import admin, create_topic, produce_all, watermarks

TOPIC = "churn"
PARTITIONS = 2
ROUNDS = 6
PER_ROUND = 300

# Two sets of every setting a lock-free reader looks at: the produce
# path (flush.sync, flush.messages, min.insync.replicas,
# max.message.bytes, message.type), the cleaner (cleanup.policy), the key
# indexer and key lookups (key.index), retention.
CONFIGS = [
    {
        "flush.sync": "true",
        "flush.messages": "1",
        "cleanup.policy": "compact,delete",
        "key.index": "true",
        "message.type": "delay",
        "max.message.bytes": "2000000",
        "retention.ms": "-1",
    },
    {
        "flush.messages": "100",
        "cleanup.policy": "delete",
        "key.index": "false",
        "message.type": "normal",
        "min.insync.replicas": "1",
        "retention.ms": "604800000",
    },
]


def test_alter_configs_while_producing(make_broker):
    # The cleaner and the key indexer look at the topic often, so they
    # read its settings while they change.
    b = make_broker(settings={"log.cleaner.backoff.ms": "50"})
    create_topic(b.bootstrap, TOPIC, partitions=PARTITIONS)
    adm = admin(b.bootstrap)
    admin_url = b.admin_url()
    stop = threading.Event()
    errors = []
    altered = [0]

    def alter():
        i = 0
        while not stop.is_set():
            res = ConfigResource(ConfigResource.Type.TOPIC, TOPIC, set_config=CONFIGS[i % 2])
            try:
                adm.alter_configs([res], request_timeout=15)[res].result(20)
                altered[0] += 1
            except Exception as e:  # reported by the main thread
                errors.append(f"alter_configs: {e}")
                return
            i += 1

    def lookup():
        # Key lookups read key.index; 200 or 4xx (not indexed) are both
        # fine, a dead broker is not.
        url = f"{admin_url}/v1/messages?topic={TOPIC}&key=k-1"
        while not stop.is_set():
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    json.load(r)
            except urllib.error.HTTPError:
                pass
            except Exception as e:
                errors.append(f"key lookup: {e}")
                return
            stop.wait(0.02)

    threads = [threading.Thread(target=alter), threading.Thread(target=lookup)]
    for t in threads:
        t.start()
    sent = {p: 0 for p in range(PARTITIONS)}
    try:
        for r in range(ROUNDS):
            recs = [
                {"key": f"k-{j % 50}".encode(), "value": f"{r}-{j}".encode(), "partition": j % PARTITIONS}
                for j in range(PER_ROUND)
            ]
            positions = produce_all(b.bootstrap, TOPIC, recs, conf={"acks": "all"})
            for part, off in positions:
                assert off >= 0, "a record without a delay header was held back"
                sent[part] += 1
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not errors, errors
    assert altered[0] >= 2, "the configs never changed while producing"
    for p in range(PARTITIONS):
        # Retention never drops the active segment, compaction never
        # touches it: every record is still there.
        assert watermarks(b.bootstrap, TOPIC, p) == (0, sent[p])
    b.stop()  # exit status 0: no sanitizer report
