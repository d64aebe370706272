/*
 * runnel dump-log: prints segment files the way kafka-dump-log.sh does,
 * reading them directly (no broker needed, works on a copied directory).
 *
 *   .log        one line per batch; with --deep-iteration or --print-data
 *               one "| offset: ..." line per record, and with --print-data
 *               the key and payload (control characters escaped)
 *   .index      "offset: N position: P" per entry
 *   .timeindex  "timestamp: T offset: O" per entry
 *   .keyidx     its header, then "hash: H offset: O" per entry (key index,
 *               storage/keyindex.c; checked whole first)
 *
 * A file that is missing, is not a segment file, or holds a corrupt
 * batch gets one error line on stderr; dumping that file stops there
 * (nothing after a bad batch can be framed), the other files are still
 * dumped, and the exit status is 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_util.h"
#include "storage/batch.h"
#include "storage/compress.h"
#include "storage/fileio.h"
#include "storage/index.h"
#include "storage/keyindex.h"
#include "storage/plog.h"

#define PROG "runnel dump-log"

static const char usage_text[] =
    "usage: runnel dump-log FILE... [--deep-iteration] [--print-data]\n"
    "\n"
    "Prints the record batches of segment .log files, or the entries of .index,\n"
    ".timeindex and .keyidx files (files are named by their 20-digit base offset).\n"
    "\n"
    "  --files F1,F2,...   files to dump (also accepted as plain arguments)\n"
    "  --deep-iteration    print every record, not just the batches\n"
    "  --print-data        print every record with its key and payload\n"
    "  -h, --help          show this help\n";

enum { OPT_FILES = 1, OPT_DEEP, OPT_PRINT_DATA, OPT_HELP };

static const struct cli_opt opts[] = {
    {"files", 0, 1, OPT_FILES},
    {"deep-iteration", 0, 0, OPT_DEEP},
    {"print-data", 0, 0, OPT_PRINT_DATA},
    {"help", 'h', 0, OPT_HELP},
    {0},
};

enum seg_kind { KIND_LOG, KIND_INDEX, KIND_TIMEINDEX, KIND_KEYIDX };

/* Recognises <20 digits>.log/.index/.timeindex/.keyidx by its base name. */
static bool segment_kind(const char *path, int *kind, int64_t *base)
{
    const char *name = strrchr(path, '/');
    name = name ? name + 1 : path;
    static const struct {
        const char *ext;
        int kind;
    } exts[] = {{".log", KIND_LOG},
                {".index", KIND_INDEX},
                {".timeindex", KIND_TIMEINDEX},
                {KEYINDEX_SUFFIX, KIND_KEYIDX}};
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        if (strlen(name) != 20 + strlen(exts[i].ext) || strcmp(name + 20, exts[i].ext) != 0)
            continue;
        int64_t v = 0;
        for (int k = 0; k < 20; k++) {
            if (name[k] < '0' || name[k] > '9' || v > (INT64_MAX - 9) / 10)
                return false;
            v = v * 10 + (name[k] - '0');
        }
        *kind = exts[i].kind;
        *base = v;
        return true;
    }
    return false;
}

/* Prints bytes as text, escaping what would break the one-line format. */
static void print_escaped(const uint8_t *p, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c == '\\')
            fputs("\\\\", stdout);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '\r')
            fputs("\\r", stdout);
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
}

struct dump_opts {
    bool deep;
    bool print_data;
};

static int dump_records(const char *path, int64_t pos, const uint8_t *b, const struct batch_hdr *h,
                        const struct dump_opts *o)
{
    struct batch_records rs;
    if (batch_records_begin(b, h, &rs) != PLOG_OK) {
        cli_error(PROG, "%s: corrupt batch at position %" PRId64 ": cannot decompress records",
                  path, pos);
        return -1;
    }
    struct batch_record rec;
    int rc;
    bool log_append = h->attributes & BATCH_ATTR_LOG_APPEND_TIME;
    while ((rc = batch_records_next(&rs, &rec)) == 1) {
        int64_t ts = log_append ? h->max_timestamp : h->base_timestamp + rec.timestamp_delta;
        int32_t seq = -1;
        if (h->base_sequence >= 0)
            seq = (int32_t)(((int64_t)h->base_sequence + rec.offset_delta) %
                            ((int64_t)INT32_MAX + 1));
        printf("| offset: %" PRId64 " %s: %" PRId64 " keySize: %" PRId32 " valueSize: %" PRId32
               " sequence: %" PRId32 " headerKeys: [",
               h->base_offset + rec.offset_delta, log_append ? "LogAppendTime" : "CreateTime", ts,
               rec.key_len, rec.value_len, seq);
        const uint8_t *hp = rec.headers;
        struct batch_header_kv kv;
        for (int32_t i = 0;
             i < rec.header_count && batch_record_header(&hp, rec.headers_end, &kv) == 1; i++) {
            if (i)
                putchar(',');
            print_escaped(kv.key, kv.key_len);
        }
        putchar(']');
        if ((h->attributes & BATCH_ATTR_CONTROL) && rec.key_len >= 4) {
            /* Control record key: int16 version, int16 type (0 abort,
             * 1 commit); value: int16 version, int32 coordinator epoch. */
            int16_t type = batch_be16(rec.key + 2);
            printf(" endTxnMarker: %s", type == 0 ? "ABORT" : type == 1 ? "COMMIT" : "UNKNOWN");
            if (rec.value_len >= 6)
                printf(" coordinatorEpoch: %" PRId32, batch_be32(rec.value + 2));
        } else if (o->print_data) {
            if (rec.key) {
                fputs(" key: ", stdout);
                print_escaped(rec.key, rec.key_len);
            }
            if (rec.value) {
                fputs(" payload: ", stdout);
                print_escaped(rec.value, rec.value_len);
            }
        }
        putchar('\n');
    }
    int read = rs.read;
    batch_records_end(&rs);
    if (rc < 0 || read != h->records_count) {
        cli_error(PROG, "%s: corrupt batch at position %" PRId64 ": invalid record %d", path, pos,
                  read);
        return -1;
    }
    return 0;
}

