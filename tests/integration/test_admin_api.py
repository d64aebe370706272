"""The broker's HTTP admin API and /metrics: every endpoint's answer checked
field by field against what was produced and committed, the Prometheus
text parsed line by line, errors as 4xx JSON, the refusal of non-local
clients, and the `runnel status` / `runnel message get` commands."""

import base64
import datetime
import json
import math
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition

import kwire
from clients import consumer, create_topic, produce_all
from conftest import REPO, free_port, run_cli, runnel_bin, wait_for

HERE = Path(__file__).resolve().parent

# Never through a proxy from the environment: the broker is local.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(url, method="GET"):
    """(status, headers, body bytes) of one request."""
    req = urllib.request.Request(url, method=method)
    try:
        with _opener.open(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def get_json(broker, path, status=200):
    code, headers, body = http(broker.admin_url() + path)
    assert code == status, f"GET {path}: HTTP {code}: {body!r}"
    assert headers["Content-Type"] == "application/json", headers
    return json.loads(body)


def get_error(broker, path, status, method="GET"):
    """The message of a JSON error answer with the given status."""
    code, headers, body = http(broker.admin_url() + path, method)
    assert code == status, f"{method} {path}: HTTP {code}: {body!r}"
    assert headers["Content-Type"] == "application/json", headers
    doc = json.loads(body)
    assert list(doc) == ["error"] and isinstance(doc["error"], str) and doc["error"], doc
    return doc["error"]


def kafka_port(broker):
    return int(broker.bootstrap.rsplit(":", 1)[1])


def segment_files(broker, topic, partition):
    return sorted(broker.partition_dir(topic, partition).glob("*.log"))


# ------------------------------------------------------------ Prometheus
_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
_SAMPLE = re.compile(
    rf"^({_NAME})(?:\{{((?:{_LABEL})(?:,{_LABEL})*)?\}})? (\S+)(?: (-?\d+))?$"
)
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"')


def parse_prometheus(text):
    """{(name, frozenset(labels)): value} from the text format 0.0.4,
    asserting every line is a sample, # HELP or # TYPE, that each family
    is declared once, before its samples, and that its samples are
    contiguous.  Also returns {family: type}."""
    assert text.endswith("\n")
    samples, types, helps, done = {}, {}, set(), set()
    current = None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert re.fullmatch(_NAME, name) and name not in helps, line
            helps.add(name)
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name not in types, f"family {name} declared twice"
            types[name] = kind
            if current:
                done.add(current)
            current = name
            continue
        assert not line.startswith("#") and line.strip(), f"not a sample: {line!r}"
        m = _SAMPLE.match(line)
        assert m, f"not a valid sample: {line!r}"
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        family = name
        if types.get(current) == "histogram":
            family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert family == current, f"sample {name} outside its family ({current})"
        assert family not in done
        v = float(value)  # accepts +Inf, NaN
        lab = frozenset(
            (k, v2.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\"))
            for k, v2 in _LABEL_RE.findall(labels)
        )
        assert (name, lab) not in samples, f"duplicate sample {line!r}"
        samples[(name, lab)] = v
    return samples, types


def scrape(broker):
    code, headers, body = http(broker.admin_url() + "/metrics")
    assert code == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers
    return parse_prometheus(body.decode("utf-8"))


def metric(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def check_histograms(samples, types):
    """Buckets cumulative and monotonic, +Inf == _count, for every series."""
    for fam, kind in types.items():
        if kind != "histogram":
            continue
        series = {}
        for (name, labels), v in samples.items():
            if name == fam + "_bucket":
                d = dict(labels)
                le = d.pop("le")
                series.setdefault(frozenset(d.items()), []).append((float(le), v))
        assert series, f"histogram {fam} has no buckets"
        for labels, buckets in series.items():
            buckets.sort()
            assert buckets[-1][0] == math.inf
            counts = [v for _, v in buckets]
            assert counts == sorted(counts), f"{fam}{dict(labels)} buckets not monotonic"
            assert samples[(fam + "_count", labels)] == counts[-1]
            assert samples[(fam + "_sum", labels)] >= 0


# ------------------------------------------------------------------ tests
def test_status_of_a_fresh_broker(broker):
    st = get_json(broker, "/v1/status")
    meta = (broker.data_dir / "meta.properties").read_text()
    cluster = re.search(r"cluster\.id=(\S+)", meta).group(1)
    version = run_cli("--version").out.split()[1]
    admin = broker.admin_url().removeprefix("http://")
    assert set(st) == {
        "node_id", "cluster_id", "version", "uptime_ms", "listeners", "data_dir",
        "topics", "partitions", "connections", "data_bytes",
    }
    assert st["node_id"] == 1
    assert st["cluster_id"] == cluster
    assert st["version"] == version
    assert isinstance(st["uptime_ms"], int) and st["uptime_ms"] >= 0
    assert st["listeners"] == {"kafka": broker.bootstrap, "admin": admin}
    assert st["data_dir"] == str(broker.data_dir)
    # Only the broker's own __consumer_offsets, empty; nobody connected.
    assert (st["topics"], st["partitions"], st["connections"], st["data_bytes"]) == (1, 1, 0, 0)
    # The definition of done, literally: curl on a fresh broker.
    if shutil.which("curl"):
        out = subprocess.run(
            ["curl", "-sS", "--noproxy", "*", f"{admin.replace('127.0.0.1', 'localhost')}/metrics"],
            capture_output=True, text=True, timeout=30,
        )
        assert out.returncode == 0, out.stderr
        samples, types = parse_prometheus(out.stdout)
        assert metric(samples, "runnel_partitions") == 1
        assert types["runnel_request_duration_seconds"] == "histogram"


def test_topics(broker):
    create_topic(broker.bootstrap, "orders", 3, {"retention.ms": "60000", "segment.bytes": "2048"})
    create_topic(broker.bootstrap, "plain", 1)
    # 40 records of ~100 bytes to partition 1 roll 2 KiB segments.
    # One batch per request: librdkafka would batch past segment.bytes.
    produce_batches(broker, "orders", [(T0, [(None, b"x" * 100, [])])] * 40, partition=1)
    produce_batches(broker, "orders", [(T0, [(None, b"y", [])])], partition=2)
    doc = get_json(broker, "/v1/topics")
    names = [t["name"] for t in doc["topics"]]
    assert names == ["__consumer_offsets", "orders", "plain"]
    assert doc["topics"][1] == {"name": "orders", "internal": False, "partitions": 3,
                                "configs": {"retention.ms": "60000", "segment.bytes": "2048"}}
    assert doc["topics"][2] == {"name": "plain", "internal": False, "partitions": 1,
                                "configs": {}}
    assert doc["topics"][0]["internal"] is True and doc["topics"][0]["partitions"] == 1

    t = get_json(broker, "/v1/topics/orders")
    assert t["name"] == "orders" and t["internal"] is False
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", t["topic_id"]), t["topic_id"]
    assert t["configs"] == {"retention.ms": "60000", "segment.bytes": "2048"}
    ends = {0: 0, 1: 40, 2: 1}
    total = 0
    assert [p["partition"] for p in t["partitions"]] == [0, 1, 2]
    for p in t["partitions"]:
        i = p["partition"]
        files = segment_files(broker, "orders", i)
        size = sum(f.stat().st_size for f in files)
        total += size
        assert p == {
            "partition": i, "log_start_offset": 0, "high_watermark": ends[i],
            "log_end_offset": ends[i], "size_bytes": size, "segments": len(files),
            "leader_epoch": 0,
        }, p
    assert t["size_bytes"] == total
    assert t["partitions"][1]["segments"] > 1  # 2 KiB segments rolled

    # DeleteRecords moves the log start offset; the API shows it.
    with kwire.Conn("127.0.0.1", kafka_port(broker)) as c:
        res = kwire.parse_delete_records_v0(
            c.request(kwire.API_DELETE_RECORDS, 0, kwire.delete_records_v0_body("orders", 1, 25)))
    assert res[("orders", 1)] == (0, 25)
    p1 = get_json(broker, "/v1/topics/orders")["partitions"][1]
    assert (p1["log_start_offset"], p1["high_watermark"]) == (25, 40)

    assert get_error(broker, "/v1/topics/nope", 404) == "unknown topic 'nope'"
    st = get_json(broker, "/v1/status")
    assert (st["topics"], st["partitions"]) == (3, 5)
    on_disk = sum(f.stat().st_size for f in broker.data_dir.glob("*-*/*.log"))
    assert st["data_bytes"] == on_disk


def test_groups_and_lag(make_broker):
    broker = make_broker({"group.initial.rebalance.delay.ms": "0"})
    create_topic(broker.bootstrap, "g1", 2)
    produce_all(broker.bootstrap, "g1",
                [{"value": b"a", "partition": 0}] * 6 + [{"value": b"b", "partition": 1}] * 4)
    assert get_json(broker, "/v1/groups") == {"groups": []}
    assert get_error(broker, "/v1/groups/grp", 404) == "unknown group 'grp'"

    c = consumer(broker.bootstrap, **{"group.id": "grp", "client.id": "admin-test",
                                      "auto.offset.reset": "earliest"})
    try:
        c.subscribe(["g1"])
        wait_for(lambda: (c.poll(0.1), len(c.assignment()) == 2)[1], timeout=30,
                 what="both partitions assigned")
        c.commit(offsets=[TopicPartition("g1", 0, 4), TopicPartition("g1", 1, 1)],
                 asynchronous=False)
        wait_for(lambda: get_json(broker, "/v1/groups/grp")["state"] == "Stable",
                 what="a stable group")
        g = get_json(broker, "/v1/groups/grp")
        assert g["group_id"] == "grp" and g["protocol_type"] == "consumer"
        assert g["protocol"] in ("range", "roundrobin") and g["generation"] >= 1
        assert g["member_count"] == 1 and len(g["members"]) == 1
        m = g["members"][0]
        assert g["leader"] == m["member_id"]
        assert m["client_id"] == "admin-test" and m["group_instance_id"] is None
        assert m["host"].endswith("127.0.0.1"), m
        assert m["assignment"] == [{"topic": "g1", "partitions": [0, 1]}]
        assert g["offsets"] == [
            {"topic": "g1", "partition": 0, "committed_offset": 4, "high_watermark": 6, "lag": 2,
             "metadata": "", "commit_timestamp": g["offsets"][0]["commit_timestamp"]},
            {"topic": "g1", "partition": 1, "committed_offset": 1, "high_watermark": 4, "lag": 3,
             "metadata": "", "commit_timestamp": g["offsets"][1]["commit_timestamp"]},
        ]
        now = time.time() * 1000
        assert all(now - 60000 < o["commit_timestamp"] <= now + 1000 for o in g["offsets"])
        assert g["total_lag"] == 5
        assert get_json(broker, "/v1/groups") == {"groups": [
            {"group_id": "grp", "state": "Stable", "protocol_type": "consumer",
             "protocol": g["protocol"], "member_count": 1}]}
        samples, _ = scrape(broker)
        assert metric(samples, "runnel_group_lag", group="grp", topic="g1", partition="0") == 2
        assert metric(samples, "runnel_group_lag", group="grp", topic="g1", partition="1") == 3
    finally:
        c.close()
    # Produce more: the lag follows the high watermark.
    produce_all(broker.bootstrap, "g1", [{"value": b"c", "partition": 1}] * 2)
    g = wait_for(lambda: (lambda d: d if d["state"] == "Empty" else None)(
        get_json(broker, "/v1/groups/grp")), what="the group to empty")
    assert g["member_count"] == 0 and g["members"] == []
    assert [(o["committed_offset"], o["high_watermark"], o["lag"]) for o in g["offsets"]] == [
        (4, 6, 2), (1, 6, 5)]
    assert g["total_lag"] == 7

    # A group id that needs escaping in a URL: "/" and " " and "%".
    odd = "team a/b%c"
    c2 = consumer(broker.bootstrap, **{"group.id": odd})
    try:
        c2.commit(offsets=[TopicPartition("g1", 0, 6)], asynchronous=False)
    finally:
        c2.close()
    path = "/v1/groups/" + urllib.request.quote(odd, safe="")
    g = get_json(broker, path)
    assert g["group_id"] == odd and g["state"] == "Empty" and g["members"] == []
    assert [(o["partition"], o["lag"]) for o in g["offsets"]] == [(0, 0)] and g["total_lag"] == 0
    ids = [x["group_id"] for x in get_json(broker, "/v1/groups")["groups"]]
    assert sorted(ids) == sorted(["grp", odd])
    samples, _ = scrape(broker)
    assert metric(samples, "runnel_group_lag", group=odd, topic="g1", partition="0") == 0


def test_broadcast_group_lag_per_instance(make_broker):
    """A broadcast group's offsets belong to its instances: the API lists
    each instance's offsets and lag, and the group's lag is their sum."""
    from confluent_kafka.admin import AdminClient, ConfigResource

    broker = make_broker({"group.initial.rebalance.delay.ms": "0"})
    create_topic(broker.bootstrap, "bc", 2)
    produce_all(broker.bootstrap, "bc",
                [{"value": b"a", "partition": 0}] * 6 + [{"value": b"b", "partition": 1}] * 4)
    adm = AdminClient({"bootstrap.servers": broker.bootstrap})
    res = ConfigResource(ConfigResource.Type.GROUP, "fan",
                         set_config={"message.model": "BROADCASTING"})
    adm.alter_configs([res])[res].result(15)
    commits = {"w0": (6, 4), "w1": (2, 1)}
    cs = {cid: consumer(broker.bootstrap, **{"group.id": "fan", "client.id": cid,
                                             "auto.offset.reset": "earliest"})
          for cid in commits}
    try:
        for c in cs.values():
            c.subscribe(["bc"])
        for cid, c in cs.items():
            # Broadcast: every member gets both partitions.
            wait_for(lambda: ([x.poll(0.05) for x in cs.values()], len(c.assignment()) == 2)[1],
                     timeout=30, what=f"{cid} assigned both partitions")
        for cid, (p0, p1) in commits.items():
            cs[cid].commit(offsets=[TopicPartition("bc", 0, p0), TopicPartition("bc", 1, p1)],
                           asynchronous=False)
        g = get_json(broker, "/v1/groups/fan")
        assert g["message_model"] == "BROADCASTING"
        assert g["offsets"] == []
        got = {i["instance"]: ([(o["partition"], o["committed_offset"], o["high_watermark"],
                                 o["lag"]) for o in i["offsets"]], i["total_lag"])
               for i in g["instances"]}
        assert got == {"w0": ([(0, 6, 6, 0), (1, 4, 4, 0)], 0),
                       "w1": ([(0, 2, 6, 4), (1, 1, 4, 3)], 7)}
        assert g["total_lag"] == 7
        samples, _ = scrape(broker)
        assert metric(samples, "runnel_group_lag", group="fan", topic="bc", partition="0",
                      instance="w1") == 4
        assert metric(samples, "runnel_group_lag", group="fan", topic="bc", partition="1",
                      instance="w0") == 0
    finally:
        for c in cs.values():
            c.close()
    plain = get_json(broker, "/v1/groups")["groups"]
    assert [x["group_id"] for x in plain] == ["fan"]


# Base time of the records: 2026-01-01T00:00:00Z.
T0 = 1767225600000
BIN_VALUE = bytes(range(256))


def produce_batches(broker, topic, batches, partition=0):
    """Sends each (base_timestamp, [(key, value, headers)]) as one batch in
    its own Produce v3 request; returns the base offsets."""
    bases = []
    with kwire.Conn("127.0.0.1", kafka_port(broker)) as c:
        for ts, recs in batches:
            body = kwire.produce_v3_body(topic, partition, kwire.record_batch(recs, ts))
            res = kwire.parse_produce_v3(c.request(kwire.API_PRODUCE, 3, body))
            err, base = res[(topic, partition)]
            assert err == 0, err
            bases.append(base)
    return bases


def test_messages_by_offset_and_time(broker):
    create_topic(broker.bootstrap, "m", 2)
    bases = produce_batches(broker, "m", [
        (T0, [(b"k0", b"hello", [("h1", b"v1"), ("h2", b"")])]),
        (T0 + 1000, [(None, BIN_VALUE, [])]),
        # Three records in one batch; offset 3 is in its middle.
        (T0 + 2000, [(b"\xff\xfe", "snow \u2603".encode(), [("bin", b"\x00\x01"), ("n", None)]),
                     (b"k3", b"nul\x00inside", []),
                     (b"k4", None, [])]),
        (T0 + 5000, [("ключ".encode(), b"last", [])]),
    ])
    assert bases == [0, 1, 2, 5]

    def rec(off, **kw):
        base = {"topic": "m", "partition": 0, "offset": off, "timestamp_type": "CreateTime"}
        base.update(kw)
        return base

    assert get_json(broker, "/v1/messages/m/0/0") == rec(
        0, timestamp=T0, key="k0", value="hello",
        headers=[{"key": "h1", "value": "v1"}, {"key": "h2", "value": ""}])
    assert get_json(broker, "/v1/messages/m/0/1") == rec(
        1, timestamp=T0 + 1000, key=None, headers=[],
        value_b64=base64.b64encode(BIN_VALUE).decode())
    r2 = get_json(broker, "/v1/messages/m/0/2")
    assert r2 == rec(2, timestamp=T0 + 2000, key_b64=base64.b64encode(b"\xff\xfe").decode(),
                     value="snow \u2603",
                     headers=[{"key": "bin", "value_b64": "AAE="}, {"key": "n", "value": None}])
    assert "key" not in r2 and "value_b64" not in r2
    assert get_json(broker, "/v1/messages/m/0/3") == rec(
        3, timestamp=T0 + 2000, key="k3", headers=[],
        value_b64=base64.b64encode(b"nul\x00inside").decode())
    assert get_json(broker, "/v1/messages/m/0/4") == rec(
        4, timestamp=T0 + 2000, key="k4", value=None, headers=[])
    assert get_json(broker, "/v1/messages/m/0/5") == rec(
        5, timestamp=T0 + 5000, key="ключ", value="last", headers=[])

    def at(t):
        return get_json(broker, "/v1/messages/m/0?at=" + urllib.request.quote(str(t)))["offset"]

    assert at(0) == 0
    assert at(T0) == 0
    assert at(T0 + 1) == 1
    assert at(T0 + 1000) == 1
    assert at(T0 + 1500) == 2
    assert at(T0 + 4999) == 5
    assert at("2026-01-01T00:00:00Z") == 0
    assert at("2026-01-01T00:00:01Z") == 1
    assert at("2026-01-01T00:00:01.001Z") == 2
    assert at("2026-01-01T01:00:02+01:00") == 2
    assert at("2025-12-31T23:59:59.999-00:00") == 0
    doc = get_json(broker, "/v1/messages/m/0?at=2026-01-01T00:00:04Z")
    assert doc == rec(5, timestamp=T0 + 5000, key="ключ", value="last", headers=[])

    # Out of range and unknown: 404; malformed: 400.
    msg = get_error(broker, "/v1/messages/m/0/6", 404)
    assert msg == "offset 6 is out of range: m-0 holds offsets 0 to 5"
    assert get_error(broker, "/v1/messages/m/1/0", 404) == (
        "offset 0 is out of range: m-1 holds no records (log start and end offset 0)")
    assert "timestamp at or after" in get_error(broker, f"/v1/messages/m/0?at={T0 + 5001}", 404)
    assert get_error(broker, "/v1/messages/m/2/0", 404) == "topic 'm' has no partition 2 (it has 2)"
    assert get_error(broker, "/v1/messages/nope/0/0", 404) == "unknown topic 'nope'"
    assert get_error(broker, "/v1/messages/m/0/abc", 400) == "offset 'abc' is not a whole number >= 0"
    assert get_error(broker, "/v1/messages/m/0/-1", 400) == "offset '-1' is not a whole number >= 0"
    assert get_error(broker, "/v1/messages/m/0/1x", 400) == "offset '1x' is not a whole number >= 0"
    assert get_error(broker, "/v1/messages/m/x/0", 400) == "partition 'x' is not a whole number >= 0"
    assert "?at=" in get_error(broker, "/v1/messages/m/0", 400)
    for bad in ("yesterday", "2026-02-30T00:00:00Z", "2026-01-01T00:00:00", "2026-01-01",
                "-5", "2026-01-01T25:00:00Z"):
        msg = get_error(broker, "/v1/messages/m/0?at=" + urllib.request.quote(bad), 400)
        assert msg.startswith(f"at='{bad}' is not"), msg

    # After DeleteRecords the start moved: by time starts there, by offset is 404.
    with kwire.Conn("127.0.0.1", kafka_port(broker)) as c:
        kwire.parse_delete_records_v0(
            c.request(kwire.API_DELETE_RECORDS, 0, kwire.delete_records_v0_body("m", 0, 2)))
    assert at(0) == 2
    assert get_error(broker, "/v1/messages/m/0/1", 404) == (
        "offset 1 is out of range: m-0 holds offsets 2 to 5")


def test_message_in_a_compressed_batch(broker):
    create_topic(broker.bootstrap, "z", 1)
    recs = [{"key": f"k{i}".encode(), "value": f"value {i}".encode() * 20,
             "headers": [("i", str(i).encode())], "timestamp": T0 + i} for i in range(10)]
    # Two exact batches, sent raw: offsets 0-6 gzip, 7-9 zstd (librdkafka
    # with linger.ms made one, several, or uncompressed one-record
    # batches, as the machine's load had it). Offsets 0 and 7 open a
    # batch, 9 ends one; a broker that decompressed them on append, or an
    # API that read the first record of a batch for every offset in it,
    # fails below.
    def batch(lo, hi, codec):
        return kwire.record_batch(
            [(r["key"], r["value"], r["headers"]) for r in recs[lo:hi]], base_timestamp=T0 + lo,
            codec=codec, timestamp_deltas=list(range(hi - lo)))
    sent = [batch(0, 7, "gzip"), batch(7, 10, "zstd")]
    for want_base, b in zip((0, 7), sent):
        res = kwire.produce_batches("127.0.0.1", kafka_port(broker), {("z", 0): b})
        assert res == {("z", 0): (0, want_base)}, res
    stored = kwire.read_batch_bytes(segment_files(broker, "z", 0)[0])
    assert [(b[0], b[2] & 7, b[3]) for b in stored] == [(0, 1, 7), (7, 4, 3)], stored
    assert all(kwire.same_batch(st[4], b) for st, b in zip(stored, sent))
    for i in (0, 7, 9):
        doc = get_json(broker, f"/v1/messages/z/0/{i}")
        assert doc == {"topic": "z", "partition": 0, "offset": i, "timestamp": T0 + i,
                       "timestamp_type": "CreateTime", "key": f"k{i}",
                       "headers": [{"key": "i", "value": str(i)}],
                       "value": f"value {i}" * 20}, doc
    assert get_json(broker, f"/v1/messages/z/0?at={T0 + 4}")["offset"] == 4


def test_log_append_time(make_broker):
    broker = make_broker({"log.message.timestamp.type": "LogAppendTime"})
    create_topic(broker.bootstrap, "la", 1)
    before = int(time.time() * 1000)
    produce_batches(broker, "la", [(T0, [(b"k", b"v", [])])])
    doc = get_json(broker, "/v1/messages/la/0/0")
    assert doc["timestamp_type"] == "LogAppendTime"
    assert doc["timestamp"] >= before  # the broker's clock, not the producer's T0
    assert get_json(broker, f"/v1/messages/la/0?at={doc['timestamp']}")["offset"] == 0


def test_metrics(broker):
    create_topic(broker.bootstrap, "mt", 2)
    # The admin client has closed its connection when create_topic
    # returns, but the broker sees the close when its loop gets to it: wait
    # for the gauge instead of expecting it at once.
    wait_for(lambda: metric(scrape(broker)[0], "runnel_connections") == 0,
             what="create_topic's connection closed")
    base, types = scrape(broker)
    check_histograms(base, types)
    for fam, kind in [("runnel_requests_total", "counter"),
                      ("runnel_request_bytes_total", "counter"),
                      ("runnel_response_bytes_total", "counter"),
                      ("runnel_request_duration_seconds", "histogram"),
                      ("runnel_connections", "gauge"),
                      ("runnel_connections_accepted_total", "counter"),
                      ("runnel_partitions", "gauge"), ("runnel_log_size_bytes", "gauge"),
                      ("runnel_log_end_offset", "gauge"), ("runnel_log_start_offset", "gauge"),
                      ("runnel_group_lag", "gauge"), ("runnel_uptime_seconds", "gauge")]:
        assert types[fam] == kind, fam
    assert metric(base, "runnel_partitions") == 3  # mt's 2 + __consumer_offsets
    assert metric(base, "runnel_connections") == 0
    assert metric(base, "runnel_uptime_seconds") >= 0

    # N produce requests on one raw connection: counts and bytes exact.
    n = 7
    req_bytes = resp_bytes = 0
    with kwire.Conn("127.0.0.1", kafka_port(broker)) as c:
        for i in range(n):
            body = kwire.produce_v3_body("mt", i % 2, kwire.record_batch([(b"k", b"v" * i, [])]))
            payload = kwire.request_header(kwire.API_PRODUCE, 3, 100 + i) + body
            c.send(kwire.frame(payload))
            resp = c.recv_frame()
            req_bytes += 4 + len(payload)
            resp_bytes += 4 + len(resp)
        # Connected now: the gauge counts this connection.
        s, _ = scrape(broker)
        assert metric(s, "runnel_connections") == 1
    after, types = scrape(broker)
    check_histograms(after, types)
    d = {k: metric(after, k, api="Produce") - metric(base, k, api="Produce")
         for k in ("runnel_requests_total", "runnel_request_bytes_total",
                   "runnel_response_bytes_total", "runnel_request_duration_seconds_count")}
    assert d == {"runnel_requests_total": n, "runnel_request_bytes_total": req_bytes,
                 "runnel_response_bytes_total": resp_bytes,
                 "runnel_request_duration_seconds_count": n}
    assert metric(after, "runnel_log_end_offset", topic="mt", partition="0") == 4
    assert metric(after, "runnel_log_end_offset", topic="mt", partition="1") == 3
    assert metric(after, "runnel_log_start_offset", topic="mt", partition="1") == 0
    for p in (0, 1):
        size = sum(f.stat().st_size for f in segment_files(broker, "mt", p))
        assert metric(after, "runnel_log_size_bytes", topic="mt", partition=str(p)) == size > 0

    # Connections: three more open, then closed.
    accepted = metric(after, "runnel_connections_accepted_total")
    socks = [socket.create_connection(("127.0.0.1", kafka_port(broker))) for _ in range(3)]
    try:
        wait_for(lambda: metric(scrape(broker)[0], "runnel_connections") == 3,
                 what="3 open connections")
    finally:
        for s in socks:
            s.close()
    wait_for(lambda: metric(scrape(broker)[0], "runnel_connections") == 0,
             what="connections closed")
    assert metric(scrape(broker)[0], "runnel_connections_accepted_total") == accepted + 3

    # A Metadata request that does not decode closes its connection and
    # counts as an error, not as an answered request.
    before, _ = scrape(broker)
    with kwire.Conn("127.0.0.1", kafka_port(broker)) as c:
        c.send(kwire.frame(kwire.request_header(kwire.API_METADATA, 4, 1) + struct.pack(">i", 1000)))
        assert c.closed_by_peer()
    now, _ = scrape(broker)
    assert metric(now, "runnel_request_errors_total", api="Metadata") == \
        metric(before, "runnel_request_errors_total", api="Metadata") + 1
    assert metric(now, "runnel_requests_total", api="Metadata") == \
        metric(before, "runnel_requests_total", api="Metadata")


def test_metrics_time_pending_requests(broker):
    """A long-poll fetch is measured until its answer, not its return."""
    create_topic(broker.bootstrap, "lp", 1)
    c = consumer(broker.bootstrap, **{"fetch.wait.max.ms": 600, "auto.offset.reset": "earliest"})
    try:
        c.assign([TopicPartition("lp", 0, 0)])

        def slow_fetches():
            c.poll(0.2)
            s, _ = scrape(broker)
            total = metric(s, "runnel_request_duration_seconds_count", api="Fetch")
            fast = metric(s, "runnel_request_duration_seconds_bucket", api="Fetch", le="0.25")
            return total - fast >= 2

        wait_for(slow_fetches, timeout=30, what="fetches answered after their max wait")
    finally:
        c.close()


def test_http_errors(broker):
    assert get_error(broker, "/nothing", 404) == "no such endpoint: GET /nothing"
    assert get_error(broker, "/v1/topics/a/b/c", 404) == "no such endpoint: GET /v1/topics/a/b/c"
    assert get_error(broker, "/v1//topics", 404).startswith("no such endpoint")
    code, headers, body = http(broker.admin_url() + "/v1/status", "POST")
    assert code == 405 and headers["Allow"] == "GET, HEAD", (code, headers)
    assert json.loads(body) == {
        "error": "method POST not allowed on this path (allowed: GET, HEAD)"}
    assert get_error(broker, "/v1/topics/x", 405, method="DELETE").startswith("method DELETE")
    assert get_error(broker, "/metrics", 405, method="POST").startswith("method POST")
    assert get_error(broker, "/v1/topics/%zz", 400) == "bad %-escape in path"
    assert get_error(broker, "/v1/topics/a%00b", 400) == "bad %-escape in path"
    # HEAD is GET without a body; a trailing slash is the same path.
    code, headers, body = http(broker.admin_url() + "/v1/status", "HEAD")
    assert code == 200 and body == b""
    assert get_json(broker, "/v1/topics/")["topics"][0]["name"] == "__consumer_offsets"
    # Escaped topic names are decoded before the lookup.
    create_topic(broker.bootstrap, "a.b_c-1", 1)
    assert get_json(broker, "/v1/topics/a%2Eb%5Fc-1")["name"] == "a.b_c-1"
    # The broker kept serving through all of it.
    assert get_json(broker, "/v1/status")["topics"] == 2


def test_admin_listener_settings(make_broker, tmp_path):
    # Disabled: no admin line, the Kafka side unaffected.
    b = make_broker({"admin.listener": ""})
    assert b"admin API on" not in b.stderr_bytes()
    assert b"admin API disabled" in b.stderr_bytes()
    # A bad value stops the broker at start, with a message.
    for value, text in [("nonsense", "expected host:port"), ("127.0.0.1:99999", "bad port")]:
        r = subprocess.run([runnel_bin(), "broker", "--set", f"log.dirs={tmp_path / 'x'}",
                            "--set", f"listeners=PLAINTEXT://127.0.0.1:{free_port()}",
                            "--set", f"admin.listener={value}"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and text in r.stderr, r
    r = subprocess.run([runnel_bin(), "broker", "--set", "admin.allow.remote=maybe"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "admin.allow.remote: 'maybe' is not true or false" in r.stderr
    # The port taken: refuse to start rather than run without the API.
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        port = holder.getsockname()[1]
        r = subprocess.run([runnel_bin(), "broker", "--set", f"log.dirs={tmp_path / 'y'}",
                            "--set", f"listeners=PLAINTEXT://127.0.0.1:{free_port()}",
                            "--set", f"admin.listener=127.0.0.1:{port}"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in r.stderr, r
    finally:
        holder.close()


# ---------------------------------------------------- non-local clients
def _netns_usable():
    if not shutil.which("unshare") or not shutil.which("ip"):
        return "needs unshare(1) and ip(8)"
    r = subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return f"cannot create a network namespace here: {r.stderr.strip()}"
    return None


@pytest.mark.parametrize("allow", [False, True])
def test_remote_clients(tmp_path, allow):
    """A client whose address is not loopback gets 403 unless
    admin.allow.remote=true.  The broker and the client run in a network
    namespace of their own with a documentation address (192.0.2.1, RFC
    5737) added to its loopback device: a real non-loopback peer address,
    and no packet can leave the namespace."""
    why = _netns_usable()
    if why:
        pytest.skip(why)
    r = subprocess.run(
        ["unshare", "-n", sys.executable, str(HERE / "admin_netns.py"), str(tmp_path),
         "true" if allow else "false"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "RUNNEL_BIN": runnel_bin()},
    )
    assert r.returncode == 0, f"helper failed:\n{r.stdout}\n{r.stderr}"
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["broker_exit"] == 0, res
    assert res["local"]["status"] == 200 and res["local"]["body"]["node_id"] == 1, res
    remote = res["remote"]
    assert remote["peer_checked"] == "192.0.2.1"
    if allow:
        assert remote["status"] == 200 and remote["body"]["node_id"] == 1, res
        assert remote["metrics_status"] == 200
    else:
        assert remote["status"] == 403, res
        assert remote["body"] == {"error": "the admin API accepts only local clients (loopback "
                                           "addresses); set admin.allow.remote=true to serve others"}
        assert remote["metrics_status"] == 403


# ------------------------------------------------------------------ CLI
def test_cli_status_and_message(broker):
    admin = broker.admin_url().removeprefix("http://")
    create_topic(broker.bootstrap, "c", 1)
    produce_batches(broker, "c", [
        (T0, [(b"k1", b"hello\nworld", [("trace", b"abc"), ("raw", b"\xff")])]),
        (T0 + 1000, [(None, b"\x00\x01", [("empty", None)])]),
    ])
    r = run_cli("status", "--admin", admin)
    assert r.rc == 0, r
    lines = dict(l.split(None, 1) for l in r.out.splitlines())
    st = get_json(broker, "/v1/status")
    assert list(lines) == ["node_id", "cluster_id", "version", "uptime", "kafka", "admin",
                           "data_dir", "topics", "partitions", "connections", "data_bytes"]
    assert lines["node_id"] == "1" and lines["cluster_id"] == st["cluster_id"]
    assert lines["kafka"] == broker.bootstrap and lines["admin"] == admin
    assert lines["data_dir"] == str(broker.data_dir)
    assert (lines["topics"], lines["partitions"]) == ("2", "2")
    assert lines["data_bytes"] == str(st["data_bytes"])
    assert re.fullmatch(r"(\d+m )?\d+s", lines["uptime"]), lines["uptime"]
    r = run_cli("status", "--admin", admin, "--json")
    assert r.rc == 0 and json.loads(r.out)["cluster_id"] == st["cluster_id"]
    # $RUNNEL_ADMIN is the default address.
    r = run_cli("status", env={"RUNNEL_ADMIN": admin})
    assert r.rc == 0 and r.out.startswith("node_id      1\n"), r

    r = run_cli("message", "get", "c", "0", "0", "--admin", admin)
    assert r.rc == 0, r
    assert r.out == (
        "topic      c\n"
        "partition  0\n"
        "offset     0\n"
        "timestamp  1767225600000 2026-01-01T00:00:00.000Z CreateTime\n"
        "key        k1\n"
        "header     trace=abc\n"
        "header     raw=(base64) /w==\n"
        "value      hello\nworld\n")
    r = run_cli("message", "get", "c", "0", "--at", "2026-01-01T00:00:00.5Z", "--admin", admin)
    assert r.rc == 0, r
    assert r.out == (
        "topic      c\n"
        "partition  0\n"
        "offset     1\n"
        "timestamp  1767225601000 2026-01-01T00:00:01.000Z CreateTime\n"
        "key        (null)\n"
        "header     empty=(null)\n"
        "value      (base64) AAE=\n")
    r = run_cli("message", "get", "c", "0", "1", "--admin", admin, "--json")
    assert r.rc == 0 and json.loads(r.out)["value_b64"] == "AAE="

    def one_line_error(r, rc, text):
        assert r.rc == rc, r
        assert r.out == "" and len(r.err.splitlines()) == 1 and text in r.err, r

    one_line_error(run_cli("message", "get", "nope", "0", "0", "--admin", admin), 1,
                   "runnel message: unknown topic 'nope'")
    one_line_error(run_cli("message", "get", "c", "0", "7", "--admin", admin), 1,
                   "runnel message: offset 7 is out of range: c-0 holds offsets 0 to 1")
    one_line_error(run_cli("message", "get", "c", "0", "--at", "soon", "--admin", admin), 1,
                   "runnel message: at='soon' is not")
    one_line_error(run_cli("message", "get", "c", "0", "--admin", admin), 2,
                   "runnel message: get takes TOPIC PARTITION OFFSET (or --at TIME)")
    one_line_error(run_cli("message", "get", "c", "x", "0", "--admin", admin), 2,
                   "runnel message: bad value 'x' for PARTITION")
    one_line_error(run_cli("message", "peek", "--admin", admin), 2,
                   "runnel message: unknown command 'peek'")

    # Nobody at the address: exit 1 and say so.
    dead = f"127.0.0.1:{free_port()}"
    for args in (["status"], ["message", "get", "c", "0", "0"]):
        r = run_cli(*args, "--admin", dead)
        one_line_error(r, 1, f"admin API at {dead} not reachable")

    r = run_cli("--help")
    assert r.rc == 0 and "\n  status " in r.out and "\n  message " in r.out
    r = run_cli("message", "--help")
    assert r.rc == 0 and "get TOPIC PARTITION --at TIME" in r.out
