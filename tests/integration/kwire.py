"""Just enough of the Kafka wire protocol, by hand, to send what no real
client would: corrupt batches, impossible versions, cut-short requests;
and exact batches (every codec, chosen boundaries) for the tests that
check what the broker stores or returns batch by batch.

Everything here follows the message definitions in Kafka's
clients/src/main/resources/common/message/*.json (non-flexible versions
only, plus the request header v2 needed to ask for ApiVersions v3+).
"""

import socket
import struct
import time
import zlib

# ---------------------------------------------------------------- CRC-32C
# Castagnoli polynomial, reflected, as record batches v2 use.
_CRC32C_TABLE = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC32C_TABLE.append(_c)


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC32C_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the standard check value


# ------------------------------------------------------------ primitives
def varint(n):
    """Zig-zag varint (signed), as record fields use."""
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        if z < 0x80:
            out.append(z)
            return bytes(out)
        out.append((z & 0x7F) | 0x80)
        z >>= 7


def uvarint(n):
    out = bytearray()
    while True:
        if n < 0x80:
            out.append(n)
            return bytes(out)
        out.append((n & 0x7F) | 0x80)
        n >>= 7


def string(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">h", len(b)) + b


def nbytes(b):
    if b is None:
        return struct.pack(">i", -1)
    return struct.pack(">i", len(b)) + b


def array(items, enc):
    if items is None:
        return struct.pack(">i", -1)
    return struct.pack(">i", len(items)) + b"".join(enc(i) for i in items)


class Reader:
    """Reads big-endian fields; raises EOFError past the end."""

    def __init__(self, buf):
        self.buf = buf
        self.pos = 0

    def _take(self, n):
        if self.pos + n > len(self.buf):
            raise EOFError(f"need {n} bytes at {self.pos}, have {len(self.buf)}")
        b = self.buf[self.pos : self.pos + n]
        self.pos += n
        return b

    def int8(self):
        return struct.unpack(">b", self._take(1))[0]

    def int16(self):
        return struct.unpack(">h", self._take(2))[0]

    def int32(self):
        return struct.unpack(">i", self._take(4))[0]

    def int64(self):
        return struct.unpack(">q", self._take(8))[0]

    def string(self):
        n = self.int16()
        return None if n < 0 else self._take(n).decode()

    def array(self, fn):
        n = self.int32()
        return None if n < 0 else [fn(self) for _ in range(n)]

    def remaining(self):
        return len(self.buf) - self.pos


# ---------------------------------------------------------- record batch
def record(offset_delta, key, value, headers=(), timestamp_delta=0):
    body = bytearray()
    body += b"\x00"  # attributes
    body += varint(timestamp_delta)
    body += varint(offset_delta)
    for b in (key, value):
        if b is None:
            body += varint(-1)
        else:
            body += varint(len(b)) + b
    body += varint(len(headers))
    for hk, hv in headers:
        hk = hk.encode()
        body += varint(len(hk)) + hk
        body += varint(-1) if hv is None else varint(len(hv)) + hv
    return varint(len(body)) + bytes(body)


# Codec ids of the batch attributes (bits 0-2).
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
CODEC_NAMES = {v: k for k, v in CODEC_IDS.items()}

# snappy-java's framing (SnappyOutputStream), which the Java client sends:
# magic, version 1, minimum compatible version 1, then blocks of
# int32 length + raw snappy, 32 KiB of input each.
XERIAL_HEADER = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)
XERIAL_BLOCK = 32 * 1024


def compress(codec, data, snappy_framing="xerial"):
    """The records section compressed as Kafka clients do: gzip in the
    gzip format (GZIPOutputStream, librdkafka), snappy either in the xerial
    framing of the Java client or raw as librdkafka sends it, lz4 in the
    frame format (KafkaLZ4BlockOutputStream since magic 1, librdkafka),
    zstd as one frame."""
    if codec == "none":
        return data
    if codec == "gzip":
        import gzip

        return gzip.compress(data)
    if codec == "snappy":
        import snappy

        if snappy_framing == "raw":
            return snappy.compress(data)
        assert snappy_framing == "xerial", snappy_framing
        out = bytearray(XERIAL_HEADER)
        for i in range(0, max(len(data), 1), XERIAL_BLOCK):
            block = snappy.compress(data[i : i + XERIAL_BLOCK])
            out += struct.pack(">i", len(block)) + block
        return bytes(out)
    if codec == "lz4":
        import lz4.frame

        return lz4.frame.compress(data)
    if codec == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(data)
    raise ValueError(f"unknown codec {codec!r}")


