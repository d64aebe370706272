/*
 * test_kbuf: the wire primitives and the arena.
 *
 * Known encodings come from the Kafka protocol guide and the varint
 * definition it points to (protobuf's base-128 varints with zig-zag for
 * signed values).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/kbuf.h"
#include "tap.h"

/* True when the writer holds exactly the n bytes of want. */
static int bytes_are(const kw_t *w, const uint8_t *want, size_t n)
{
    return w->len == n && (n == 0 || memcmp(w->buf, want, n) == 0);
}

#define BYTES_ARE(w, ...)                                                                          \
    do {                                                                                           \
        static const uint8_t want_[] = {__VA_ARGS__};                                              \
        CHECK(bytes_are((w), want_, sizeof(want_)));                                               \
    } while (0)

static void test_fixed_width(void)
{
    kw_t w;
    kw_init(&w, 0);
    kw_i8(&w, -2);
    kw_i16(&w, 0x0102);
    kw_i32(&w, -1);
    kw_i64(&w, INT64_C(0x0102030405060708));
    kw_u16(&w, 0xfffe);
    kw_u32(&w, 0x80000000u);
    kw_bool(&w, true);
    kw_f64(&w, 1.5);
    BYTES_ARE(&w, 0xfe, 0x01, 0x02, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 0xff, 0xfe,
              0x80, 0, 0, 0, 1, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0);

    kr_t r;
    kr_init(&r, w.buf, w.len);
    CHECK_EQ_INT(kr_i8(&r), -2);
    CHECK_EQ_INT(kr_i16(&r), 0x0102);
    CHECK_EQ_INT(kr_i32(&r), -1);
    CHECK(kr_i64(&r) == INT64_C(0x0102030405060708));
    CHECK_EQ_INT(kr_u16(&r), 0xfffe);
    CHECK(kr_u32(&r) == 0x80000000u);
    CHECK(kr_bool(&r) == true);
    CHECK(kr_f64(&r) == 1.5);
    CHECK_EQ_INT(kr_remaining(&r), 0);
    CHECK_EQ_INT(r.err, KR_OK);
    kw_free(&w);

    /* Any non-zero byte is true, as in Kafka. */
    static const uint8_t two = 2;
    kr_init(&r, &two, 1);
    CHECK(kr_bool(&r) == true);
}

static void test_varint_values(void)
{
    static const int32_t v32[] = {
        0,     -1,    1,       63,      -64,           64,        127,       128,       -128, 300,
        16383, 16384, 1 << 21, 1 << 28, (1 << 28) - 1, INT32_MAX, INT32_MIN, -(1 << 28)};
    for (size_t i = 0; i < sizeof(v32) / sizeof(v32[0]); i++) {
        kw_t w;
        kw_init(&w, 0);
        kw_varint(&w, v32[i]);
        CHECK(w.len <= 5);
        CHECK_EQ_INT(w.len, kvarint_size((int64_t)kzigzag64(v32[i])));
        kr_t r;
        kr_init(&r, w.buf, w.len);
        CHECK_EQ_INT(kr_varint(&r), v32[i]);
        CHECK_EQ_INT(kr_remaining(&r), 0);
        CHECK_EQ_INT(r.err, 0);
        kw_free(&w);
    }
    static const int64_t v64[] = {0,
                                  -1,
                                  1,
                                  127,
                                  128,
                                  INT64_MAX,
                                  INT64_MIN,
                                  (int64_t)1 << 35,
                                  -((int64_t)1 << 62),
                                  INT32_MIN,
                                  INT32_MAX};
    for (size_t i = 0; i < sizeof(v64) / sizeof(v64[0]); i++) {
        kw_t w;
        kw_init(&w, 0);
        kw_varlong(&w, v64[i]);
        CHECK(w.len <= 10);
        CHECK_EQ_INT(w.len, kvarint_size((int64_t)kzigzag64(v64[i])));
        kr_t r;
        kr_init(&r, w.buf, w.len);
        CHECK(kr_varlong(&r) == v64[i]);
        CHECK_EQ_INT(kr_remaining(&r), 0);
        kw_free(&w);
    }
    static const uint32_t u32[] = {0, 1, 127, 128, 300, 16383, 16384, 1u << 28, UINT32_MAX};
    for (size_t i = 0; i < sizeof(u32) / sizeof(u32[0]); i++) {
        kw_t w;
        kw_init(&w, 0);
        kw_uvarint(&w, u32[i]);
        CHECK_EQ_INT(w.len, kvarint_size(u32[i]));
        kr_t r;
        kr_init(&r, w.buf, w.len);
        CHECK(kr_uvarint(&r) == u32[i]);
        CHECK_EQ_INT(kr_remaining(&r), 0);
        kw_free(&w);
    }
}