static int dump_log_file(const char *path, int fd, int64_t size, const struct dump_opts *o)
{
    int64_t pos = 0;
    uint8_t *b = NULL;
    size_t cap = 0;
    int rc = 0;
    while (pos < size) {
        uint8_t hb[BATCH_HEADER_SIZE];
        struct batch_hdr h;
        ssize_t n = sio_pread_all(fd, hb, sizeof hb, pos);
        if (n < 0) {
            cli_error(PROG, "%s: read: %s", path, strerror(errno));
            rc = -1;
            break;
        }
        int prc = batch_parse_header(hb, (size_t)n, size - pos - BATCH_LOG_OVERHEAD, &h);
        if (prc != PLOG_OK) {
            const char *why = prc == PLOG_ERR_UNSUPPORTED ? "unsupported magic (< 2)"
                              : n < BATCH_HEADER_SIZE     ? "truncated batch header"
                              : hb[BATCH_MAGIC_OFFSET] != 2
                                  ? "bad magic"
                                  : "bad batch length or header (torn or truncated batch)";
            cli_error(PROG, "%s: corrupt batch at position %" PRId64 ": %s", path, pos, why);
            rc = -1;
            break;
        }
        size_t bs = (size_t)batch_size(&h);
        if (bs > cap) {
            uint8_t *nb = realloc(b, bs);
            if (!nb) {
                cli_error(PROG, "%s: out of memory", path);
                rc = -1;
                break;
            }
            b = nb;
            cap = bs;
        }
        if (sio_pread_all(fd, b, bs, pos) != (ssize_t)bs) {
            cli_error(PROG, "%s: corrupt batch at position %" PRId64 ": truncated", path, pos);
            rc = -1;
            break;
        }
        uint32_t crc = batch_compute_crc(b, bs);
        bool valid = crc == h.crc;
        int32_t last_seq = -1;
        if (h.base_sequence >= 0)
            last_seq = (int32_t)(((int64_t)h.base_sequence + h.last_offset_delta) %
                                 ((int64_t)INT32_MAX + 1));
        bool log_append = h.attributes & BATCH_ATTR_LOG_APPEND_TIME;
        printf("baseOffset: %" PRId64 " lastOffset: %" PRId64 " count: %" PRId32
               " baseSequence: %" PRId32 " lastSequence: %" PRId32 " producerId: %" PRId64
               " producerEpoch: %d partitionLeaderEpoch: %" PRId32
               " isTransactional: %s isControl: %s position: %" PRId64 " %s: %" PRId64
               " size: %zu magic: %d compresscodec: %s crc: %" PRIu32 " isvalid: %s\n",
               h.base_offset, batch_last_offset(&h), h.records_count, h.base_sequence, last_seq,
               h.producer_id, h.producer_epoch, h.partition_leader_epoch,
               (h.attributes & BATCH_ATTR_TRANSACTIONAL) ? "true" : "false",
               (h.attributes & BATCH_ATTR_CONTROL) ? "true" : "false", pos,
               log_append ? "LogAppendTime" : "CreateTime", h.max_timestamp, bs, h.magic,
               compress_codec_name(batch_codec(&h)), h.crc, valid ? "true" : "false");
        if (!valid) {
            cli_error(PROG,
                      "%s: corrupt batch at position %" PRId64 ": crc mismatch (stored %" PRIu32
                      ", computed %" PRIu32 ")",
                      path, pos, h.crc, crc);
            rc = -1;
            break;
        }
        if ((o->deep || o->print_data) && dump_records(path, pos, b, &h, o) < 0) {
            rc = -1;
            break;
        }
        pos += (int64_t)bs;
    }
    free(b);
    return rc;
}

