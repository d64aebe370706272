"""Fixtures that run the real runnel binary for the integration tests.

Every test gets its own broker on a free loopback port with its data in the
test's tmp_path, so tests can neither see nor break each other's data. Its
admin API listens on an ephemeral loopback port (admin.listener port 0),
read back from the line the broker logs (Broker.admin_url()). The
binary is $RUNNEL_BIN (default build/runnel, relative to the repository
root); scripts/test points it at build-san/runnel for the sanitizer pass.

A broker's stderr goes to a file in tmp_path and is printed when the test
fails. Stopping asserts exit status 0: under AddressSanitizer a leak report
turns the exit status non-zero, so every clean stop is also a leak check.
"""

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def runnel_bin():
    path = Path(os.environ.get("RUNNEL_BIN", "build/runnel"))
    if not path.is_absolute():
        path = REPO / path
    return str(path)


def free_port():
    # The port is free when we look; another process could take it before
    # the broker binds, which on a test machine is rare enough to accept.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


START_TIMEOUT = 20.0
STOP_TIMEOUT = 30.0


class Broker:
    """One runnel broker process; restartable on the same port and data."""

    def __init__(self, tmp_path, settings=None):
        self.port = free_port()
        self.host = "127.0.0.1"
        self.bootstrap = f"{self.host}:{self.port}"
        self.data_dir = Path(tmp_path) / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.stderr_path = Path(tmp_path) / "broker.stderr"
        self.settings = {
            "listeners": f"PLAINTEXT://{self.bootstrap}",
            "log.dirs": str(self.data_dir),
            # Port 0: brokers of parallel tests never collide on 9644.
            "admin.listener": "127.0.0.1:0",
        }
        self.settings.update(settings or {})
        self.proc = None
        self.exit_codes = []

    def argv(self):
        argv = [runnel_bin(), "broker"]
        for key, value in self.settings.items():
            argv += ["--set", f"{key}={value}"]
        return argv

    def start(self):
        assert self.proc is None, "broker already running"
        with open(self.stderr_path, "ab") as f:
            offset = f.tell()
            f.write(f"=== start: {' '.join(self.argv())}\n".encode())
            offset = f.tell()
            self.proc = subprocess.Popen(
                self.argv(), stdin=subprocess.DEVNULL, stdout=f, stderr=f
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if b"listening on" in self.stderr_bytes()[offset:]:
                return self
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                pytest.fail(
                    f"broker exited with status {rc} before listening:\n"
                    + self.stderr_text()
                )
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        pytest.fail(
            f"broker did not print 'listening on' within {START_TIMEOUT}s:\n"
            + self.stderr_text()
        )

    def stop(self):
        """SIGTERM; asserts a clean exit (status 0, so no sanitizer report)."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(
                f"broker did not exit within {STOP_TIMEOUT}s of SIGTERM:\n"
                + self.stderr_text()
            )
        self.exit_codes.append(rc)
        assert rc == 0, (
            f"broker exited with status {rc} after SIGTERM:\n" + self.stderr_text()
        )

    def kill(self):
        """SIGKILL: an unclean stop, as a crash or power cut would be."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        proc.kill()
        proc.wait()

    def restart(self, clean=True):
        if clean:
            self.stop()
        else:
            self.kill()
        return self.start()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    ADMIN_LINE = re.compile(rb"admin API on http://(\S+)")

    def admin_url(self):
        """http://host:port of the admin API of the current run; the broker
        logs the bound port before "listening on", so it is there once
        start() returned."""
        found = self.ADMIN_LINE.findall(self.stderr_bytes())
        assert found, "the broker logged no admin API address:\n" + self.stderr_text()
        return "http://" + found[-1].decode()

    def stderr_bytes(self):
        try:
            return self.stderr_path.read_bytes()
        except FileNotFoundError:
            return b""

    def stderr_text(self):
        return self.stderr_bytes().decode("utf-8", "replace")

    def partition_dir(self, topic, partition):
        return self.data_dir / f"{topic}-{partition}"


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Lets fixtures see in their teardown whether the test failed.
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def make_broker(request, tmp_path):
    """Factory: make_broker(**{"log.flush.sync": "true"}) -> started Broker.

    Settings use Kafka's property names; a Python keyword cannot hold dots,
    so pass them as a dict (make_broker(settings={...})) or with **{...}.
    """
    brokers = []

    def make(settings=None, **kw):
        merged = dict(settings or {})
        merged.update(kw)
        sub = tmp_path / f"broker{len(brokers)}"
        b = Broker(sub, merged)
        brokers.append(b)
        return b.start()

    yield make

    failed = getattr(request.node, "rep_call", None)
    failed = failed is not None and failed.failed
    errors = []
    for b in brokers:
        try:
            b.stop()
        except BaseException as e:  # pytest.fail raises a BaseException
            errors.append(str(e))
        if failed:
            print(f"--- broker {b.bootstrap} stderr ---\n{b.stderr_text()}")
    if errors:
        pytest.fail("\n".join(errors))


@pytest.fixture
def broker(make_broker):
    """A broker with default settings (auto.create.topics.enable as the
    broker defaults, num.partitions 1)."""
    return make_broker()


class CliResult:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def __repr__(self):
        return f"rc={self.rc}\nstdout={self.out!r}\nstderr={self.err!r}"


def run_cli(*args, input=None, timeout=60, env=None, text=True):
    """Runs `runnel ARGS...` and returns its status and output."""
    full_env = dict(os.environ)
    full_env.pop("RUNNEL_BOOTSTRAP", None)
    full_env.update(env or {})
    if text and isinstance(input, bytes):
        text = False
    proc = subprocess.run(
        [runnel_bin(), *args],
        input=input,
        capture_output=True,
        timeout=timeout,
        env=full_env,
        text=text,
    )
    return CliResult(proc)


@pytest.fixture
def cli():
    return run_cli


def wait_for(predicate, timeout=10.0, interval=0.05, what="condition"):
    """Polls predicate() until it returns something truthy; bounded."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
