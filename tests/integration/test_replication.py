"""Replication in a real cluster: three brokers and a real ZooKeeper
(zk.py), exact batches sent with the wire helpers (kwire), acks=all.

What each test proves is observed on the wire (error codes, offsets) and
on disk (every replica holds the leader's batches byte for byte), never
by timing: every wait is on a condition with a deadline.
"""

import os
import re
import signal

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

import kwire
from conftest import wait_for
from test_cluster_topics import SESSION_S, create, start, state
from zk import cluster, zookeeper  # noqa: F401 (fixtures)

NOT_ENOUGH_REPLICAS = 19
NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20
NOT_LEADER_OR_FOLLOWER = 6

# A short lag time, so that a stopped follower leaves the ISR quickly.
FAST_ISR = {"replica.lag.time.max.ms": "1000", "replica.fetch.wait.max.ms": "200",
            "replica.fetch.backoff.ms": "100"}


def batch(tag, n=10):
    return kwire.record_batch(
        [(f"{tag}-{i}".encode(), f"value {tag} {i}".encode(), ()) for i in range(n)])


def produce(broker, topic, b, acks=-1, timeout_ms=10000):
    got = kwire.produce_batches(broker.host, broker.port, {(topic, 0): b}, acks=acks,
                                timeout_ms=timeout_ms)
    return got[(topic, 0)]


def leader_of(cluster, topic, not_in=()):
    st = state(cluster, topic, 0)
    return st["leader"] if st and st["leader"] >= 0 and st["leader"] not in not_in else None


def log_batches(broker, topic):
    """Every stored batch of partition 0 in offset order, across segments:
    [(base offset, batch bytes)]."""
    d = broker.partition_dir(topic, 0)
    if not d.exists():
        return []
    out = []
    for seg in sorted(d.glob("*.log")):
        out += [(b[0], bytes(b[4])) for b in kwire.read_batch_bytes(seg)]
    return out


def same_log(a, b, topic):
    """The two replicas hold the same batches at the same offsets."""
    x, y = log_batches(a, topic), log_batches(b, topic)
    return x and x == y


def consume_all(broker, topic, n):
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "check",
                  "enable.auto.commit": False, "enable.partition.eof": False})
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        got = []

        def more():
            for m in c.consume(num_messages=n - len(got), timeout=1.0):
                assert m.error() is None, m.error()
                got.append((m.offset(), m.key(), m.value()))
            return len(got) >= n

        wait_for(more, timeout=30, what=f"{n} records")
        return got
    finally:
        c.close()


def expect(acked):
    """[(offset, key, value)] that the acknowledged batches hold."""
    out = []
    for base, tag in acked:
        for i in range(10):
            out.append((base + i, f"{tag}-{i}".encode(), f"value {tag} {i}".encode()))
    return sorted(out)


def make_topic(cluster, name="r", config=None):
    b = cluster.brokers[1]
    cfg = {"min.insync.replicas": "2"}
    cfg.update(config or {})
    assert create(b.bootstrap, name, 1, rf=3, config=cfg) is None
    wait_for(lambda: (lambda s: s and len(s["isr"]) == 3)(state(cluster, name, 0)),
             what="a state with three in sync")
    return cluster.brokers[leader_of(cluster, name)]


def test_followers_hold_the_leaders_batches(cluster):
    start(cluster)
    leader = make_topic(cluster)
    acked = []
    for k in range(20):
        err, base = produce(leader, "r", batch(f"a{k}"))
        assert (err, base) == (0, 10 * k)
        acked.append((base, f"a{k}"))
    # acks=all answered only when the whole ISR had each batch; the
    # followers' logs are the leader's batch for batch, byte for byte.
    for b in cluster.brokers.values():
        if b is not leader:
            wait_for(lambda: same_log(leader, b, "r"), what=f"broker {b.node_id} in step")
    assert len(log_batches(leader, "r")) == 20
    assert consume_all(leader, "r", 200) == expect(acked)


def test_kill_leader_loses_no_acknowledged_record(cluster):
    start(cluster)
    old = make_topic(cluster)
    acked = []
    for k in range(10):
        err, base = produce(old, "r", batch(f"a{k}"))
        assert err == 0
        acked.append((base, f"a{k}"))
    epoch = state(cluster, "r", 0)["leader_epoch"]
    old.kill()

    new_id = wait_for(lambda: leader_of(cluster, "r", not_in=(old.node_id,)),
                      timeout=SESSION_S + 10, what="a new leader")
    st = state(cluster, "r", 0)
    assert st["leader_epoch"] == epoch + 1 and old.node_id not in st["isr"]
    new = cluster.brokers[new_id]
    # The old leader's address now answers nothing; the new one takes
    # acks=all writes as soon as it applied its state.
    def write(k):
        err, base = produce(new, "r", batch(f"b{k}"))
        return (err, base) if err != NOT_LEADER_OR_FOLLOWER else None

    for k in range(10):
        err, base = wait_for(lambda: write(k), what="a write to the new leader")
        assert err == 0
        acked.append((base, f"b{k}"))
    assert consume_all(new, "r", 200) == expect(acked)

    # The old leader comes back as a follower, ends up with the same log
    # and rejoins the ISR.
    old.start()
    wait_for(lambda: same_log(new, old, "r"), what="the old leader in step")
    wait_for(lambda: old.node_id in state(cluster, "r", 0)["isr"], what="old leader in the ISR")
    assert leader_of(cluster, "r") == new_id


