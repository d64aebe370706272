/*
 * Record-batch codecs: gzip (zlib), snappy (raw and xerial framing), lz4
 * (frame format) and zstd (streaming).
 *
 * xerial snappy framing, as written by snappy-java's SnappyOutputStream
 * and read by every Kafka client:
 *
 *   offset  size  field
 *   0       8     magic 0x82 'S' 'N' 'A' 'P' 'P' 'Y' 0x00
 *   8       4     version, int32 big-endian (1)
 *   12      4     minimum compatible version, int32 big-endian (1)
 *   16      ...   blocks: int32 big-endian compressed length, then that
 *                 many bytes of raw snappy (each block decompresses alone)
 */
#include "storage/compress.h"

#include <lz4frame.h>
#include <snappy-c.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
#define XERIAL_HEADER_LEN 16
#define XERIAL_BLOCK_LEN (32 * 1024) /* snappy-java's default block size */

const char *compress_codec_name(int codec)
{
    switch (codec) {
    case COMPRESS_NONE:
        return "none";
    case COMPRESS_GZIP:
        return "gzip";
    case COMPRESS_SNAPPY:
        return "snappy";
    case COMPRESS_LZ4:
        return "lz4";
    case COMPRESS_ZSTD:
        return "zstd";
    }
    return "unknown";
}

/* A growable output buffer capped at `max` bytes. */
struct obuf {
    uint8_t *p;
    size_t len, cap, max;
};

static int obuf_init(struct obuf *o, size_t hint, size_t max)
{
    o->max = max;
    o->len = 0;
    o->cap = hint < 256 ? 256 : hint;
    if (o->cap > max)
        o->cap = max ? max : 1;
    o->p = malloc(o->cap);
    return o->p ? COMPRESS_OK : COMPRESS_ERR_NOMEM;
}

/* Makes room for at least `need` more bytes (or as many as the cap allows,
 * returning TOO_LARGE only when the buffer is already at the cap). */
static int obuf_grow(struct obuf *o, size_t need)
{
    if (o->cap - o->len >= need)
        return COMPRESS_OK;
    if (o->cap >= o->max)
        return COMPRESS_ERR_TOO_LARGE;
    size_t ncap = o->cap * 2;
    while (ncap - o->len < need && ncap < o->max)
        ncap *= 2;
    if (ncap > o->max)
        ncap = o->max;
    uint8_t *np = realloc(o->p, ncap);
    if (!np)
        return COMPRESS_ERR_NOMEM;
    o->p = np;
    o->cap = ncap;
    return COMPRESS_OK;
}

static int obuf_fail(struct obuf *o, int err)
{
    free(o->p);
    o->p = NULL;
    return err;
}

/* ---- gzip ---- */

static int gzip_decompress(const uint8_t *in, size_t in_len, struct obuf *o)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return COMPRESS_ERR_NOMEM;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)in_len;
    int rc = COMPRESS_OK;
    for (;;) {
        if (o->len == o->cap && (rc = obuf_grow(o, 1)) != COMPRESS_OK)
            break;
        z.next_out = o->p + o->len;
        z.avail_out = (uInt)(o->cap - o->len);
        int zr = inflate(&z, Z_NO_FLUSH);
        o->len = o->cap - z.avail_out;
        if (zr == Z_STREAM_END) {
            if (z.avail_in == 0)
                break;
            /* Concatenated gzip members are one stream to gunzip. */
            if (inflateReset(&z) != Z_OK) {
                rc = COMPRESS_ERR_DATA;
                break;
            }
            continue;
        }
        if (zr == Z_BUF_ERROR && z.avail_in == 0) {
            rc = COMPRESS_ERR_DATA; /* truncated */
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            rc = zr == Z_MEM_ERROR ? COMPRESS_ERR_NOMEM : COMPRESS_ERR_DATA;
            break;
        }
    }
    inflateEnd(&z);
    return rc;
}

static int gzip_compress(const uint8_t *in, size_t in_len, struct obuf *o)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return COMPRESS_ERR_NOMEM;
    size_t bound = deflateBound(&z, (uLong)in_len) + 32;
    int rc = obuf_grow(o, bound);
    if (rc == COMPRESS_OK) {
        z.next_in = (Bytef *)in;
        z.avail_in = (uInt)in_len;
        z.next_out = o->p;
        z.avail_out = (uInt)o->cap;
        if (deflate(&z, Z_FINISH) != Z_STREAM_END)
            rc = COMPRESS_ERR_DATA;
        o->len = o->cap - z.avail_out;
    }
    deflateEnd(&z);
    return rc;
}

