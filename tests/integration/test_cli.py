"""The runnel admin commands (topic, produce, consume, dump-log) against a
real broker: their output, their exit statuses (0 ok, 1 failure, 2 usage)
and their one-line errors."""

import json
import time

import kwire
from conftest import free_port, run_cli

T = "\t"


def ok(r):
    assert r.rc == 0, r
    return r


def one_line_error(r, rc, text):
    """Exit status rc and exactly one stderr line, containing text."""
    assert r.rc == rc, r
    lines = r.err.splitlines()
    assert len(lines) == 1, r
    assert text in lines[0], r
    return lines[0]


def test_topic_lifecycle(broker):
    b = ["-b", broker.bootstrap]
    r = ok(run_cli("topic", "create", "t1", "--partitions", "3", "--config", "retention.ms=60000", *b))
    assert r.out == "created topic t1\n"
    # Default partition count: the broker's num.partitions (1).
    ok(run_cli("topic", "create", "t0", *b))
    ok(run_cli("topic", "create", "__hidden", "-p", "1", *b))

    r = run_cli("topic", "create", "t1", *b)
    assert one_line_error(r, 1, "") == "runnel topic: topic 't1' already exists"
    r = ok(run_cli("topic", "create", "t1", "--if-not-exists", *b))
    assert r.out == "" and r.err == ""

    assert ok(run_cli("topic", "list", *b)).out == "t0\nt1\n"
    # --all adds internal topics: ours, and any the broker keeps itself.
    every = ok(run_cli("topic", "list", "--all", *b)).out.splitlines()
    assert every == sorted(every) and "__hidden" in every
    assert [n for n in every if not n.startswith("__")] == ["t0", "t1"]

    ok(run_cli("produce", "t1", "--partition", "1", *b, input="a\nb\n"))
    r = ok(run_cli("topic", "describe", "t1", "t0", *b))
    assert r.out.splitlines() == [
        f"Topic: t1{T}PartitionCount: 3{T}ReplicationFactor: 1{T}Configs: retention.ms=60000",
        f"{T}Topic: t1{T}Partition: 0{T}Leader: 1{T}Replicas: 1{T}Isr: 1{T}LogStartOffset: 0{T}LogEndOffset: 0",
        f"{T}Topic: t1{T}Partition: 1{T}Leader: 1{T}Replicas: 1{T}Isr: 1{T}LogStartOffset: 0{T}LogEndOffset: 2",
        f"{T}Topic: t1{T}Partition: 2{T}Leader: 1{T}Replicas: 1{T}Isr: 1{T}LogStartOffset: 0{T}LogEndOffset: 0",
        f"Topic: t0{T}PartitionCount: 1{T}ReplicationFactor: 1{T}Configs: ",
        f"{T}Topic: t0{T}Partition: 0{T}Leader: 1{T}Replicas: 1{T}Isr: 1{T}LogStartOffset: 0{T}LogEndOffset: 0",
    ]
    # Without names: every non-internal topic, sorted.
    r = ok(run_cli("topic", "describe", *b))
    assert [l.split(T)[0] for l in r.out.splitlines() if l.startswith("Topic:")] == ["Topic: t0", "Topic: t1"]

    r = ok(run_cli("topic", "alter", "t1", "--partitions", "5", "--config", "segment.bytes=2048",
                   "--delete-config", "retention.ms", *b))
    assert r.out == "altered topic t1\n"
    head = ok(run_cli("topic", "describe", "t1", *b)).out.splitlines()
    assert head[0] == f"Topic: t1{T}PartitionCount: 5{T}ReplicationFactor: 1{T}Configs: segment.bytes=2048"
    assert len(head) == 6
    # Setting one key keeps the others (AlterConfigs is sent the full set).
    ok(run_cli("topic", "alter", "t1", "--config", "retention.ms=1000", *b))
    head = ok(run_cli("topic", "describe", "t1", *b)).out.splitlines()[0]
    assert head.endswith("Configs: retention.ms=1000,segment.bytes=2048")

    r = run_cli("topic", "alter", "t1", "--partitions", "2", *b)
    one_line_error(r, 1, "runnel topic: cannot add partitions to topic 't1': ")
    r = run_cli("topic", "alter", "t1", "--config", "retention.ms=soon", *b)
    one_line_error(r, 1, "runnel topic: cannot alter configs of 't1': ")
    r = run_cli("topic", "create", "bad name!", *b)
    one_line_error(r, 1, "runnel topic: cannot create topic 'bad name!': ")

    r = ok(run_cli("topic", "delete", "t1", "__hidden", *b))
    assert r.out == "deleted topic t1\ndeleted topic __hidden\n" or r.out == "deleted topic __hidden\ndeleted topic t1\n"
    every = ok(run_cli("topic", "list", "--all", *b)).out.splitlines()
    assert "__hidden" not in every and [n for n in every if not n.startswith("__")] == ["t0"]
    for cmd in (["delete", "t1"], ["describe", "t1"], ["alter", "t1", "-p", "9"]):
        r = run_cli("topic", *cmd, *b)
        assert one_line_error(r, 1, "") == "runnel topic: unknown topic 't1'"