def record_batch(records, base_timestamp=None, base_offset=0, codec="none",
                 producer_id=-1, producer_epoch=-1, base_sequence=-1,
                 timestamp_deltas=None, snappy_framing="xerial", attributes=0):
    """A magic-2 batch; records are (key, value, headers) tuples.

    codec compresses the records section (see compress()) and sets the
    codec bits of the attributes; producer_id/epoch/base_sequence fill the
    idempotence fields; timestamp_deltas gives each record's delta from
    base_timestamp (default 0 each), maxTimestamp following; attributes
    adds other bits (0x10 transactional, 0x20 control)."""
    if base_timestamp is None:
        base_timestamp = int(time.time() * 1000)
    if timestamp_deltas is None:
        timestamp_deltas = [0] * len(records)
    recs = b"".join(
        record(i, k, v, h, timestamp_delta=d)
        for i, ((k, v, h), d) in enumerate(zip(records, timestamp_deltas))
    )
    recs = compress(codec, recs, snappy_framing)
    max_ts = base_timestamp + max(timestamp_deltas, default=0)
    # Everything the CRC covers: attributes through the records.
    after_crc = (
        struct.pack(
            ">hiqqqhii",
            attributes | CODEC_IDS[codec],
            len(records) - 1,  # lastOffsetDelta
            base_timestamp,
            max_ts,  # maxTimestamp
            producer_id,
            producer_epoch,
            base_sequence,
            len(records),
        )
        + recs
    )
    # partitionLeaderEpoch + magic + crc + the rest.
    batch_len = 4 + 1 + 4 + len(after_crc)
    return (
        struct.pack(">qiib", base_offset, batch_len, -1, 2)
        + struct.pack(">I", crc32c(after_crc))
        + after_crc
    )


# CRC field position inside a batch: after baseOffset(8) batchLength(4)
# partitionLeaderEpoch(4) magic(1).
BATCH_CRC_OFFSET = 17
BATCH_MAGIC_OFFSET = 16


def read_batches(path):
    """[(base_offset, magic, attributes, record_count)] of a segment file,
    read straight from its bytes (a .log file is a sequence of batches)."""
    return [b[:4] for b in read_batch_bytes(path)]


def read_batch_bytes(path):
    """[(base_offset, magic, attributes, record_count, batch bytes)] of a
    segment file; the bytes are the whole batch, header included, so a
    test can compare them with what it sent."""
    data = path.read_bytes()
    out, pos = [], 0
    while pos + 61 <= len(data):
        base, length = struct.unpack_from(">qi", data, pos)
        if length <= 0:
            break  # preallocated tail, if any
        magic = data[pos + BATCH_MAGIC_OFFSET]
        (attrs,) = struct.unpack_from(">h", data, pos + 21)
        (count,) = struct.unpack_from(">i", data, pos + 57)
        out.append((base, magic, attrs, count, data[pos : pos + 12 + length]))
        pos += 12 + length
    return out


def same_batch(stored, sent):
    """True when a stored batch is the sent one with only what the broker
    assigns changed: baseOffset (bytes 0-7) and partitionLeaderEpoch
    (12-15), neither under the CRC. Everything else, the codec and the
    compressed bytes included, must be byte for byte what was sent."""
    return (len(stored) == len(sent) and stored[8:12] == sent[8:12]
            and stored[16:] == sent[16:])


# ------------------------------------------------------------- requests
API_PRODUCE = 0
API_METADATA = 3
API_API_VERSIONS = 18
API_DELETE_RECORDS = 21


def request_header(api_key, version, correlation_id, client_id="runnel-tests", flexible=False):
    h = struct.pack(">hhi", api_key, version, correlation_id) + string(client_id)
    if flexible:
        h += uvarint(0)  # no tagged fields
    return h


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


def produce_v3_body(topic, partition, batch, acks=-1, timeout_ms=10000):
    return (
        string(None)  # transactional_id
        + struct.pack(">hi", acks, timeout_ms)
        + array(
            [topic],
            lambda t: string(t)
            + array([partition], lambda p: struct.pack(">i", p) + nbytes(batch)),
        )
    )


def legacy_message(offset, key, value, timestamp=None, magic=1):
    """One entry of a magic 0/1 message set (Kafka < 0.11), CRC-32 (IEEE)."""
    body = struct.pack(">bb", magic, 0)
    if magic == 1:
        body += struct.pack(">q", int(time.time() * 1000) if timestamp is None else timestamp)
    body += nbytes(key) + nbytes(value)
    msg = struct.pack(">I", zlib.crc32(body)) + body
    return struct.pack(">qi", offset, len(msg)) + msg


def produce_v2_body(topic, partition, message_set, acks=-1, timeout_ms=10000):
    """Produce v0-v2 share this layout (no transactional_id)."""
    return struct.pack(">hi", acks, timeout_ms) + array(
        [topic],
        lambda t: string(t) + array([partition], lambda p: struct.pack(">i", p) + nbytes(message_set)),
    )


def parse_produce_v3(body):
    """{(topic, partition): (error_code, base_offset)}; v2 answers alike."""
    r = Reader(body)
    out = {}

    def part(r, topic):
        idx, err, base = r.int32(), r.int16(), r.int64()
        r.int64()  # log_append_time_ms
        out[(topic, idx)] = (err, base)

    def topic(r):
        name = r.string()
        r.array(lambda r: part(r, name))

    r.array(topic)
    r.int32()  # throttle_time_ms
    return out


