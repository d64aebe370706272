/* Admin API pieces without a server: URI parsing and routing, bytes as
 * JSON, record headers, times, Prometheus label escaping. */
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"
#include "tap.h"

static struct admin_request *req(const char *uri)
{
    struct admin_request *rq = calloc(1, sizeof *rq);
    rq->uri = strdup(uri);
    return rq;
}

/* The JSON text of obj, compact, for comparison (caller frees). */
static char *dump(json_t *j)
{
    return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
}

static int json_is(json_t *j, const char *want)
{
    char *got = dump(j);
    int ok = got && !strcmp(got, want);
    if (!ok)
        fprintf(stderr, "  got  %s\n  want %s\n", got ? got : "(null)", want);
    free(got);
    return ok;
}

static void test_uri(void)
{
    char err[128];
    struct admin_request *rq =
        req("/v1/groups/team%20a%2Fb?at=2026-01-01T00%3A00%3A00Z&x=a+b&flag");
    CHECK(admin_parse_uri(rq, err, sizeof err) == 0);
    CHECK_EQ_INT(rq->nsegs, 3);
    CHECK(!strcmp(rq->segs[2], "team a/b"));
    CHECK(!strcmp(admin_query(rq, "at"), "2026-01-01T00:00:00Z"));
    CHECK(!strcmp(admin_query(rq, "x"), "a b"));
    CHECK(!strcmp(admin_query(rq, "flag"), ""));
    CHECK(admin_query(rq, "nope") == NULL);
    bool known;
    const struct admin_route *r = admin_route_find(rq, "GET", &known);
    CHECK(r && known && r->fn == admin_handle_group);
    CHECK(r && !strcmp(admin_path_param(rq, 0), "team a/b"));
    CHECK(admin_path_param(rq, 1) == NULL);
    CHECK(admin_route_find(rq, "POST", &known) == NULL && known);
    admin_request_free(rq);

    rq = req("/v1/messages/t/3/17");
    CHECK(admin_parse_uri(rq, err, sizeof err) == 0);
    r = admin_route_find(rq, "HEAD", &known);
    CHECK(r && r->fn == admin_handle_message_at);
    CHECK(r && !strcmp(admin_path_param(rq, 0), "t") && !strcmp(admin_path_param(rq, 1), "3") &&
          !strcmp(admin_path_param(rq, 2), "17"));
    admin_request_free(rq);

    rq = req("/v1/topics/");
    CHECK(admin_parse_uri(rq, err, sizeof err) == 0);
    r = admin_route_find(rq, "GET", &known);
    CHECK(r && r->fn == admin_handle_topics);
    admin_request_free(rq);

    /* No route: unknown path, empty segment, one segment too many. */
    const char *unknown[] = {"/", "/v1", "/v1//topics", "/v1/topics/a/b", "/v2/status"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        rq = req(unknown[i]);
        CHECK(admin_parse_uri(rq, err, sizeof err) == 0);
        CHECK(admin_route_find(rq, "GET", &known) == NULL && !known);
        admin_request_free(rq);
    }

    const char *bad[] = {"/v1/topics/%zz", "/v1/topics/%4", "/v1/topics/a%00",
                         "/x?q=%g1",       "relative",      "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rq = req(bad[i]);
        CHECK(admin_parse_uri(rq, err, sizeof err) == -1);
        admin_request_free(rq);
    }
}

