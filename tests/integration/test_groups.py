"""Consumer groups end to end: real clients (librdkafka through
confluent-kafka, kafka-python) in groups, members that leave, die, restart
or rebalance cooperatively, committed offsets across broker restarts, the
coordinator's error codes on raw requests, and `runnel group` /
`runnel consume --group`.

Members that must be killable run in their own process
(group_member.py) and report what they do as JSON lines stamped with
CLOCK_MONOTONIC, so the test can order the events of different members.
Brokers here use group.initial.rebalance.delay.ms=0 and
group.min.session.timeout.ms=1000 so that joins are immediate and a killed
member expires in about two seconds.
"""

import json
import os
import re
import signal
import struct
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

import kwire
from clients import QUIET, create_topic, produce_all
from conftest import free_port, run_cli, wait_for

HERE = Path(__file__).resolve().parent
PYTHON = "/usr/bin/python3"

FAST = {"group.initial.rebalance.delay.ms": "0", "group.min.session.timeout.ms": "1000"}

# Member settings: a killed member expires after SESSION_MS; heartbeats
# often enough that the survivors hear of a rebalance quickly.
SESSION_MS = 2000
MEMBER_CONF = {
    "session.timeout.ms": SESSION_MS,
    "heartbeat.interval.ms": 200,
    "max.poll.interval.ms": 15000,
}

# Kafka error codes.
NONE = 0
OFFSET_METADATA_TOO_LARGE = 12
UNKNOWN_TOPIC_OR_PARTITION = 3
ILLEGAL_GENERATION = 22
UNKNOWN_MEMBER_ID = 25
INVALID_SESSION_TIMEOUT = 26
MEMBER_ID_REQUIRED = 79
FENCED_INSTANCE_ID = 82


# ------------------------------------------------------------- members
class Member:
    """A group_member.py process and the events it reported."""

    def __init__(self, name, bootstrap, group, topics, tmp_path, conf=None, delay_ms=0,
                 commit=True):
        self.name = name
        full = {"bootstrap.servers": bootstrap, "group.id": group, "client.id": name}
        full.update(MEMBER_CONF)
        full.update(conf or {})
        opts = {"conf": full, "topics": topics, "delay_ms": delay_ms, "commit": commit}
        self.stderr_path = Path(tmp_path) / f"member-{name}.stderr"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [PYTHON, str(HERE / "group_member.py"), json.dumps(opts)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self.events = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            ev = json.loads(line)
            ev["member"] = self.name
            with self._lock:
                self.events.append(ev)

    def snapshot(self):
        with self._lock:
            return list(self.events)

    def assignment(self, events=None):
        """The partitions this member holds after its events so far:
        assign adds, revoke and lost remove (eager and cooperative alike)."""
        held = set()
        for ev in self.snapshot() if events is None else events:
            if ev["ev"] == "assign":
                held |= {tuple(p) for p in ev["parts"]}
            elif ev["ev"] in ("revoke", "lost"):
                held -= {tuple(p) for p in ev["parts"]}
        return held

    def of(self, kind):
        return [e for e in self.snapshot() if e["ev"] == kind]

    def term(self, timeout=20):
        """SIGTERM: close() the consumer and exit 0."""
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        assert rc == 0, f"member {self.name} exited {rc}: {self.stderr_path.read_text()}"
        assert self.of("closed"), f"member {self.name} did not report its close"

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self._reader.join(timeout=5)

    def stop(self):
        if self.proc.poll() is None:
            self.kill()
        self._stderr.close()


@pytest.fixture
def members(tmp_path):
    started = []

    def start(*args, **kw):
        m = Member(*args, tmp_path=tmp_path, **kw)
        started.append(m)
        return m

    yield start
    for m in started:
        m.stop()


def parts_of(topic, ids):
    return {(topic, p) for p in ids}


def produce_batch(bootstrap, topic, start, count, partitions, produced):
    """Produces keyed records k<i>/v<i> round-robin over the partitions and
    records {(partition, offset): value} in `produced`."""
    recs = [
        {"key": f"k{i}".encode(), "value": f"v{i}".encode(), "partition": i % partitions}
        for i in range(start, start + count)
    ]
    for r, (p, o) in zip(recs, produce_all(bootstrap, topic, recs)):
        produced[(p, o)] = r["value"].decode()


def group_consumer(bootstrap, group, **conf):
    base = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        "auto.offset.reset": "earliest",
    }
    base.update(MEMBER_CONF)
    base.update(QUIET)
    base.update(conf)
    return Consumer(base)


def committed(bootstrap, group, topic, partitions):
    """{partition: committed offset} read with OffsetFetch (-1001: none)."""
    c = group_consumer(bootstrap, group)
    try:
        tps = c.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def commit_offsets(bootstrap, group, topic, offsets):
    """Commits {partition: offset} from outside the group protocol, as a
    manually assigned consumer does (generation -1, no member id)."""
    c = group_consumer(bootstrap, group)
    try:
        c.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()],
                 asynchronous=False)
    finally:
        c.close()


def generation_lines(broker, group):
    """The coordinator's log of each new generation of the group."""
    return re.findall(rf"group {re.escape(group)}: generation (\d+) with .*", broker.stderr_text())