def produce_batches(host, port, parts, version=7, acks=-1, timeout_ms=10000):
    """One Produce request carrying exact batches (v3 to v8 share the
    request layout; v7, the default, is the first that may carry zstd).
    parts maps (topic, partition) to a batch (bytes)
    or to a list of batches, sent concatenated in one records field as a
    client may. Returns {(topic, partition): (error_code, base_offset)}.

    The batches are what the broker receives, byte for byte, so a test can
    check what it stores or returns batch by batch without depending on
    how a client would have split records (linger.ms, batch sizes)."""
    assert 3 <= version <= 8, version
    by_topic = {}
    for (topic, partition), batches in parts.items():
        data = batches if isinstance(batches, (bytes, bytearray)) else b"".join(batches)
        by_topic.setdefault(topic, []).append((partition, bytes(data)))
    body = (
        string(None)  # transactional_id
        + struct.pack(">hi", acks, timeout_ms)
        + array(
            list(by_topic.items()),
            lambda t: string(t[0])
            + array(t[1], lambda pb: struct.pack(">i", pb[0]) + nbytes(pb[1])),
        )
    )
    with Conn(host, port) as c:
        resp = c.request(API_PRODUCE, version, body)
    return _parse_produce(resp, version)


def _parse_produce(body, version):
    r = Reader(body)
    out = {}

    def part(r, topic):
        idx, err, base = r.int32(), r.int16(), r.int64()
        r.int64()  # log_append_time_ms
        if version >= 5:
            r.int64()  # log_start_offset
        if version >= 8:
            r.array(lambda r: (r.int32(), r.string()))  # record_errors
            r.string()  # error_message
        out[(topic, idx)] = (err, base)

    def topic(r):
        name = r.string()
        r.array(lambda r: part(r, name))

    r.array(topic)
    r.int32()  # throttle_time_ms
    return out


def metadata_v4_body(topics, allow_auto_create=True):
    return array(topics, string) + struct.pack(">b", 1 if allow_auto_create else 0)


def parse_metadata_v4(body):
    """{topic: (error_code, [partition ids])}"""
    r = Reader(body)
    r.int32()  # throttle_time_ms
    r.array(lambda r: (r.int32(), r.string(), r.int32(), r.string()))  # brokers
    r.string()  # cluster_id
    r.int32()  # controller_id

    def partition(r):
        r.int16()  # error_code
        idx = r.int32()
        r.int32()  # leader_id
        r.array(lambda r: r.int32())  # replicas
        r.array(lambda r: r.int32())  # isr
        return idx

    def topic(r):
        err, name = r.int16(), r.string()
        r.int8()  # is_internal
        parts = r.array(partition)
        return name, (err, parts)

    return dict(r.array(topic))


def delete_records_v0_body(topic, partition, offset, timeout_ms=10000):
    return (
        array(
            [topic],
            lambda t: string(t)
            + array([partition], lambda p: struct.pack(">iq", p, offset)),
        )
        + struct.pack(">i", timeout_ms)
    )


def parse_delete_records_v0(body):
    """{(topic, partition): (error_code, low_watermark)}"""
    r = Reader(body)
    r.int32()  # throttle_time_ms
    out = {}

    def part(r, topic):
        idx, low, err = r.int32(), r.int64(), r.int16()
        out[(topic, idx)] = (err, low)

    def topic(r):
        name = r.string()
        r.array(lambda r: part(r, name))

    r.array(topic)
    return out


def parse_api_versions_v0(body):
    """(error_code, {api_key: (min, max)})"""
    r = Reader(body)
    err = r.int16()
    keys = r.array(lambda r: (r.int16(), r.int16(), r.int16()))
    return err, {k: (lo, hi) for k, lo, hi in keys or []}


# ----------------------------------------------------------- connection
class Conn:
    """A blocking connection with request/response framing."""

    def __init__(self, host, port, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.next_id = 1

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed by broker")
            buf += chunk
        return bytes(buf)

    def recv_frame(self):
        (n,) = struct.unpack(">i", self._recv_exact(4))
        return self._recv_exact(n)

    def request(self, api_key, version, body, flexible_header=False):
        """Sends one request, returns the response body after the
        correlation id (response header v0; v1's tag buffer is left in)."""
        cid = self.next_id
        self.next_id += 1
        self.send(frame(request_header(api_key, version, cid, flexible=flexible_header) + body))
        resp = self.recv_frame()
        (got,) = struct.unpack(">i", resp[:4])
        assert got == cid, f"correlation id {got}, expected {cid}"
        return resp[4:]

    def closed_by_peer(self, timeout=5.0):
        """True when the broker closes the connection within timeout
        (anything it sends first is read and ignored)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True


def api_versions(host, port):
    with Conn(host, port) as c:
        return parse_api_versions_v0(c.request(API_API_VERSIONS, 0, b""))
