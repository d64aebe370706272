/*
 * fetch_view: serving a filtered view's partition (see fetch_view.h).
 *
 * The plain Fetch sends file ranges with sendfile; a view cannot, since
 * it sends only some records.  So its batches are read into memory
 * (pread of the ranges plog_read finds), filtered by filter_scan, and
 * the result sent from memory.  That cost is paid by the view's readers
 * only.
 *
 * Progress through long non-matching stretches, for every client:
 *   - the view remembers the spans it scanned without a match
 *     (view_note), and a fetch from inside one starts scanning at its end
 *     (view_skip), so a consumer that asks for the same offset again
 *     reaches the next match after as many fetches as the stretch needs,
 *     each bounded by its max bytes, without rescanning;
 *   - a READ_COMMITTED consumer also gets the stretch as a transaction
 *     marker (filter/scan.h), which moves its position and its commits
 *     past it, as a marker does in any transactional topic.
 * A READ_UNCOMMITTED consumer is not sent anything for a stretch: its
 * position stays after the last record it got until the next match.
 * The two signals Kafka has for "skip these offsets" both fail some
 * client there: an empty batch (what the cleaner leaves of a
 * transactional batch) is ignored by kafkajs and, answered alone more
 * than a few times, makes librdkafka report MSG_SIZE_TOO_LARGE (it takes
 * an answer without records for a too-small fetch size); a marker is
 * shown to the application as a record by kafka-python 2.0, which only
 * reads uncommitted.  Clients that read committed all skip markers.
 */
#include "kafka/fetch_view.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/rlog.h"
#include "filter/scan.h"
#include "common/kerr.h"

/* Reads exactly len bytes at off; 0 or -1. */
static int pread_all(int fd, uint8_t *buf, size_t len, int64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)(off + (int64_t)got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

/* Reads source batches from `pos` and feeds them to the scan. */
static int scan_source(struct partition *p, struct filter_scan *s, int64_t pos, int64_t hw,
                       int32_t limit, int64_t *read)
{
    uint8_t *buf = NULL;
    size_t cap = 0;
    int rc = PLOG_OK;
    while (pos < hw && (*read == 0 || *read < limit)) {
        struct plog_range rg = {.fd = -1, .ref = NULL};
        int64_t want = limit - *read;
        pthread_rwlock_rdlock(&p->log_lock);
        rc = p->log ? plog_read(p->log, pos, want > 0 ? (int32_t)want : 1, hw, &rg)
                    : PLOG_ERR_OUT_OF_RANGE;
        pthread_rwlock_unlock(&p->log_lock);
        if (rc != PLOG_OK || rg.fd < 0 || rg.len <= 0) {
            if (rg.ref)
                plog_range_release(rg.ref);
            break;
        }
        if ((size_t)rg.len > cap) {
            uint8_t *nb = realloc(buf, (size_t)rg.len);
            if (!nb) {
                plog_range_release(rg.ref);
                rc = PLOG_ERR_IO;
                break;
            }
            buf = nb;
            cap = (size_t)rg.len;
        }
        /* The range pins its segment: safe to read without the lock. */
        int r = pread_all(rg.fd, buf, (size_t)rg.len, rg.file_pos);
        plog_range_release(rg.ref);
        if (r) {
            rc = PLOG_ERR_IO;
            break;
        }
        *read += rg.len;
        if ((rc = filter_scan_feed(s, buf, (size_t)rg.len)) != PLOG_OK)
            break;
        if (s->next_offset <= pos)
            break; /* no batch ended past pos: cannot happen with a sane log */
        pos = s->next_offset;
    }
    free(buf);
    return rc;
}

int64_t fetch_view_partition(struct topic *t, const struct fetch_request_fetch_partition *fp,
                             struct fetch_response_partition_data *pr, struct fetch_view_io *io)
{
    io->scanned = 0;
    io->more = false;
    struct partition *p = topic_read_partition(t, fp->partition);
    struct view_filter *vf = p ? view_filter_get(t->view) : NULL;
    if (!vf) {
        pr->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        pr->high_watermark = pr->last_stable_offset = pr->log_start_offset = -1;
        return 0;
    }
    if (fp->current_leader_epoch >= 0 && fp->current_leader_epoch != p->leader_epoch) {
        pr->error_code = fp->current_leader_epoch > p->leader_epoch ? KERR_UNKNOWN_LEADER_EPOCH
                                                                    : KERR_FENCED_LEADER_EPOCH;
        view_filter_put(vf);
        return 0;
    }
    pthread_rwlock_rdlock(&p->log_lock);
    if (!p->log) {
        pthread_rwlock_unlock(&p->log_lock);
        pr->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        view_filter_put(vf);
        return 0;
    }
    int64_t hw = partition_hw(p);
    pr->high_watermark = hw;
    pr->last_stable_offset = hw; /* no transactions yet */
    pr->log_start_offset = plog_log_start(p->log);
    pthread_rwlock_unlock(&p->log_lock);
    int64_t off = fp->fetch_offset;
    if (off > hw || off < pr->log_start_offset) {
        pr->error_code = KERR_OFFSET_OUT_OF_RANGE;
        view_filter_put(vf);
        return 0;
    }
    if (off == hw || !io->may_read) {
        view_filter_put(vf);
        return 0;
    }

    int64_t start = view_skip(t->view, fp->partition, off, hw, vf->gen);
    struct filter_scan s;
    filter_scan_init(&s, vf->f, off);
    s.next_offset = start; /* a known stretch counts as examined */
    int64_t read = 0;
    int rc = scan_source(p, &s, start, hw, io->limit > 0 ? io->limit : 1, &read);
    io->scanned = read;
    if (rc == PLOG_ERR_OUT_OF_RANGE && read > 0)
        rc = PLOG_OK; /* retention moved the start meanwhile: send what we have */
    if (rc == PLOG_OK)
        rc = filter_scan_finish(&s, io->marker);
    if (rc != PLOG_OK) {
        if (rc == PLOG_ERR_CORRUPT)
            rlog_warn("view %s [%d]: unreadable batch near offset %lld of %s", t->name,
                      fp->partition, (long long)s.next_offset, t->view->source->name);
        pr->error_code =
            rc == PLOG_ERR_OUT_OF_RANGE ? KERR_OFFSET_OUT_OF_RANGE : KERR_KAFKA_STORAGE_ERROR;
        free(s.out);
        filter_scan_release(&s);
        view_filter_put(vf);
        return 0;
    }
    /* What is now known to hold no match, for whoever fetches there next. */
    view_note(t->view, fp->partition, off, s.first_sent >= 0 ? s.first_sent : s.next_offset,
              vf->gen);
    io->more = s.next_offset < hw;
    int64_t counted = s.records_sent > 0 ? (int64_t)s.out_len : 0;
    if (s.out_len > 0) {
        pr->records = (krecords_t){.ptr = s.out,
                                   .len = (int32_t)s.out_len,
                                   .fd = -1,
                                   .release = free,
                                   .release_arg = s.out};
    } else {
        free(s.out);
    }
    filter_scan_release(&s);
    view_filter_put(vf);
    return counted;
}
