#include "delivery/headers.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/plog.h"

static bool key_is(const struct batch_header_kv *kv, const char *k)
{
    size_t n = strlen(k);
    return kv->key_len == (int32_t)n && !memcmp(kv->key, k, n);
}

static void take(struct ctl_value *cv, const struct batch_header_kv *kv)
{
    cv->present = true;
    cv->v = kv->value;
    cv->len = kv->value_len;
}

int ctl_headers_read(const struct batch_record *rec, struct ctl_headers *out)
{
    memset(out, 0, sizeof *out);
    const uint8_t *pos = rec->headers;
    struct batch_header_kv kv;
    for (int32_t i = 0; i < rec->header_count; i++) {
        int rc = batch_record_header(&pos, rec->headers_end, &kv);
        if (rc != 1)
            return PLOG_ERR_INVALID;
        /* Cheap reject: every control header starts with "runnel-". */
        if (kv.key_len < 7 || memcmp(kv.key, "runnel-", 7))
            continue;
        if (key_is(&kv, HDR_DELAY_MS)) {
            take(&out->delay_ms, &kv);
            out->delay_headers++;
        } else if (key_is(&kv, HDR_DELIVER_AT_MS)) {
            take(&out->deliver_at_ms, &kv);
            out->delay_headers++;
        } else if (key_is(&kv, HDR_DELAY_LEVEL)) {
            take(&out->delay_level, &kv);
            out->delay_headers++;
        } else if (key_is(&kv, HDR_TXN))
            take(&out->txn, &kv);
        else if (key_is(&kv, HDR_TXN_ID))
            take(&out->txn_id, &kv);
        else if (key_is(&kv, HDR_PRODUCER_GROUP))
            take(&out->producer_group, &kv);
        else if (key_is(&kv, HDR_RETRY_COUNT))
            take(&out->retry_count, &kv);
        else if (key_is(&kv, HDR_RETRY_FIRST_MS))
            take(&out->retry_first_ms, &kv);
        else if (key_is(&kv, HDR_REDRIVE))
            take(&out->redrive, &kv);
    }
    return 0;
}

int ctl_decimal(const struct ctl_value *cv, int64_t *v)
{
    if (!cv->present || !cv->v || cv->len <= 0 || cv->len > 18)
        return -1;
    int64_t x = 0;
    for (int32_t i = 0; i < cv->len; i++) {
        if (cv->v[i] < '0' || cv->v[i] > '9')
            return -1;
        x = x * 10 + (cv->v[i] - '0');
    }
    *v = x;
    return 0;
}

bool ctl_is(const struct ctl_value *cv, const char *s)
{
    size_t n = strlen(s);
    return cv->present && cv->v && cv->len == (int32_t)n && !memcmp(cv->v, s, n);
}

void hdr_builder_add(struct hdr_builder *b, const char *key, const void *value, int32_t value_len)
{
    size_t kl = strlen(key);
    kw_varint(&b->w, (int32_t)kl);
    kw_raw(&b->w, key, kl);
    kw_varint(&b->w, value ? value_len : -1);
    if (value && value_len > 0)
        kw_raw(&b->w, value, (size_t)value_len);
    b->count++;
}

void hdr_builder_add_i64(struct hdr_builder *b, const char *key, int64_t v)
{
    char s[24];
    int n = snprintf(s, sizeof s, "%" PRId64, v);
    hdr_builder_add(b, key, s, n);
}

void hdr_builder_copy(struct hdr_builder *b, const uint8_t *p, const uint8_t *end,
                      const char *const *drop)
{
    struct batch_header_kv kv;
    const uint8_t *pos = p;
    for (;;) {
        const uint8_t *start = pos;
        if (batch_record_header(&pos, end, &kv) != 1)
            return;
        bool dropped = false;
        for (int i = 0; drop && drop[i]; i++)
            if (key_is(&kv, drop[i]))
                dropped = true;
        if (!dropped) {
            kw_raw(&b->w, start, (size_t)(pos - start));
            b->count++;
        }
    }
}

void hdr_builder_free(struct hdr_builder *b)
{
    kw_free(&b->w);
    memset(b, 0, sizeof *b);
}
