/*
 * JSON helpers every admin handler uses: the error body, bytes as text
 * or base64, record headers.
 *
 * Record keys, values and header values are bytes.  Most are text, and
 * showing them as JSON strings is what people want; the rest (binary,
 * or text with NUL, which many JSON readers mangle) go out as base64
 * under the field name plus "_b64", so a reader can tell the two apart
 * without guessing and gets every byte back exactly.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"
#include "storage/batch.h"

json_t *admin_error(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Messages may quote user input (a topic name from the URL): keep
     * the body valid JSON whatever bytes it holds. */
    json_t *s = json_string(msg);
    if (!s)
        s = json_string("request failed (the message is not valid UTF-8)");
    json_t *o = json_object();
    if (!o || !s || json_object_set_new(o, "error", s)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Standard base64 with padding (RFC 4648 section 4). */
static char *base64(const uint8_t *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return NULL;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = 0;
    return out;
}

void admin_json_bytes(json_t *obj, const char *field, const uint8_t *p, int32_t len)
{
    if (!p || len < 0) {
        json_object_set_new(obj, field, json_null());
        return;
    }
    /* json_stringn refuses invalid UTF-8; NUL we refuse ourselves. */
    if (!memchr(p, 0, (size_t)len)) {
        json_t *s = json_stringn((const char *)p, (size_t)len);
        if (s) {
            json_object_set_new(obj, field, s);
            return;
        }
    }
    char name[256];
    snprintf(name, sizeof name, "%s_b64", field);
    char *b = base64(p, (size_t)len);
    if (b) {
        json_object_set_new(obj, name, json_string(b));
        free(b);
    }
}

json_t *admin_json_headers(const uint8_t *headers, size_t len, int32_t count)
{
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    const uint8_t *pos = headers, *end = headers ? headers + len : NULL;
    for (int32_t i = 0; i < count; i++) {
        struct batch_header_kv kv;
        if (!headers || batch_record_header(&pos, end, &kv) != 1) {
            json_decref(arr);
            return NULL;
        }
        json_t *h = json_object();
        if (!h) {
            json_decref(arr);
            return NULL;
        }
        admin_json_bytes(h, "key", kv.key, kv.key_len);
        admin_json_bytes(h, "value", kv.value, kv.value_len);
        json_array_append_new(arr, h);
    }
    return arr;
}
