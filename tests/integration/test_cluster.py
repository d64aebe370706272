"""Cluster mode, first part (docs/cluster.md): membership and controller
election in a real ZooKeeper, with real brokers as processes.

The ZooKeeper server and the cluster fixture are in zk.py; each test has
its own chroot. Every wait has a deadline (wait_for); nothing sleeps and
then expects.
"""

import json
import os
import signal
import socket
import time

import pytest
from confluent_kafka.admin import AdminClient

from conftest import free_port, run_cli, wait_for
from zk import SESSION_TIMEOUT_MS, cluster, run_refused, zookeeper  # noqa: F401 (fixtures)

SESSION_S = SESSION_TIMEOUT_MS / 1000.0


def metadata(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 5000})
    return admin.list_topics(timeout=10)


def meta_properties(broker):
    text = (broker.data_dir / "meta.properties").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def start_three(cluster, racks=None):
    racks = racks or {}
    for i in (1, 2, 3):
        settings = {"broker.rack": racks[i]} if i in racks else {}
        cluster.broker(i, settings)
    wait_for(lambda: cluster.broker_ids() == [1, 2, 3], what="three registrations")
    return cluster.wait_controller()


def test_three_brokers_register_with_kafkas_json(cluster):
    t0 = int(time.time() * 1000)
    controller = start_three(cluster, racks={2: "rack-b"})
    for i in (1, 2, 3):
        b = cluster.brokers[i]
        reg = cluster.get_json(f"/brokers/ids/{i}")
        assert reg["version"] == 5
        assert reg["host"] == "127.0.0.1" and reg["port"] == b.port
        assert reg["endpoints"] == [f"PLAINTEXT://127.0.0.1:{b.port}"]
        assert reg["listener_security_protocol_map"] == {"PLAINTEXT": "PLAINTEXT"}
        assert reg["jmx_port"] == -1
        assert reg["features"] == {}
        assert isinstance(reg["timestamp"], str) and t0 - 1000 <= int(reg["timestamp"])
        # Kafka writes "rack" only for a broker that has one.
        assert reg.get("rack") == ("rack-b" if i == 2 else None)
        # Ephemeral: owned by a session.
        _, stat = cluster.get(f"/brokers/ids/{i}")
        assert stat.ephemeralOwner != 0

    ctl = cluster.get_json("/controller")
    assert ctl["version"] == 1 and ctl["brokerid"] == controller
    assert isinstance(ctl["timestamp"], str)
    assert cluster.controller_epoch() == 1
    _, stat = cluster.get("/controller_epoch")
    assert stat.ephemeralOwner == 0  # persistent

    # One cluster id, in ZooKeeper and in every meta.properties.
    cid = cluster.get_json("/cluster/id")
    assert cid["version"] == "1"
    for b in cluster.brokers.values():
        assert meta_properties(b)["cluster.id"] == cid["id"]


def test_metadata_lists_the_cluster(cluster):
    controller = start_three(cluster, racks={1: "r1", 3: "r3"})
    cid = cluster.get_json("/cluster/id")["id"]
    for b in cluster.brokers.values():
        md = metadata(b.bootstrap)
        assert sorted(md.brokers) == [1, 2, 3]
        for i, bm in md.brokers.items():
            assert (bm.host, bm.port) == ("127.0.0.1", cluster.brokers[i].port)
        assert md.controller_id == controller
        assert md.cluster_id == cid


def test_controller_failover_after_kill(cluster):
    controller = start_three(cluster)
    epoch = cluster.controller_epoch()
    victim = cluster.brokers[controller]
    t0 = time.monotonic()
    victim.kill()
    new = cluster.wait_controller(not_in=(controller,), timeout=SESSION_S + 10)
    failover = time.monotonic() - t0
    print(f"controller failover after kill -9: {failover:.2f} s "
          f"(zookeeper.session.timeout.ms={SESSION_TIMEOUT_MS})")
    assert failover < SESSION_S + 5, failover
    assert cluster.controller_epoch() == epoch + 1
    # The session that ended took the registration with it.
    wait_for(lambda: controller not in cluster.broker_ids(), timeout=5, what="deregistration")

    survivor = next(b for i, b in cluster.brokers.items() if i != controller)
    wait_for(
        lambda: (lambda md: sorted(md.brokers) == sorted(set([1, 2, 3]) - {controller})
                 and md.controller_id == new)(metadata(survivor.bootstrap)),
        timeout=10,
        what="Metadata without the killed broker",
    )

    # Back, it registers again and does not take the controller over.
    victim.start()
    wait_for(lambda: cluster.broker_ids() == [1, 2, 3], what="re-registration")
    wait_for(
        lambda: (lambda md: sorted(md.brokers) == [1, 2, 3] and md.controller_id == new)(
            metadata(victim.bootstrap)),
        timeout=10,
        what="the restarted broker's Metadata",
    )
    assert cluster.controller() == new
    assert cluster.controller_epoch() == epoch + 1


def test_clean_stop_removes_the_znodes_at_once(cluster):
    controller = start_three(cluster)
    epoch = cluster.controller_epoch()
    other = next(i for i in (1, 2, 3) if i != controller)
    cluster.brokers[other].stop()
    # Far below the session timeout: the session was closed, not abandoned.
    t0 = time.monotonic()
    wait_for(lambda: other not in cluster.broker_ids(), timeout=2, what="deregistration")
    assert time.monotonic() - t0 < SESSION_S / 2

    t0 = time.monotonic()
    cluster.brokers[controller].stop()
    new = cluster.wait_controller(not_in=(controller,), timeout=3)
    print(f"controller failover after a clean stop: {time.monotonic() - t0:.2f} s")
    assert new not in (controller, other)
    assert cluster.controller_epoch() == epoch + 1
    assert cluster.broker_ids() == [new]


