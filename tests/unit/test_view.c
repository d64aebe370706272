/*
 * A view's state (broker/view.c): checking view.* overrides, the filter
 * swap and its generations, and the spans of source offsets known to
 * hold no match: merging, lookups, the truncation clamp, the limit.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/view.h"
#include "common/kerr.h"
#include "tap.h"

static struct config_overrides overrides(const char *const *kv)
{
    struct config_overrides o = {0};
    for (int i = 0; kv[i]; i += 2)
        config_overrides_set(&o, kv[i], kv[i + 1]);
    return o;
}

/* The code of view_check_overrides; *msg gets its message. */
static int check(const char *const *kv, bool *is_view, char *msg, size_t len)
{
    struct config_overrides o = overrides(kv);
    struct view_filter *vf = NULL;
    int rc = view_check_overrides(&o, is_view, &vf, msg, len);
    if (rc == 0 && *is_view)
        CHECK(vf && vf->f && atomic_load(&vf->refs) == 1);
    else
        CHECK(vf == NULL);
    view_filter_put(vf);
    config_overrides_free(&o);
    return rc;
}

static void test_check(void)
{
    char msg[256];
    bool v;
    CHECK_EQ_INT(check((const char *[]){"retention.ms", "5", NULL}, &v, msg, sizeof msg), 0);
    CHECK(!v);
    CHECK_EQ_INT(check((const char *[]){"view.source", "s", "view.filter", "a || b", NULL}, &v, msg,
                       sizeof msg),
                 0);
    CHECK(v);
    CHECK_EQ_INT(check((const char *[]){"view.source", "s", "view.filter.type", "sql92",
                                        "view.filter", "a = 1", NULL},
                       &v, msg, sizeof msg),
                 0);
    CHECK_EQ_INT(check((const char *[]){"view.source", "s", NULL}, &v, msg, sizeof msg),
                 KERR_INVALID_CONFIG);
    CHECK(strstr(msg, "needs view.filter") != NULL);
    CHECK_EQ_INT(
        check((const char *[]){"view.source", "s", "view.filter", "x", "segment.ms", "1", NULL}, &v,
              msg, sizeof msg),
        KERR_INVALID_CONFIG);
    CHECK(strstr(msg, "not 'segment.ms'") != NULL);
    CHECK_EQ_INT(check((const char *[]){"view.source", "s", "view.filter", "x", "view.filter.type",
                                        "JSON", NULL},
                       &v, msg, sizeof msg),
                 KERR_INVALID_CONFIG);
    CHECK(strstr(msg, "'JSON' is not TAG or SQL92") != NULL);
    CHECK_EQ_INT(check((const char *[]){"view.source", "s", "view.filter", "a\nb", NULL}, &v, msg,
                       sizeof msg),
                 KERR_INVALID_CONFIG);
    CHECK(strstr(msg, "line breaks") != NULL);
    CHECK_EQ_INT(check((const char *[]){"view.source", "s", "view.filter.type", "SQL92",
                                        "view.filter", "a = ", NULL},
                       &v, msg, sizeof msg),
                 KERR_INVALID_CONFIG);
    CHECK(strstr(msg, "view.filter (SQL92): expected a header name, string or number but the "
                      "expression ends at position 5") != NULL);
    /* TAG is the default type: SQL is a tag list there, and fails so. */
    CHECK_EQ_INT(check((const char *[]){"view.source", "s", "view.filter", "a = 1 || ", NULL}, &v,
                       msg, sizeof msg),
                 KERR_INVALID_CONFIG);
    CHECK(strstr(msg, "view.filter (TAG): empty tag") != NULL);
    CHECK_EQ_INT(check((const char *[]){"view.filter", "x", NULL}, &v, msg, sizeof msg),
                 KERR_INVALID_CONFIG);
    CHECK(strstr(msg, "views only") != NULL);
    CHECK_EQ_INT(check((const char *[]){"view.filter.type", "TAG", NULL}, &v, msg, sizeof msg),
                 KERR_INVALID_CONFIG);
}

static struct view_filter *compiled(const char *expr)
{
    const char *kv[] = {"view.source", "s", "view.filter", expr, NULL};
    struct config_overrides o = overrides(kv);
    struct view_filter *vf = NULL;
    bool is_view;
    char msg[256];
    CHECK(view_check_overrides(&o, &is_view, &vf, msg, sizeof msg) == 0);
    config_overrides_free(&o);
    return vf;
}

