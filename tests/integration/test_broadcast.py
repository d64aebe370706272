"""Broadcast consumer groups (message.model=BROADCASTING): every member
gets every partition and its own offsets, kept per instance (client.id or
group.instance.id), so a restarted instance resumes where it stopped.

Members are unmodified librdkafka consumers (confluent-kafka) in their own
processes (group_member.py, through test_groups.Member), declared
broadcast with `runnel group config` or Kafka's AlterConfigs on resource
GROUP; raw requests (kwire) check the error codes and the OffsetFetch
rule for requests without a member id.
"""

import struct

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import ConfigResource

import kwire
from clients import QUIET, admin, create_topic, produce_all
from conftest import run_cli, wait_for
from test_groups import (  # noqa: F401  (members is a fixture)
    FAST,
    MEMBER_CONF,
    NONE,
    assignment,
    join_group_v5,
    members,
    offset_commit_v7,
    offset_fetch_v5,
    subscription,
    sync_group_v3,
    table,
)

INCONSISTENT_GROUP_PROTOCOL = 23
UNKNOWN_MEMBER_ID = 25
INVALID_CONFIG = 40
INVALID_REQUEST = 42
MEMBER_ID_REQUIRED = 79
UNRELEASED_INSTANCE_ID = 111

API_DESCRIBE_CONFIGS = 32
API_INCREMENTAL_ALTER_CONFIGS = 44
RES_GROUP = 32  # Kafka 3.8+; librdkafka 2.0 sends 3 (its ResourceType.GROUP)


def set_model(bootstrap, group, model):
    r = run_cli("group", "config", group, "--set", f"message.model={model}", "-b", bootstrap)
    assert r.rc == 0, r
    return r


def settings_table(out):
    return [line.split() for line in out.splitlines()]


def produce(bootstrap, topic, start, count, partitions):
    """Keyed records k<i>/v<i> round-robin over the partitions:
    {(partition, offset): value}."""
    recs = [{"key": f"k{i}".encode(), "value": f"v{i}".encode(), "partition": i % partitions}
            for i in range(start, start + count)]
    return {po: r["value"].decode() for r, po in zip(recs, produce_all(bootstrap, topic, recs))}


def received(m):
    """[(partition, offset, value)] in the order the member read them."""
    return [(e["p"], e["o"], e["value"]) for e in m.of("rec")]


def as_set(produced):
    return {(p, o, v) for (p, o), v in produced.items()}


def wait_records(m, want, timeout=20):
    """Waits until member m read exactly the records in want (a set of
    (partition, offset, value)) and committed each; fails on a duplicate."""
    def done():
        got = received(m)
        assert len(got) == len(set(got)), f"{m.name} read records twice: {sorted(got)}"
        commits = {(e["p"], e["o"]) for e in m.of("commit")}
        return set(got) == want and all((p, o + 1) in commits for p, o, _ in want)

    wait_for(done, timeout, what=f"{m.name} to read and commit {len(want)} records")


class ClientConn(kwire.Conn):
    """A raw connection whose requests carry a chosen client.id."""

    def __init__(self, host, port, client_id):
        super().__init__(host, port)
        self.client_id = client_id

    def start(self, api_key, version, body):
        """Sends a request without waiting for its answer."""
        cid = self.next_id
        self.next_id += 1
        self.send(kwire.frame(kwire.request_header(api_key, version, cid, self.client_id) + body))
        return cid

    def finish(self, cid):
        resp = self.recv_frame()
        assert struct.unpack(">i", resp[:4])[0] == cid
        return resp[4:]

    def request(self, api_key, version, body, flexible_header=False):
        assert not flexible_header
        return self.finish(self.start(api_key, version, body))


def parse_assignment(b):
    """ConsumerProtocolAssignment -> (version, {topic: [partitions]}, user data)."""
    r = kwire.Reader(b)
    version = r.int16()
    topics = dict(r.array(lambda r: (r.string(), r.array(lambda r: r.int32()))))
    n = r.int32()
    return version, topics, (None if n < 0 else r._take(n))


