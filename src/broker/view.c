/* view: a filtered view's source, filter and no-match spans (see view.h). */
#include "broker/view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/topics.h"
#include "common/kerr.h"

struct topic_view *view_new(void)
{
    struct topic_view *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    pthread_mutex_init(&v->mu, NULL);
    v->next_gen = 1;
    return v;
}

void view_free(struct topic_view *v)
{
    if (!v)
        return;
    view_filter_put(v->filter);
    topic_put(v->source);
    for (int32_t p = 0; p < v->n_parts; p++)
        free(v->spans[p].v);
    free(v->spans);
    pthread_mutex_destroy(&v->mu);
    free(v);
}

int16_t view_check_overrides(const struct config_overrides *o, bool *is_view,
                             struct view_filter **out, char *err, size_t errlen)
{
    *out = NULL;
    const char *source = config_overrides_get(o, VIEW_SOURCE_KEY);
    const char *expr = config_overrides_get(o, VIEW_FILTER_KEY);
    const char *type_s = config_overrides_get(o, VIEW_FILTER_TYPE_KEY);
    *is_view = source != NULL;
    if (!source) {
        if (expr || type_s) {
            snprintf(err, errlen,
                     "%s applies to views only: a view is created with %s=<topic>; an existing "
                     "topic cannot become one",
                     expr ? VIEW_FILTER_KEY : VIEW_FILTER_TYPE_KEY, VIEW_SOURCE_KEY);
            return KERR_INVALID_CONFIG;
        }
        return KERR_NONE;
    }
    for (int i = 0; i < o->n; i++)
        if (strncmp(o->kv[i].key, "view.", 5)) {
            snprintf(err, errlen,
                     "a view has no log of its own: only %s, %s and %s apply, not '%s'",
                     VIEW_SOURCE_KEY, VIEW_FILTER_KEY, VIEW_FILTER_TYPE_KEY, o->kv[i].key);
            return KERR_INVALID_CONFIG;
        }
    enum filter_type type = FILTER_TAG;
    if (type_s && filter_type_parse(type_s, &type)) {
        snprintf(err, errlen, "%s: '%s' is not TAG or SQL92", VIEW_FILTER_TYPE_KEY, type_s);
        return KERR_INVALID_CONFIG;
    }
    if (!expr) {
        snprintf(err, errlen, "a view needs %s (with %s=TAG, * passes every record)",
                 VIEW_FILTER_KEY, VIEW_FILTER_TYPE_KEY);
        return KERR_INVALID_CONFIG;
    }
    /* The topic file stores one setting per line. */
    if (strpbrk(expr, "\r\n")) {
        snprintf(err, errlen, "%s: line breaks are not allowed; write the expression on one line",
                 VIEW_FILTER_KEY);
        return KERR_INVALID_CONFIG;
    }
    struct filter_error fe;
    struct filter *f = filter_compile(type, expr, strlen(expr), &fe);
    if (!f) {
        snprintf(err, errlen, "%s (%s): %s", VIEW_FILTER_KEY, filter_type_name(type), fe.message);
        return KERR_INVALID_CONFIG;
    }
    struct view_filter *vf = calloc(1, sizeof *vf);
    if (!vf) {
        filter_free(f);
        snprintf(err, errlen, "out of memory");
        return KERR_INVALID_CONFIG;
    }
    atomic_store(&vf->refs, 1);
    vf->f = f;
    *out = vf;
    return KERR_NONE;
}

void view_filter_put(struct view_filter *vf)
{
    if (vf && atomic_fetch_sub(&vf->refs, 1) == 1) {
        filter_free(vf->f);
        free(vf);
    }
}

struct view_filter *view_filter_get(struct topic_view *v)
{
    pthread_mutex_lock(&v->mu);
    struct view_filter *vf = v->filter;
    if (vf)
        atomic_fetch_add(&vf->refs, 1);
    pthread_mutex_unlock(&v->mu);
    return vf;
}