def test_produce_consume_round_trip(broker):
    b = ["-b", broker.bootstrap]
    lines = "k1:v1\nnokey\nk2:v:with:colons\n\n"
    r = ok(run_cli("produce", "rt", "-K", ":", "-H", "a=1", "-H", "b=x=y", "--compression", "zstd",
                   "--partition", "0", *b, input=lines))
    assert r.err == "produced 4 records to rt\n"

    r = ok(run_cli("consume", "rt", "--from-beginning", "--count", "4", "--format", "json", *b))
    recs = [json.loads(l) for l in r.out.splitlines()]
    headers = [{"key": "a", "value": "1"}, {"key": "b", "value": "x=y"}]
    assert [(x["topic"], x["partition"], x["offset"], x["key"], x["value"], x["headers"]) for x in recs] == [
        ("rt", 0, 0, "k1", "v1", headers),
        ("rt", 0, 1, None, "nokey", headers),
        ("rt", 0, 2, "k2", "v:with:colons", headers),
        ("rt", 0, 3, None, "", headers),
    ]
    now = time.time() * 1000
    assert all(now - 60_000 < x["timestamp"] <= now + 1000 for x in recs)

    r = ok(run_cli("consume", "rt", "-o", "2", "-c", "2", "--print-offset", "--print-timestamp",
                   "--print-key", "--print-headers", *b))
    ts = recs[2]["timestamp"]
    assert r.out == f"0:2{T}{ts}{T}k2{T}a=1,b=x=y{T}v:with:colons\n0:3{T}{ts}{T}{T}a=1,b=x=y{T}\n"
    assert ok(run_cli("consume", "rt", "-p", "0", "--offset", "1", "--count", "1", *b)).out == "nokey\n"
    # Negative offsets count back from the end.
    assert ok(run_cli("consume", "rt", "--offset", "-1", "--count", "1", "--print-key", *b)).out == f"{T}\n"
    # Default start is the end: nothing new arrives, so nothing is printed.
    start = time.monotonic()
    r = ok(run_cli("consume", "rt", "--timeout-ms", "500", *b))
    assert r.out == "" and time.monotonic() - start < 10


def test_produce_options_and_timestamps(broker):
    b = ["-b", broker.bootstrap]
    ok(run_cli("topic", "create", "ts", "--partitions", "2", *b))
    ok(run_cli("produce", "ts", "--timestamp", "1700000000000", "-p", "1", "--acks", "0", *b, input="early\n"))
    ok(run_cli("produce", "ts", "--timestamp", "1700000005000", "-p", "1", "--acks", "1",
               "--linger-ms", "0", *b, input="late1\nlate2\n"))
    ok(run_cli("produce", "ts", "--timestamp", "1700000009000", "-p", "0", "--acks", "all", *b, input="other\n"))
    r = ok(run_cli("consume", "ts", "--timestamp", "1700000003000", "--count", "3", "--print-offset",
                   "--print-timestamp", *b))
    assert sorted(r.out.splitlines()) == [
        f"0:0{T}1700000009000{T}other",
        f"1:1{T}1700000005000{T}late1",
        f"1:2{T}1700000005000{T}late2",
    ]
    r = ok(run_cli("consume", "ts", "-p", "1", "--timestamp", "1700000000000", "-c", "1", *b))
    assert r.out == "early\n"
    # A timestamp later than every record: start at the end, print nothing.
    r = ok(run_cli("consume", "ts", "--timestamp", "1800000000000", "--timeout-ms", "300", *b))
    assert r.out == ""


def test_json_escapes_bytes(broker):
    b = ["-b", broker.bootstrap]
    value = b'\xff\xfe "q" \\ \t \x01 \xc3\xa9 \xf0\x9f\x98\x80 \xed\xa0\x80'
    ok(run_cli("produce", "bin", *b, input=value + b"\n"))
    r = run_cli("consume", "bin", "--from-beginning", "-c", "1", "-f", "json", *b, text=False)
    assert r.rc == 0, r
    line = r.out.decode("utf-8")  # the output itself is valid UTF-8
    assert '"value":"\\u00ff\\u00fe \\"q\\" \\\\ \\t \\u0001 é 😀 \\u00ed\\u00a0\\u0080"' in line
    rec = json.loads(line)
    assert rec["value"] == '\u00ff\u00fe "q" \\ \t \u0001 é 😀 \u00ed\u00a0\u0080'
    assert rec["key"] is None and rec["headers"] == []