def incremental_alter_v0(conn, rtype, name, ops, validate_only=False):
    """ops: [(name, op, value)] -> (error, message)."""
    body = (
        kwire.array([0], lambda _: struct.pack(">b", rtype) + kwire.string(name) + kwire.array(
            ops, lambda o: kwire.string(o[0]) + struct.pack(">b", o[1]) + kwire.string(o[2])))
        + struct.pack(">b", validate_only)
    )
    r = kwire.Reader(conn.request(API_INCREMENTAL_ALTER_CONFIGS, 0, body))
    r.int32()
    (res,) = r.array(lambda r: (r.int16(), r.string(), r.int8(), r.string()))
    return res[0], res[1]


def describe_configs_v1(conn, rtype, name):
    """-> (error, {config name: (value, read_only, source)})."""
    body = kwire.array([0], lambda _: struct.pack(">b", rtype) + kwire.string(name)
                       + kwire.array(None, kwire.string)) + struct.pack(">b", 0)
    r = kwire.Reader(conn.request(API_DESCRIBE_CONFIGS, 1, body))
    r.int32()

    def entry(r):
        name, value, ro, src, _sens = r.string(), r.string(), r.int8(), r.int8(), r.int8()
        r.array(lambda r: (r.string(), r.string(), r.int8()))
        return name, (value, bool(ro), src)

    (res,) = r.array(lambda r: (r.int16(), r.string(), r.int8(), r.string(), r.array(entry)))
    return res[0], dict(res[4])


# ------------------------------------------------------------ members
def test_three_members_each_get_everything_and_a_restart_resumes(make_broker, members):
    b = make_broker(settings=FAST)
    topic, group = "bcast", "bcast-group"
    create_topic(b.bootstrap, topic, 3)
    r = set_model(b.bootstrap, group, "broadcasting")  # any case, stored as RocketMQ spells it
    assert settings_table(r.out)[:2] == [["NAME", "VALUE", "SOURCE"],
                                         ["message.model", "BROADCASTING", "group"]], r
    everything = {(topic, p) for p in range(3)}

    ms = {n: members(n, b.bootstrap, group, [topic]) for n in ("m1", "m2", "m3")}
    for m in ms.values():
        wait_for(lambda: m.assignment() == everything, 20, what=f"{m.name} to get every partition")
    first = produce(b.bootstrap, topic, 0, 30, 3)
    for m in ms.values():
        wait_records(m, as_set(first))

    # m2 stops (a clean close leaves the group); what arrives meanwhile
    # goes to the others only.
    ms["m2"].term()
    second = produce(b.bootstrap, topic, 30, 15, 3)
    for n in ("m1", "m3"):
        wait_records(ms[n], as_set(first) | as_set(second))

    # m2 again, under the same client.id: it resumes from its own offsets,
    # so it reads exactly what it missed, nothing twice.
    m2 = members("m2", b.bootstrap, group, [topic])
    wait_records(m2, as_set(second))
    third = produce(b.bootstrap, topic, 45, 6, 3)
    wait_records(m2, as_set(second) | as_set(third))
    for n in ("m1", "m3"):
        wait_records(ms[n], as_set(first) | as_set(second) | as_set(third))
    for m in (ms["m1"], ms["m3"], m2):
        assert m.assignment() == everything
        assert not m.of("error"), m.of("error")

    # describe: a row per instance and partition, all caught up.
    r = run_cli("group", "describe", group, "-b", b.bootstrap)
    assert r.rc == 0, r
    head, rows = table(r.out)
    assert head == f"GROUP {group}  STATE Stable  PROTOCOL range  MEMBERS 3  MODEL BROADCASTING"
    assert rows[0] == ["GROUP", "INSTANCE", "TOPIC", "PARTITION", "CURRENT-OFFSET",
                       "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"]
    assert [row[:7] for row in rows[1:]] == [
        [group, n, topic, str(p), "17", "17", "0"] for n in ("m1", "m2", "m3") for p in range(3)]
    for row in rows[1:]:
        assert row[7].startswith(row[1] + "-") and row[8:] == ["/127.0.0.1", row[1]], row

    # An instance that stops falls behind on its own: describe shows its
    # lag while the others are at the end.
    m2.term()
    produce(b.bootstrap, topic, 51, 3, 3)
    for n in ("m1", "m3"):
        wait_for(lambda: len(received(ms[n])) == 54, 20, what=f"{n} to read the last 3")
        wait_for(lambda: len(ms[n].of("commit")) == 54, 20, what=f"{n} to commit the last 3")
    r = run_cli("group", "describe", group, "-b", b.bootstrap)
    _, rows = table(r.out)
    lag = {(row[1], row[3]): (row[4], row[6], row[7]) for row in rows[1:]}
    for p in map(str, range(3)):
        assert lag[("m2", p)] == ("17", "1", "-"), r.out
        assert lag[("m1", p)][:2] == ("18", "0") and lag[("m3", p)][:2] == ("18", "0"), r.out


