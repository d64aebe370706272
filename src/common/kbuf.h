/*
 * kbuf: bounds-checked reader and writer for the Kafka wire primitives.
 *
 * Every protocol decoder and encoder in Runnel goes through these two types.
 *
 * Reader (kr_t): reads big-endian integers, (unsigned) varints, classic and
 * compact strings/bytes/arrays, uuids and tagged-field sections from a
 * byte range.  A read past the end, a negative length where none is
 * allowed, or an over-long varint sets r->err (sticky) and every later
 * read returns zero values, so a decoder checks r->err once at the end
 * instead of after every field.  Strings and bytes are views into the
 * input buffer, never copies: the buffer must outlive the decoded message.
 *
 * Writer (kw_t): a growable memory buffer plus a list of "external" byte
 * ranges that live in files (record data served by Fetch).  The response
 * is the memory bytes with the file ranges spliced in at the positions
 * where they were added; net/conn.c sends it with writev + sendfile so
 * record data never passes through user space.  Allocation failure sets
 * w->err (sticky).
 */
#ifndef RUNNEL_KBUF_H
#define RUNNEL_KBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A string view; len == -1 means null. */
typedef struct kstr {
    const char *ptr;
    int32_t len;
} kstr_t;

/* A bytes view; len == -1 means null. */
typedef struct kbytes {
    const uint8_t *ptr;
    int32_t len;
} kbytes_t;

typedef struct kuuid {
    uint8_t b[16];
} kuuid_t;

/*
 * The "records" field type.  Decoding fills ptr/len (fd = -1).  For
 * encoding, a Fetch handler may instead point at file bytes: fd >= 0 and
 * len bytes at file_off; release(release_arg) is called once the bytes
 * have been sent or the response is dropped (it unpins the segment).
 */
typedef struct krecords {
    const uint8_t *ptr;
    int32_t len; /* -1 = null */
    int fd;
    int64_t file_off;
    void (*release)(void *arg);
    void *release_arg;
} krecords_t;

enum kr_error {
    KR_OK = 0,
    KR_ERR_SHORT = 1,   /* read past the end of the buffer */
    KR_ERR_INVALID = 2, /* bad length, bad varint, impossible count */
};

typedef struct kr {
    const uint8_t *p;
    const uint8_t *end;
    int err;
} kr_t;

void kr_init(kr_t *r, const void *buf, size_t len);
static inline size_t kr_remaining(const kr_t *r)
{
    return r->err ? 0 : (size_t)(r->end - r->p);
}

int8_t kr_i8(kr_t *r);
int16_t kr_i16(kr_t *r);
int32_t kr_i32(kr_t *r);
int64_t kr_i64(kr_t *r);
uint16_t kr_u16(kr_t *r);
uint32_t kr_u32(kr_t *r);
double kr_f64(kr_t *r);
bool kr_bool(kr_t *r);
/* Zig-zag signed varints (record format) and unsigned varints (compact). */
int32_t kr_varint(kr_t *r);
int64_t kr_varlong(kr_t *r);
uint32_t kr_uvarint(kr_t *r);
kuuid_t kr_uuid(kr_t *r);
/* Classic: int16 length (-1 null).  Compact: uvarint length+1 (0 null). */
kstr_t kr_str(kr_t *r);
kstr_t kr_cstr(kr_t *r);
/* Classic: int32 length (-1 null).  Compact: uvarint length+1 (0 null). */
kbytes_t kr_bytes(kr_t *r);
kbytes_t kr_cbytes(kr_t *r);
/* Varint length-prefixed bytes as in record keys/values (-1 null). */
kbytes_t kr_varbytes(kr_t *r);
/* Raw view of n bytes. */
const uint8_t *kr_raw(kr_t *r, size_t n);
void kr_skip(kr_t *r, size_t n);
/*
 * Array length: classic int32 (-1 null) or compact uvarint (0 null).
 * Returns -1 for null.  A count larger than the bytes left (every element
 * takes at least min_elem_size bytes) sets KR_ERR_INVALID, so a decoder
 * never allocates for a count the frame cannot hold.
 */
int32_t kr_array_len(kr_t *r, bool compact, size_t min_elem_size);
/* Skips a whole tagged-field section (count, then tag/size/bytes). */
void kr_skip_tags(kr_t *r);

/* ---- writer ---- */

typedef struct kw_ext {
    size_t at; /* position in the memory buffer where these bytes go */
    int fd;
    int64_t off;
    int32_t len;
    void (*release)(void *arg);
    void *release_arg;
} kw_ext_t;

typedef struct kw {
    uint8_t *buf;
    size_t len; /* memory bytes written */
    size_t cap;
    kw_ext_t *ext;
    int n_ext;
    int cap_ext;
    int64_t ext_bytes; /* sum of ext[].len */
    int err;           /* sticky: allocation failure */
} kw_t;

void kw_init(kw_t *w, size_t initial_cap);
/* Releases the file references that were never sent and frees memory. */
void kw_free(kw_t *w);
void kw_reset(kw_t *w); /* like kw_free, then ready for reuse */

void kw_i8(kw_t *w, int8_t v);
void kw_i16(kw_t *w, int16_t v);
void kw_i32(kw_t *w, int32_t v);
void kw_i64(kw_t *w, int64_t v);
void kw_u16(kw_t *w, uint16_t v);
void kw_u32(kw_t *w, uint32_t v);
void kw_f64(kw_t *w, double v);
void kw_bool(kw_t *w, bool v);
void kw_varint(kw_t *w, int32_t v);
void kw_varlong(kw_t *w, int64_t v);
void kw_uvarint(kw_t *w, uint32_t v);
void kw_uuid(kw_t *w, kuuid_t v);
void kw_str(kw_t *w, kstr_t s);
void kw_cstr(kw_t *w, kstr_t s);
void kw_bytes(kw_t *w, kbytes_t b);
void kw_cbytes(kw_t *w, kbytes_t b);
void kw_varbytes(kw_t *w, kbytes_t b);
void kw_raw(kw_t *w, const void *p, size_t n);
/* Records: memory or file range, classic (int32 len) or compact. */
void kw_records(kw_t *w, const krecords_t *rec, bool compact);
/* Appends a file range at the current position (takes the reference). */
void kw_file(kw_t *w, int fd, int64_t off, int32_t len, void (*release)(void *), void *arg);
/* Reserves n bytes and returns their position, for patching later. */
size_t kw_reserve(kw_t *w, size_t n);
void kw_patch_i32(kw_t *w, size_t at, int32_t v);
/* Total size: memory bytes plus file bytes. */
static inline int64_t kw_total(const kw_t *w)
{
    return (int64_t)w->len + w->ext_bytes;
}

/* Sizes, for callers that must know an encoding's length in advance. */
size_t kvarint_size(int64_t zigzagged_or_unsigned);
static inline uint64_t kzigzag64(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

/* Helpers for building views. */
kstr_t kstr_c(const char *s); /* NULL -> null string */
bool kstr_eq(kstr_t a, const char *s);

#endif
