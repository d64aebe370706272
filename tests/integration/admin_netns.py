"""Helper of test_admin_api.py::test_remote_clients, run as
`unshare -n python3 admin_netns.py TMPDIR ALLOW_REMOTE` inside a fresh
network namespace, where nothing can reach the outside.

It brings the namespace's loopback device up, gives it a second address
that is not loopback (192.0.2.1, a documentation address), starts a
broker with admin.listener=0.0.0.0:0, asks /v1/status and /metrics once
from 127.0.0.1 and once from 192.0.2.1 (the client binds that address, so
the broker sees it as the peer), stops the broker and prints one JSON
line with what it saw."""

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import Broker  # noqa: E402

REMOTE = "192.0.2.1"


def get(host, port, path, source):
    """(status, body) of GET http://host:port/path from the address source."""
    conn = socket.create_connection((host, port), timeout=30, source_address=(source, 0))
    try:
        peer_seen = conn.getsockname()[0]
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        conn.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    return status, body, peer_seen


def main():
    tmp, allow = Path(sys.argv[1]), sys.argv[2]
    for cmd in (["ip", "link", "set", "lo", "up"],
                ["ip", "addr", "add", f"{REMOTE}/32", "dev", "lo"]):
        subprocess.run(cmd, check=True)
    b = Broker(tmp, {"admin.listener": "0.0.0.0:0", "admin.allow.remote": allow})
    b.start()
    out = {}
    try:
        port = int(b.admin_url().rsplit(":", 1)[1])
        for name, host in (("local", "127.0.0.1"), ("remote", REMOTE)):
            status, body, peer = get(host, port, "/v1/status", host)
            mstatus, _, _ = get(host, port, "/metrics", host)
            out[name] = {"status": status, "body": json.loads(body), "peer_checked": peer,
                         "metrics_status": mstatus}
    finally:
        try:
            b.stop()
            out["broker_exit"] = b.exit_codes[-1]
        except BaseException as e:  # pytest.fail's exception: report it
            out["broker_exit"] = str(e)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