def test_setting_and_instance_offsets_survive_a_broker_restart(make_broker, members):
    b = make_broker(settings=FAST)
    topic, group = "bsurv", "bsurv-group"
    create_topic(b.bootstrap, topic, 2)
    set_model(b.bootstrap, group, "BROADCASTING")
    a, c = members("a", b.bootstrap, group, [topic]), members("c", b.bootstrap, group, [topic])
    first = produce(b.bootstrap, topic, 0, 8, 2)
    wait_records(a, as_set(first))
    wait_records(c, as_set(first))
    a.term()
    more = produce(b.bootstrap, topic, 8, 4, 2)  # only c reads these
    wait_records(c, as_set(first) | as_set(more))
    c.term()

    b.restart()
    r = run_cli("group", "config", group, "-b", b.bootstrap)
    assert r.rc == 0, r
    assert settings_table(r.out) == [["NAME", "VALUE", "SOURCE"],
                                     ["message.model", "BROADCASTING", "group"],
                                     ["broadcast.instances", "a,c", "read-only"]]
    r = run_cli("group", "describe", group, "-b", b.bootstrap)
    head, rows = table(r.out)
    assert head == f"GROUP {group}  STATE Empty  PROTOCOL -  MEMBERS 0  MODEL BROADCASTING"
    assert [row[:7] for row in rows[1:]] == [
        [group, "a", topic, "0", "4", "6", "2"], [group, "a", topic, "1", "4", "6", "2"],
        [group, "c", topic, "0", "6", "6", "0"], [group, "c", topic, "1", "6", "6", "0"]]

    # Each instance resumes from its own offset after the restart.
    last = produce(b.bootstrap, topic, 12, 2, 2)
    a2 = members("a", b.bootstrap, group, [topic])
    wait_records(a2, as_set(more) | as_set(last))
    c2 = members("c", b.bootstrap, group, [topic])
    wait_records(c2, as_set(last))


def test_clustering_splits_and_changing_the_model_rebalances(make_broker, members):
    b = make_broker(settings=FAST)
    topic, group = "bsplit", "bsplit-group"
    create_topic(b.bootstrap, topic, 3)
    ms = [members(n, b.bootstrap, group, [topic], commit=False) for n in ("x", "y", "z")]
    everything = {(topic, p) for p in range(3)}

    def split():
        held = [m.assignment() for m in ms]
        return all(len(h) == 1 for h in held) and set().union(*held) == everything

    wait_for(split, 20, what="a plain group to split the partitions one each")

    # Declared broadcast while the members run: they rebalance and each
    # gets everything.
    set_model(b.bootstrap, group, "BROADCASTING")
    wait_for(lambda: all(m.assignment() == everything for m in ms), 20,
             what="every member to get every partition")
    recs = produce(b.bootstrap, topic, 0, 9, 3)
    for m in ms:
        wait_for(lambda: set(received(m)) >= as_set(recs), 20, what=f"{m.name}'s records")

    # Back to the default: shared again.
    r = run_cli("group", "config", group, "--delete", "message.model", "-b", b.bootstrap)
    assert r.rc == 0 and settings_table(r.out)[1] == ["message.model", "CLUSTERING", "default"], r
    wait_for(split, 20, what="the partitions to be split again")