static void test_bytes(void)
{
    json_t *o = json_object();
    admin_json_bytes(o, "text", (const uint8_t *)"h\xc3\xa9llo", 6);
    admin_json_bytes(o, "null", NULL, -1);
    admin_json_bytes(o, "empty", (const uint8_t *)"", 0);
    admin_json_bytes(o, "nul", (const uint8_t *)"a\0b", 3);
    admin_json_bytes(o, "bad", (const uint8_t *)"\xff", 1);
    admin_json_bytes(o, "two", (const uint8_t *)"\xff\xfe", 2);
    admin_json_bytes(o, "three", (const uint8_t *)"\xff\xfe\xfd", 3);
    CHECK(json_is(o, "{\"text\":\"h\xc3\xa9llo\",\"null\":null,\"empty\":\"\",\"nul_b64\":"
                     "\"YQBi\",\"bad_b64\":\"/w==\",\"two_b64\":\"//4=\",\"three_b64\":\"//79\"}"));
    json_decref(o);

    /* Two headers in the record format: zigzag varint lengths. */
    static const uint8_t h[] = {2 * 2, 'k', '1', 2 * 1, 'v',   /* k1=v */
                                2 * 1, 'n', 1 /* -1: null */}; /* n=null */
    json_t *a = admin_json_headers(h, sizeof h, 2);
    CHECK(json_is(a, "[{\"key\":\"k1\",\"value\":\"v\"},{\"key\":\"n\",\"value\":null}]"));
    json_decref(a);
    CHECK(admin_json_headers(h, sizeof h, 3) == NULL); /* fewer than counted */
    CHECK(admin_json_headers(h, 3, 1) == NULL);        /* cut short */
    a = admin_json_headers(NULL, 0, 0);
    CHECK(json_is(a, "[]"));
    json_decref(a);

    json_t *e = admin_error("unknown topic '%s'", "x\xff");
    CHECK(e && json_is_string(json_object_get(e, "error"))); /* still valid JSON */
    json_decref(e);
}

static void test_values(void)
{
    int64_t v;
    CHECK(admin_parse_i64("17", 0, 100, &v) == 0 && v == 17);
    CHECK(admin_parse_i64("-1", 0, 100, &v) == -1);
    CHECK(admin_parse_i64("101", 0, 100, &v) == -1);
    CHECK(admin_parse_i64("1x", 0, 100, &v) == -1);
    CHECK(admin_parse_i64("", 0, 100, &v) == -1);
    CHECK(admin_parse_i64(" 1", 0, 100, &v) == -1);
    CHECK(admin_parse_i64("99999999999999999999", 0, INT64_MAX, &v) == -1);

    CHECK(admin_parse_time("1767225600000", &v) == 0 && v == 1767225600000LL);
    CHECK(admin_parse_time("2026-01-01T00:00:00Z", &v) == 0 && v == 1767225600000LL);
    CHECK(admin_parse_time("2026-01-01T00:00:00.5Z", &v) == 0 && v == 1767225600500LL);
    CHECK(admin_parse_time("2026-01-01T00:00:00.123456Z", &v) == 0 && v == 1767225600123LL);
    CHECK(admin_parse_time("2026-01-01T01:00:00+01:00", &v) == 0 && v == 1767225600000LL);
    CHECK(admin_parse_time("2025-12-31T23:00:00-01:00", &v) == 0 && v == 1767225600000LL);
    CHECK(admin_parse_time("2024-02-29T00:00:00Z", &v) == 0); /* a leap day */
    const char *bad[] = {"",
                         "x",
                         "2026-01-01",
                         "2026-01-01T00:00:00",
                         "2026-02-29T00:00:00Z",
                         "2026-13-01T00:00:00Z",
                         "2026-01-01T24:00:00Z",
                         "2026-01-01T00:00:00.Z",
                         "2026-01-01T00:00:00Zjunk",
                         "2026-01-01T00:00:00+1:00",
                         "-5",
                         "1.5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(admin_parse_time(bad[i], &v) == -1);

    char buf[32];
    admin_format_time(1767225600123LL, buf, sizeof buf);
    CHECK(!strcmp(buf, "2026-01-01T00:00:00.123Z"));
}

static void test_metrics_text(void)
{
    struct metrics_out o = {0};
    metrics_printf(&o, "x{g=\"");
    metrics_label(&o, "a\"b\\c\nd");
    metrics_printf(&o, "\"} %d\n", 1);
    CHECK(o.buf && !strcmp(o.buf, "x{g=\"a\\\"b\\\\c\\nd\"} 1\n"));
    /* Growth past the first allocation keeps every byte. */
    for (int i = 0; i < 5000; i++)
        metrics_printf(&o, "line %04d\n", i);
    CHECK(!o.oom && o.len == strlen(o.buf));
    CHECK(strstr(o.buf, "line 4999\n") && strstr(o.buf, "line 0000\n"));
    free(o.buf);
}

int main(void)
{
    test_uri();
    test_bytes();
    test_values();
    test_metrics_text();
    return tap_done();
}
