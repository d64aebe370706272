"""Cluster mode: topics and partition states in ZooKeeper, and the
controller's elections (docs/cluster.md), with a real ZooKeeper (zk.py)
and real brokers.

Every wait has a deadline (wait_for); nothing sleeps and then expects.
"""

import base64
import json
import os
import re
import signal
import time

from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import wait_for
from zk import SESSION_TIMEOUT_MS, cluster, zookeeper  # noqa: F401 (fixtures)

SESSION_S = SESSION_TIMEOUT_MS / 1000.0


def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000})


def metadata(bootstrap, topic=None):
    return admin(bootstrap).list_topics(topic=topic, timeout=15)


def start(cluster, ids=(1, 2, 3), racks=None, settings=None):
    racks = racks or {}
    for i in ids:
        s = dict(settings or {})
        if i in racks:
            s["broker.rack"] = racks[i]
        cluster.broker(i, s)
    wait_for(lambda: cluster.broker_ids() == sorted(ids), what="registrations")
    return cluster.wait_controller()


def create(bootstrap, name, partitions, rf=None, config=None, assignment=None):
    """The error of one CreateTopics (None when created)."""
    kw = {"config": config or {}}
    if assignment is not None:
        nt = NewTopic(name, len(assignment), replica_assignment=assignment, **kw)
    else:
        nt = NewTopic(name, num_partitions=partitions, replication_factor=rf or -1, **kw)
    a = admin(bootstrap)  # alive until the answer came
    fut = a.create_topics([nt], operation_timeout=15, request_timeout=20)[name]
    try:
        fut.result(timeout=30)
        return None
    except Exception as e:
        return e.args[0]


def state(cluster, topic, p):
    got = cluster.get(f"/brokers/topics/{topic}/partitions/{p}/state")
    if got is None:
        return None
    data, stat = got
    s = json.loads(data.decode())
    s["zk_version"] = stat.version
    return s


def states(cluster, topic, n):
    out = [state(cluster, topic, p) for p in range(n)]
    return out if all(out) else None


def md_partitions(bootstrap, topic):
    md = metadata(bootstrap, topic)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return None
    return t.partitions


def agree(cluster, bootstrap, topic, n):
    """Metadata from bootstrap matches the state znodes and the assignment."""
    assignment = cluster.get_json(f"/brokers/topics/{topic}")["partitions"]
    parts = md_partitions(bootstrap, topic)
    if parts is None or len(parts) != n:
        return False
    for p in range(n):
        st = state(cluster, topic, p)
        mp = parts[p]
        if st is None or mp.leader != st["leader"]:
            return False
        if list(mp.replicas) != assignment[str(p)] or sorted(mp.isrs) != sorted(st["isr"]):
            return False
    return True


def partition_dirs(broker, topic):
    return sorted(
        int(d.name.rsplit("-", 1)[1])
        for d in broker.data_dir.iterdir()
        if d.is_dir() and d.name.rsplit("-", 1)[0] == topic
    )