def test_a_second_consumer_with_the_same_client_id_waits(make_broker, members):
    """Two live holders of one instance would overwrite each other's
    offsets: the second is refused with UNRELEASED_INSTANCE_ID (111), which
    librdkafka reports ("JoinGroup failed") and retries, so it takes over
    as that instance, at its offsets, once the first leaves."""
    b = make_broker(settings=FAST)
    topic, group = "bdup", "bdup-group"
    create_topic(b.bootstrap, topic, 2)
    set_model(b.bootstrap, group, "BROADCASTING")
    same = {"client.id": "dup"}
    first = members("first", b.bootstrap, group, [topic], conf=same)
    recs = produce(b.bootstrap, topic, 0, 6, 2)
    wait_records(first, as_set(recs))
    standby = members("standby", b.bootstrap, group, [topic], conf=same)
    wait_for(lambda: any("val=111" in e["error"] for e in standby.of("error")), 20,
             what="the second consumer to be refused with error 111")
    assert standby.assignment() == set() and not received(standby)
    first.term()
    more = produce(b.bootstrap, topic, 6, 4, 2)
    wait_records(standby, as_set(more))
    assert standby.assignment() == {(topic, 0), (topic, 1)}


# ------------------------------------------------------- raw requests
def join_body(group, member_id, protocols, instance_id=None, protocol_type="consumer"):
    """JoinGroup v5."""
    return (kwire.string(group) + struct.pack(">ii", 10000, 30000) + kwire.string(member_id)
            + kwire.string(instance_id) + kwire.string(protocol_type)
            + kwire.array(protocols, lambda p: kwire.string(p[0]) + kwire.nbytes(p[1])))


def parse_join(body):
    r = kwire.Reader(body)
    r.int32()
    return {"error": r.int16(), "generation": r.int32(), "protocol": r.string(),
            "leader": r.string(), "member_id": r.string()}


def sync_body(group, generation, member_id, assignments):
    """SyncGroup v3."""
    return (kwire.string(group) + struct.pack(">i", generation) + kwire.string(member_id)
            + kwire.string(None)
            + kwire.array(assignments, lambda a: kwire.string(a[0]) + kwire.nbytes(a[1])))


def parse_sync(body):
    r = kwire.Reader(body)
    r.int32()
    err, n = r.int16(), r.int32()
    return err, (None if n < 0 else r._take(n))


def leave_v3(conn, group, member_id):
    body = kwire.string(group) + kwire.array(
        [member_id], lambda m: kwire.string(m) + kwire.string(None))
    r = kwire.Reader(conn.request(13, 3, body))
    r.int32()
    assert r.int16() == NONE
    assert r.array(lambda r: (r.string(), r.string(), r.int16()))[0][2] == NONE