def test_second_broker_with_the_same_id_is_refused(cluster):
    first = cluster.broker(1)
    _, stat = cluster.get("/brokers/ids/1")
    dup = cluster.broker(1, start=False, dirname="dup")
    rc, err, _ = run_refused(dup)
    assert rc == 1, err
    assert "broker.id 1 is already registered" in err
    # The first broker's registration is untouched and it still serves.
    _, stat2 = cluster.get("/brokers/ids/1")
    assert stat2.ephemeralOwner == stat.ephemeralOwner
    assert sorted(metadata(first.bootstrap).brokers) == [1]


def test_cluster_id_mismatch_is_refused_and_a_new_directory_adopts_it(cluster):
    b = cluster.broker(1)
    own_id = meta_properties(b)["cluster.id"]
    b.stop()
    # Another cluster, in another chroot, already has its id.
    other_root = cluster.chroot + "-other"
    cluster.zk.client().create(
        other_root + "/cluster/id",
        json.dumps({"version": "1", "id": "OtherClusterIdAAAAAAAA"}).encode(),
        makepath=True,
    )
    b.settings["zookeeper.connect"] = cluster.zk.hosts + other_root
    rc, err, _ = run_refused(b)
    assert rc == 1, err
    assert "OtherClusterIdAAAAAAAA" in err and own_id in err and "doesn't match" in err
    assert meta_properties(b)["cluster.id"] == own_id

    # A new data directory takes the cluster's id.
    fresh = cluster.broker(2, {"zookeeper.connect": cluster.zk.hosts + other_root})
    assert meta_properties(fresh)["cluster.id"] == "OtherClusterIdAAAAAAAA"
    assert metadata(fresh.bootstrap).cluster_id == "OtherClusterIdAAAAAAAA"


def test_unreachable_zookeeper_fails_within_the_connection_timeout(cluster):
    # A port nobody listens on.
    dead = f"127.0.0.1:{free_port()}"
    b = cluster.broker(
        1,
        {"zookeeper.connect": dead + "/x", "zookeeper.connection.timeout.ms": "2000"},
        start=False,
    )
    rc, err, took = run_refused(b)
    assert rc == 1, err
    assert f"cannot connect to ZooKeeper at {dead} within zookeeper.connection.timeout.ms" in err
    assert 1.5 < took < 10, took
    assert not (b.data_dir / "meta.properties").exists()


def test_node_id_is_required_in_a_cluster(cluster):
    b = cluster.broker(7, start=False)
    del b.settings["node.id"]
    rc, err, _ = run_refused(b)
    assert rc == 1, err
    assert "node.id (broker.id) must be set when zookeeper.connect is set" in err


def test_bad_connect_string_is_refused(cluster):
    b = cluster.broker(1, {"zookeeper.connect": cluster.zk.hosts + "/a//b"}, start=False)
    rc, err, _ = run_refused(b)
    assert rc == 1 and "bad chroot path" in err, err


def test_session_expiry_re_registers(cluster):
    controller = start_three(cluster)
    epoch = cluster.controller_epoch()
    victim = cluster.brokers[controller]
    _, stat = cluster.get(f"/brokers/ids/{controller}")
    # Frozen past its session timeout: ZooKeeper expires the session.
    os.kill(victim.proc.pid, signal.SIGSTOP)
    try:
        new = cluster.wait_controller(not_in=(controller,), timeout=SESSION_S + 10)
    finally:
        os.kill(victim.proc.pid, signal.SIGCONT)
    assert cluster.controller_epoch() == epoch + 1
    # It notices, opens a new session and registers again; not controller.
    def re_registered():
        got = cluster.get(f"/brokers/ids/{controller}")
        return got is not None and got[1].ephemeralOwner != stat.ephemeralOwner
    wait_for(re_registered, timeout=SESSION_S + 10, what="re-registration with a new session")
    wait_for(lambda: b"session expired" in victim.stderr_bytes(), timeout=5, what="the log line")
    wait_for(
        lambda: metadata(victim.bootstrap).controller_id == new,
        timeout=10,
        what="the old controller to report the new one",
    )
    assert cluster.controller() == new


def test_cluster_describe_command(cluster):
    controller = start_three(cluster, racks={1: "rack-a", 2: "rack-b"})
    cid = cluster.get_json("/cluster/id")["id"]
    r = run_cli("cluster", "describe", "-b", cluster.brokers[3].bootstrap)
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0] == f"Cluster id: {cid}"
    assert lines[1] == f"Controller: {controller}"
    assert lines[2].split() == ["Brokers:", "3"]
    rows = [line.split() for line in lines[4:]]
    assert rows[0] == ["BROKER", "HOST:PORT", "RACK", "ROLE"]
    racks = {1: "rack-a", 2: "rack-b", 3: "-"}
    for row, i in zip(rows[1:], (1, 2, 3)):
        role = "controller" if i == controller else "-"
        assert row == [str(i), f"127.0.0.1:{cluster.brokers[i].port}", racks[i], role]
    assert len(rows) == 4


def test_cluster_describe_single_node(broker):
    r = run_cli("cluster", "describe", "-b", broker.bootstrap)
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[1] == "Controller: 1"
    assert lines[-1].split() == ["1", broker.bootstrap, "-", "controller"]


def test_cluster_describe_unreachable():
    r = run_cli("cluster", "describe", "-b", f"127.0.0.1:{free_port()}")
    assert r.rc == 1
    assert "not reachable" in r.err