static void test_varint_bytes(void)
{
    kw_t w;
    /* Zig-zag: 0 -> 00, -1 -> 01, 1 -> 02, -64 -> 7f, 64 -> 80 01. */
    kw_init(&w, 0);
    kw_varint(&w, 0);
    kw_varint(&w, -1);
    kw_varint(&w, 1);
    kw_varint(&w, -64);
    kw_varint(&w, 64);
    BYTES_ARE(&w, 0x00, 0x01, 0x02, 0x7f, 0x80, 0x01);
    kw_free(&w);

    /* Unsigned: 300 -> ac 02 (the protobuf example), 127 -> 7f, 128 -> 80 01. */
    kw_init(&w, 0);
    kw_uvarint(&w, 300);
    kw_uvarint(&w, 127);
    kw_uvarint(&w, 128);
    kw_uvarint(&w, UINT32_MAX);
    BYTES_ARE(&w, 0xac, 0x02, 0x7f, 0x80, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f);
    kw_free(&w);

    /* INT32_MIN zig-zags to UINT32_MAX; INT32_MAX to UINT32_MAX - 1. */
    kw_init(&w, 0);
    kw_varint(&w, INT32_MIN);
    kw_varint(&w, INT32_MAX);
    BYTES_ARE(&w, 0xff, 0xff, 0xff, 0xff, 0x0f, 0xfe, 0xff, 0xff, 0xff, 0x0f);
    kw_free(&w);

    /* INT64_MIN: ten bytes, nine ff then 01. */
    kw_init(&w, 0);
    kw_varlong(&w, INT64_MIN);
    BYTES_ARE(&w, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
    kw_free(&w);

    CHECK_EQ_INT(kvarint_size(0), 1);
    CHECK_EQ_INT(kvarint_size(127), 1);
    CHECK_EQ_INT(kvarint_size(128), 2);
    CHECK_EQ_INT(kvarint_size(1 << 28), 5);
    CHECK_EQ_INT(kvarint_size(-1), 10);
}

static void test_varint_errors(void)
{
    kr_t r;
    /* Six bytes with continuation bits: over-long for a 32-bit varint. */
    static const uint8_t long5[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    kr_init(&r, long5, sizeof(long5));
    CHECK_EQ_INT(kr_uvarint(&r), 0);
    CHECK_EQ_INT(r.err, KR_ERR_INVALID);
    kr_init(&r, long5, sizeof(long5));
    kr_varint(&r);
    CHECK_EQ_INT(r.err, KR_ERR_INVALID);

    /* Eleven bytes: over-long for a 64-bit varint. */
    static const uint8_t long10[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                     0x80, 0x80, 0x80, 0x80, 0x01};
    kr_init(&r, long10, sizeof(long10));
    kr_varlong(&r);
    CHECK_EQ_INT(r.err, KR_ERR_INVALID);

    /* Exactly five bytes is fine. */
    static const uint8_t ok5[] = {0x80, 0x80, 0x80, 0x80, 0x01};
    kr_init(&r, ok5, sizeof(ok5));
    CHECK(kr_uvarint(&r) == 1u << 28);
    CHECK_EQ_INT(r.err, 0);

    /* Truncated varint: a continuation bit and then nothing. */
    static const uint8_t cut[] = {0x80};
    kr_init(&r, cut, 1);
    kr_varint(&r);
    CHECK_EQ_INT(r.err, KR_ERR_SHORT);
}

static void test_strings(void)
{
    kw_t w;
    kw_init(&w, 0);
    kw_str(&w, kstr_c("ab"));
    kw_str(&w, kstr_c(NULL));
    kw_cstr(&w, kstr_c("ab"));
    kw_cstr(&w, kstr_c(NULL));
    kw_cstr(&w, kstr_c(""));
    kw_bytes(&w, (kbytes_t){(const uint8_t *)"\x01", 1});
    kw_bytes(&w, (kbytes_t){NULL, -1});
    kw_cbytes(&w, (kbytes_t){(const uint8_t *)"\x01", 1});
    kw_cbytes(&w, (kbytes_t){NULL, -1});
    kw_varbytes(&w, (kbytes_t){(const uint8_t *)"\x01", 1});
    kw_varbytes(&w, (kbytes_t){NULL, -1});
    BYTES_ARE(&w, 0x00, 0x02, 'a', 'b', 0xff, 0xff, 0x03, 'a', 'b', 0x00, 0x01, 0, 0, 0, 1, 0x01,
              0xff, 0xff, 0xff, 0xff, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01);

    kr_t r;
    kr_init(&r, w.buf, w.len);
    kstr_t s = kr_str(&r);
    CHECK(kstr_eq(s, "ab"));
    CHECK(s.ptr == (const char *)w.buf + 2); /* a view, not a copy */
    CHECK_EQ_INT(kr_str(&r).len, -1);
    CHECK(kstr_eq(kr_cstr(&r), "ab"));
    CHECK(kstr_eq(kr_cstr(&r), NULL));
    s = kr_cstr(&r);
    CHECK(s.len == 0 && kstr_eq(s, ""));
    kbytes_t b = kr_bytes(&r);
    CHECK(b.len == 1 && b.ptr[0] == 1);
    CHECK_EQ_INT(kr_bytes(&r).len, -1);
    b = kr_cbytes(&r);
    CHECK(b.len == 1 && b.ptr[0] == 1);
    CHECK_EQ_INT(kr_cbytes(&r).len, -1);
    b = kr_varbytes(&r);
    CHECK(b.len == 1 && b.ptr[0] == 1);
    CHECK_EQ_INT(kr_varbytes(&r).len, -1);
    CHECK_EQ_INT(kr_remaining(&r), 0);
    CHECK_EQ_INT(r.err, 0);
    kw_free(&w);

    CHECK(kstr_eq(kstr_c("x"), "x"));
    CHECK(!kstr_eq(kstr_c("x"), "xy"));
    CHECK(!kstr_eq(kstr_c(NULL), ""));
    CHECK(!kstr_eq(kstr_c(""), NULL));

    /* A length of -2 is never valid. */
    static const uint8_t neg[] = {0xff, 0xfe};
    kr_init(&r, neg, sizeof(neg));
    kr_str(&r);
    CHECK_EQ_INT(r.err, KR_ERR_INVALID);
}

static void test_sticky_short(void)
{
    static const uint8_t buf[] = {0x00, 0x05, 'a', 'b'};
    kr_t r;
    kr_init(&r, buf, sizeof(buf));
    kstr_t s = kr_str(&r); /* says 5, only 2 left */
    CHECK_EQ_INT(r.err, KR_ERR_SHORT);
    CHECK(s.ptr == NULL && s.len == 0);
    /* Sticky: nothing reads, everything is zero, remaining is 0. */
    CHECK_EQ_INT(kr_i8(&r), 0);
    CHECK_EQ_INT(kr_i32(&r), 0);
    CHECK_EQ_INT(kr_remaining(&r), 0);
    CHECK(kr_raw(&r, 0) == NULL);
    CHECK_EQ_INT(r.err, KR_ERR_SHORT);

    kr_init(&r, buf, 3);
    CHECK_EQ_INT(kr_i16(&r), 5);
    CHECK_EQ_INT(kr_i16(&r), 0); /* one byte left: short */
    CHECK_EQ_INT(r.err, KR_ERR_SHORT);

    kr_init(&r, NULL, 0);
    CHECK_EQ_INT(kr_remaining(&r), 0);
    kr_i8(&r);
    CHECK_EQ_INT(r.err, KR_ERR_SHORT);

    kr_init(&r, buf, sizeof(buf));
    kr_skip(&r, 5);
    CHECK_EQ_INT(r.err, KR_ERR_SHORT);
    kr_init(&r, buf, sizeof(buf));
    CHECK(kr_raw(&r, 4) == buf);
    CHECK_EQ_INT(kr_remaining(&r), 0);
}

static void test_array_len(void)
{
    kr_t r;
    /* Classic count 3 with 12 bytes following: fine at 4 bytes each. */
    uint8_t buf[16] = {0, 0, 0, 3};
    kr_init(&r, buf, 16);
    CHECK_EQ_INT(kr_array_len(&r, false, 4), 3);
    CHECK_EQ_INT(r.err, 0);
    /* Same count needing 5 bytes each cannot fit: refused. */
    kr_init(&r, buf, 16);
    CHECK_EQ_INT(kr_array_len(&r, false, 5), 0);
    CHECK_EQ_INT(r.err, KR_ERR_INVALID);

    /* A huge count in a tiny frame never reaches an allocator. */
    static const uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff, 0};
    kr_init(&r, huge, sizeof(huge));
    kr_array_len(&r, false, 1);
    CHECK_EQ_INT(r.err, KR_ERR_INVALID);

    static const uint8_t cnull[] = {0x00}, cnull_classic[] = {0xff, 0xff, 0xff, 0xff};
    kr_init(&r, cnull, 1);
    CHECK_EQ_INT(kr_array_len(&r, true, 1), -1);
    kr_init(&r, cnull_classic, 4);
    CHECK_EQ_INT(kr_array_len(&r, false, 1), -1);
    CHECK_EQ_INT(r.err, 0);

    static const uint8_t minus2[] = {0xff, 0xff, 0xff, 0xfe};
    kr_init(&r, minus2, 4);
    kr_array_len(&r, false, 1);
    CHECK_EQ_INT(r.err, KR_ERR_INVALID);

    /* Compact 2 elements (uvarint 3) of 1 byte each. */
    static const uint8_t c2[] = {0x03, 'x', 'y'};
    kr_init(&r, c2, 3);
    CHECK_EQ_INT(kr_array_len(&r, true, 1), 2);
    kr_init(&r, c2, 2);
    kr_array_len(&r, true, 1);
    CHECK_EQ_INT(r.err, KR_ERR_INVALID);
}

static void test_tags(void)
{
    /* Two tagged fields (tag 0: 2 bytes, tag 5: 0 bytes), then 0x42. */
    static const uint8_t buf[] = {0x02, 0x00, 0x02, 0xaa, 0xbb, 0x05, 0x00, 0x42};
    kr_t r;
    kr_init(&r, buf, sizeof(buf));
    kr_skip_tags(&r);
    CHECK_EQ_INT(r.err, 0);
    CHECK_EQ_INT(kr_i8(&r), 0x42);

    /* A size past the end is a short read. */
    static const uint8_t bad[] = {0x01, 0x00, 0x09, 0xaa};
    kr_init(&r, bad, sizeof(bad));
    kr_skip_tags(&r);
    CHECK_EQ_INT(r.err, KR_ERR_SHORT);

    /* A count of 2^32-1 with no bytes behind it fails quickly. */
    static const uint8_t many[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    kr_init(&r, many, sizeof(many));
    kr_skip_tags(&r);
    CHECK(r.err != 0);
}

static void test_writer_growth(void)
{
    kw_t w;
    kw_init(&w, 1);
    for (int i = 0; i < 100000; i++)
        kw_i32(&w, i);
    CHECK_EQ_INT(w.len, 400000);
    CHECK(w.cap >= w.len && w.cap < 2 * w.len + 64);
    CHECK_EQ_INT(w.err, 0);
    kr_t r;
    kr_init(&r, w.buf, w.len);
    int ok = 1;
    for (int i = 0; i < 100000; i++)
        ok &= kr_i32(&r) == i;
    CHECK(ok);

    /* reserve + patch, the way a frame length is filled in last. */
    kw_reset(&w);
    CHECK_EQ_INT(w.len, 0);
    size_t at = kw_reserve(&w, 4);
    kw_i8(&w, 7);
    kw_patch_i32(&w, at, (int32_t)(w.len - at - 4));
    BYTES_ARE(&w, 0, 0, 0, 1, 7);
    kw_patch_i32(&w, 3, 0); /* out of range: ignored */
    BYTES_ARE(&w, 0, 0, 0, 1, 7);
    kw_free(&w);
    kw_free(&w); /* harmless twice */
}

static int released[4];

static void release_cb(void *arg)
{
    released[(int)(intptr_t)arg]++;
}

static void test_ext(void)
{
    kw_t w;
    kw_init(&w, 0);
    kw_i8(&w, 1);
    kw_file(&w, 3, 100, 50, release_cb, (void *)(intptr_t)0);
    kw_i8(&w, 2);

    /* Records from a file: length prefix in memory, bytes as a range. */
    krecords_t rec = {NULL, 20, 4, 7, release_cb, (void *)(intptr_t)1};
    kw_records(&w, &rec, false);
    krecords_t crec = {NULL, 20, 5, 9, release_cb, (void *)(intptr_t)2};
    kw_records(&w, &crec, true);
    /* Records in memory and null records take no file range. */
    krecords_t mem = {(const uint8_t *)"xyz", 3, -1, 0, NULL, NULL};
    kw_records(&w, &mem, true);
    krecords_t nul = {NULL, -1, -1, 0, NULL, NULL};
    kw_records(&w, &nul, false);

    BYTES_ARE(&w, 1, 2, 0, 0, 0, 20, 21, 4, 'x', 'y', 'z', 0xff, 0xff, 0xff, 0xff);
    CHECK_EQ_INT(w.n_ext, 3);
    CHECK_EQ_INT(w.ext[0].at, 1);
    CHECK_EQ_INT(w.ext[0].fd, 3);
    CHECK_EQ_INT(w.ext[0].off, 100);
    CHECK_EQ_INT(w.ext[0].len, 50);
    CHECK_EQ_INT(w.ext[1].at, 6);
    CHECK_EQ_INT(w.ext[1].fd, 4);
    CHECK_EQ_INT(w.ext[1].off, 7);
    CHECK_EQ_INT(w.ext[2].at, 7);
    CHECK_EQ_INT(w.ext_bytes, 90);
    CHECK_EQ_INT(kw_total(&w), 15 + 90);
    CHECK_EQ_INT(released[0] + released[1] + released[2], 0);
    kw_free(&w);
    CHECK(released[0] == 1 && released[1] == 1 && released[2] == 1);
    CHECK_EQ_INT(w.n_ext, 0);
    CHECK_EQ_INT(kw_total(&w), 0);

    /* kw_reset drops references too, and many ranges grow the list. */
    kw_init(&w, 0);
    for (int i = 0; i < 10; i++)
        kw_file(&w, 1, i, 1, release_cb, (void *)(intptr_t)3);
    kw_reset(&w);
    CHECK_EQ_INT(released[3], 10);
    kw_free(&w);
    CHECK_EQ_INT(released[3], 10);
}

static void test_uuid(void)
{
    kuuid_t u;
    for (int i = 0; i < 16; i++)
        u.b[i] = (uint8_t)(i * 17);
    kw_t w;
    kw_init(&w, 0);
    kw_uuid(&w, u);
    CHECK_EQ_INT(w.len, 16);
    kr_t r;
    kr_init(&r, w.buf, w.len);
    kuuid_t v = kr_uuid(&r);
    CHECK(memcmp(u.b, v.b, 16) == 0);
    kr_uuid(&r);
    CHECK_EQ_INT(r.err, KR_ERR_SHORT);
    kw_free(&w);
}

static void test_arena(void)
{
    arena_t a;
    arena_init(&a);
    int ok = 1;
    /* Many small, some large, all aligned, zeroed and writable. */
    for (int i = 0; i < 2000; i++) {
        size_t n = (i % 7 == 0) ? 70000 : (size_t)(i % 100);
        uint8_t *p = arena_alloc(&a, n);
        if (!p || ((uintptr_t)p & 15)) {
            ok = 0;
            break;
        }
        for (size_t k = 0; k < n; k++)
            ok &= p[k] == 0;
        memset(p, 0xa5, n);
    }
    CHECK(ok);
    CHECK(a.total > 0);
    char *s = arena_strndup(&a, "hello world", 5);
    CHECK(s && strcmp(s, "hello") == 0);
    void *z1 = arena_alloc(&a, 0), *z2 = arena_alloc(&a, 0);
    CHECK(z1 && z2 && z1 != z2);
    arena_free(&a);
    CHECK(a.head == NULL && a.total == 0);
    /* Reusable after free. */
    CHECK(arena_alloc(&a, 10) != NULL);
    arena_free(&a);
    arena_free(&a);
}

int main(void)
{
    test_fixed_width();
    test_varint_values();
    test_varint_bytes();
    test_varint_errors();
    test_strings();
    test_sticky_short();
    test_array_len();
    test_tags();
    test_writer_growth();
    test_ext();
    test_uuid();
    test_arena();
    return tap_done();
}
