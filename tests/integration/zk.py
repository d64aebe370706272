"""A real ZooKeeper and clusters of real runnel brokers, for the cluster tests.

ZooKeeper is Debian's (package `zookeeper`): its server runs as
`java -cp "/usr/share/java/*:/etc/zookeeper/conf"
org.apache.zookeeper.server.ZooKeeperServerMain <zoo.cfg>`, with a zoo.cfg
written for the test: a free loopback port, a temporary dataDir, the admin
HTTP server and the four-letter-word commands off. It is up when a kazoo
client gets a session; it is stopped by its pid at teardown.

One ZooKeeper serves a whole test module (a JVM takes a second or two to
start); each test gets its own chroot (`/runnel-tests/t<N>-<test name>`, two
levels, which the first broker creates) so tests never see each other's
znodes. `Cluster.broker(node_id)` makes a broker (conftest's
Broker) with zookeeper.connect pointing at the chroot and a short session
timeout, so failover tests run in seconds.

Tests are skipped, with the reason, when java or the ZooKeeper jars are
missing (scripts/deps.sh installs both).
"""

import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import Broker, free_port, wait_for

ZK_JAR = Path("/usr/share/java/zookeeper.jar")
ZK_CLASSPATH = "/usr/share/java/*:/etc/zookeeper/conf"
ZK_MAIN = "org.apache.zookeeper.server.ZooKeeperServerMain"
ZK_START_TIMEOUT = 60.0
# Short enough that a killed broker's znodes go within seconds.
SESSION_TIMEOUT_MS = 6000


def missing_reason():
    if shutil.which("java") is None:
        return "java is not installed (scripts/deps.sh installs zookeeper, which needs it)"
    if not ZK_JAR.exists():
        return f"{ZK_JAR} is missing (Debian package zookeeper; scripts/deps.sh installs it)"
    try:
        import kazoo  # noqa: F401
    except ImportError:
        return "python3-kazoo is not installed (scripts/deps.sh installs it)"
    return None


class ZooKeeper:
    """One standalone ZooKeeper server on 127.0.0.1."""

    def __init__(self, tmp_path):
        self.dir = Path(tmp_path)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.hosts = f"127.0.0.1:{self.port}"
        self.log_path = self.dir / "zookeeper.log"
        self.proc = None
        self._client = None

    def config(self):
        data = self.dir / "data"
        data.mkdir(exist_ok=True)
        # tickTime 500: session expiry is checked every tick, so a dead
        # broker's session ends close to its timeout.
        return "\n".join(
            [
                "tickTime=500",
                f"dataDir={data}",
                f"clientPort={self.port}",
                "clientPortAddress=127.0.0.1",
                "minSessionTimeout=1000",
                "maxSessionTimeout=60000",
                "maxClientCnxns=0",
                "admin.enableServer=false",
                "4lw.commands.whitelist=",
                "",
            ]
        )

    def start(self):
        cfg = self.dir / "zoo.cfg"
        cfg.write_text(self.config())
        argv = [
            "java",
            "-Xmx256m",
            "-XX:+UseSerialGC",
            "-Dzookeeper.admin.enableServer=false",
            "-Dzookeeper.jmx.log4j.disable=true",
            "-cp",
            ZK_CLASSPATH,
            ZK_MAIN,
            str(cfg),
        ]
        with open(self.log_path, "ab") as f:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=f, stderr=f, cwd=self.dir
            )
        from kazoo.client import KazooClient

        deadline = time.monotonic() + ZK_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"ZooKeeper exited with status {self.proc.returncode}:\n" + self.log()
                )
            client = KazooClient(hosts=self.hosts, timeout=5.0)
            try:
                client.start(timeout=2.0)
                self._client = client
                return self
            except Exception:
                client.close()
                time.sleep(0.2)
        self.stop()
        raise AssertionError(
            f"ZooKeeper did not answer within {ZK_START_TIMEOUT}s:\n" + self.log()
        )

    def client(self):
        """A kazoo client at the root (not chrooted)."""
        return self._client

    def stop(self):
        if self._client is not None:
            try:
                self._client.stop()
                self._client.close()
            except Exception:
                pass
            self._client = None
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except FileNotFoundError:
            return ""