def stable(broker, group):
    """True when the group's latest generation has its assignment."""
    gens = generation_lines(broker, group)
    done = re.findall(rf"group {re.escape(group)}: generation (\d+) is stable", broker.stderr_text())
    return bool(gens) and bool(done) and gens[-1] == done[-1]


# --------------------------------------------- three members, leave, crash
def test_three_members_leave_and_crash_lose_and_skip_nothing(make_broker, members):
    b = make_broker(settings=FAST)
    topic, group, nparts = "orders", "three", 6
    create_topic(b.bootstrap, topic, nparts)
    produced = {}
    produce_batch(b.bootstrap, topic, 0, 300, nparts, produced)
    every = parts_of(topic, range(nparts))

    a = members("a", b.bootstrap, group, [topic], delay_ms=10)
    wait_for(lambda: a.assignment() == every, 15, what="the first member to get all partitions")
    m_b = members("b", b.bootstrap, group, [topic], delay_ms=10)
    m_c = members("c", b.bootstrap, group, [topic], delay_ms=10)
    trio = [a, m_b, m_c]

    def two_each():
        held = [m.assignment() for m in trio]
        return all(len(h) == 2 for h in held) and set().union(*held) == every

    wait_for(two_each, 20, what="two partitions for each of three members")
    held = {m.name: m.assignment() for m in trio}
    produce_batch(b.bootstrap, topic, 300, 60, nparts, produced)

    # A clean leave: a's partitions go to the other two at once (no
    # session timeout to wait for).
    t0 = time.monotonic()
    a.term()
    wait_for(lambda: m_b.assignment() | m_c.assignment() == every
             and len(m_b.assignment()) == 3 and len(m_c.assignment()) == 3,
             15, what="a's partitions to move to b and c")
    assert held["a"] <= m_b.assignment() | m_c.assignment()
    assert time.monotonic() - t0 < SESSION_MS / 1000 + 5
    produce_batch(b.bootstrap, topic, 360, 60, nparts, produced)

    # A crash: b's partitions move once its session expires.
    held_b = m_b.assignment()
    t0 = time.monotonic()
    m_b.kill()
    wait_for(lambda: m_c.assignment() == every, SESSION_MS / 1000 + 15,
             what="b's partitions to move to c after its session timeout")
    moved_after = time.monotonic() - t0
    assert held_b <= m_c.assignment()
    assert moved_after >= SESSION_MS / 1000 * 0.8, f"moved after {moved_after:.2f}s, before b's session expired"
    assert re.search(r"group three: member b-\S+ expired", b.stderr_text()), b.stderr_text()
    produce_batch(b.bootstrap, topic, 420, 60, nparts, produced)

    # c drains everything and commits it.
    ends = {p: 1 + max(o for (q, o) in produced if q == p) for p in range(nparts)}

    def c_done():
        last = {}
        for e in m_c.of("commit"):
            last[e["p"]] = max(last.get(e["p"], 0), e["o"])
        return last == ends

    wait_for(c_done, 60, what="c to commit every partition's end")
    m_c.term()
    assert committed(b.bootstrap, group, topic, range(nparts)) == ends

    events = sorted((e for m in trio for e in m.snapshot()), key=lambda e: e["t"])
    recs = [e for e in events if e["ev"] == "rec"]
    # Nothing skipped: every record was processed by some member, intact.
    seen = {}
    for e in recs:
        seen.setdefault((e["p"], e["o"]), []).append(e)
        assert produced[(e["p"], e["o"])] == e["value"], e
    missing = sorted(set(produced) - set(seen))
    assert not missing, f"records never consumed: {missing[:10]}"
    # Nothing consumed again once committed: no member read a record after
    # any member had committed an offset past it.
    high = {}
    for e in events:
        if e["ev"] == "commit":
            high[e["p"]] = max(high.get(e["p"], 0), e["o"])
        elif e["ev"] == "rec":
            assert e["o"] >= high.get(e["p"], 0), (
                f"{e['member']} consumed {e['p']}:{e['o']} after offset {high[e['p']]} "
                "had been committed"
            )
    # A record read twice was processed but not committed by its earlier
    # reader: b, killed between the two, or a member whose commit failed.
    failed = {(e["member"], e["p"], e["o"]) for e in events if e["ev"] == "commit_failed"}
    twice = {k: v for k, v in seen.items() if len(v) > 1}
    for (p, o), evs in twice.items():
        for e in evs[:-1]:
            assert e["member"] == "b" or (e["member"], p, o + 1) in failed, (
                f"{p}:{o} consumed by {[x['member'] for x in evs]}")
    assert len([k for k, v in twice.items() if v[0]["member"] == "b"]) <= 1, sorted(twice)


