/*
 * kbuf: the Kafka wire primitives (see kbuf.h for the contract).
 *
 * Reader invariants: r->p <= r->end always; once r->err is set it is
 * never cleared and nothing moves r->p again, so every later read returns
 * a zero value.  Writer invariants: w->len <= w->cap; ext[] is sorted by
 * `at` because ranges are only ever appended at the current end; a set
 * w->err stops all further writes (the response is dropped by the caller).
 */
#include "common/kbuf.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---- reader ---- */

/* Something for an empty reader to point at: NULL + 0 is not valid C. */
static const uint8_t empty_buf[1];

void kr_init(kr_t *r, const void *buf, size_t len)
{
    r->p = buf ? (const uint8_t *)buf : empty_buf;
    r->end = r->p + (buf ? len : 0);
    r->err = KR_OK;
}

/* Records the first error only: it is the one that explains the frame. */
static void kr_fail(kr_t *r, int err)
{
    if (!r->err)
        r->err = err;
}

/* Returns n readable bytes and advances, or NULL after setting err. */
static const uint8_t *kr_take(kr_t *r, size_t n)
{
    if (r->err)
        return NULL;
    if ((size_t)(r->end - r->p) < n) {
        kr_fail(r, KR_ERR_SHORT);
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}

/*
 * Big-endian load, byte by byte: no alignment assumptions about the
 * frame, and compilers turn the loop into a single load plus bswap.
 */
static uint64_t be_read(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/*
 * Fixed-width reads.  Signed values go through the unsigned type of the
 * same width: the conversion is implementation-defined rather than
 * undefined, and every compiler Runnel supports wraps as two's complement.
 */
int8_t kr_i8(kr_t *r)
{
    const uint8_t *p = kr_take(r, 1);
    return p ? (int8_t)p[0] : 0;
}

int16_t kr_i16(kr_t *r)
{
    const uint8_t *p = kr_take(r, 2);
    return p ? (int16_t)be_read(p, 2) : 0;
}

int32_t kr_i32(kr_t *r)
{
    const uint8_t *p = kr_take(r, 4);
    return p ? (int32_t)be_read(p, 4) : 0;
}

int64_t kr_i64(kr_t *r)
{
    const uint8_t *p = kr_take(r, 8);
    return p ? (int64_t)be_read(p, 8) : 0;
}

uint16_t kr_u16(kr_t *r)
{
    const uint8_t *p = kr_take(r, 2);
    return p ? (uint16_t)be_read(p, 2) : 0;
}

uint32_t kr_u32(kr_t *r)
{
    const uint8_t *p = kr_take(r, 4);
    return p ? (uint32_t)be_read(p, 4) : 0;
}

double kr_f64(kr_t *r)
{
    const uint8_t *p = kr_take(r, 8);
    uint64_t bits = p ? be_read(p, 8) : 0;
    double d;
    memcpy(&d, &bits, sizeof(d)); /* the wire carries IEEE 754 bits */
    return d;
}

bool kr_bool(kr_t *r)
{
    /* Kafka reads any non-zero byte as true. */
    return kr_i8(r) != 0;
}

/*
 * Unsigned LEB128 of at most max_bytes bytes.  Like Kafka's ByteUtils, a
 * continuation bit on the last allowed byte is an error, while surplus
 * high bits in that byte are dropped.
 */
static uint64_t kr_leb(kr_t *r, int max_bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < max_bytes; i++) {
        const uint8_t *p = kr_take(r, 1);
        if (!p)
            return 0;
        v |= (uint64_t)(p[0] & 0x7f) << (7 * i);
        if (!(p[0] & 0x80))
            return v;
    }
    kr_fail(r, KR_ERR_INVALID);
    return 0;
}

/* Zig-zag maps 0, -1, 1, -2 ... to 0, 1, 2, 3 ... so small negatives stay short. */
int32_t kr_varint(kr_t *r)
{
    uint32_t u = (uint32_t)kr_leb(r, 5);
    return (int32_t)((u >> 1) ^ (~(u & 1) + 1)); /* undo zig-zag */
}

int64_t kr_varlong(kr_t *r)
{
    uint64_t u = kr_leb(r, 10);
    return (int64_t)((u >> 1) ^ (~(u & 1) + 1));
}

/* Compact lengths, array counts and tags: unsigned, at most 5 bytes. */
uint32_t kr_uvarint(kr_t *r)
{
    return (uint32_t)kr_leb(r, 5);
}

kuuid_t kr_uuid(kr_t *r)
{
    kuuid_t u;
    const uint8_t *p = kr_take(r, 16);
    if (p)
        memcpy(u.b, p, 16);
    else
        memset(u.b, 0, 16);
    return u;
}

/*
 * Turns a decoded length into a view.  len == -1 is null; anything more
 * negative is invalid; a length past the end is a short read.
 */
static const uint8_t *kr_view(kr_t *r, int64_t len, int32_t *out_len)
{
    *out_len = 0;
    if (r->err)
        return NULL;
    if (len == -1) {
        *out_len = -1;
        return NULL;
    }
    if (len < -1 || len > INT32_MAX) {
        kr_fail(r, KR_ERR_INVALID);
        return NULL;
    }
    const uint8_t *p = kr_take(r, (size_t)len);
    if (p)
        *out_len = (int32_t)len;
    return p;
}

/* Compact lengths are stored as length + 1 so that 0 can mean null. */
static int64_t kr_compact_len(kr_t *r)
{
    return (int64_t)kr_uvarint(r) - 1;
}

/*
 * The string and bytes readers differ only in how the length is stored;
 * the lengths are widened to int64 first so that a compact length of
 * UINT32_MAX (len + 1 overflow) or a negative classic one is caught in
 * kr_view instead of wrapping.
 */
kstr_t kr_str(kr_t *r)
{
    kstr_t s;
    int64_t n = kr_i16(r);
    s.ptr = (const char *)kr_view(r, n, &s.len);
    return s;
}

kstr_t kr_cstr(kr_t *r)
{
    kstr_t s;
    int64_t n = kr_compact_len(r);
    s.ptr = (const char *)kr_view(r, n, &s.len);
    return s;
}

kbytes_t kr_bytes(kr_t *r)
{
    kbytes_t b;
    int64_t n = kr_i32(r);
    b.ptr = kr_view(r, n, &b.len);
    return b;
}

kbytes_t kr_cbytes(kr_t *r)
{
    kbytes_t b;
    int64_t n = kr_compact_len(r);
    b.ptr = kr_view(r, n, &b.len);
    return b;
}

kbytes_t kr_varbytes(kr_t *r)
{
    kbytes_t b;
    int64_t n = kr_varint(r);
    b.ptr = kr_view(r, n, &b.len);
    return b;
}

/* The caller gets a pointer into the frame, valid while the frame is. */
const uint8_t *kr_raw(kr_t *r, size_t n)
{
    return kr_take(r, n);
}

void kr_skip(kr_t *r, size_t n)
{
    kr_take(r, n);
}

int32_t kr_array_len(kr_t *r, bool compact, size_t min_elem_size)
{
    int64_t n = compact ? kr_compact_len(r) : kr_i32(r);
    /* Errors return 0, not -1, so a caller never mistakes one for null. */
    if (r->err)
        return 0;
    if (n == -1)
        return -1;
    if (n < -1 || n > INT32_MAX) {
        kr_fail(r, KR_ERR_INVALID);
        return 0;
    }
    /* Refuse before anyone allocates: n elements need n * min bytes. */
    if (min_elem_size && (uint64_t)n > kr_remaining(r) / min_elem_size) {
        kr_fail(r, KR_ERR_INVALID);
        return 0;
    }
    return (int32_t)n;
}

void kr_skip_tags(kr_t *r)
{
    uint32_t n = kr_uvarint(r);
    /* Each iteration consumes bytes or fails, so a huge n ends quickly. */
    for (uint32_t i = 0; i < n && !r->err; i++) {
        kr_uvarint(r); /* tag */
        kr_skip(r, kr_uvarint(r));
    }
}

/* ---- writer ---- */

/* initial_cap may be 0: the first write then allocates. */
void kw_init(kw_t *w, size_t initial_cap)
{
    memset(w, 0, sizeof(*w));
    if (initial_cap) {
        w->buf = malloc(initial_cap);
        if (w->buf)
            w->cap = initial_cap;
        else
            w->err = 1;
    }
}

void kw_free(kw_t *w)
{
    /* File ranges still here were never sent: drop their references. */
    for (int i = 0; i < w->n_ext; i++)
        if (w->ext[i].release)
            w->ext[i].release(w->ext[i].release_arg);
    free(w->buf);
    free(w->ext);
    /* A zeroed writer is a valid empty one, so kw_free twice is harmless. */
    memset(w, 0, sizeof(*w));
}

/*
 * Reuse starts from an empty buffer rather than keeping the old capacity:
 * one huge response must not pin its memory for the connection's life.
 */
void kw_reset(kw_t *w)
{
    kw_free(w);
}

/* Makes room for n more bytes; geometric growth keeps appends O(1). */
static bool kw_grow(kw_t *w, size_t n)
{
    if (w->err)
        return false;
    if (w->cap - w->len >= n)
        return true;
    if (n > SIZE_MAX / 2 - w->len) {
        w->err = 1;
        return false;
    }
    size_t cap = w->cap ? w->cap : 64;
    while (cap - w->len < n)
        cap *= 2;
    uint8_t *buf = realloc(w->buf, cap);
    if (!buf) {
        w->err = 1;
        return false;
    }
    w->buf = buf;
    w->cap = cap;
    return true;
}

/* Every writer below funnels through here, so err is checked once. */
void kw_raw(kw_t *w, const void *p, size_t n)
{
    if (!n || !kw_grow(w, n))
        return;
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

/* Big-endian store of the low n bytes of v (network byte order). */
static void be_write(kw_t *w, uint64_t v, int n)
{
    uint8_t b[8];
    for (int i = n - 1; i >= 0; i--) {
        b[i] = (uint8_t)v;
        v >>= 8;
    }
    kw_raw(w, b, (size_t)n);
}

void kw_i8(kw_t *w, int8_t v)
{
    be_write(w, (uint8_t)v, 1);
}

void kw_i16(kw_t *w, int16_t v)
{
    be_write(w, (uint16_t)v, 2);
}

void kw_i32(kw_t *w, int32_t v)
{
    be_write(w, (uint32_t)v, 4);
}

void kw_i64(kw_t *w, int64_t v)
{
    be_write(w, (uint64_t)v, 8);
}

void kw_u16(kw_t *w, uint16_t v)
{
    be_write(w, v, 2);
}

void kw_u32(kw_t *w, uint32_t v)
{
    be_write(w, v, 4);
}

void kw_f64(kw_t *w, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    be_write(w, bits, 8);
}

void kw_bool(kw_t *w, bool v)
{
    be_write(w, v ? 1 : 0, 1);
}

/* Unsigned LEB128: 7 bits per byte, low group first, top bit = "more". */
static void kw_leb(kw_t *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    while (v >= 0x80) {
        b[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[n++] = (uint8_t)v;
    kw_raw(w, b, n);
}

void kw_varint(kw_t *w, int32_t v)
{
    /* Zig-zag in 32 bits so that the encoding is at most 5 bytes. */
    kw_leb(w, ((uint32_t)v << 1) ^ (uint32_t)(v >> 31));
}

void kw_varlong(kw_t *w, int64_t v)
{
    kw_leb(w, kzigzag64(v));
}

void kw_uvarint(kw_t *w, uint32_t v)
{
    kw_leb(w, v);
}

void kw_uuid(kw_t *w, kuuid_t v)
{
    kw_raw(w, v.b, 16);
}

/*
 * A classic string cannot be longer than INT16_MAX.  Producing one is a
 * bug in the caller; failing the writer beats sending a corrupt frame.
 */
void kw_str(kw_t *w, kstr_t s)
{
    if (s.len < 0) {
        kw_i16(w, -1);
        return;
    }
    if (s.len > INT16_MAX) {
        w->err = 1;
        return;
    }
    kw_i16(w, (int16_t)s.len);
    kw_raw(w, s.ptr, (size_t)s.len);
}

/* Compact forms store length + 1, leaving 0 for null. */
void kw_cstr(kw_t *w, kstr_t s)
{
    if (s.len < 0) {
        kw_uvarint(w, 0);
        return;
    }
    kw_uvarint(w, (uint32_t)s.len + 1);
    kw_raw(w, s.ptr, (size_t)s.len);
}

void kw_bytes(kw_t *w, kbytes_t b)
{
    if (b.len < 0) {
        kw_i32(w, -1);
        return;
    }
    kw_i32(w, b.len);
    kw_raw(w, b.ptr, (size_t)b.len);
}

void kw_cbytes(kw_t *w, kbytes_t b)
{
    if (b.len < 0) {
        kw_uvarint(w, 0);
        return;
    }
    kw_uvarint(w, (uint32_t)b.len + 1);
    kw_raw(w, b.ptr, (size_t)b.len);
}

/* Record keys, values and headers: signed varint length, -1 for null. */
void kw_varbytes(kw_t *w, kbytes_t b)
{
    if (b.len < 0) {
        kw_varint(w, -1);
        return;
    }
    kw_varint(w, b.len);
    kw_raw(w, b.ptr, (size_t)b.len);
}

/*
 * A null value takes no file reference (fd is ignored).  Any other value
 * with fd >= 0 hands its reference to the writer, even when len == 0, so
 * the caller's rule is simple: encode such a message exactly once.
 */
void kw_records(kw_t *w, const krecords_t *rec, bool compact)
{
    if (rec->len < 0) {
        if (compact)
            kw_uvarint(w, 0);
        else
            kw_i32(w, -1);
        return;
    }
    if (compact)
        kw_uvarint(w, (uint32_t)rec->len + 1);
    else
        kw_i32(w, rec->len);
    /* The prefix is in memory; the bytes themselves may stay in the file. */
    if (rec->fd >= 0)
        kw_file(w, rec->fd, rec->file_off, rec->len, rec->release, rec->release_arg);
    else
        kw_raw(w, rec->ptr, (size_t)rec->len);
}

/*
 * The range is recorded at the current memory position: the sender emits
 * buf[0..at), then the file range, then the memory that follows, so the
 * wire order is exactly the order of the kw_ calls.
 */
void kw_file(kw_t *w, int fd, int64_t off, int32_t len, void (*release)(void *), void *arg)
{
    if (!w->err && w->n_ext == w->cap_ext) {
        int cap = w->cap_ext ? w->cap_ext * 2 : 4;
        kw_ext_t *ext = realloc(w->ext, (size_t)cap * sizeof(*ext));
        if (ext) {
            w->ext = ext;
            w->cap_ext = cap;
        } else {
            w->err = 1;
        }
    }
    if (w->err) {
        /* We own the reference from here on; nobody will send it. */
        if (release)
            release(arg);
        return;
    }
    kw_ext_t *e = &w->ext[w->n_ext++];
    e->at = w->len;
    e->fd = fd;
    e->off = off;
    e->len = len;
    e->release = release;
    e->release_arg = arg;
    w->ext_bytes += len;
}

/*
 * Zero-filled so that an unpatched reservation is at least deterministic.
 * On failure returns 0; kw_patch_i32 is then a no-op because err is set.
 */
size_t kw_reserve(kw_t *w, size_t n)
{
    if (!kw_grow(w, n))
        return 0;
    size_t at = w->len;
    memset(w->buf + at, 0, n);
    w->len += n;
    return at;
}

void kw_patch_i32(kw_t *w, size_t at, int32_t v)
{
    if (w->err || at > w->len || w->len - at < 4)
        return;
    uint32_t u = (uint32_t)v;
    for (int i = 3; i >= 0; i--) {
        w->buf[at + (size_t)i] = (uint8_t)u;
        u >>= 8;
    }
}

/* Takes an already zig-zagged (or unsigned) value: 7 bits per byte. */
size_t kvarint_size(int64_t v)
{
    uint64_t u = (uint64_t)v;
    size_t n = 1;
    while (u >= 0x80) {
        u >>= 7;
        n++;
    }
    return n;
}

/* C strings longer than INT32_MAX cannot occur in a Kafka message. */
kstr_t kstr_c(const char *s)
{
    kstr_t k = {s, -1};
    if (s) {
        size_t n = strlen(s);
        k.len = n > INT32_MAX ? INT32_MAX : (int32_t)n;
    }
    return k;
}

/* Null equals only NULL; "" and null are different strings in Kafka. */
bool kstr_eq(kstr_t a, const char *s)
{
    if (!s || a.len < 0)
        return !s && a.len < 0;
    size_t n = strlen(s);
    return (size_t)a.len == n && (n == 0 || memcmp(a.ptr, s, n) == 0);
}
