/*
 * compress: the four record-batch codecs of Kafka (attributes & 7).
 *
 *   1 gzip    zlib in gzip format
 *   2 snappy  raw snappy, or the xerial "snappy-java" framing Java clients
 *             write (decompression accepts both; compression writes xerial
 *             framing, which every client reads)
 *   3 lz4     the LZ4 frame format (magic 2 batches)
 *   4 zstd    zstd frames, decompressed as a stream because producers do
 *             not always record the content size
 *
 * Output buffers are malloc'ed and owned by the caller.  Decompression
 * stops with COMPRESS_ERR_TOO_LARGE past `max_out` bytes so a small
 * batch cannot make the broker allocate without bound.
 */
#ifndef RUNNEL_COMPRESS_H
#define RUNNEL_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

enum compress_codec {
    COMPRESS_NONE = 0,
    COMPRESS_GZIP = 1,
    COMPRESS_SNAPPY = 2,
    COMPRESS_LZ4 = 3,
    COMPRESS_ZSTD = 4,
};

enum compress_err {
    COMPRESS_OK = 0,
    COMPRESS_ERR_CODEC = -1,     /* unknown codec number */
    COMPRESS_ERR_DATA = -2,      /* input is not valid for the codec */
    COMPRESS_ERR_TOO_LARGE = -3, /* output would pass max_out */
    COMPRESS_ERR_NOMEM = -4,
};

/* "none", "gzip", "snappy", "lz4", "zstd", or "unknown". */
const char *compress_codec_name(int codec);

int compress_decompress(int codec, const uint8_t *in, size_t in_len, size_t max_out, uint8_t **out,
                        size_t *out_len);
int compress_compress(int codec, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len);

#endif
