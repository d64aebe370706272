/*
 * CRC-32C, hardware (SSE4.2) or slicing-by-8.
 *
 * The software path processes 8 bytes per step with eight 256-entry
 * tables (tables[k][b] = CRC of byte b followed by k zero bytes), built
 * once with pthread_once.  The hardware path feeds 8 bytes at a time to
 * the crc32 instruction; it is compiled with a target attribute so the
 * rest of the program does not require SSE4.2, and chosen at run time.
 */
#include "common/crc32c.h"

#include <pthread.h>
#include <string.h>

#define CRC32C_POLY 0x82F63B78u /* reflected Castagnoli polynomial */

static uint32_t crc_tables[8][256];
static pthread_once_t crc_tables_once = PTHREAD_ONCE_INIT;

static void crc_tables_init(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        crc_tables[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = crc_tables[0][b];
        for (int t = 1; t < 8; t++) {
            c = crc_tables[0][c & 0xff] ^ (c >> 8);
            crc_tables[t][b] = c;
        }
    }
}

uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&crc_tables_once, crc_tables_init);
    const uint8_t *p = buf;
    uint32_t c = ~crc;

    /* Byte at a time until 8-byte aligned, so the wide loads are aligned. */
    while (len && ((uintptr_t)p & 7)) {
        c = crc_tables[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        len--;
    }
    while (len >= 8) {
        /* Little-endian assembly of the 8 bytes, independent of host order. */
        uint32_t lo =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        uint32_t hi =
            (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        lo ^= c;
        c = crc_tables[7][lo & 0xff] ^ crc_tables[6][(lo >> 8) & 0xff] ^
            crc_tables[5][(lo >> 16) & 0xff] ^ crc_tables[4][lo >> 24] ^ crc_tables[3][hi & 0xff] ^
            crc_tables[2][(hi >> 8) & 0xff] ^ crc_tables[1][(hi >> 16) & 0xff] ^
            crc_tables[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        c = crc_tables[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>

bool crc32c_hw_available(void)
{
    return __builtin_cpu_supports("sse4.2");
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const void *buf,
                                                               size_t len)
{
    const uint8_t *p = buf;
    uint32_t c = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8(c, *p++);
        len--;
    }
#if defined(__x86_64__)
    uint64_t c64 = c;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8); /* aligned here; memcpy keeps strict aliasing happy */
        c64 = _mm_crc32_u64(c64, v);
        p += 8;
        len -= 8;
    }
    c = (uint32_t)c64;
#endif
    while (len >= 4) {
        uint32_t v;
        memcpy(&v, p, 4);
        c = _mm_crc32_u32(c, v);
        p += 4;
        len -= 4;
    }
    while (len--)
        c = _mm_crc32_u8(c, *p++);
    return ~c;
}

uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    if (!crc32c_hw_available())
        return crc32c_sw(crc, buf, len);
    return crc32c_sse42(crc, buf, len);
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
    /* __builtin_cpu_supports reads a variable libgcc fills at start-up,
     * so asking each time costs a load and a test. */
    if (__builtin_cpu_supports("sse4.2"))
        return crc32c_sse42(crc, buf, len);
    return crc32c_sw(crc, buf, len);
}

#else

bool crc32c_hw_available(void)
{
    return false;
}

uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    return crc32c_sw(crc, buf, len);
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
    return crc32c_sw(crc, buf, len);
}

#endif