static int dump_index_file(const char *path, int fd, int64_t size, int kind, int64_t base)
{
    size_t esize = kind == KIND_INDEX ? INDEX_OFFSET_ENTRY : INDEX_TIME_ENTRY;
    uint8_t e[INDEX_TIME_ENTRY];
    for (int64_t pos = 0; pos + (int64_t)esize <= size; pos += (int64_t)esize) {
        if (sio_pread_all(fd, e, esize, pos) != (ssize_t)esize) {
            cli_error(PROG, "%s: read failed at position %" PRId64, path, pos);
            return -1;
        }
        if (kind == KIND_INDEX)
            printf("offset: %" PRId64 " position: %" PRId32 "\n", base + batch_be32(e),
                   batch_be32(e + 4));
        else
            printf("timestamp: %" PRId64 " offset: %" PRId64 "\n", batch_be64(e),
                   base + batch_be32(e + 8));
    }
    if (size % (int64_t)esize) {
        cli_error(PROG, "%s: %" PRId64 " trailing bytes after the last whole entry (torn write)",
                  path, size % (int64_t)esize);
        return -1;
    }
    return 0;
}

static int dump_keyidx_file(const char *path, int64_t base)
{
    struct keyindex_file f;
    const char *why;
    if (keyindex_file_open(path, &f, &why) < 0) {
        cli_error(PROG, "%s: %s", path, why);
        return -1;
    }
    printf("base offset: %" PRId64 " log size: %" PRId64 " log inode: %" PRIu64 " entries: %zu\n",
           f.base_offset, f.log_size, f.log_inode, f.n);
    for (size_t i = 0; i < f.n; i++) {
        uint64_t e = keyindex_file_entry(&f, i);
        printf("hash: 0x%08" PRIx32 " offset: %" PRId64 "\n", (uint32_t)(e >> 32),
               f.base_offset + (uint32_t)e);
    }
    int rc = 0;
    if (f.base_offset != base) {
        cli_error(PROG, "%s: made for the segment at offset %" PRId64 ", not this one's", path,
                  f.base_offset);
        rc = -1;
    }
    keyindex_file_close(&f);
    return rc;
}

static int dump_file(const char *path, const struct dump_opts *o)
{
    int kind;
    int64_t base;
    if (!segment_kind(path, &kind, &base)) {
        cli_error(PROG,
                  "%s: not a segment file (expected <20-digit offset>.log, .index, "
                  ".timeindex or .keyidx)",
                  path);
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        cli_error(PROG, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        cli_error(PROG, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    printf("Dumping %s\n", path);
    int rc;
    if (kind == KIND_LOG) {
        printf("Log starting offset: %" PRId64 "\n", base);
        rc = dump_log_file(path, fd, st.st_size, o);
    } else if (kind == KIND_KEYIDX) {
        rc = dump_keyidx_file(path, base);
    } else {
        rc = dump_index_file(path, fd, st.st_size, kind, base);
    }
    close(fd);
    fflush(stdout);
    return rc;
}

int cmd_dump_log(int argc, char **argv)
{
    struct cli_args a;
    cli_args_init(&a, PROG, argc, argv, 1);
    struct dump_opts o = {false, false};
    char **files = calloc((size_t)argc + 1, sizeof *files);
    char *files_opt = NULL; /* owns the strings --files points into */
    int nfiles = 0, capfiles = argc + 1;
    int id, status = CLI_OK;
    const char *val;
    if (!files)
        return CLI_FAIL;
    while ((id = cli_next(&a, opts, &val)) != CLI_ARG_END) {
        if (id == CLI_ARG_ERROR) {
            status = CLI_USAGE;
            goto out;
        }
        if (id == OPT_HELP) {
            fputs(usage_text, stdout);
            goto out;
        }
        if (id == OPT_DEEP) {
            o.deep = true;
        } else if (id == OPT_PRINT_DATA) {
            o.print_data = true;
        } else if (id == CLI_ARG_POSITIONAL || id == OPT_FILES) {
            if (id == OPT_FILES) {
                /* Comma-separated, like kafka-dump-log's --files. */
                free(files_opt);
                files_opt = strdup(val);
                if (!files_opt) {
                    status = CLI_FAIL;
                    goto out;
                }
                size_t commas = 0;
                for (const char *p = files_opt; *p; p++)
                    commas += *p == ',';
                char **nf = realloc(files, ((size_t)capfiles + commas + 1) * sizeof *nf);
                if (!nf) {
                    status = CLI_FAIL;
                    goto out;
                }
                files = nf;
                capfiles += (int)commas + 1;
                for (char *save, *t = strtok_r(files_opt, ",", &save); t;
                     t = strtok_r(NULL, ",", &save))
                    files[nfiles++] = t;
            } else {
                files[nfiles++] = (char *)val;
            }
        }
    }
    if (nfiles == 0) {
        status = cli_usage_error(PROG, "no files given");
        goto out;
    }
    for (int i = 0; i < nfiles; i++)
        if (dump_file(files[i], &o) < 0)
            status = CLI_FAIL;
out:
    free(files);
    free(files_opt);
    return status;
}
