"""kcat (librdkafka's command-line client) against the real broker:
keys, headers, partitions, every compression codec, start positions by
offset and by timestamp, and the metadata listing."""

import json
import subprocess
import time

import pytest

from clients import LIBRDKAFKA_CODEC_NOTE, create_topic, produce_all
from kwire import read_batches

FMT = "%p|%o|%k|%s|%h\\n"


def kcat(broker, *args, input=None, timeout=30):
    p = subprocess.run(
        ["kcat", "-b", broker.bootstrap, "-X", "log_level=3", *args],
        input=input,
        capture_output=True,
        timeout=timeout,
    )
    assert p.returncode == 0, f"kcat {' '.join(args)}: status {p.returncode}\n{p.stderr.decode()}"
    return p.stdout.decode()


def read_all(broker, topic, partition, *extra):
    """Every record of a partition from the given start (-o beginning by
    default), kcat exiting at the end of the partition (-e)."""
    if not any(a == "-o" for a in extra):
        extra = ("-o", "beginning") + extra
    out = kcat(broker, "-C", "-q", "-e", "-t", topic, "-p", str(partition), "-f", FMT, *extra)
    return out.splitlines()


def test_keys_headers_partitions_exact_offsets(broker):
    topic = "kc"
    create_topic(broker.bootstrap, topic, partitions=2)
    kcat(broker, "-P", "-t", topic, "-p", "0", "-K", ":", "-H", "a=1", "-H", "b=two",
         input=b"k1:v1\nk2:v2\nk3:v3\n")
    kcat(broker, "-P", "-t", topic, "-p", "1", "-K", ":", input=b"x:y\n")
    kcat(broker, "-P", "-t", topic, "-p", "0", "-K", ":", input=b"k4:v4\n")

    assert read_all(broker, topic, 0) == [
        "0|0|k1|v1|a=1,b=two",
        "0|1|k2|v2|a=1,b=two",
        "0|2|k3|v3|a=1,b=two",
        "0|3|k4|v4|",
    ]
    assert read_all(broker, topic, 1) == ["1|0|x|y|"]
    # Absolute and relative (from the end) start offsets.
    assert read_all(broker, topic, 0, "-o", "2") == ["0|2|k3|v3|a=1,b=two", "0|3|k4|v4|"]
    assert read_all(broker, topic, 0, "-o", "-1") == ["0|3|k4|v4|"]
    # Counted reads stop exactly (-c).
    out = kcat(broker, "-C", "-q", "-t", topic, "-p", "0", "-o", "1", "-c", "2", "-f", "%o:%s\\n")
    assert out == "1:v2\n2:v3\n"


@pytest.mark.parametrize("flag", ["-z", "-X"])
def test_every_compression_codec(broker, flag):
    topic = "kz"
    create_topic(broker.bootstrap, topic, partitions=1)
    codecs = ["none", "gzip", "snappy", "lz4", "zstd"]
    expected = []
    for codec in codecs:
        lines = [f"{codec}-{i}-" + "abc" * (i * 40) for i in range(3)]
        opt = [flag, codec] if flag == "-z" else [flag, f"compression.codec={codec}"]
        kcat(broker, "-P", "-t", topic, "-p", "0", *opt,
             input=("\n".join(lines) + "\n").encode())
        expected += lines
    got = read_all(broker, topic, 0)
    assert got == [f"0|{i}||{v}|" for i, v in enumerate(expected)]

    # On disk, whatever batches kcat's librdkafka made of each run (its
    # linger.ms, the machine's load): the batches tile offsets 0-14 in
    # order, none spans two runs (a broker that merged batches fails), and
    # each keeps the codec it was sent with. librdkafka sends a batch
    # uncompressed when compressing would not shrink it, which can only
    # happen to the short first line alone; lines 1 and 2 ("abc" * 40 and
    # more) always shrink, so a batch holding either must have its run's
    # codec (a broker that decompressed or recompressed fails).
    # test_confluent.py checks exact batches byte for byte.
    seg = broker.partition_dir(topic, 0) / "00000000000000000000.log"
    batches = read_batches(seg)
    assert all(b[1] == 2 for b in batches)
    covered = [o for b in batches for o in range(b[0], b[0] + b[3])]
    assert covered == list(range(15)), batches
    for base, _magic, attrs, count in batches:
        run = base // 3
        assert (base + count - 1) // 3 == run, f"batch at {base} spans two runs: {batches}"
        allowed = {run} if (base + count - 1) % 3 != 0 else {0, run}
        assert attrs & 7 in allowed, (
            f"batch at {base} of the {codecs[run]} run has codec {attrs & 7}; " + LIBRDKAFKA_CODEC_NOTE)


def test_start_at_timestamp(broker):
    topic = "kt"
    base = int(time.time() * 1000) - 30_000
    produce_all(
        broker.bootstrap,
        topic,
        [{"value": f"t{i}".encode(), "timestamp": base + i * 1000, "partition": 0} for i in range(4)],
    )
    out = kcat(broker, "-C", "-q", "-e", "-t", topic, "-p", "0", "-o", f"s@{base + 1500}",
               "-f", "%o %T %s\\n")
    assert out.splitlines() == [f"2 {base + 2000} t2", f"3 {base + 3000} t3"]
    out = kcat(broker, "-C", "-q", "-e", "-t", topic, "-p", "0", "-o", f"s@{base}", "-f", "%o\\n")
    assert out.splitlines() == ["0", "1", "2", "3"]


def test_metadata_lists_broker_as_leader_and_isr(broker):
    create_topic(broker.bootstrap, "km", partitions=3)
    md = json.loads(kcat(broker, "-L", "-J"))
    assert md["brokers"] == [{"id": 1, "name": broker.bootstrap}]
    topics = {t["topic"]: t for t in md["topics"]}
    assert "km" in topics
    parts = sorted(topics["km"]["partitions"], key=lambda p: p["partition"])
    assert [p["partition"] for p in parts] == [0, 1, 2]
    for p in parts:
        assert p["leader"] == 1
        assert p["replicas"] == [{"id": 1}]
        assert p["isrs"] == [{"id": 1}]
    # The plain listing says the same in words.
    text = kcat(broker, "-L", "-t", "km")
    assert f"broker 1 at {broker.bootstrap}" in text
    assert 'topic "km" with 3 partitions:' in text
    for i in range(3):
        assert f"partition {i}, leader 1, replicas: 1, isrs: 1" in text
