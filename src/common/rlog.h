/*
 * rlog: the broker's own log lines, on stderr.
 *
 * One line per event: "2026-11-22T03:04:05.123Z INFO  message".  Levels
 * below the threshold (RUNNEL_LOG=debug|info|warn|error, default info)
 * cost one comparison.  Thread-safe: each line is one fprintf, which
 * stdio locks.
 */
#ifndef RUNNEL_RLOG_H
#define RUNNEL_RLOG_H

enum rlog_level { RLOG_DEBUG, RLOG_INFO, RLOG_WARN, RLOG_ERROR };

extern enum rlog_level rlog_threshold;
void rlog_init_from_env(void);
void rlog_write(enum rlog_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define rlog_debug(...)                                                                            \
    do {                                                                                           \
        if (rlog_threshold <= RLOG_DEBUG)                                                          \
            rlog_write(RLOG_DEBUG, __VA_ARGS__);                                                   \
    } while (0)
#define rlog_info(...) rlog_write(RLOG_INFO, __VA_ARGS__)
#define rlog_warn(...) rlog_write(RLOG_WARN, __VA_ARGS__)
#define rlog_error(...) rlog_write(RLOG_ERROR, __VA_ARGS__)

#endif