def test_join_rules_and_offsets_without_member_id(make_broker):
    b = make_broker(settings=FAST)
    topic, group = "braw", "braw-group"
    create_topic(b.bootstrap, topic, 2)
    set_model(b.bootstrap, group, "BROADCASTING")
    protos = [("range", subscription([topic, "no-such-topic", topic]))]
    with ClientConn(b.host, b.port, "one") as one, ClientConn(b.host, b.port, "one") as dup, \
            ClientConn(b.host, b.port, "two") as two:
        j = join_group_v5(one, group, "", protos)
        assert j["error"] == MEMBER_ID_REQUIRED
        j = join_group_v5(one, group, j["member_id"], protos)
        assert j["error"] == NONE, j
        # The leader's assignment gives it nothing; the coordinator gives
        # every partition of the subscription, in the subscription's
        # version, with empty user data; a topic that does not exist is
        # left out.
        err, got = sync_group_v3(one, group, j["generation"], j["member_id"],
                                 [(j["member_id"], assignment(topic, []))])
        assert err == NONE
        assert parse_assignment(got) == (0, {topic: [0, 1]}, b"")

        # A second live member under the same client.id is refused, and so
        # is a static member whose instance id is another member's name.
        assert join_group_v5(dup, group, "", protos)["error"] == UNRELEASED_INSTANCE_ID
        assert join_group_v5(two, group, "", protos, instance_id="one")["error"] == \
            UNRELEASED_INSTANCE_ID
        # Metadata that is not a ConsumerProtocolSubscription.
        assert join_group_v5(two, group, "", [("range", b"\x00\x01\xff")])["error"] == \
            INCONSISTENT_GROUP_PROTOCOL

        # A member with a v3 subscription (owned partitions, generation,
        # rack): its join waits until the first member rejoined.
        sub3 = (struct.pack(">h", 3) + kwire.array([topic], kwire.string) + kwire.nbytes(None)
                + kwire.array([], kwire.string) + struct.pack(">i", -1) + kwire.string("rack-a"))
        k = join_group_v5(two, group, "", [("range", sub3)])
        assert k["error"] == MEMBER_ID_REQUIRED
        pending = two.start(11, 5, join_body(group, k["member_id"], [("range", sub3)]))
        j = join_group_v5(one, group, j["member_id"], protos)
        k = parse_join(two.finish(pending))
        assert j["error"] == NONE and k["error"] == NONE and j["generation"] == k["generation"]
        # Followers wait for the leader's SyncGroup, whose assignment (all
        # to the leader here) is ignored.
        conns = {j["member_id"]: one, k["member_id"]: two}
        leader = j["leader"]
        follower = next(m for m in conns if m != leader)
        pending = conns[follower].start(14, 3, sync_body(group, j["generation"], follower, []))
        lerr, lgot = sync_group_v3(conns[leader], group, j["generation"], leader,
                                   [(leader, assignment(topic, [0, 1])), (follower, b"")])
        ferr, fgot = parse_sync(conns[follower].finish(pending))
        assert (lerr, ferr) == (NONE, NONE)
        got = {leader: lgot, follower: fgot}
        assert parse_assignment(got[j["member_id"]]) == (0, {topic: [0, 1]}, b"")
        assert parse_assignment(got[k["member_id"]]) == (3, {topic: [0, 1]}, b"")

        # Commits land under each member's instance.
        assert offset_commit_v7(one, group, j["generation"], j["member_id"],
                                [(topic, 0, 5, "m"), (topic, 1, 7, None)]) == {
            (topic, 0): NONE, (topic, 1): NONE}
        assert offset_commit_v7(two, group, k["generation"], k["member_id"],
                                [(topic, 0, 2, None)]) == {(topic, 0): NONE}
        # OffsetFetch has no member id: the client.id names the instance.
        assert offset_fetch_v5(one, group, topic, [0, 1]) == {0: (5, "m", NONE), 1: (7, "", NONE)}
        assert offset_fetch_v5(two, group, topic, [0, 1]) == {0: (2, "", NONE), 1: (-1, "", NONE)}
        with ClientConn(b.host, b.port, "monitor") as mon:
            # A client that is no instance reads the lowest offset of all.
            assert offset_fetch_v5(mon, group, topic, [0, 1]) == {0: (2, "", NONE),
                                                                  1: (7, "", NONE)}
            # A commit from outside the protocol is refused for a live
            # instance, and lands in the instance its client.id names
            # otherwise.
            assert offset_commit_v7(one, group, -1, "", [(topic, 0, 9, None)]) == {
                (topic, 0): UNKNOWN_MEMBER_ID}
            assert offset_commit_v7(mon, group, -1, "", [(topic, 1, 3, None)]) == {
                (topic, 1): NONE}
            assert offset_fetch_v5(mon, group, topic, [0, 1]) == {0: (-1, "", NONE),
                                                                  1: (3, "", NONE)}
            assert offset_fetch_v5(one, group, topic, [1]) == {1: (7, "", NONE)}
        leave_v3(one, group, j["member_id"])
        leave_v3(two, group, k["member_id"])

    # Only the consumer protocol says what to broadcast.
    set_model(b.bootstrap, "braw-connect", "BROADCASTING")
    with kwire.Conn(b.host, b.port) as conn:
        r = parse_join(conn.request(11, 5, join_body("braw-connect", "", [("v1", b"\x00")],
                                                     protocol_type="connect")))
        assert r["error"] == INCONSISTENT_GROUP_PROTOCOL, r

    r = run_cli("group", "config", group, "-b", b.bootstrap)
    assert settings_table(r.out)[2] == ["broadcast.instances", "monitor,one,two", "read-only"], r
    # Deleting the group takes the instances and the setting with it.
    r = run_cli("group", "delete", group, "braw-connect", "-b", b.bootstrap)
    assert r.rc == 0, r
    b.restart()
    r = run_cli("group", "config", group, "-b", b.bootstrap)
    assert settings_table(r.out)[1:] == [["message.model", "CLUSTERING", "default"],
                                         ["broadcast.instances", "-", "read-only"]], r
    assert run_cli("group", "list", "-b", b.bootstrap).out == ""


