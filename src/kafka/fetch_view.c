/*
 * fetch_view: serving a filtered view's partition (see fetch_view.h).
 *
 * The plain Fetch sends file ranges with sendfile; a view cannot, since
 * it sends only some records.  So its batches are read into memory
 * (pread of the ranges partition_read finds), filtered by filter_scan, and
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

/*
 * Reads source batches from `pos` (below the high watermark the fetch
 * started with) and feeds them to the scan.  A Kafka error;
 * KERR_CORRUPT_MESSAGE when the filter found a batch it cannot read.
 */
static int16_t scan_source(struct partition *p, const struct fetch_request_fetch_partition *fp,
                           struct filter_scan *s, int64_t pos, int64_t hw, int32_t limit,
                           int64_t *read)
{
    uint8_t *buf = NULL;
    size_t cap = 0;
    int16_t err = KERR_NONE;
    while (pos < hw && (*read == 0 || *read < limit)) {
        int64_t want = limit - *read;
        struct partition_read rd = {.offset = pos,
                                    .max_bytes = want > 0 ? (int32_t)want : 1,
                                    .max_offset = hw,
                                    .current_leader_epoch = fp->current_leader_epoch,
                                    .reader = PARTITION_READER_CONSUMER};
        err = partition_read(p, &rd);
        if (err == KERR_UNKNOWN_TOPIC_OR_PARTITION)
            err = KERR_OFFSET_OUT_OF_RANGE; /* deleted meanwhile: as if retention took it */
        if (err != KERR_NONE || rd.fd < 0 || rd.len <= 0) {
            if (rd.ref)
                partition_range_release(rd.ref);
            break;
        }
        if ((size_t)rd.len > cap) {
            uint8_t *nb = realloc(buf, (size_t)rd.len);
            if (!nb) {
                partition_range_release(rd.ref);
                err = KERR_KAFKA_STORAGE_ERROR;
                break;
            }
            buf = nb;
            cap = (size_t)rd.len;
        }
        /* The range pins its segment: safe to read without the lock. */
        int r = pread_all(rd.fd, buf, (size_t)rd.len, rd.file_pos);
        partition_range_release(rd.ref);
        if (r) {
            err = KERR_KAFKA_STORAGE_ERROR;
            break;
        }
        *read += rd.len;
        int rc = filter_scan_feed(s, buf, (size_t)rd.len);
        if (rc != PLOG_OK) {
            err = rc == PLOG_ERR_CORRUPT ? KERR_CORRUPT_MESSAGE : KERR_KAFKA_STORAGE_ERROR;
            break;
        }
        if (s->next_offset <= pos)
            break; /* no batch ended past pos: cannot happen with a sane log */
        pos = s->next_offset;
    }
    free(buf);
    return err;
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
    /* The offsets, the leadership and range checks first; the scan
     * stays below the high watermark seen here. */
    struct partition_read at = {.offset = fp->fetch_offset,
                                .max_bytes = 0,
                                .max_offset = -1,
                                .current_leader_epoch = fp->current_leader_epoch,
                                .reader = PARTITION_READER_CONSUMER};
    pr->error_code = partition_read(p, &at);
    if (at.high_watermark >= 0) {
        pr->high_watermark = at.high_watermark;
        pr->last_stable_offset = at.last_stable_offset;
        pr->log_start_offset = at.log_start_offset;
    }
    if (pr->error_code != KERR_NONE) {
        view_filter_put(vf);
        return 0;
    }
    int64_t hw = at.high_watermark, off = fp->fetch_offset;
    if (off == hw || !io->may_read) {
        view_filter_put(vf);
        return 0;
    }

    int64_t start = view_skip(t->view, fp->partition, off, hw, vf->gen);
    struct filter_scan s;
    filter_scan_init(&s, vf->f, off);
    s.next_offset = start; /* a known stretch counts as examined */
    int64_t read = 0;
    int16_t err = scan_source(p, fp, &s, start, hw, io->limit > 0 ? io->limit : 1, &read);
    io->scanned = read;
    if (err == KERR_OFFSET_OUT_OF_RANGE && read > 0)
        err = KERR_NONE; /* retention moved the start meanwhile: send what we have */
    if (err == KERR_NONE && filter_scan_finish(&s, io->marker) != PLOG_OK)
        err = KERR_KAFKA_STORAGE_ERROR;
    if (err != KERR_NONE) {
        if (err == KERR_CORRUPT_MESSAGE) {
            rlog_warn("view %s [%d]: unreadable batch near offset %lld of %s", t->name,
                      fp->partition, (long long)s.next_offset, t->view->source->name);
            err = KERR_KAFKA_STORAGE_ERROR; /* the source's disk, not the client's data */
        }
        pr->error_code = err;
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