# --------------------------------------------------------- kafka-python
def test_kafka_python_group_consumer(make_broker):
    from kafka import KafkaConsumer, TopicPartition as KTP
    from kafka.structs import OffsetAndMetadata

    b = make_broker(settings=FAST)
    topic, group = "kp", "kp-group"
    create_topic(b.bootstrap, topic, 3)
    produced = {}
    produce_batch(b.bootstrap, topic, 0, 15, 3, produced)

    def new_consumer():
        return KafkaConsumer(
            topic,
            bootstrap_servers=b.bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=6000,
            heartbeat_interval_ms=500,
            consumer_timeout_ms=200,
        )

    c = new_consumer()
    try:
        got = []
        deadline = time.monotonic() + 20
        while len(got) < 15 and time.monotonic() < deadline:
            for batch in c.poll(timeout_ms=200).values():
                got.extend(batch)
        assert c.assignment() == {KTP(topic, p) for p in range(3)}
        assert sorted((m.partition, m.offset, m.value.decode()) for m in got) == sorted(
            (p, o, v) for (p, o), v in produced.items()
        )
        c.commit()
        assert {p: c.committed(KTP(topic, p)) for p in range(3)} == {0: 5, 1: 5, 2: 5}
        # An explicit commit of one partition moves only that one.
        c.commit({KTP(topic, 1): OffsetAndMetadata(3, "")})
        assert c.committed(KTP(topic, 1)) == 3
    finally:
        c.close()  # sends LeaveGroup
    assert committed(b.bootstrap, group, topic, range(3)) == {0: 5, 1: 3, 2: 5}
    r = run_cli("group", "describe", group, "-b", b.bootstrap)
    assert r.rc == 0 and r.out.startswith(f"GROUP {group}  STATE Empty  "), r

    # The next member of the group starts exactly at the commits.
    produce_batch(b.bootstrap, topic, 15, 3, 3, produced)
    c = new_consumer()
    try:
        got = []
        deadline = time.monotonic() + 20
        while len(got) < 5 and time.monotonic() < deadline:
            for batch in c.poll(timeout_ms=200).values():
                got.extend(batch)
        assert sorted((m.partition, m.offset) for m in got) == [(0, 5), (1, 3), (1, 4), (1, 5), (2, 5)]
    finally:
        c.close()


# ------------------------------------------------------ broker restarts
@pytest.mark.parametrize("clean", [True, False], ids=["clean-restart", "sigkill"])
def test_group_resumes_from_commits_after_broker_restart(make_broker, clean):
    settings = dict(FAST)
    if not clean:
        settings["log.flush.sync"] = "true"
    b = make_broker(settings=settings)
    topic, group = "resume", "resume-group"
    create_topic(b.bootstrap, topic, 2)
    produced = {}
    produce_batch(b.bootstrap, topic, 0, 20, 2, produced)  # 10 per partition

    c = group_consumer(b.bootstrap, group)
    try:
        c.subscribe([topic])
        got = []
        deadline = time.monotonic() + 20
        while len(got) < 20 and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                got.append(m)
        assert len(got) == 20
        c.commit(offsets=[TopicPartition(topic, 0, 4), TopicPartition(topic, 1, 7)],
                 asynchronous=False)
    finally:
        c.close()
    assert committed(b.bootstrap, group, topic, [0, 1]) == {0: 4, 1: 7}

    b.restart(clean=clean)
    assert committed(b.bootstrap, group, topic, [0, 1]) == {0: 4, 1: 7}
    c = group_consumer(b.bootstrap, group)
    try:
        c.subscribe([topic])
        got = []
        deadline = time.monotonic() + 20
        while len(got) < 9 and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                got.append(m)
        # Nothing more arrives: it started exactly at the commits.
        end = time.monotonic() + 1
        while time.monotonic() < end:
            m = c.poll(0.2)
            if m is not None and not m.error():
                got.append(m)
        assert sorted((m.partition(), m.offset()) for m in got) == [(0, o) for o in range(4, 10)] + [
            (1, o) for o in range(7, 10)
        ]
        assert all(produced[(m.partition(), m.offset())] == m.value().decode() for m in got)
    finally:
        c.close()


# ---------------------------------------------------- static membership
@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
@pytest.mark.parametrize("restarted", ["follower", "leader"])
def test_static_member_restart_keeps_partitions_and_generation(make_broker, members, restarted,
                                                               strategy):
    """KIP-345: a static member that comes back within its session timeout
    takes its old place: same partitions, no rebalance, same generation.
    Kafka does this for the group's leader too (it answers the returning
    leader with the old leader id, so it does not assign again) and
    whatever the member's subscription user data (cooperative-sticky puts
    the owned partitions there): only a change of the group's selected
    protocol makes it rebalance (GroupCoordinator.updateStaticMemberAndRebalance)."""
    b = make_broker(settings=FAST)
    topic, group = "static", "static-group"
    create_topic(b.bootstrap, topic, 4)
    conf = {"session.timeout.ms": 6000, "partition.assignment.strategy": strategy}
    a = members("member-a", b.bootstrap, group, [topic],
                conf={**conf, "group.instance.id": "a"}, commit=False)
    wait_for(lambda: len(a.assignment()) == 4, 15, what="a to get all partitions")
    m_b = members("member-b", b.bootstrap, group, [topic],
                  conf={**conf, "group.instance.id": "b"}, commit=False)
    wait_for(lambda: len(a.assignment()) == 2 and len(m_b.assignment()) == 2, 15,
             what="two partitions each")
    wait_for(lambda: stable(b, group), 10, what="a stable generation")
    gens = generation_lines(b, group)
    # The first member to join leads.
    leader = re.findall(rf"group {group}: generation \d+ with \d+ members, protocol \S+, leader (\S+)",
                        b.stderr_text())[-1]
    assert leader.startswith("member-a-"), leader
    gone, stays = (m_b, a) if restarted == "follower" else (a, m_b)
    held = gone.assignment()
    stays_events = len(stays.snapshot())
    stderr_before = b.stderr_text()

    # A static member's close() sends no LeaveGroup; the broker keeps its
    # place until its session times out.
    gone.term()
    back = members(gone.name + "-again", b.bootstrap, group, [topic],
                   conf={**conf, "group.instance.id": "b" if gone is m_b else "a"}, commit=False)
    wait_for(lambda: back.assignment(), 15, what="the restarted static member's assignment")
    time.sleep(1.0)  # anything the return might have set off would show by now
    after = b.stderr_text()[len(stderr_before):]
    assert back.assignment() == held, after
    assert generation_lines(b, group) == gens, after
    assert "rebalancing" not in after and " left" not in after and "expired" not in after, after
    # The other member was never disturbed.
    assert [e["ev"] for e in stays.snapshot()[stays_events:]
            if e["ev"] in ("assign", "revoke", "lost")] == [], after
    assert len(stays.assignment()) == 2 and not (stays.assignment() & held)
    r = run_cli("group", "describe", group, "--members", "-b", b.bootstrap)
    assert r.rc == 0, r
    assert r.out.startswith(f"GROUP {group}  STATE Stable  PROTOCOL {strategy}  MEMBERS 2\n"), r.out