def test_stopped_followers_leave_the_isr_and_acks_all_is_refused(cluster):
    start(cluster, settings=FAST_ISR)
    leader = make_topic(cluster)
    assert produce(leader, "r", batch("a0")) == (0, 0)
    followers = [b for b in cluster.brokers.values() if b is not leader]
    for f in followers:
        os.kill(f.proc.pid, signal.SIGSTOP)
    try:
        # Appended, but the ISR shrinks below min.insync.replicas while
        # the produce waits: Kafka's NOT_ENOUGH_REPLICAS_AFTER_APPEND.
        err, _ = produce(leader, "r", batch("a1"), timeout_ms=20000)
        assert err == NOT_ENOUGH_REPLICAS_AFTER_APPEND
        wait_for(lambda: state(cluster, "r", 0)["isr"] == [leader.node_id], what="ISR = leader")
        # Now refused before anything is appended ...
        assert produce(leader, "r", batch("a2"))[0] == NOT_ENOUGH_REPLICAS
        # ... while acks=1 (RocketMQ's asynchronous replication) still works.
        err, base = produce(leader, "r", batch("a3"), acks=1)
        assert (err, base) == (0, 20)
    finally:
        for f in followers:
            os.kill(f.proc.pid, signal.SIGCONT)
    wait_for(lambda: len(state(cluster, "r", 0)["isr"]) == 3, what="the ISR healed")
    err, base = produce(leader, "r", batch("a4"))
    assert (err, base) == (0, 30)
    for f in followers:
        wait_for(lambda: same_log(leader, f, "r"), what=f"broker {f.node_id} in step")


def find_coordinator(broker, group):
    """FindCoordinator v1 for a group: (error, node id, port)."""
    import struct

    with kwire.Conn(broker.host, broker.port) as c:
        body = c.request(10, 1, kwire.string(group) + b"\x00")
    _throttle, err = struct.unpack_from(">ih", body, 0)
    pos = 6
    (mlen,) = struct.unpack_from(">h", body, pos)
    pos += 2 + max(mlen, 0)
    (node,) = struct.unpack_from(">i", body, pos)
    (hlen,) = struct.unpack_from(">h", body, pos + 4)
    (port,) = struct.unpack_from(">i", body, pos + 6 + hlen)
    return err, node, port


def test_every_broker_names_one_group_coordinator(cluster):
    # __consumer_offsets is not replicated yet: every broker sends a
    # group's members to the same one, the live broker with the smallest
    # id, so that they meet in one group; it moves when that one goes.
    start(cluster)
    for b in cluster.brokers.values():
        assert find_coordinator(b, "g") == (0, 1, cluster.brokers[1].port)
    cluster.brokers[1].kill()
    wait_for(lambda: 1 not in cluster.broker_ids(), timeout=SESSION_S + 10, what="1 gone")
    for i in (2, 3):
        wait_for(lambda: find_coordinator(cluster.brokers[i], "g") ==
                 (0, 2, cluster.brokers[2].port), what=f"broker {i} names broker 2")


def test_old_leader_truncates_what_was_never_committed(cluster):
    # The Jepsen 2013 case: a leader appended a batch that no follower
    # fetched, then died; a follower without it leads. Coming back, the
    # old leader must drop the batch (its epoch ended earlier on the new
    # leader: Fetch's diverging_epoch), so that no offset holds two values
    # on two replicas. The batch is written into the dead leader's segment
    # file, as its append had left it there, so no follower can have
    # fetched it.
    start(cluster)
    old = make_topic(cluster)
    for k in range(3):
        assert produce(old, "r", batch(f"a{k}"))[0] == 0
    for b in cluster.brokers.values():
        wait_for(lambda: same_log(old, b, "r"), what=f"broker {b.node_id} in step")
    epoch = state(cluster, "r", 0)["leader_epoch"]
    old.kill()
    lost = bytearray(kwire.record_batch([(b"lost", b"never committed", ())], base_offset=30))
    lost[12:16] = epoch.to_bytes(4, "big")  # partitionLeaderEpoch, outside the CRC
    seg = sorted(old.partition_dir("r", 0).glob("*.log"))[-1]
    with open(seg, "ab") as f:
        f.write(lost)

    new_id = wait_for(lambda: leader_of(cluster, "r", not_in=(old.node_id,)),
                      timeout=SESSION_S + 10, what="a new leader")
    new = cluster.brokers[new_id]
    err, base = wait_for(lambda: (lambda r: r if r[0] != NOT_LEADER_OR_FOLLOWER else None)(
        produce(new, "r", batch("b0"))), what="a write to the new leader")
    assert (err, base) == (0, 30)  # offset 30 holds b0 on the new leader
    old.start()
    wait_for(lambda: same_log(new, old, "r"), what="the old leader truncated and in step")
    # Recovery kept the batch (it is whole); the leader's answer cut it.
    assert re.search(r"replica r-0: diverges from leader \d+ at epoch %d offset 30" % epoch,
                     old.stderr_text())
    assert b"never committed" not in b"".join(b for _, b in log_batches(old, "r"))
    assert consume_all(new, "r", 40) == expect([(0, "a0"), (10, "a1"), (20, "a2"), (30, "b0")])
