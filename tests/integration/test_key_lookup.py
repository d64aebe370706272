"""Lookup by key (topic config key.index=true) through the admin API and
`runnel message find`, on a topic of 1,000,000 records: every answer is
compared with what the producer's delivery reports said (partition,
offset, value), after the indexer caught up, after a clean restart and a
SIGKILL, with index files deleted or torn (rebuilt, byte for byte), and
after retention deleted old segments."""

import array
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request

from conftest import run_cli, wait_for
from clients import create_topic, produce_all, producer, watermarks

N = 1_000_000
PARTITIONS = 3
HOT_KEYS = 300
TOPIC = "orders"
SEGMENT_BYTES = 262144


SETTINGS = {"log.retention.check.interval.ms": "300"}


def admin_addr(b):
    return b.admin_url().removeprefix("http://")


def admin_get(b, path):
    url = b.admin_url() + path
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def find(b, key, topic=TOPIC, **params):
    q = urllib.parse.urlencode({"topic": topic, "key": key, **params})
    status, body = admin_get(b, "/v1/messages?" + q)
    assert status == 200, (status, body)
    return body


class Produced:
    """What 1,000,000 records were, and where the broker put them.

    Record i: value b"v<i>", timestamp T0 + i, key b"user-<i % 300>"
    except every 200th (null key); every 100th also has a header
    keys=b"order-<i> batch-<i // 1000>" (RocketMQ's KEYS, two keys)."""

    def __init__(self, bootstrap):
        self.partition = array.array("b", bytes(N))
        self.offset = array.array("q", bytes(8 * N))
        self.t0 = int(time.time() * 1000) - N - 60000
        p = producer(
            bootstrap,
            **{
                "linger.ms": 20,
                "batch.num.messages": 10000,
                "queue.buffering.max.messages": N,
                "queue.buffering.max.kbytes": 1048576,
            },
        )
        errors = []

        def delivered(err, msg):
            if err is not None:
                errors.append(err)
                return
            i = int(msg.value()[1:])
            self.partition[i] = msg.partition()
            self.offset[i] = msg.offset()

        start = time.monotonic()
        produce = p.produce
        for i in range(N):
            key = None if i % 200 == 0 else b"user-%d" % (i % HOT_KEYS)
            if i % 100 == 0:
                produce(TOPIC, value=b"v%d" % i, key=key, timestamp=self.t0 + i,
                        headers=[("keys", b"order-%d batch-%d" % (i, i // 1000))],
                        on_delivery=delivered)
            else:
                produce(TOPIC, value=b"v%d" % i, key=key, timestamp=self.t0 + i,
                        on_delivery=delivered)
            if i % 2000 == 0:
                p.poll(0)
        assert p.flush(120) == 0, "records not delivered"
        assert not errors, errors[:3]
        self.seconds = time.monotonic() - start

    def numbers(self, key):
        """Record numbers holding `key`, in timestamp order."""
        if key.startswith("user-"):
            k = int(key[5:])
            if k >= HOT_KEYS:
                return []
            return [i for i in range(k, N, HOT_KEYS) if i % 200 != 0]
        if key.startswith("order-"):
            i = int(key[6:])
            return [i] if i % 100 == 0 and i < N else []
        if key.startswith("batch-"):
            j = int(key[6:])
            return [i for i in range(j * 1000, min(N, (j + 1) * 1000), 100)]
        return []

    def expected(self, key, since=None, log_start=None):
        out = []
        for i in self.numbers(key):
            if since is not None and self.t0 + i < since:
                continue
            p, o = self.partition[i], self.offset[i]
            if log_start is not None and o < log_start[p]:
                continue
            out.append((p, o, "v%d" % i))
        return out


def answer(body):
    return [(m["partition"], m["offset"], m["value"]) for m in body["messages"]]


# Keys looked up at every stage: a hot record key (in every batch), a
# key only a header holds (one record), a header token shared by ten
# records, a record key whose records are all early (gone after
# retention), keys that match nothing.
KEYS = ["user-7", "user-299", "order-123500", "order-999900", "batch-500", "batch-3", "nope",
        "user-300", "order-123401"]


def check_all(b, data, log_start=None, timed=None):
    for key in KEYS:
        t = time.monotonic()
        body = find(b, key, limit=10000)
        if timed is not None:
            timed[key] = time.monotonic() - t
        want = data.expected(key, log_start=log_start)
        assert answer(body) == want, f"{key}: {len(body['messages'])} found, {len(want)} expected"
        assert body["truncated"] is False
    # Every returned record carries what the producer sent.
    i = 999900
    m = find(b, "order-%d" % i)["messages"][0]
    assert m["key"] == "user-%d" % (i % HOT_KEYS)
    assert m["timestamp"] == data.t0 + i
    assert m["timestamp_type"] == "CreateTime"
    assert {"key": "keys", "value": "order-%d batch-%d" % (i, i // 1000)} in m["headers"]


def keyidx_files(b, partition):
    d = b.partition_dir(TOPIC, partition)
    return sorted(f for f in os.listdir(d) if f.endswith(".keyidx"))


def log_files(b, partition):
    d = b.partition_dir(TOPIC, partition)
    return sorted(f for f in os.listdir(d) if f.endswith(".log"))


def sealed_all_indexed(b):
    for p in range(PARTITIONS):
        logs = [f[:20] for f in log_files(b, p)][:-1]
        if [f[:20] for f in keyidx_files(b, p)] != logs:
            return False
    return True


def test_key_lookup_on_a_million_records(make_broker, capsys):
    b = make_broker(settings=SETTINGS)
    create_topic(b.bootstrap, TOPIC, partitions=PARTITIONS,
                 config={"key.index": "true", "segment.bytes": str(SEGMENT_BYTES)})
    data = Produced(b.bootstrap)
    assert len(log_files(b, 0)) > 5, "segments should have rolled"

    # Right at once, whatever the indexer has reached...
    check_all(b, data)
    # ...and once every sealed segment has its file.
    wait_for(lambda: sealed_all_indexed(b), timeout=30, what="key index files")
    timed = {}
    check_all(b, data, timed=timed)
    with capsys.disabled():
        print(f"\n  produced {N} records in {data.seconds:.1f} s; find: "
              + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in timed.items()))

    # --since and --limit.
    since = data.t0 + 600000
    body = find(b, "user-7", since=str(since), limit=10000)
    assert answer(body) == data.expected("user-7", since=since)
    body = find(b, "user-7", limit=5)
    assert answer(body) == data.expected("user-7")[:5]
    assert body["truncated"] is True

    # The command line prints the same records.
    # The command line prints the same records, every one of a hot key
    # (several pages of the API).
    for key in ("batch-500", "user-7"):
        r = run_cli("message", "find", "--topic", TOPIC, "--key", key, "--json",
                    "--admin", admin_addr(b))
        assert r.rc == 0, r
        lines = [json.loads(x) for x in r.out.splitlines()]
        assert [(m["partition"], m["offset"], m["value"]) for m in lines] == \
            data.expected(key)
    r = run_cli("message", "find", "--topic", TOPIC, "--key", "user-7", "--limit", "3",
                "--since", str(since), "--admin", admin_addr(b))
    assert r.rc == 0, r
    first = data.expected("user-7", since=since)[0]
    assert r.out.startswith(f"topic      {TOPIC}\npartition  {first[0]}\noffset     {first[1]}\n")
    assert r.out.count("\ntopic ") == 2 and f"value      {first[2]}\n" in r.out
    assert "more records match" in r.err

    # Restarted cleanly: files are read back, the active segment indexed again.
    b.restart()
    check_all(b, data)
    # Killed: recovery rescans the logs; the index files still hold.
    b.restart(clean=False)
    check_all(b, data)

    # Files deleted and torn while the broker was down: right at once
    # (those segments are scanned), then rebuilt byte for byte.
    b.stop()
    d = b.partition_dir(TOPIC, 1)
    names = keyidx_files(b, 1)
    gone, torn = d / names[1], d / names[3]
    originals = {gone: gone.read_bytes(), torn: torn.read_bytes()}
    gone.unlink()
    with open(torn, "r+b") as f:
        f.truncate(len(originals[torn]) - 8)
    b.start()
    check_all(b, data)
    wait_for(lambda: all(f.exists() and f.read_bytes() == v for f, v in originals.items()),
             timeout=30, what="rebuilt key index files")
    check_all(b, data)

    # Retention deletes the oldest segments: their matches are gone,
    # the rest still right, their index files gone with them.
    before = [len(log_files(b, p)) for p in range(PARTITIONS)]
    r = run_cli("topic", "alter", TOPIC, "--config", f"retention.bytes={SEGMENT_BYTES * 4}",
                "-b", b.bootstrap)
    assert r.rc == 0, r

    def log_starts():
        starts = [watermarks(b.bootstrap, TOPIC, p)[0] for p in range(PARTITIONS)]
        return starts if all(s > 0 for s in starts) else None

    log_start = wait_for(log_starts, timeout=30, what="retention")
    for p in range(PARTITIONS):
        assert len(log_files(b, p)) < before[p]
        stale = set(f[:20] for f in keyidx_files(b, p)) - set(f[:20] for f in log_files(b, p))
        assert not stale, f"index files of deleted segments: {stale}"
    assert data.expected("order-123500", log_start=log_start) == []
    assert data.expected("user-7", log_start=log_start) != []
    check_all(b, data, log_start=log_start)
    b.restart()
    check_all(b, data, log_start=log_start)


def test_key_lookup_errors_and_small_cases(make_broker, cli):
    b = make_broker()
    create_topic(b.bootstrap, "plain", partitions=1)
    create_topic(b.bootstrap, "idx", partitions=2, config={"key.index": "true"})
    p = producer(b.bootstrap)
    p.produce("idx", key=b"a", value=b"1", partition=0, timestamp=1000)
    p.produce("idx", key=None, value=b"2", partition=1, timestamp=1001,
              headers=[("KEYS", b"a  b"), ("other", b"a")])
    p.produce("idx", key=b"ab", value=None, partition=1, timestamp=1002)
    p.produce("idx", key=b"\xff\x00a", value=b"\x00bin", partition=0, timestamp=1003)
    p.produce("plain", key=b"a", value=b"x")
    assert p.flush(10) == 0

    body = find(b, "a", topic="idx")
    assert [(m["partition"], m["offset"], m.get("value")) for m in body["messages"]] == \
        [(0, 0, "1"), (1, 0, "2")]
    assert find(b, "b", topic="idx")["messages"][0]["offset"] == 0
    ab = find(b, "ab", topic="idx")["messages"]
    assert len(ab) == 1 and ab[0]["value"] is None  # a tombstone is a record too
    assert find(b, "a ", topic="idx")["messages"] == []
    assert find(b, "1003", topic="idx", since="1003")["messages"] == []
    # A binary key, given base64-encoded.
    q = urllib.parse.urlencode({"topic": "idx", "key_b64": "/wBh"})
    status, body = admin_get(b, "/v1/messages?" + q)
    assert status == 200, body
    assert body["messages"][0]["value_b64"] == "AGJpbg=="

    # Bad requests get a 4xx with a message, and change nothing.
    for query, code in [
        ({"topic": "plain", "key": "a"}, 409),   # no key index
        ({"topic": "nope", "key": "a"}, 404),
        ({"topic": "idx"}, 400),
        ({"key": "a"}, 400),
        ({"topic": "idx", "key": "a", "since": "yesterday"}, 400),
        ({"topic": "idx", "key": "a", "limit": "0"}, 400),
        ({"topic": "idx", "key_b64": "!!"}, 400),
    ]:
        status, body = admin_get(b, "/v1/messages?" + urllib.parse.urlencode(query))
        assert status == code, (query, status, body)
        assert body["error"], body
    assert find(b, "a", topic="idx")["messages"]

    r = cli("message", "find", "--topic", "plain", "--key", "a", "--admin", admin_addr(b))
    assert r.rc == 1 and "key.index" in r.err, r
    r = cli("message", "find", "--topic", "nope", "--key", "a", "--admin", admin_addr(b))
    assert r.rc == 1 and "unknown topic" in r.err, r
    r = cli("message", "find", "--topic", "idx", "--admin", admin_addr(b))
    assert r.rc == 2, r
    r = cli("message", "find", "--topic", "idx", "--key", "a", "--limit", "0",
            "--admin", admin_addr(b))
    assert r.rc == 2, r
    r = cli("message", "find", "--topic", "idx", "--key", "a", "--admin", admin_addr(b))
    assert r.rc == 0, r
    assert r.out.count("topic      idx\n") == 2 and "header     KEYS=a  b\n" in r.out, r.out

    # Turning key.index off deletes the files.
    create_topic(b.bootstrap, "small", partitions=1,
                 config={"key.index": "true", "segment.bytes": "2048"})
    produce_all(b.bootstrap, "small",
                [{"key": b"k%d" % (i % 3), "value": b"x" * 50, "partition": 0}
                 for i in range(200)], conf={"batch.num.messages": 10})
    d = b.partition_dir("small", 0)
    wait_for(lambda: any(f.endswith(".keyidx") for f in os.listdir(d)), what="index files")
    r = cli("topic", "alter", "small", "--config", "key.index=false", "-b", b.bootstrap)
    assert r.rc == 0, r
    wait_for(lambda: not any(f.endswith(".keyidx") for f in os.listdir(d)),
             what="index files deleted")
    status, _ = admin_get(b, "/v1/messages?topic=small&key=k1")
    assert status == 409


def test_broker_default_turned_off_removes_files(make_broker):
    b = make_broker(settings={"log.key.index": "true"})
    create_topic(b.bootstrap, "t", partitions=1, config={"segment.bytes": "2048"})
    produce_all(b.bootstrap, "t",
                [{"key": b"k%d" % (i % 3), "value": b"x" * 50, "partition": 0}
                 for i in range(200)], conf={"batch.num.messages": 10})
    d = b.partition_dir("t", 0)
    wait_for(lambda: any(f.endswith(".keyidx") for f in os.listdir(d)), what="index files")
    assert len(find(b, "k1", topic="t")["messages"]) == 67
    b.stop()
    b.settings["log.key.index"] = "false"
    b.start()
    wait_for(lambda: not any(f.endswith(".keyidx") for f in os.listdir(d)),
             what="index files removed")
    status, _ = admin_get(b, "/v1/messages?topic=t&key=k1")
    assert status == 409
