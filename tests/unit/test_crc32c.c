/*
 * CRC-32C: published vectors (RFC 3720 appendix B.4 and the classic
 * "123456789" check value), and the hardware and table paths agreeing on
 * every length and alignment, in one go and in pieces.
 */
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "tap.h"

static void vectors(uint32_t (*fn)(uint32_t, const void *, size_t))
{
    CHECK_EQ_INT(fn(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ_INT(fn(0, "", 0), 0);
    CHECK_EQ_INT(fn(0, NULL, 0), 0);
    uint8_t b[32];
    memset(b, 0, sizeof b);
    CHECK_EQ_INT(fn(0, b, 32), 0x8A9136AAu);
    memset(b, 0xff, sizeof b);
    CHECK_EQ_INT(fn(0, b, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)i;
    CHECK_EQ_INT(fn(0, b, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)(31 - i);
    CHECK_EQ_INT(fn(0, b, 32), 0x113FDB5Cu);
    CHECK_EQ_INT(fn(0, "a", 1), 0xC1D04330u);
}

int main(void)
{
    vectors(crc32c_sw);
    vectors(crc32c_hw);
    vectors(crc32c);

    /* A large buffer at every small misalignment and many lengths. */
    size_t big = 1 << 20;
    uint8_t *buf = malloc(big + 16);
    uint32_t seed = 12345;
    for (size_t i = 0; i < big + 16; i++) {
        seed = seed * 1103515245u + 12345u;
        buf[i] = (uint8_t)(seed >> 16);
    }
    int mismatches = 0;
    for (size_t align = 0; align < 8; align++) {
        for (size_t len = 0; len < 300; len++)
            if (crc32c_sw(0, buf + align, len) != crc32c_hw(0, buf + align, len))
                mismatches++;
        if (crc32c_sw(0, buf + align, big) != crc32c_hw(0, buf + align, big))
            mismatches++;
        if (crc32c(0, buf + align, big) != crc32c_sw(0, buf + align, big))
            mismatches++;
    }
    CHECK_EQ_INT(mismatches, 0);

    /* Feeding pieces gives the same value as one call. */
    uint32_t whole = crc32c_sw(0, buf, big);
    uint32_t parts_sw = 0, parts_hw = 0;
    for (size_t off = 0; off < big;) {
        size_t n = 1 + (off * 7) % 4099;
        if (n > big - off)
            n = big - off;
        parts_sw = crc32c_sw(parts_sw, buf + off, n);
        parts_hw = crc32c_hw(parts_hw, buf + off, n);
        off += n;
    }
    CHECK_EQ_INT(parts_sw, whole);
    CHECK_EQ_INT(parts_hw, whole);

    /* A single flipped bit changes the value. */
    buf[big / 2] ^= 1;
    CHECK(crc32c(0, buf, big) != whole);
    free(buf);
    return tap_done();
}