/* ---- snappy ---- */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static int snappy_raw_block(const uint8_t *in, size_t in_len, struct obuf *o)
{
    size_t n;
    if (snappy_uncompressed_length((const char *)in, in_len, &n) != SNAPPY_OK)
        return COMPRESS_ERR_DATA;
    if (n > o->max - o->len)
        return COMPRESS_ERR_TOO_LARGE;
    int rc = obuf_grow(o, n);
    if (rc != COMPRESS_OK)
        return rc;
    size_t got = n;
    if (snappy_uncompress((const char *)in, in_len, (char *)o->p + o->len, &got) != SNAPPY_OK ||
        got != n)
        return COMPRESS_ERR_DATA;
    o->len += n;
    return COMPRESS_OK;
}

static int snappy_decompress(const uint8_t *in, size_t in_len, struct obuf *o)
{
    if (in_len < XERIAL_HEADER_LEN || memcmp(in, xerial_magic, sizeof xerial_magic) != 0)
        return snappy_raw_block(in, in_len, o);
    size_t pos = XERIAL_HEADER_LEN;
    while (pos < in_len) {
        if (in_len - pos < 4)
            return COMPRESS_ERR_DATA;
        uint32_t blen = be32(in + pos);
        pos += 4;
        if (blen > in_len - pos)
            return COMPRESS_ERR_DATA;
        int rc = snappy_raw_block(in + pos, blen, o);
        if (rc != COMPRESS_OK)
            return rc;
        pos += blen;
    }
    return COMPRESS_OK;
}

static int snappy_compress_xerial(const uint8_t *in, size_t in_len, struct obuf *o)
{
    size_t nblocks = in_len / XERIAL_BLOCK_LEN + 1;
    size_t bound =
        XERIAL_HEADER_LEN + nblocks * (4 + snappy_max_compressed_length(XERIAL_BLOCK_LEN));
    int rc = obuf_grow(o, bound);
    if (rc != COMPRESS_OK)
        return rc;
    memcpy(o->p, xerial_magic, sizeof xerial_magic);
    put_be32(o->p + 8, 1);
    put_be32(o->p + 12, 1);
    o->len = XERIAL_HEADER_LEN;
    for (size_t pos = 0; pos < in_len; pos += XERIAL_BLOCK_LEN) {
        size_t n = in_len - pos < XERIAL_BLOCK_LEN ? in_len - pos : XERIAL_BLOCK_LEN;
        size_t clen = o->cap - o->len - 4;
        if (snappy_compress((const char *)in + pos, n, (char *)o->p + o->len + 4, &clen) !=
            SNAPPY_OK)
            return COMPRESS_ERR_DATA;
        put_be32(o->p + o->len, (uint32_t)clen);
        o->len += 4 + clen;
    }
    return COMPRESS_OK;
}

/* ---- lz4 ---- */

static int lz4_decompress(const uint8_t *in, size_t in_len, struct obuf *o)
{
    LZ4F_dctx *dctx;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
        return COMPRESS_ERR_NOMEM;
    size_t pos = 0;
    size_t hint = 1;
    int rc = COMPRESS_OK;
    while (pos < in_len) {
        if (o->len == o->cap && (rc = obuf_grow(o, 1)) != COMPRESS_OK)
            break;
        size_t dst_size = o->cap - o->len;
        size_t src_size = in_len - pos;
        hint = LZ4F_decompress(dctx, o->p + o->len, &dst_size, in + pos, &src_size, NULL);
        if (LZ4F_isError(hint)) {
            rc = COMPRESS_ERR_DATA;
            break;
        }
        pos += src_size;
        o->len += dst_size;
        if (src_size == 0 && dst_size == 0 && o->len < o->cap) {
            rc = COMPRESS_ERR_DATA; /* no progress possible */
            break;
        }
    }
    /* Input used up: flush what the context still holds. */
    while (rc == COMPRESS_OK && hint != 0) {
        if (o->len == o->cap && (rc = obuf_grow(o, 1)) != COMPRESS_OK)
            break;
        size_t dst_size = o->cap - o->len;
        size_t src_size = 0;
        hint = LZ4F_decompress(dctx, o->p + o->len, &dst_size, in + pos, &src_size, NULL);
        if (LZ4F_isError(hint) || (dst_size == 0 && hint != 0)) {
            rc = COMPRESS_ERR_DATA; /* truncated frame */
            break;
        }
        o->len += dst_size;
    }
    LZ4F_freeDecompressionContext(dctx);
    return rc;
}