void view_set_filter(struct topic_view *v, struct view_filter *vf)
{
    pthread_mutex_lock(&v->mu);
    struct view_filter *old = v->filter;
    if (vf)
        vf->gen = v->next_gen++;
    v->filter = vf;
    for (int32_t p = 0; p < v->n_parts; p++)
        v->spans[p].n = 0; /* they held for the old filter only */
    pthread_mutex_unlock(&v->mu);
    view_filter_put(old);
}

/* A partition's spans (grown on demand when `create`), under mu. */
static struct view_spans *spans_of(struct topic_view *v, int32_t part, bool create)
{
    if (part < 0)
        return NULL;
    if (part >= v->n_parts) {
        if (!create)
            return NULL;
        struct view_spans *ns = realloc(v->spans, (size_t)(part + 1) * sizeof *ns);
        if (!ns)
            return NULL;
        memset(ns + v->n_parts, 0, (size_t)(part + 1 - v->n_parts) * sizeof *ns);
        v->spans = ns;
        v->n_parts = part + 1;
    }
    return &v->spans[part];
}

/* Index of the first span with to >= offset (spans are sorted). */
static int first_reaching(const struct view_spans *s, int64_t offset)
{
    int lo = 0, hi = s->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (s->v[mid].to < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int64_t view_skip(struct topic_view *v, int32_t part, int64_t offset, int64_t hw, uint64_t gen)
{
    pthread_mutex_lock(&v->mu);
    struct view_spans *s = spans_of(v, part, false);
    if (s && v->filter && v->filter->gen == gen) {
        if (s->n > 0 && s->v[s->n - 1].to > hw) {
            /* The log end went back (truncation): forget what lay past it. */
            int k = first_reaching(s, hw + 1);
            if (k < s->n && s->v[k].from < hw)
                s->v[k++].to = hw;
            s->n = k;
        }
        int i = first_reaching(s, offset + 1);
        if (i < s->n && s->v[i].from <= offset) {
            offset = s->v[i].to;
            s->v[i].used = ++v->clock;
        }
    }
    pthread_mutex_unlock(&v->mu);
    return offset;
}

void view_note(struct topic_view *v, int32_t part, int64_t from, int64_t to, uint64_t gen)
{
    if (to <= from)
        return;
    pthread_mutex_lock(&v->mu);
    struct view_spans *s = v->filter && v->filter->gen == gen ? spans_of(v, part, true) : NULL;
    if (s) {
        /* Spans [i, j) overlap or touch [from, to]: they merge into one. */
        int i = first_reaching(s, from);
        int j = i;
        while (j < s->n && s->v[j].from <= to)
            j++;
        if (i < j) {
            if (s->v[i].from < from)
                from = s->v[i].from;
            if (s->v[j - 1].to > to)
                to = s->v[j - 1].to;
            s->v[i] = (struct view_span){from, to, ++v->clock};
            memmove(&s->v[i + 1], &s->v[j], (size_t)(s->n - j) * sizeof *s->v);
            s->n -= j - i - 1;
        } else {
            if (s->n == VIEW_MAX_SPANS) {
                int lru = 0;
                for (int k = 1; k < s->n; k++)
                    if (s->v[k].used < s->v[lru].used)
                        lru = k;
                memmove(&s->v[lru], &s->v[lru + 1], (size_t)(s->n - lru - 1) * sizeof *s->v);
                s->n--;
                i = first_reaching(s, from);
            }
            if (s->n == s->cap) {
                int cap = s->cap ? s->cap * 2 : 4;
                struct view_span *nv = realloc(s->v, (size_t)cap * sizeof *nv);
                if (!nv)
                    goto out;
                s->v = nv;
                s->cap = cap;
            }
            memmove(&s->v[i + 1], &s->v[i], (size_t)(s->n - i) * sizeof *s->v);
            s->v[i] = (struct view_span){from, to, ++v->clock};
            s->n++;
        }
    }
out:
    pthread_mutex_unlock(&v->mu);
}
