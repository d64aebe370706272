/*
 * timer_intent: the intent file of the timer store (see timer_store.h for
 * what an intent is for).
 *
 * One record, all integers big-endian:
 *
 * | offset | size | field |
 * | --- | --- | --- |
 * | 0 | 4 | magic "RTIN" |
 * | 4 | 1 | version: 1 |
 * | 5 | 1 | open flag: 1 open, 0 cleared (outside the CRC: cleared with a one-byte pwrite) |
 * | 6 | 2 | reserved, 0 |
 * | 8 | 4 | body length B |
 * | 12 | 4 | CRC-32C of the body |
 * | 16 | 2 | topic length T (1..255) |
 * | 18 | T | topic |
 * | ... | 4 | partition |
 * | ... | 8 | log_end |
 * | ... | 4 | record_count |
 * | ... | 4 | records_crc |
 * | ... | 4 | n_ids N |
 * | ... | 8N | ids |
 *
 * The record is rewritten whole at offset 0 by each intent_begin; bytes
 * of a longer earlier record may follow it and are ignored.  A record
 * that fails any check (a torn write) counts as no intent, and the file
 * is emptied.  timer_store_mark and timer_store_intent_clear clear the
 * open flag with a one-byte write, which cannot tear.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/rlog.h"
#include "storage/fileio.h"
#include "timer/timer_int.h"

#define INTENT_FILE "intent"
#define INTENT_MAGIC 0x5254494eu /* "RTIN" */
#define INTENT_VERSION 1
#define INTENT_HDR 16
#define INTENT_FLAG_OFF 5
#define INTENT_MAX_IDS (1 << 20)

void timer_intent_free(struct timer_intent *in)
{
    free(in->ids);
    in->ids = NULL;
}

static int intent_parse(const uint8_t *buf, size_t len, struct timer_intent *out)
{
    if (len < INTENT_HDR || get32(buf) != INTENT_MAGIC || buf[4] != INTENT_VERSION)
        return -EBADMSG;
    uint32_t blen = get32(buf + 8);
    if (blen > len - INTENT_HDR || crc32c(0, buf + INTENT_HDR, blen) != get32(buf + 12))
        return -EBADMSG;
    struct cur c = {buf + INTENT_HDR, 0, blen, false};
    int16_t tl = cur_i16(&c);
    if (tl < 1 || tl > 255)
        return -EBADMSG;
    uint64_t at = cur_take(&c, (uint64_t)tl);
    if (c.bad)
        return -EBADMSG;
    memset(out, 0, sizeof *out);
    memcpy(out->topic, c.p + at, (size_t)tl);
    out->partition = cur_i32(&c);
    at = cur_take(&c, 8);
    out->log_end = c.bad ? 0 : (int64_t)get64(c.p + at);
    out->record_count = cur_i32(&c);
    out->records_crc = (uint32_t)cur_i32(&c);
    int32_t n = cur_i32(&c);
    if (c.bad || n < 0 || n > INTENT_MAX_IDS || (uint64_t)n * 8 != c.end - c.o)
        return -EBADMSG;
    out->n_ids = n;
    out->ids = NULL;
    if (n) {
        out->ids = malloc((size_t)n * sizeof *out->ids);
        if (!out->ids)
            return -ENOMEM;
        for (int i = 0; i < n; i++)
            out->ids[i] = get64(c.p + c.o + (uint64_t)i * 8);
    }
    return 0;
}