class Cluster:
    """Brokers of one test, in their own chroot of the module's ZooKeeper."""

    def __init__(self, zk, tmp_path, chroot):
        self.zk = zk
        self.tmp_path = Path(tmp_path)
        self.chroot = chroot
        self.connect = f"{zk.hosts}{chroot}"
        self.brokers = {}
        self.extra = []  # brokers not keyed by id (refused starts)

    def settings(self, node_id, **kw):
        s = {
            "node.id": str(node_id),
            "zookeeper.connect": self.connect,
            "zookeeper.session.timeout.ms": str(SESSION_TIMEOUT_MS),
            "zookeeper.connection.timeout.ms": "10000",
        }
        s.update(kw)
        return s

    def broker(self, node_id, settings=None, start=True, dirname=None):
        """A Broker (conftest.py) in <tmp>/b<id> (or <tmp>/<dirname>, which
        also keeps it out of self.brokers); started unless start=False."""
        merged = self.settings(node_id)
        merged.update(settings or {})
        b = Broker(self.tmp_path / (dirname or f"b{node_id}"), merged)
        b.node_id = node_id
        if dirname:
            self.extra.append(b)
        else:
            self.brokers[node_id] = b
        return b.start() if start else b

    def zpath(self, path):
        return self.chroot + path

    def get(self, path):
        """(data, stat) of a znode under the chroot, or None."""
        try:
            return self.zk.client().get(self.zpath(path))
        except Exception as e:
            if type(e).__name__ == "NoNodeError":
                return None
            raise

    def get_json(self, path):
        got = self.get(path)
        return None if got is None else json.loads(got[0].decode())

    def exists(self, path):
        return self.zk.client().exists(self.zpath(path)) is not None

    def broker_ids(self):
        try:
            return sorted(int(x) for x in self.zk.client().get_children(self.zpath("/brokers/ids")))
        except Exception as e:
            if type(e).__name__ == "NoNodeError":
                return []
            raise

    def controller(self):
        """The broker id in /controller, or None."""
        c = self.get_json("/controller")
        return None if c is None else c["brokerid"]

    def controller_epoch(self):
        got = self.get("/controller_epoch")
        return None if got is None else int(got[0].decode())

    def wait_controller(self, not_in=(), timeout=15.0):
        def ok():
            c = self.controller()
            return c is not None and c not in not_in and c
        return wait_for(ok, timeout=timeout, what=f"a controller other than {list(not_in)}")

    def stop_all(self, failed):
        errors = []
        for b in list(self.brokers.values()) + self.extra:
            try:
                b.stop()
            except BaseException as e:  # pytest.fail raises a BaseException
                errors.append(str(e))
            if failed:
                print(f"--- broker {getattr(b, 'node_id', '?')} {b.bootstrap} stderr ---")
                print(b.stderr_text())
        return errors


def run_refused(broker, timeout=30.0):
    """Runs a broker expected to refuse to start: (exit status, stderr, seconds)."""
    t0 = time.monotonic()
    proc = subprocess.run(
        broker.argv(), stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout
    )
    return proc.returncode, proc.stderr.decode(errors="replace"), time.monotonic() - t0


_counter = itertools.count()


@pytest.fixture(scope="module")
def zookeeper(tmp_path_factory):
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    zk = ZooKeeper(tmp_path_factory.mktemp("zookeeper"))
    zk.start()
    yield zk
    zk.stop()


@pytest.fixture
def cluster(request, zookeeper, tmp_path):
    name = re.sub(r"[^A-Za-z0-9_-]", "_", request.node.name)[:60]
    c = Cluster(zookeeper, tmp_path, f"/runnel-tests/t{next(_counter)}-{name}")
    yield c
    failed = getattr(request.node, "rep_call", None)
    failed = failed is not None and failed.failed
    errors = c.stop_all(failed)
    if failed:
        print("--- zookeeper log (tail) ---\n" + zookeeper.log())
    if errors:
        pytest.fail("\n".join(errors))