def test_bad_settings_are_refused_with_a_message(make_broker):
    b = make_broker(settings=FAST)
    group = "bbad"
    adm = admin(b.bootstrap)

    def alter(configs):
        res = ConfigResource(ConfigResource.Type.GROUP, group, set_config=configs)
        try:
            adm.alter_configs([res])[res].result(15)
            return None
        except Exception as e:  # KafkaException carrying the broker's error
            return e.args[0]

    err = alter({"message.model": "FANOUT"})
    assert err.code() == INVALID_CONFIG, err
    assert "invalid value 'FANOUT' for message.model: CLUSTERING or BROADCASTING" in err.str()
    err = alter({"message.modle": "BROADCASTING"})
    assert err.code() == INVALID_CONFIG and "unknown group config 'message.modle'" in err.str()
    err = alter({"broadcast.instances": "x"})
    assert err.code() == INVALID_CONFIG and "read-only" in err.str()
    assert alter({"message.model": "Broadcasting"}) is None

    with kwire.Conn(b.host, b.port) as conn:
        # Kafka 3.8's resource type for groups, IncrementalAlterConfigs.
        e, msg = incremental_alter_v0(conn, RES_GROUP, group, [("message.model", 0, "ALL")])
        assert (e, msg) == (INVALID_CONFIG,
                            "invalid value 'ALL' for message.model: CLUSTERING or BROADCASTING")
        e, msg = incremental_alter_v0(conn, RES_GROUP, group, [("message.model", 2, "X")])
        assert e == INVALID_REQUEST and "SET and DELETE" in msg
        e, msg = incremental_alter_v0(conn, RES_GROUP, "", [("message.model", 0, "CLUSTERING")])
        assert e == 24 and msg  # INVALID_GROUP_ID
        # validate_only changes nothing.
        assert incremental_alter_v0(conn, RES_GROUP, group, [("message.model", 0, "clustering")],
                                    validate_only=True) == (NONE, None)
        e, cfg = describe_configs_v1(conn, RES_GROUP, group)
        assert e == NONE and cfg["message.model"] == ("BROADCASTING", False, 8), cfg
        assert cfg["broadcast.instances"] == ("", True, 5), cfg
        # DELETE: back to the default.
        assert incremental_alter_v0(conn, RES_GROUP, group, [("message.model", 1, None)]) == (
            NONE, None)
        e, cfg = describe_configs_v1(conn, RES_GROUP, group)
        assert cfg["message.model"] == ("CLUSTERING", False, 5), cfg

    r = run_cli("group", "config", group, "--set", "message.model=both", "-b", b.bootstrap)
    assert r.rc == 1 and r.err.strip() == (
        "runnel group: cannot change settings of group 'bbad': INVALID_CONFIG (Broker: "
        "Configuration is invalid): invalid value 'both' for message.model: CLUSTERING or "
        "BROADCASTING"), r
    r = run_cli("group", "config", group, "--delete", "nope", "-b", b.bootstrap)
    assert r.rc == 1 and "unknown group config 'nope'" in r.err, r
    r = run_cli("group", "config", group, "--set", "novalue", "-b", b.bootstrap)
    assert r.rc == 2, r
    # Nothing was changed by the refusals, and the broker still serves.
    r = run_cli("group", "config", group, "-b", b.bootstrap)
    assert settings_table(r.out)[1] == ["message.model", "CLUSTERING", "default"], r


