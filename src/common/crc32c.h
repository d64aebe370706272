/*
 * crc32c: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of Kafka record batches (magic 2).
 *
 * crc32c() picks, once per process, the SSE4.2 crc32 instruction when the
 * CPU has it and slicing-by-8 tables otherwise; both give identical
 * results.  The running value is passed in and returned without the
 * pre/post inversion visible to the caller: start with 0, feed chunks in
 * order, the last return value is the CRC.  Thread-safe.
 */
#ifndef RUNNEL_CRC32C_H
#define RUNNEL_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* The two implementations, exposed so tests can compare them. */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);
/* True when crc32c_hw may be called on this CPU. */
bool crc32c_hw_available(void);
/* Only valid when crc32c_hw_available(); otherwise falls back to sw. */
uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len);

#endif