# --------------------------------------------------- cooperative-sticky
def test_cooperative_sticky_revokes_only_what_moves(make_broker, members):
    b = make_broker(settings=FAST)
    topic, group = "coop", "coop-group"
    create_topic(b.bootstrap, topic, 4)
    every = parts_of(topic, range(4))
    conf = {"partition.assignment.strategy": "cooperative-sticky"}
    c1 = members("c1", b.bootstrap, group, [topic], conf=conf, commit=False)
    wait_for(lambda: c1.assignment() == every, 15, what="c1 to get all partitions")
    c2 = members("c2", b.bootstrap, group, [topic], conf=conf, commit=False)
    wait_for(lambda: len(c1.assignment()) == 2 and len(c2.assignment()) == 2
             and c1.assignment() | c2.assignment() == every, 20, what="two partitions each")
    before = {m.name: m.assignment() for m in (c1, c2)}
    marks = {m.name: len(m.snapshot()) for m in (c1, c2)}

    c3 = members("c3", b.bootstrap, group, [topic], conf=conf, commit=False)
    trio = (c1, c2, c3)

    def settled():
        held = [m.assignment() for m in trio]
        return (sorted(len(h) for h in held) == [1, 1, 2] and set().union(*held) == every
                and sum(len(h) for h in held) == 4)

    wait_for(settled, 20, what="a 2/1/1 split over three members")
    time.sleep(0.5)  # let any further (wrong) revocation show
    assert settled()
    revoked = {}
    for m in (c1, c2):
        evs = m.snapshot()[marks[m.name]:]
        revoked[m.name] = set()
        for e in evs:
            if e["ev"] in ("revoke", "lost"):
                revoked[m.name] |= {tuple(p) for p in e["parts"]}
        # A member that stays keeps what it still owns without a revoke.
        kept = before[m.name] - revoked[m.name]
        assert kept and kept <= m.assignment(), (m.name, before[m.name], revoked[m.name])
        assert m.assignment() <= before[m.name]
        assert not [e for e in evs if e["ev"] == "lost"]
    moved = revoked["c1"] | revoked["c2"]
    assert moved == c3.assignment() and len(moved) == 1, (revoked, c3.assignment())


# -------------------------------------------------------- raw requests
API_OFFSET_COMMIT = 8
API_OFFSET_FETCH = 9
API_JOIN_GROUP = 11
API_HEARTBEAT = 12
API_SYNC_GROUP = 14


def rbytes(r):
    n = r.int32()
    return None if n < 0 else r._take(n)


def subscription(topics):
    """ConsumerProtocolSubscription v0."""
    return struct.pack(">h", 0) + kwire.array(topics, kwire.string) + kwire.nbytes(None)


def assignment(topic, partitions):
    """ConsumerProtocolAssignment v0."""
    return (
        struct.pack(">h", 0)
        + kwire.array([topic], lambda t: kwire.string(t)
                      + kwire.array(partitions, lambda p: struct.pack(">i", p)))
        + kwire.nbytes(None)
    )


def join_group_v5(conn, group, member_id, protocols, session_ms=10000, instance_id=None):
    body = (
        kwire.string(group)
        + struct.pack(">ii", session_ms, 30000)
        + kwire.string(member_id)
        + kwire.string(instance_id)
        + kwire.string("consumer")
        + kwire.array(protocols, lambda p: kwire.string(p[0]) + kwire.nbytes(p[1]))
    )
    r = kwire.Reader(conn.request(API_JOIN_GROUP, 5, body))
    r.int32()  # throttle_time_ms
    out = {"error": r.int16(), "generation": r.int32(), "protocol": r.string(),
           "leader": r.string(), "member_id": r.string()}
    out["members"] = r.array(lambda r: (r.string(), r.string(), rbytes(r)))
    return out