def test_create_topic_writes_kafkas_znodes_with_rack_aware_assignment(cluster):
    controller = start(cluster, racks={1: "a", 2: "b", 3: "c"})
    b1 = cluster.brokers[1].bootstrap
    assert create(b1, "orders", 6, rf=3, config={"retention.ms": "3600000"}) is None

    topic = cluster.get_json("/brokers/topics/orders")
    assert topic["version"] == 3
    assert topic["adding_replicas"] == {} and topic["removing_replicas"] == {}
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", topic["topic_id"])
    parts = topic["partitions"]
    assert sorted(parts) == [str(p) for p in range(6)]
    racks = {1: "a", 2: "b", 3: "c"}
    leaders = {}
    for p, reps in parts.items():
        assert len(reps) == 3 and len(set(reps)) == 3 and set(reps) <= {1, 2, 3}
        assert sorted(racks[r] for r in reps) == ["a", "b", "c"]
        leaders[reps[0]] = leaders.get(reps[0], 0) + 1
    assert sorted(leaders.values()) == [2, 2, 2], leaders
    assert cluster.get_json("/config/topics/orders") == {
        "version": 1,
        "config": {"retention.ms": "3600000"},
    }

    sts = wait_for(lambda: states(cluster, "orders", 6), what="six state znodes")
    epoch = cluster.controller_epoch()
    for p, st in enumerate(sts):
        assert st["leader"] == parts[str(p)][0]
        assert sorted(st["isr"]) == [1, 2, 3]
        assert st["leader_epoch"] == 0
        assert st["controller_epoch"] == epoch
        assert st["version"] == 1
    assert cluster.controller() == controller

    for b in cluster.brokers.values():
        wait_for(lambda: agree(cluster, b.bootstrap, "orders", 6), what=f"metadata of {b.port}")
        # RF 3 on 3 brokers: every broker replicates every partition.
        assert partition_dirs(b, "orders") == list(range(6))
        # The topic id is ZooKeeper's (Kafka's Uuid: base64url of 16 bytes).
        text = (b.data_dir / "runnel-topics" / "orders.topic").read_text()
        hexid = re.search(r"^id=([0-9a-f]{32})$", text, re.M).group(1)
        assert base64.urlsafe_b64decode(topic["topic_id"] + "==").hex() == hexid


def test_rf_one_logs_only_where_replicated(cluster):
    start(cluster)
    assert create(cluster.brokers[2].bootstrap, "spread", 6, rf=1) is None
    parts = cluster.get_json("/brokers/topics/spread")["partitions"]
    wait_for(lambda: states(cluster, "spread", 6), what="states")
    for i, b in cluster.brokers.items():
        wait_for(lambda: agree(cluster, b.bootstrap, "spread", 6), what="metadata")
        mine = sorted(int(p) for p, reps in parts.items() if i in reps)
        assert partition_dirs(b, "spread") == mine


def test_creation_errors_and_auto_create(cluster):
    start(cluster, settings={"default.replication.factor": "2", "num.partitions": "3"})
    b = cluster.brokers[3].bootstrap
    err = create(b, "toobig", 2, rf=4)
    assert err.code() == KafkaError.INVALID_REPLICATION_FACTOR, err
    assert not cluster.exists("/brokers/topics/toobig")
    assert create(b, "dup", 2, rf=2) is None
    err = create(cluster.brokers[1].bootstrap, "dup", 2, rf=2)
    assert err.code() == KafkaError.TOPIC_ALREADY_EXISTS, err

    # An explicit assignment is honoured.
    assert create(b, "placed", 0, assignment=[[3, 1], [2, 3]]) is None
    assert cluster.get_json("/brokers/topics/placed")["partitions"] == {"0": [3, 1], "1": [2, 3]}
    err = create(b, "badplace", 0, assignment=[[3, 9]])
    assert err.code() == KafkaError.INVALID_REPLICA_ASSIGNMENT, err

    # Auto-creation by a Metadata request: default.replication.factor.
    md = admin(cluster.brokers[1].bootstrap)
    c = __import__("confluent_kafka").Consumer(
        {"bootstrap.servers": cluster.brokers[1].bootstrap, "group.id": "g",
         "allow.auto.create.topics": True}
    )
    try:
        c.list_topics("auto-made", timeout=15)
    finally:
        c.close()
    topic = wait_for(lambda: cluster.get_json("/brokers/topics/auto-made"), what="auto topic")
    assert len(topic["partitions"]) == 3
    assert all(len(r) == 2 for r in topic["partitions"].values())
    wait_for(lambda: states(cluster, "auto-made", 3), what="states")
    for br in cluster.brokers.values():
        wait_for(lambda: agree(cluster, br.bootstrap, "auto-made", 3), what="metadata")
    del md


