"""kafka-python 2.0.2 (a pure-Python client that picks its protocol from
the broker's ApiVersions answer) against the real broker.

kafka-python infers the broker's Kafka release from the API versions it
advertises and falls back to the old message formats (magic 0/1) when they
look too low, so the stored batches are checked to be magic 2.
"""

import struct
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import InvalidTopicError, TopicAlreadyExistsError, UnknownTopicOrPartitionError
from kafka.record.default_records import DefaultRecordBatch

from clients import create_topic
from kwire import read_batches
from conftest import wait_for


def _have(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


# kafka-python compresses with these optional modules (Debian packages
# python3-snappy, python3-lz4, python3-zstandard, installed by deps.sh).
CODECS = [
    pytest.param(None, id="none"),
    pytest.param("gzip", id="gzip"),
    pytest.param(
        "snappy", id="snappy", marks=pytest.mark.skipif(not _have("snappy"), reason="python3-snappy missing")
    ),
    pytest.param(
        "lz4", id="lz4", marks=pytest.mark.skipif(not _have("lz4.frame"), reason="python3-lz4 missing")
    ),
    pytest.param(
        "zstd", id="zstd", marks=pytest.mark.skipif(not _have("zstandard"), reason="python3-zstandard missing")
    ),
]

ATTR_CODEC = {None: 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


@pytest.mark.parametrize("codec", CODECS)
def test_produce_magic2_and_read_back(broker, codec):
    bs, topic = broker.bootstrap, "kp"
    create_topic(bs, topic, partitions=2)
    p = KafkaProducer(bootstrap_servers=bs, compression_type=codec, linger_ms=5, acks="all")
    base_ts = int(time.time() * 1000) - 10_000
    sent = []
    for i in range(10):
        part = i % 2
        key = None if i == 9 else f"key-{i}".encode()
        value = f"value-{i}-".encode() * (i + 1)
        headers = [("idx", str(i).encode()), ("codec", (codec or "none").encode())]
        fut = p.send(topic, value=value, key=key, headers=headers, partition=part, timestamp_ms=base_ts + i)
        sent.append((fut, part, key, value, headers, base_ts + i))
    p.flush(timeout=20)
    metas = [f.get(timeout=20) for f, *_ in sent]
    p.close(timeout=10)
    for m, (_, part, *_rest) in zip(metas, sent):
        assert m.partition == part
    for part in range(2):
        assert [m.offset for m in metas if m.partition == part] == list(range(5))

    # What reached the disk: magic-2 batches with the producer's codec,
    # however kafka-python split the records (linger_ms, load). It sends a
    # batch uncompressed when compressing does not shrink it, which the
    # short early values alone may not; records 6 to 9 (56 bytes and more
    # of a repeated 8-byte pattern) always shrink, so a batch holding one
    # of them must carry the codec (a broker that decompressed or
    # recompressed fails). Offsets 0-4 in order, once each.
    for part in range(2):
        seg = broker.partition_dir(topic, part) / "00000000000000000000.log"
        batches = wait_for(
            lambda: (b := read_batches(seg)) and sum(c for *_, c in b) == 5 and b,
            timeout=10,
            what=f"5 records in {seg}",
        )
        assert [o for b in batches for o in range(b[0], b[0] + b[3])] == list(range(5)), batches
        for base, magic, attrs, count in batches:
            assert magic == 2, f"batch at {base} has magic {magic}"
            # Offset o of partition part is record 2 * o + part.
            long_value = any(2 * o + part >= 6 for o in range(base, base + count))
            allowed = {ATTR_CODEC[codec]} if long_value else {0, ATTR_CODEC[codec]}
            assert attrs & 0x7 in allowed, f"batch at {base}: attributes {attrs:#x}"

    c = KafkaConsumer(bootstrap_servers=bs, group_id=None, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
        c.assign(tps)
        c.seek_to_beginning()
        got = []
        deadline = time.monotonic() + 20
        while len(got) < 10 and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=200).values():
                got.extend(recs)
        assert len(got) == 10
        by_pos = {(r.partition, r.offset): r for r in got}
        for m, (_, part, key, value, headers, ts) in zip(metas, sent):
            r = by_pos[(part, m.offset)]
            assert (r.key, r.value, r.headers, r.timestamp) == (key, value, headers, ts)
            assert r.timestamp_type == 0  # CreateTime
        assert c.end_offsets(tps) == {tps[0]: 5, tps[1]: 5}
        assert c.beginning_offsets(tps) == {tps[0]: 0, tps[1]: 0}
    finally:
        c.close()


def test_admin_create_describe_delete(broker):
    bs = broker.bootstrap
    adm = KafkaAdminClient(bootstrap_servers=bs, request_timeout_ms=15000)
    try:
        adm.create_topics([NewTopic("kpa", 3, 1, topic_configs={"retention.ms": "120000"})])
        with pytest.raises(TopicAlreadyExistsError):
            adm.create_topics([NewTopic("kpa", 3, 1)])
        with pytest.raises(InvalidTopicError):
            adm.create_topics([NewTopic("no way!", 1, 1)])

        c = KafkaConsumer(bootstrap_servers=bs, group_id=None)
        try:
            assert c.partitions_for_topic("kpa") == {0, 1, 2}
        finally:
            c.close()

        (resp,) = adm.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "kpa")])
        (res,) = resp.resources
        err, _msg, _rtype, name, entries = res[:5]
        assert err == 0 and name == "kpa"
        cfg = {e[0]: e for e in entries}
        assert cfg["retention.ms"][1] == "120000"
        assert "segment.bytes" in cfg

        adm.delete_topics(["kpa"])
        assert "kpa" not in adm.list_topics()
        with pytest.raises(UnknownTopicOrPartitionError):
            adm.delete_topics(["kpa"])
    finally:
        adm.close()


def test_default_record_batch_parser_agrees(broker):
    """Decode a stored batch with kafka-python's own v2 parser (which
    checks the CRC-32C): the broker must store batches byte-exact."""
    bs, topic = broker.bootstrap, "kp-crc"
    p = KafkaProducer(bootstrap_servers=bs, linger_ms=50)
    futs = [p.send(topic, value=f"v{i}".encode(), key=b"k", partition=0) for i in range(3)]
    p.flush(timeout=20)
    assert [f.get(timeout=20).offset for f in futs] == [0, 1, 2]
    p.close(timeout=10)
    seg = broker.partition_dir(topic, 0) / "00000000000000000000.log"
    wait_for(lambda: read_batches(seg), timeout=10, what="a batch on disk")
    data = seg.read_bytes()
    pos, values = 0, []
    for base, magic, attrs, count in read_batches(seg):
        (length,) = struct.unpack_from(">i", data, pos + 8)
        batch = DefaultRecordBatch(data[pos : pos + 12 + length])
        assert batch.validate_crc(), f"bad CRC in batch at {base}"
        values += [r.value for r in batch]
        pos += 12 + length
    assert values == [b"v0", b"v1", b"v2"]