static void test_filter_swap(void)
{
    struct topic_view *v = view_new();
    CHECK(view_filter_get(v) == NULL);
    view_set_filter(v, compiled("a"));
    struct view_filter *held = view_filter_get(v);
    CHECK(held && atomic_load(&held->refs) == 2);
    uint64_t g1 = held->gen;
    view_set_filter(v, compiled("b"));
    /* The old filter lives on for whoever holds it. */
    CHECK(atomic_load(&held->refs) == 1 && held->f != NULL);
    struct view_filter *now = view_filter_get(v);
    CHECK(now && now != held && now->gen > g1);
    view_filter_put(held);
    view_filter_put(now);
    view_free(v);
}

static void test_spans(void)
{
    struct topic_view *v = view_new();
    view_set_filter(v, compiled("a"));
    struct view_filter *vf = view_filter_get(v);
    uint64_t g = vf->gen;
    int64_t hw = 1000000;

    CHECK_EQ_INT(view_skip(v, 0, 10, hw, g), 10); /* nothing known */
    CHECK_EQ_INT(view_skip(v, 7, 10, hw, g), 10); /* a partition never seen */
    view_note(v, 0, 10, 50, g);
    CHECK_EQ_INT(view_skip(v, 0, 10, hw, g), 50);
    CHECK_EQ_INT(view_skip(v, 0, 49, hw, g), 50);
    CHECK_EQ_INT(view_skip(v, 0, 9, hw, g), 9);
    CHECK_EQ_INT(view_skip(v, 0, 50, hw, g), 50);
    CHECK_EQ_INT(view_skip(v, 1, 10, hw, g), 10); /* per partition */
    /* A fetch continuing from the end extends the span. */
    view_note(v, 0, 10, 90, g);
    CHECK_EQ_INT(view_skip(v, 0, 10, hw, g), 90);
    /* Disjoint spans, then one that joins them (touching counts). */
    view_note(v, 0, 200, 300, g);
    view_note(v, 0, 400, 500, g);
    CHECK_EQ_INT(view_skip(v, 0, 250, hw, g), 300);
    CHECK_EQ_INT(view_skip(v, 0, 350, hw, g), 350);
    view_note(v, 0, 90, 400, g);
    CHECK_EQ_INT(view_skip(v, 0, 10, hw, g), 500);
    CHECK_EQ_INT(view_skip(v, 0, 300, hw, g), 500);
    view_note(v, 0, 5, 7, g);
    view_note(v, 0, 7, 10, g);
    CHECK_EQ_INT(view_skip(v, 0, 5, hw, g), 500);
    view_note(v, 0, 600, 600, g); /* empty: ignored */
    CHECK_EQ_INT(view_skip(v, 0, 600, hw, g), 600);

    /* A note from a fetch that used an older filter is ignored; a new
     * filter forgets every span. */
    view_note(v, 0, 1000, 2000, g + 99);
    CHECK_EQ_INT(view_skip(v, 0, 1000, hw, g), 1000);
    CHECK_EQ_INT(view_skip(v, 0, 5, hw, g + 99), 5);
    view_set_filter(v, compiled("b"));
    struct view_filter *vf2 = view_filter_get(v);
    CHECK_EQ_INT(view_skip(v, 0, 5, hw, vf2->gen), 5);
    CHECK_EQ_INT(view_skip(v, 0, 5, hw, g), 5);
    uint64_t g2 = vf2->gen;

    /* The log end went back: spans past it are cut. */
    view_note(v, 2, 100, 900, g2);
    CHECK_EQ_INT(view_skip(v, 2, 100, 500, g2), 500);
    CHECK_EQ_INT(view_skip(v, 2, 100, hw, g2), 500);

    /* At most VIEW_MAX_SPANS per partition: the least recently used goes. */
    for (int i = 0; i < VIEW_MAX_SPANS + 10; i++)
        view_note(v, 3, (int64_t)i * 10, (int64_t)i * 10 + 5, g2);
    CHECK_EQ_INT(view_skip(v, 3, 0, hw, g2), 0); /* among the oldest: dropped */
    CHECK_EQ_INT(view_skip(v, 3, (VIEW_MAX_SPANS + 9) * 10, hw, g2), (VIEW_MAX_SPANS + 9) * 10 + 5);
    int kept = 0;
    for (int i = 0; i < VIEW_MAX_SPANS + 10; i++)
        kept += view_skip(v, 3, (int64_t)i * 10, hw, g2) != (int64_t)i * 10;
    CHECK_EQ_INT(kept, VIEW_MAX_SPANS);
    view_filter_put(vf);
    view_filter_put(vf2);
    view_free(v);
}

int main(void)
{
    test_check();
    test_filter_swap();
    test_spans();
    return tap_done();
}