def test_leader_killed_a_new_one_from_the_isr(cluster):
    start(cluster)
    b1 = cluster.brokers[1].bootstrap
    assert create(b1, "ha", 3, rf=3) is None
    sts = wait_for(lambda: states(cluster, "ha", 3), what="states")
    victim_id = sts[0]["leader"]
    led = [p for p, st in enumerate(sts) if st["leader"] == victim_id]
    followed = [p for p, st in enumerate(sts) if st["leader"] != victim_id]
    cluster.brokers[victim_id].kill()
    t0 = time.monotonic()

    def moved():
        now = states(cluster, "ha", 3)
        if not now:
            return None
        for p in led:
            st = now[p]
            if st["leader"] in (victim_id, -1) or victim_id in st["isr"]:
                return None
        for p in followed:
            if victim_id in now[p]["isr"]:
                return None
        return now

    now = wait_for(moved, timeout=SESSION_S + 10, what="a new leader")
    print(f"leader moved after {time.monotonic() - t0:.2f} s")
    for p in range(3):
        assert now[p]["leader_epoch"] == sts[p]["leader_epoch"] + 1
        assert sorted(now[p]["isr"]) == sorted(set(sts[p]["isr"]) - {victim_id})
        assert now[p]["leader"] in sts[p]["isr"]
    survivors = [b for i, b in cluster.brokers.items() if i != victim_id]
    for b in survivors:
        wait_for(lambda: agree(cluster, b.bootstrap, "ha", 3), what="survivors' metadata")
        parts = md_partitions(b.bootstrap, "ha")
        for p in range(3):
            assert victim_id in parts[p].replicas

    # The killed broker comes back: it learns the topics and the states.
    assert create(survivors[0].bootstrap, "later", 2, rf=2) is None
    wait_for(lambda: cluster.broker_ids() == sorted(set([1, 2, 3]) - {victim_id}),
             timeout=SESSION_S + 10, what="the old registration to go")
    back = cluster.brokers[victim_id].start()
    wait_for(lambda: victim_id in cluster.broker_ids(), what="re-registration")
    wait_for(lambda: agree(cluster, back.bootstrap, "ha", 3), what="restarted metadata")
    wait_for(lambda: states(cluster, "later", 2), what="states")
    wait_for(lambda: agree(cluster, back.bootstrap, "later", 2), what="restarted metadata")
    assert partition_dirs(back, "ha") == [0, 1, 2]


def set_state(cluster, topic, p, **changes):
    st = state(cluster, topic, p)
    version = st.pop("zk_version")
    st.update(changes)
    cluster.zk.client().set(
        cluster.zpath(f"/brokers/topics/{topic}/partitions/{p}/state"),
        json.dumps(st).encode(),
        version=version,
    )


def test_no_clean_leader_left_goes_offline_unless_unclean_allowed(cluster):
    start(cluster)
    b = cluster.brokers[1].bootstrap
    assert create(b, "strict", 0, assignment=[[2, 3]]) is None
    assert create(b, "loose", 0, assignment=[[2, 3]],
                  config={"unclean.leader.election.enable": "true"}) is None
    for t in ("strict", "loose"):
        wait_for(lambda: states(cluster, t, 1), what="states")
    # Broker 3 stops fetching (SIGSTOP, well within its session timeout),
    # so its leader cannot take it back into the ISR; an operator shrinks
    # the ISR to broker 2 alone; broker 2 dies; broker 3 goes on, alive
    # but never in sync.
    p3 = cluster.brokers[3].proc.pid
    os.kill(p3, signal.SIGSTOP)
    try:
        for t in ("strict", "loose"):
            set_state(cluster, t, 0, isr=[2])
        for t in ("strict", "loose"):
            wait_for(lambda: agree(cluster, b, t, 1), what="metadata")
        cluster.brokers[2].kill()
    finally:
        os.kill(p3, signal.SIGCONT)

    def offline():
        st = state(cluster, "strict", 0)
        return st if st["leader"] == -1 else None

    st = wait_for(offline, timeout=SESSION_S + 10, what="strict offline")
    assert st["isr"] == [2]
    def lna():
        parts = md_partitions(b, "strict")
        return parts and parts[0].error is not None and \
            parts[0].error.code() == KafkaError.LEADER_NOT_AVAILABLE and parts[0]
    mp = wait_for(lna, what="LEADER_NOT_AVAILABLE")
    assert mp.leader == -1

    def unclean():
        st = state(cluster, "loose", 0)
        return st if st["leader"] == 3 else None

    st = wait_for(unclean, timeout=SESSION_S + 10, what="unclean election")
    assert st["isr"] == [3]
    ctl = cluster.brokers[cluster.controller()]
    wait_for(lambda: "unclean leader election" in ctl.stderr_text(), what="the log line")

    # Broker 2 (the ISR of "strict") comes back: it leads again.
    wait_for(lambda: 2 not in cluster.broker_ids(), timeout=SESSION_S + 10, what="2 gone")
    cluster.brokers[2].start()
    st = wait_for(lambda: (lambda s: s if s["leader"] == 2 else None)(state(cluster, "strict", 0)),
                  what="broker 2 leads again")
    assert st["isr"] == [2]