def test_errors(broker):
    dead = f"127.0.0.1:{free_port()}"
    for argv, prog in [
        (["topic", "list"], "runnel topic"),
        (["produce", "x"], "runnel produce"),
        (["consume", "x", "--timeout-ms", "100"], "runnel consume"),
    ]:
        start = time.monotonic()
        r = run_cli(*argv, "-b", dead, input="a\n")
        assert time.monotonic() - start < 8, "took too long to notice the dead broker"
        assert one_line_error(r, 1, "") == f"{prog}: broker {dead} not reachable"

    # RUNNEL_BOOTSTRAP stands in for -b.
    r = ok(run_cli("topic", "create", "e1", env={"RUNNEL_BOOTSTRAP": broker.bootstrap}))
    assert r.out == "created topic e1\n"

    b = ["-b", broker.bootstrap]
    r = run_cli("consume", "nope", "--timeout-ms", "100", *b)
    assert one_line_error(r, 1, "") == "runnel consume: unknown topic 'nope'"
    # The consumer's lookup must not have created it.
    assert "nope" not in ok(run_cli("topic", "list", *b)).out.split()
    r = run_cli("produce", "e1", "--partition", "7", *b, input="a\n")
    assert one_line_error(r, 1, "") == "runnel produce: topic 'e1' has no partition 7 (it has 1)"
    r = run_cli("consume", "e1", "--partition", "3", "--timeout-ms", "100", *b)
    assert one_line_error(r, 1, "") == "runnel consume: topic 'e1' has no partition 3 (it has 1)"
    r = run_cli("produce", "bad name!", *b, input="a\n")
    one_line_error(r, 1, "bad name!")

    for argv, line in [
        (["produce", "x", "--foo"], "runnel produce: bad flag --foo (see runnel produce --help)"),
        (["consume", "x", "--bar=1"], "runnel consume: bad flag --bar=1 (see runnel consume --help)"),
        (["topic", "create", "x", "--bogus"], "runnel topic: bad flag --bogus (see runnel topic --help)"),
        (["topic", "list", "--partitions", "3"], "runnel topic: bad flag --partitions (see runnel topic --help)"),
        (["topic", "frobnicate"], "runnel topic: unknown command 'frobnicate' (see runnel topic --help)"),
        (["produce"], "runnel produce: missing TOPIC (see runnel produce --help)"),
        (["consume", "x", "--count", "zero"], "runnel consume: bad value 'zero' for --count"),
        (["consume", "x", "--from-beginning", "--offset", "3"], "give at most one of"),
        (["consume", "x", "--format", "xml"], "bad value 'xml' for --format"),
        (["produce", "x", "--compression", "brotli"], "bad value 'brotli' for --compression"),
        (["produce", "x", "--acks", "2"], "bad value '2' for --acks"),
        (["produce", "x", "-H", "novalue"], "expected KEY=VALUE"),
        (["produce", "x", "-X", "no.such.property=1"], "no.such.property"),
        (["topic", "create", "x", "--partitions"], "flag --partitions needs a value"),
    ]:
        # -b goes before the flags under test, which may lack their value.
        at = min(2, len(argv))
        r = run_cli(*argv[:at], *b, *argv[at:], input="")
        one_line_error(r, 2, line)

    for cmd in (["topic"], ["produce"], ["consume"], ["topic", "create"]):
        r = ok(run_cli(*cmd, "--help"))
        assert r.out.startswith("usage: runnel ") and r.err == ""


def test_dump_log_shows_batches(broker):
    # Three exact batches, sent raw: what dump-log prints is checked batch
    # by batch, so the batches must not be whatever `runnel produce`'s
    # librdkafka made of its input (it may split lines over batches, and
    # sends a batch raw when compressing does not pay).
    batches = [
        kwire.record_batch([(None, b"a", []), (None, b"b", [])]),
        kwire.record_batch([(None, c * 300, []) for c in (b"c", b"d", b"e")], codec="zstd"),
        kwire.record_batch([(b"key", b"f", [])]),
    ]
    ok(run_cli("topic", "create", "dl", "-b", broker.bootstrap))
    for base, batch in zip((0, 2, 5), batches):
        assert kwire.produce_batches(broker.host, broker.port, {("dl", 0): batch}) == {("dl", 0): (0, base)}
    seg = broker.partition_dir("dl", 0) / "00000000000000000000.log"
    r = ok(run_cli("dump-log", str(seg)))
    lines = r.out.splitlines()
    assert lines[0] == f"Dumping {seg}"
    batches = [l for l in lines if l.startswith("baseOffset:")]
    assert [" ".join(l.split()[:6]) for l in batches] == [
        "baseOffset: 0 lastOffset: 1 count: 2",
        "baseOffset: 2 lastOffset: 4 count: 3",
        "baseOffset: 5 lastOffset: 5 count: 1",
    ]
    for l, codec in zip(batches, ["none", "zstd", "none"]):
        assert " magic: 2 " in l and f" compresscodec: {codec} " in l and l.endswith(" isvalid: true")

    r = ok(run_cli("dump-log", "--print-data", str(seg)))
    recs = [l for l in r.out.splitlines() if l.startswith("| offset:")]
    assert [l.split()[2] for l in recs] == ["0", "1", "2", "3", "4", "5"]
    assert recs[4].endswith("payload: " + "e" * 300) and "key: key" in recs[5] and "payload: f" in recs[5]