static int lz4_compress(const uint8_t *in, size_t in_len, struct obuf *o)
{
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof prefs);
    /* Independent 64 KiB blocks, as Kafka's Java producer writes them. */
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    size_t bound = LZ4F_compressFrameBound(in_len, &prefs);
    int rc = obuf_grow(o, bound);
    if (rc != COMPRESS_OK)
        return rc;
    size_t n = LZ4F_compressFrame(o->p, o->cap, in, in_len, &prefs);
    if (LZ4F_isError(n))
        return COMPRESS_ERR_DATA;
    o->len = n;
    return COMPRESS_OK;
}

/* ---- zstd ---- */

static int zstd_decompress(const uint8_t *in, size_t in_len, struct obuf *o)
{
    ZSTD_DStream *ds = ZSTD_createDStream();
    if (!ds)
        return COMPRESS_ERR_NOMEM;
    ZSTD_initDStream(ds);
    ZSTD_inBuffer ib = {in, in_len, 0};
    int rc = COMPRESS_OK;
    size_t r = 1;
    for (;;) {
        if (o->len == o->cap && (rc = obuf_grow(o, 1)) != COMPRESS_OK)
            break;
        ZSTD_outBuffer ob = {o->p, o->cap, o->len};
        r = ZSTD_decompressStream(ds, &ob, &ib);
        if (ZSTD_isError(r)) {
            rc = COMPRESS_ERR_DATA;
            break;
        }
        bool progress = ob.pos > o->len;
        o->len = ob.pos;
        if (ib.pos == ib.size) {
            if (r == 0)
                break;
            /* Out of input with output room left: the frame is cut. */
            if (!progress && o->len < o->cap) {
                rc = COMPRESS_ERR_DATA;
                break;
            }
        }
    }
    ZSTD_freeDStream(ds);
    return rc;
}

static int zstd_compress(const uint8_t *in, size_t in_len, struct obuf *o)
{
    size_t bound = ZSTD_compressBound(in_len);
    int rc = obuf_grow(o, bound);
    if (rc != COMPRESS_OK)
        return rc;
    size_t n = ZSTD_compress(o->p, o->cap, in, in_len, ZSTD_CLEVEL_DEFAULT);
    if (ZSTD_isError(n))
        return COMPRESS_ERR_DATA;
    o->len = n;
    return COMPRESS_OK;
}

/* ---- entry points ---- */

int compress_decompress(int codec, const uint8_t *in, size_t in_len, size_t max_out, uint8_t **out,
                        size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (codec < COMPRESS_GZIP || codec > COMPRESS_ZSTD)
        return COMPRESS_ERR_CODEC;
    struct obuf o;
    size_t hint = in_len > SIZE_MAX / 4 ? in_len : in_len * 4;
    int rc = obuf_init(&o, hint, max_out);
    if (rc != COMPRESS_OK)
        return rc;
    switch (codec) {
    case COMPRESS_GZIP:
        rc = gzip_decompress(in, in_len, &o);
        break;
    case COMPRESS_SNAPPY:
        rc = snappy_decompress(in, in_len, &o);
        break;
    case COMPRESS_LZ4:
        rc = lz4_decompress(in, in_len, &o);
        break;
    default:
        rc = zstd_decompress(in, in_len, &o);
        break;
    }
    if (rc != COMPRESS_OK)
        return obuf_fail(&o, rc);
    *out = o.p;
    *out_len = o.len;
    return COMPRESS_OK;
}

int compress_compress(int codec, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (codec < COMPRESS_GZIP || codec > COMPRESS_ZSTD)
        return COMPRESS_ERR_CODEC;
    struct obuf o;
    int rc = obuf_init(&o, 256, SIZE_MAX);
    if (rc != COMPRESS_OK)
        return rc;
    switch (codec) {
    case COMPRESS_GZIP:
        rc = gzip_compress(in, in_len, &o);
        break;
    case COMPRESS_SNAPPY:
        rc = snappy_compress_xerial(in, in_len, &o);
        break;
    case COMPRESS_LZ4:
        rc = lz4_compress(in, in_len, &o);
        break;
    default:
        rc = zstd_compress(in, in_len, &o);
        break;
    }
    if (rc != COMPRESS_OK)
        return obuf_fail(&o, rc);
    *out = o.p;
    *out_len = o.len;
    return COMPRESS_OK;
}