def sync_group_v3(conn, group, generation, member_id, assignments, instance_id=None):
    body = (
        kwire.string(group)
        + struct.pack(">i", generation)
        + kwire.string(member_id)
        + kwire.string(instance_id)
        + kwire.array(assignments, lambda a: kwire.string(a[0]) + kwire.nbytes(a[1]))
    )
    r = kwire.Reader(conn.request(API_SYNC_GROUP, 3, body))
    r.int32()
    return r.int16(), rbytes(r)


def heartbeat_v3(conn, group, generation, member_id, instance_id=None):
    body = (kwire.string(group) + struct.pack(">i", generation) + kwire.string(member_id)
            + kwire.string(instance_id))
    r = kwire.Reader(conn.request(API_HEARTBEAT, 3, body))
    r.int32()
    return r.int16()


def offset_commit_v7(conn, group, generation, member_id, offsets, instance_id=None):
    """offsets: [(topic, partition, offset, metadata)] -> {(topic, partition): error}"""
    by_topic = {}
    for t, p, o, md in offsets:
        by_topic.setdefault(t, []).append((p, o, md))
    body = (
        kwire.string(group)
        + struct.pack(">i", generation)
        + kwire.string(member_id)
        + kwire.string(instance_id)
        + kwire.array(list(by_topic.items()), lambda t: kwire.string(t[0]) + kwire.array(
            t[1], lambda p: struct.pack(">iqi", p[0], p[1], -1) + kwire.string(p[2])))
    )
    r = kwire.Reader(conn.request(API_OFFSET_COMMIT, 7, body))
    r.int32()
    out = {}

    def topic(r):
        name = r.string()
        for _ in range(r.int32()):
            p, err = r.int32(), r.int16()
            out[(name, p)] = err

    r.array(topic)
    return out


def offset_fetch_v5(conn, group, topic, partitions):
    """{partition: (offset, metadata, error)}"""
    body = kwire.string(group) + kwire.array(
        [topic], lambda t: kwire.string(t) + kwire.array(partitions, lambda p: struct.pack(">i", p)))
    r = kwire.Reader(conn.request(API_OFFSET_FETCH, 5, body))
    r.int32()
    out = {}

    def part(r):
        p, off, _epoch, md, err = r.int32(), r.int64(), r.int32(), r.string(), r.int16()
        out[p] = (off, md, err)

    r.array(lambda r: (r.string(), r.array(part)))
    assert r.int16() == NONE
    return out


def wire_member(conn, group, topic, partitions):
    """Joins as the only member and takes every partition: (member id, generation)."""
    protos = [("range", subscription([topic]))]
    j = join_group_v5(conn, group, "", protos)
    assert j["error"] == MEMBER_ID_REQUIRED and j["member_id"], j
    j = join_group_v5(conn, group, j["member_id"], protos)
    assert j["error"] == NONE and j["leader"] == j["member_id"], j
    err, _ = sync_group_v3(conn, group, j["generation"], j["member_id"],
                           [(j["member_id"], assignment(topic, partitions))])
    assert err == NONE
    return j["member_id"], j["generation"]


def test_offset_commit_and_join_errors(make_broker):
    b = make_broker(settings=FAST)
    topic, group = "errs", "errs-group"
    create_topic(b.bootstrap, topic, 2)
    with kwire.Conn(b.host, b.port) as conn:
        member, gen = wire_member(conn, group, topic, [0, 1])
        ok = offset_commit_v7(conn, group, gen, member, [(topic, 0, 5, "m5"), (topic, 1, 2, None)])
        assert ok == {(topic, 0): NONE, (topic, 1): NONE}
        assert offset_fetch_v5(conn, group, topic, [0, 1]) == {0: (5, "m5", NONE), 1: (2, "", NONE)}

        # A stale generation, or a member the group does not know.
        assert offset_commit_v7(conn, group, gen + 1, member, [(topic, 0, 9, None)]) == {
            (topic, 0): ILLEGAL_GENERATION}
        assert offset_commit_v7(conn, group, gen, "no-such-member", [(topic, 0, 9, None)]) == {
            (topic, 0): UNKNOWN_MEMBER_ID}

        # Partitions that do not exist: refused one by one, nothing stored
        # for them, the valid partition in the same request committed.
        r = offset_commit_v7(conn, group, gen, member,
                             [(topic, 0, 6, None), (topic, 7, 1, None), ("no-such-topic", 0, 1, None)])
        assert r == {(topic, 0): NONE, (topic, 7): UNKNOWN_TOPIC_OR_PARTITION,
                     ("no-such-topic", 0): UNKNOWN_TOPIC_OR_PARTITION}
        assert offset_commit_v7(conn, group, gen, member, [(topic, 9, 1, None)]) == {
            (topic, 9): UNKNOWN_TOPIC_OR_PARTITION}
        assert offset_fetch_v5(conn, group, topic, [0, 1, 7, 9]) == {
            0: (6, "", NONE), 1: (2, "", NONE), 7: (-1, "", NONE), 9: (-1, "", NONE)}
        assert offset_fetch_v5(conn, group, "no-such-topic", [0]) == {0: (-1, "", NONE)}

        # Metadata above offset.metadata.max.bytes (4096): refused, the
        # stored offset and metadata stay.
        assert offset_commit_v7(conn, group, gen, member, [(topic, 0, 8, "x" * 4097)]) == {
            (topic, 0): OFFSET_METADATA_TOO_LARGE}
        assert offset_commit_v7(conn, group, gen, member, [(topic, 1, 3, "y" * 4096)]) == {
            (topic, 1): NONE}
        assert offset_fetch_v5(conn, group, topic, [0, 1]) == {0: (6, "", NONE), 1: (3, "y" * 4096, NONE)}

        # Session timeouts outside group.min.session.timeout.ms (1000 here)
        # and group.max.session.timeout.ms (1800000 by default).
        for session_ms in (999, 1800001):
            j = join_group_v5(conn, "other-group", "", [("range", subscription([topic]))],
                              session_ms=session_ms)
            assert j["error"] == INVALID_SESSION_TIMEOUT, (session_ms, j)
        assert run_cli("group", "list", "-b", b.bootstrap).out == f"{group}\n"

    # The refused commits left nothing behind across a restart either.
    b.restart()
    assert committed(b.bootstrap, group, topic, [0, 1]) == {0: 6, 1: 3}