def test_switching_to_broadcast_needs_distinct_client_ids(make_broker, members):
    """Members that share a client.id cannot become broadcast members:
    their offsets would be one instance's.  The switch is refused and the
    group keeps running as it was."""
    b = make_broker(settings=FAST)
    topic, group = "bsame", "bsame-group"
    create_topic(b.bootstrap, topic, 2)
    same = {"client.id": "shared"}
    m1 = members("s1", b.bootstrap, group, [topic], conf=same, commit=False)
    m2 = members("s2", b.bootstrap, group, [topic], conf=same, commit=False)
    wait_for(lambda: len(m1.assignment()) == 1 and len(m2.assignment()) == 1, 20,
             what="the two members to share the partitions")
    r = run_cli("group", "config", group, "--set", "message.model=BROADCASTING",
                "-b", b.bootstrap)
    assert r.rc == 1 and "share the name 'shared'" in r.err, r
    r = run_cli("group", "config", group, "-b", b.bootstrap)
    assert settings_table(r.out)[1] == ["message.model", "CLUSTERING", "default"], r


def test_reset_one_instance(make_broker, members):
    b = make_broker(settings=FAST)
    topic, group = "breset", "breset-group"
    create_topic(b.bootstrap, topic, 1)
    set_model(b.bootstrap, group, "BROADCASTING")
    recs = produce(b.bootstrap, topic, 0, 5, 1)
    p, q = members("p", b.bootstrap, group, [topic]), members("q", b.bootstrap, group, [topic])
    wait_records(p, as_set(recs))
    wait_records(q, as_set(recs))
    p.term()
    bs = ["-b", b.bootstrap]
    r = run_cli("group", "reset", group, "--topic", topic, "--to-earliest", "--execute", *bs)
    assert r.rc == 1 and "is BROADCASTING" in r.err and "--instance" in r.err, r
    r = run_cli("group", "reset", group, "--instance", "q", "--topic", topic, "--to-earliest",
                "--execute", *bs)
    assert r.rc == 1 and "instance 'q'" in r.err and "is a member" in r.err, r
    r = run_cli("group", "reset", group, "--instance", "p", "--topic", topic, "--to-offset", "2",
                "--execute", *bs)
    assert r.rc == 0 and settings_table(r.out) == [["TOPIC", "PARTITION", "NEW-OFFSET"],
                                                   [topic, "0", "2"]], r
    # p starts over from 2; q, which kept running, is not touched.
    p2 = members("p", b.bootstrap, group, [topic])
    wait_records(p2, {(0, o, v) for (_, o), v in recs.items() if o >= 2})
    r = run_cli("group", "describe", group, *bs)
    _, rows = table(r.out)
    assert [row[1:7] for row in rows[1:]] == [["p", topic, "0", "5", "5", "0"],
                                              ["q", topic, "0", "5", "5", "0"]], r.out
    assert received(q) == [(0, o, v) for (_, o), v in sorted(recs.items())]
