/*
 * tap.h: the smallest test harness that can fail.
 *
 * CHECK(cond) records a pass or a failure (with file:line and the
 * expression); CHECK_EQ_INT compares two integers and prints both.  Each
 * test binary ends with `return tap_done();`, which prints the plain
 * closing line "N passed, N failed" and exits non-zero on any failure.
 */
#ifndef RUNNEL_TAP_H
#define RUNNEL_TAP_H

#include <inttypes.h>
#include <stdio.h>

static int tap_pass, tap_fail;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond)                                                                                  \
            tap_pass++;                                                                            \
        else {                                                                                     \
            tap_fail++;                                                                            \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                        \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long tap_a_ = (long long)(a), tap_b_ = (long long)(b);                                \
        if (tap_a_ == tap_b_)                                                                      \
            tap_pass++;                                                                            \
        else {                                                                                     \
            tap_fail++;                                                                            \
            fprintf(stderr, "FAIL %s:%d: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, #a, #b,   \
                    tap_a_, tap_b_);                                                               \
        }                                                                                          \
    } while (0)

static inline int tap_done(void)
{
    printf("%d passed, %d failed\n", tap_pass, tap_fail);
    return tap_fail ? 1 : 0;
}

#endif