def test_offset_commit_unknown_group_with_member_id(broker):
    """A commit naming a member of a group the coordinator does not have.
    Kafka (GroupCoordinator.handleCommitOffsets; GroupMetadataManager in
    3.x) answers generation -1 with UNKNOWN_MEMBER_ID (the member is not
    in the group it creates), and a real generation with
    ILLEGAL_GENERATION: "a request coming from an older generation"."""
    create_topic(broker.bootstrap, "ug", 1)
    with kwire.Conn(broker.host, broker.port) as conn:
        assert offset_commit_v7(conn, "no-such-group", -1, "member-1", [("ug", 0, 1, None)]) == {
            ("ug", 0): UNKNOWN_MEMBER_ID}
        assert offset_commit_v7(conn, "no-such-group-2", 3, "member-1", [("ug", 0, 1, None)]) == {
            ("ug", 0): ILLEGAL_GENERATION}
        assert offset_fetch_v5(conn, "no-such-group", "ug", [0]) == {0: (-1, "", NONE)}
        assert offset_fetch_v5(conn, "no-such-group-2", "ug", [0]) == {0: (-1, "", NONE)}


def test_deleting_a_topic_drops_its_committed_offsets(make_broker):
    """Kafka removes every group's offsets for the partitions of a deleted
    topic (GroupCoordinator.handleDeletedPartitions, with tombstones in
    __consumer_offsets), so a topic made again under the same name starts
    without commits instead of at offsets of records that are gone."""
    b = make_broker(settings=FAST)
    create_topic(b.bootstrap, "doomed", 2)
    create_topic(b.bootstrap, "kept", 1)
    produce_batch(b.bootstrap, "doomed", 0, 6, 2, {})
    produce_batch(b.bootstrap, "kept", 0, 2, 1, {})
    commit_offsets(b.bootstrap, "dg", "doomed", {0: 3, 1: 2})
    commit_offsets(b.bootstrap, "dg", "kept", {0: 2})
    assert committed(b.bootstrap, "dg", "doomed", [0, 1]) == {0: 3, 1: 2}

    r = run_cli("topic", "delete", "doomed", "-b", b.bootstrap)
    assert r.rc == 0, r
    assert committed(b.bootstrap, "dg", "kept", [0]) == {0: 2}
    assert committed(b.bootstrap, "dg", "doomed", [0, 1]) == {0: -1001, 1: -1001}
    create_topic(b.bootstrap, "doomed", 2)
    assert committed(b.bootstrap, "dg", "doomed", [0, 1]) == {0: -1001, 1: -1001}
    b.restart()
    assert committed(b.bootstrap, "dg", "doomed", [0, 1]) == {0: -1001, 1: -1001}


def test_replaced_static_member_is_fenced(make_broker):
    """A second process with the same group.instance.id takes the member's
    place; the first one, still running with its old member id, must be
    told FENCED_INSTANCE_ID (82), which librdkafka and the Java client
    treat as fatal, on every request.  Kafka checks this before anything
    else (GroupMetadata.isStaticMemberFenced in JoinGroup, SyncGroup,
    Heartbeat, OffsetCommit, LeaveGroup).  UNKNOWN_MEMBER_ID instead would
    make the zombie rejoin under the same instance id and push the new
    process out in turn, forever."""
    b = make_broker(settings=FAST)
    topic, group = "fence", "fence-group"
    create_topic(b.bootstrap, topic, 1)
    protos = [("range", subscription([topic]))]
    with kwire.Conn(b.host, b.port) as old, kwire.Conn(b.host, b.port) as new:
        j1 = join_group_v5(old, group, "", protos, instance_id="inst")
        assert j1["error"] == NONE, j1  # static members get no MEMBER_ID_REQUIRED
        err, _ = sync_group_v3(old, group, j1["generation"], j1["member_id"],
                               [(j1["member_id"], assignment(topic, [0]))], instance_id="inst")
        assert err == NONE
        j2 = join_group_v5(new, group, "", protos, instance_id="inst")
        assert j2["error"] == NONE and j2["member_id"] != j1["member_id"], j2

        gen, stale = j1["generation"], j1["member_id"]
        assert heartbeat_v3(old, group, gen, stale, "inst") == FENCED_INSTANCE_ID
        assert offset_commit_v7(old, group, gen, stale, [(topic, 0, 1, None)], "inst") == {
            (topic, 0): FENCED_INSTANCE_ID}
        assert sync_group_v3(old, group, gen, stale, [], instance_id="inst")[0] == FENCED_INSTANCE_ID
        assert join_group_v5(old, group, stale, protos, instance_id="inst")["error"] == FENCED_INSTANCE_ID
        # The new process keeps its place throughout.
        assert heartbeat_v3(new, group, j2["generation"], j2["member_id"], "inst") in (NONE, 27)