def test_deposed_controller_cannot_write(cluster):
    controller = start(cluster)
    b = cluster.brokers[controller].bootstrap
    others = [i for i in (1, 2, 3) if i != controller]
    assert create(b, "fence", 0, assignment=[[others[0], controller]]) is None
    before = wait_for(lambda: state(cluster, "fence", 0), what="state")
    # Another controller moved /controller_epoch (as a new one would).
    epoch = cluster.controller_epoch()
    zk = cluster.zk.client()
    _, stat = zk.get(cluster.zpath("/controller_epoch"))
    zk.set(cluster.zpath("/controller_epoch"), str(epoch + 1).encode(), version=stat.version)
    ctl = cluster.brokers[controller]
    cluster.brokers[others[0]].kill()
    wait_for(lambda: "controller write to" in ctl.stderr_text()
             and "refused" in ctl.stderr_text(), timeout=SESSION_S + 10, what="the refusal")
    # It re-reads /controller_epoch, then elects with the epoch it read.
    st = wait_for(lambda: (lambda s: s if s["leader"] == controller else None)(
        state(cluster, "fence", 0)), what="the re-read controller's write")
    assert st["controller_epoch"] == epoch + 1
    assert st["leader_epoch"] == before["leader_epoch"] + 1


def test_create_partitions_writes_the_assignment(cluster):
    from confluent_kafka.admin import NewPartitions

    start(cluster)
    b = cluster.brokers[2].bootstrap
    assert create(b, "grow", 2, rf=2) is None
    wait_for(lambda: states(cluster, "grow", 2), what="states")
    before = cluster.get_json("/brokers/topics/grow")["partitions"]
    a = admin(b)
    a.create_partitions([NewPartitions("grow", 5)], request_timeout=20)["grow"].result(timeout=30)
    after = cluster.get_json("/brokers/topics/grow")["partitions"]
    assert sorted(after) == [str(p) for p in range(5)]
    assert all(after[p] == before[p] for p in before)
    assert all(len(set(r)) == 2 for r in after.values())
    wait_for(lambda: states(cluster, "grow", 5), what="new states")
    for i, br in cluster.brokers.items():
        wait_for(lambda: agree(cluster, br.bootstrap, "grow", 5), what="metadata")
        assert partition_dirs(br, "grow") == sorted(int(p) for p, r in after.items() if i in r)


def test_local_topic_not_in_zookeeper_is_kept_and_logged(cluster):
    b = cluster.broker(1, start=False)
    zk_settings = dict(b.settings)
    b.settings = {k: v for k, v in b.settings.items() if not k.startswith("zookeeper.")}
    b.start()
    assert create(b.bootstrap, "before", 2) is None
    b.stop()
    b.settings = zk_settings
    b.start()
    wait_for(lambda: "local topic before is not in ZooKeeper" in b.stderr_text(),
             what="the log line")
    assert not cluster.exists("/brokers/topics/before")
    parts = md_partitions(b.bootstrap, "before")
    assert parts is not None and len(parts) == 2
    assert partition_dirs(b, "before") == [0, 1]