int timer_intent_recover(struct timer_store *ts, char *err, size_t errlen)
{
    ts->intent_fd = openat(ts->dir_fd, INTENT_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (ts->intent_fd < 0) {
        snprintf(err, errlen, "timer store %s: %s: %s", ts->dir, INTENT_FILE, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(ts->intent_fd, &st) < 0) {
        snprintf(err, errlen, "timer store %s: intent: %s", ts->dir, strerror(errno));
        return -1;
    }
    if (st.st_size == 0)
        return 0;
    size_t max = INTENT_HDR + 2 + 255 + 24 + (size_t)INTENT_MAX_IDS * 8;
    size_t len = st.st_size > (off_t)max ? max : (size_t)st.st_size;
    uint8_t *buf = malloc(len);
    if (!buf) {
        snprintf(err, errlen, "timer store %s: intent: out of memory", ts->dir);
        return -1;
    }
    ssize_t r = sio_pread_all(ts->intent_fd, buf, len, 0);
    if (r < 0) {
        snprintf(err, errlen, "timer store %s: reading the intent: %s", ts->dir, strerror(errno));
        free(buf);
        return -1;
    }
    struct timer_intent in;
    int rc = intent_parse(buf, (size_t)r, &in);
    if (rc == -ENOMEM) {
        snprintf(err, errlen, "timer store %s: intent: out of memory", ts->dir);
        free(buf);
        return -1;
    }
    if (rc < 0) {
        /* Emptied so the warning is not repeated at every start. */
        rlog_warn("timer store %s: the intent file is damaged (a torn write?); no intent is open",
                  ts->dir);
        if (sio_ftruncate(ts->intent_fd, 0) == 0)
            ts->intent_dirty = true;
    } else if (buf[INTENT_FLAG_OFF] == 1) {
        ts->recovered = in;
        ts->has_recovered = true;
        ts->intent_open = true;
        rlog_info("timer store %s: an intent for %s-%d (%d entries) was left open", ts->dir,
                  in.topic, (int)in.partition, in.n_ids);
    } else {
        if (buf[INTENT_FLAG_OFF] != 0)
            rlog_warn("timer store %s: the intent file's flag is invalid; no intent is open",
                      ts->dir);
        timer_intent_free(&in);
    }
    free(buf);
    return 0;
}

int timer_intent_close(struct timer_store *ts)
{
    if (ts->has_recovered) {
        timer_intent_free(&ts->recovered);
        ts->has_recovered = false;
    }
    if (!ts->intent_open)
        return 0;
    uint8_t zero = 0;
    if (sio_pwrite_all(ts->intent_fd, &zero, 1, INTENT_FLAG_OFF) < 0)
        return timer_store_fail(ts, "clearing the intent", errno);
    ts->intent_open = false;
    ts->intent_dirty = true;
    return 0;
}

int timer_store_intent_begin(struct timer_store *ts, const struct timer_intent *in)
{
    size_t tl = strnlen(in->topic, sizeof in->topic);
    if (tl < 1 || tl >= sizeof in->topic || in->n_ids < 0 || in->n_ids > INTENT_MAX_IDS ||
        (in->n_ids && !in->ids))
        return -EINVAL;
    size_t blen = 2 + tl + 4 + 8 + 4 + 4 + 4 + (size_t)in->n_ids * 8;
    uint8_t *buf = malloc(INTENT_HDR + blen);
    if (!buf)
        return -ENOMEM;
    uint8_t *w = buf + INTENT_HDR;
    put16(w, (uint16_t)tl);
    memcpy(w + 2, in->topic, tl);
    w += 2 + tl;
    put32(w, (uint32_t)in->partition);
    put64(w + 4, (uint64_t)in->log_end);
    put32(w + 12, (uint32_t)in->record_count);
    put32(w + 16, in->records_crc);
    put32(w + 20, (uint32_t)in->n_ids);
    w += 24;
    for (int i = 0; i < in->n_ids; i++)
        put64(w + (size_t)i * 8, in->ids[i]);
    put32(buf, INTENT_MAGIC);
    buf[4] = INTENT_VERSION;
    buf[INTENT_FLAG_OFF] = 1;
    put16(buf + 6, 0);
    put32(buf + 8, (uint32_t)blen);
    put32(buf + 12, crc32c(0, buf + INTENT_HDR, blen));

    pthread_mutex_lock(&ts->mu);
    int rc = ts->failed;
    if (!rc) {
        if (sio_pwrite_all(ts->intent_fd, buf, INTENT_HDR + blen, 0) < 0) {
            rc = timer_store_fail(ts, "writing the intent", errno);
        } else {
            /* A new intent supersedes the one a crash left behind. */
            if (ts->has_recovered) {
                timer_intent_free(&ts->recovered);
                ts->has_recovered = false;
            }
            ts->intent_open = true;
            ts->intent_dirty = true;
        }
    }
    pthread_mutex_unlock(&ts->mu);
    free(buf);
    return rc;
}

bool timer_store_open_intent(struct timer_store *ts, struct timer_intent *out)
{
    bool found = false;
    pthread_mutex_lock(&ts->mu);
    if (ts->has_recovered) {
        *out = ts->recovered;
        out->ids = NULL;
        if (out->n_ids) {
            out->ids = malloc((size_t)out->n_ids * sizeof *out->ids);
            if (out->ids)
                memcpy(out->ids, ts->recovered.ids, (size_t)out->n_ids * sizeof *out->ids);
        }
        found = out->ids || !out->n_ids;
        if (!found)
            rlog_error("timer store %s: out of memory copying the open intent", ts->dir);
    }
    pthread_mutex_unlock(&ts->mu);
    return found;
}

int timer_store_intent_clear(struct timer_store *ts)
{
    pthread_mutex_lock(&ts->mu);
    int rc = ts->failed ? ts->failed : timer_intent_close(ts);
    pthread_mutex_unlock(&ts->mu);
    return rc;
}