# ------------------------------------------------------ runnel group
def one_line_error(r, rc, text):
    assert r.rc == rc, r
    lines = r.err.splitlines()
    assert len(lines) == 1 and text in lines[0], r
    return lines[0]


def table(out):
    """describe's output: (header line, [rows as lists of cells])."""
    lines = out.splitlines()
    assert lines[1] == "", out
    return lines[0], [l.split() for l in lines[2:]]


def test_group_commands(make_broker, members):
    b = make_broker(settings=FAST)
    bs = ["-b", b.bootstrap]
    topic, group = "lagt", "lag-group"
    create_topic(b.bootstrap, topic, 1)
    ts0 = 1_700_000_000_000
    produce_all(b.bootstrap, topic, [
        {"key": f"k{i}".encode(), "value": f"v{i}".encode(), "partition": 0, "timestamp": ts0 + i * 1000}
        for i in range(10)
    ])
    commit_offsets(b.bootstrap, group, topic, {0: 4})
    commit_offsets(b.bootstrap, "other-group", topic, {0: 10})

    r = run_cli("group", "list", *bs)
    assert r.rc == 0 and r.out == "lag-group\nother-group\n", r
    r = run_cli("group", "describe", group, *bs)
    assert r.rc == 0, r
    head, rows = table(r.out)
    assert head == f"GROUP {group}  STATE Empty  PROTOCOL -  MEMBERS 0"
    assert rows == [
        ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"],
        [group, topic, "0", "4", "10", "6", "-", "-", "-"],
    ]
    one_line_error(run_cli("group", "describe", "no-such-group", *bs), 1, "unknown group 'no-such-group'")

    # An active member that commits nothing: the lag stays, the partition
    # shows its owner.
    m = members("cli-member", b.bootstrap, group, [topic], commit=False)
    wait_for(lambda: m.assignment() == {(topic, 0)}, 15, what="the member's assignment")
    wait_for(lambda: len(m.of("rec")) == 6, 15, what="the member to read the 6 records")
    assert [e["o"] for e in m.of("rec")] == list(range(4, 10))
    r = run_cli("group", "describe", group, *bs)
    head, rows = table(r.out)
    assert head == f"GROUP {group}  STATE Stable  PROTOCOL range  MEMBERS 1"
    assert rows[1][:6] == [group, topic, "0", "4", "10", "6"]
    assert rows[1][6].startswith("cli-member-") and rows[1][7:] == ["/127.0.0.1", "cli-member"]
    member_id = rows[1][6]
    r = run_cli("group", "describe", group, "--members", *bs)
    head, rows = table(r.out)
    assert rows == [["CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS", "ASSIGNMENT"],
                    [member_id, "/127.0.0.1", "cli-member", "1", f"{topic}(0)"]]
    r = run_cli("group", "list", "--state", *bs)
    assert r.rc == 0 and [l.split() for l in r.out.splitlines()] == [
        ["GROUP", "STATE"], [group, "Stable"], ["other-group", "Empty"]], r

    # While it has members the group can be neither reset nor deleted.
    one_line_error(run_cli("group", "reset", group, "--topic", topic, "--to-earliest", "--execute", *bs),
                   1, "has active members (state Stable)")
    one_line_error(run_cli("group", "delete", group, *bs), 1, "NON_EMPTY_GROUP")
    assert committed(b.bootstrap, group, topic, [0]) == {0: 4}
    m.term()
    wait_for(lambda: run_cli("group", "describe", group, *bs).out.startswith(
        f"GROUP {group}  STATE Empty"), 10, what="the group to be empty")

    def reset(*spec, execute=False):
        r = run_cli("group", "reset", group, *spec, *(["--execute"] if execute else []), *bs)
        assert r.rc == 0, r
        lines = [l.split() for l in r.out.splitlines()]
        assert lines[0] == ["TOPIC", "PARTITION", "NEW-OFFSET"], r
        return [(t, int(p), int(o)) for t, p, o in lines[1:]]

    def current():
        return committed(b.bootstrap, group, topic, [0])[0]

    # Dry runs print and change nothing.
    assert reset("--topic", topic, "--to-earliest") == [(topic, 0, 0)]
    assert reset("--topic", f"{topic}:0", "--to-latest") == [(topic, 0, 10)]
    assert reset("--topic", topic, "--shift-by", "-3") == [(topic, 0, 1)]
    assert reset("--all-topics", "--to-offset", "99") == [(topic, 0, 10)]  # kept within the log
    assert current() == 4
    # --execute commits them.
    assert reset("--topic", topic, "--to-offset", "7", execute=True) == [(topic, 0, 7)]
    assert current() == 7
    assert reset("--topic", topic, "--shift-by", "-2", execute=True) == [(topic, 0, 5)]
    assert current() == 5
    at = datetime.fromtimestamp((ts0 + 3000) / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert reset("--topic", topic, "--to-datetime", at, execute=True) == [(topic, 0, 3)]
    assert current() == 3
    r = run_cli("group", "describe", group, *bs)
    assert table(r.out)[1][1][:6] == [group, topic, "0", "3", "10", "7"]
    assert reset("--topic", topic, "--to-latest", execute=True) == [(topic, 0, 10)]
    assert current() == 10
    # A group nobody knows yet can be given offsets before its first member.
    r = run_cli("group", "reset", "fresh-group", "--topic", topic, "--to-offset", "2", "--execute", *bs)
    assert r.rc == 0, r
    assert committed(b.bootstrap, "fresh-group", topic, [0]) == {0: 2}

    # Usage errors.
    assert run_cli("group", "reset", group, "--topic", topic, *bs).rc == 2
    assert run_cli("group", "reset", group, "--to-earliest", *bs).rc == 2
    assert run_cli("group", "reset", group, "--topic", topic, "--to-datetime", "yesterday", *bs).rc == 2
    one_line_error(run_cli("group", "reset", group, "--topic", "nope", "--to-earliest", *bs), 1,
                   "unknown topic 'nope'")
    one_line_error(run_cli("group", "reset", group, "--topic", f"{topic}:3", "--to-earliest", *bs), 1,
                   "has no partition 3")

    r = run_cli("group", "delete", group, "fresh-group", *bs)
    assert r.rc == 0 and r.out == f"deleted group {group}\ndeleted group fresh-group\n", r
    assert run_cli("group", "list", *bs).out == "other-group\n"
    one_line_error(run_cli("group", "delete", group, *bs), 1, "GROUP_ID_NOT_FOUND")
    one_line_error(run_cli("group", "describe", group, *bs), 1, "unknown group")
    assert committed(b.bootstrap, group, topic, [0]) == {0: -1001}
    # Restarted, the broker still knows what was deleted.
    b.restart()
    assert run_cli("group", "list", *bs).out == "other-group\n"

    r = run_cli("group", "--help")
    assert r.rc == 0 and "reset GROUP" in r.out and "--to-datetime" in r.out
    assert run_cli("group", "frobnicate", *bs).rc == 2


def test_group_commands_broker_down():
    r = run_cli("group", "list", "-b", f"127.0.0.1:{free_port()}", timeout=30)
    one_line_error(r, 1, "not reachable")


# ------------------------------------------------ runnel consume --group
def test_consume_with_group(make_broker):
    b = make_broker(settings=FAST)
    bs = ["-b", b.bootstrap]
    topic, group = "cg", "cli-group"
    create_topic(b.bootstrap, topic, 2)
    produced = {}
    produce_batch(b.bootstrap, topic, 0, 10, 2, produced)  # 5 per partition

    # Without a commit a member starts at the end, so nothing is printed.
    r = run_cli("consume", topic, "--group", "latest-group", "--timeout-ms", "1000", *bs)
    assert r.rc == 0 and r.out == "", r
    r = run_cli("consume", topic, "--group", group, "--from-beginning", "-c", "6", "--print-offset", *bs)
    assert r.rc == 0, r
    got = [l.split("\t") for l in r.out.splitlines()]
    assert len(got) == 6
    for po, v in got:
        p, o = map(int, po.split(":"))
        assert produced[(p, o)] == v
    # What it printed is what it committed.
    printed = {}
    for po, _ in got:
        p, o = map(int, po.split(":"))
        printed[p] = max(printed.get(p, 0), o + 1)
    assert {p: o for p, o in committed(b.bootstrap, group, topic, [0, 1]).items() if o >= 0} == printed

    # The next run picks up the rest; --from-beginning no longer matters.
    r = run_cli("consume", topic, "--group", group, "--from-beginning", "--timeout-ms", "1500",
                "--print-offset", *bs)
    assert r.rc == 0, r
    rest = sorted(tuple(map(int, l.split("\t")[0].split(":"))) for l in r.out.splitlines())
    assert rest == sorted(set(produced) - {tuple(map(int, po.split(":"))) for po, _ in got})
    assert committed(b.bootstrap, group, topic, [0, 1]) == {0: 5, 1: 5}
    r = run_cli("group", "describe", group, *bs)
    assert r.out.startswith(f"GROUP {group}  STATE Empty  PROTOCOL -  MEMBERS 0\n"), r  # it left

    # --no-commit reads from the commits and leaves them alone.
    commit_offsets(b.bootstrap, group, topic, {0: 3, 1: 3})
    r = run_cli("consume", topic, "--group", group, "--no-commit", "-c", "4", "--print-offset", *bs)
    assert r.rc == 0 and sorted(r.out.splitlines()) == ["0:3\tv6", "0:4\tv8", "1:3\tv7", "1:4\tv9"], r
    assert committed(b.bootstrap, group, topic, [0, 1]) == {0: 3, 1: 3}

    assert run_cli("consume", topic, "--group", group, "-p", "0", *bs).rc == 2
    assert run_cli("consume", topic, "--no-commit", *bs).rc == 2
    one_line_error(run_cli("consume", "nope", "--group", group, "--timeout-ms", "500", *bs), 1,
                   "unknown topic 'nope'")
