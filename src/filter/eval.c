/*
 * eval: a compiled filter against one record's header values.
 *
 * Three-valued logic as in SQL (and RocketMQ's SQL92 filter): every
 * condition is TRUE, FALSE or UNKNOWN; a NULL operand (absent header)
 * makes a comparison UNKNOWN; NOT UNKNOWN is UNKNOWN; AND is FALSE if any
 * part is FALSE, else UNKNOWN if any is UNKNOWN; OR the mirror image.  A
 * record matches when the whole expression is TRUE.
 *
 * How two values compare (filter.h, README.md):
 *   - with a number literal on either side, both must be numbers: a
 *     header whose value is not a number makes the comparison UNKNOWN;
 *   - with a string literal on either side, bytes are compared (equal
 *     when identical; <, > in byte order, shorter first);
 *   - header against header: as numbers when both values are numbers,
 *     otherwise as strings.
 */
#include <string.h>

#include "filter/filter_int.h"

enum tv { TV_FALSE = 0, TV_TRUE = 1, TV_UNKNOWN = 2 };

int fnum_parse(const char *p, size_t len, struct fnum *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < len && p[i] == '-') {
        neg = true;
        i++;
    }
    size_t int_start = i;
    while (i < len && p[i] >= '0' && p[i] <= '9')
        i++;
    if (i == int_start)
        return -1;
    size_t int_end = i;
    bool frac = false;
    if (i < len && p[i] == '.') {
        i++;
        size_t fs = i;
        while (i < len && p[i] >= '0' && p[i] <= '9')
            i++;
        if (i == fs)
            return -1;
        frac = true;
    }
    if (i != len)
        return -1;
    /* Exact integer when it fits; the accumulation stops before overflow. */
    uint64_t u = 0;
    bool fits = !frac;
    for (size_t k = int_start; fits && k < int_end; k++) {
        unsigned dgt = (unsigned)(p[k] - '0');
        if (u > (UINT64_C(9223372036854775808) - dgt) / 10)
            fits = false;
        else
            u = u * 10 + dgt;
    }
    if (fits && (neg ? u <= UINT64_C(9223372036854775808) : u <= INT64_MAX)) {
        out->is_int = true;
        out->i = neg ? (int64_t)(0 - u) : (int64_t)u;
        out->d = (long double)out->i;
        return 0;
    }
    /* A fraction or a huge integer: long double, digit by digit (no
     * locale-dependent strtold, and the text is already validated). */
    long double d = 0;
    for (size_t k = int_start; k < int_end; k++)
        d = d * 10 + (p[k] - '0');
    if (frac) {
        long double scale = 1;
        for (size_t k = int_end + 1; k < len; k++) {
            scale /= 10;
            d += (p[k] - '0') * scale;
        }
    }
    out->is_int = false;
    out->i = 0;
    out->d = neg ? -d : d;
    return 0;
}

int fnum_cmp(const struct fnum *a, const struct fnum *b)
{
    if (a->is_int && b->is_int)
        return (a->i > b->i) - (a->i < b->i);
    /* long double has a 64-bit mantissa on x86-64: int64 values are exact. */
    return (a->d > b->d) - (a->d < b->d);
}

/* An operand's value for this record. */
struct fval {
    bool null;
    bool literal; /* a literal, whose kind decides the comparison */
    enum fopnd_kind kind;
    const char *s;
    size_t len;
    const struct fnum *num;
};

static struct fval resolve(const struct fopnd *o, const struct filter_value *vals)
{
    struct fval v = {.kind = o->kind, .literal = o->kind != FO_HEADER};
    switch (o->kind) {
    case FO_HEADER:
        v.null = vals[o->slot].len < 0;
        v.s = (const char *)vals[o->slot].p;
        v.len = v.null ? 0 : (size_t)vals[o->slot].len;
        break;
    case FO_STRING:
        v.s = o->s;
        v.len = o->len;
        break;
    case FO_NUMBER:
        v.num = &o->num;
        break;
    }
    return v;
}

static int bytes_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c < 0 ? -1 : 1;
    return (al > bl) - (al < bl);
}

/* Orders a and b: -1, 0, 1, or 2 when they cannot be compared. */
static int compare(const struct fval *a, const struct fval *b)
{
    if (a->null || b->null)
        return 2;
    bool want_num = (a->literal && a->kind == FO_NUMBER) || (b->literal && b->kind == FO_NUMBER);
    bool want_str = (a->literal && a->kind == FO_STRING) || (b->literal && b->kind == FO_STRING);
    if (want_num && want_str)
        return 2;
    if (!want_str) {
        struct fnum na, nb;
        bool a_ok = a->num ? (na = *a->num, true) : fnum_parse(a->s, a->len, &na) == 0;
        bool b_ok = b->num ? (nb = *b->num, true) : fnum_parse(b->s, b->len, &nb) == 0;
        if (a_ok && b_ok)
            return fnum_cmp(&na, &nb);
        if (want_num)
            return 2; /* a number against a header that holds no number */
    }
    return bytes_cmp(a->s, a->len, b->s, b->len);
}

static enum tv cmp_tv(int c, enum fcmp_op op)
{
    if (c == 2)
        return TV_UNKNOWN;
    bool r = false;
    switch (op) {
    case FC_EQ:
        r = c == 0;
        break;
    case FC_NE:
        r = c != 0;
        break;
    case FC_LT:
        r = c < 0;
        break;
    case FC_LE:
        r = c <= 0;
        break;
    case FC_GT:
        r = c > 0;
        break;
    case FC_GE:
        r = c >= 0;
        break;
    }
    return r ? TV_TRUE : TV_FALSE;
}

static enum tv tv_and(enum tv a, enum tv b)
{
    if (a == TV_FALSE || b == TV_FALSE)
        return TV_FALSE;
    return a == TV_TRUE && b == TV_TRUE ? TV_TRUE : TV_UNKNOWN;
}

static enum tv eval(const struct filter *f, int idx, const struct filter_value *vals)
{
    const struct fnode *n = &f->nodes[idx];
    switch (n->kind) {
    case FN_TRUE:
        return TV_TRUE;
    case FN_FALSE:
        return TV_FALSE;
    case FN_AND:
    case FN_OR: {
        /* Short-circuits on the deciding value; remembers UNKNOWN. */
        enum tv decide = n->kind == FN_AND ? TV_FALSE : TV_TRUE;
        enum tv res = n->kind == FN_AND ? TV_TRUE : TV_FALSE;
        for (int i = 0; i < n->count; i++) {
            enum tv t = eval(f, f->kids[n->first + i], vals);
            if (t == decide)
                return decide;
            if (t == TV_UNKNOWN)
                res = TV_UNKNOWN;
        }
        return res;
    }
    case FN_NOT: {
        enum tv t = eval(f, f->kids[n->first], vals);
        return t == TV_UNKNOWN ? TV_UNKNOWN : t == TV_TRUE ? TV_FALSE : TV_TRUE;
    }
    case FN_CMP: {
        struct fval a = resolve(&n->a, vals), b = resolve(&n->b, vals);
        return cmp_tv(compare(&a, &b), n->op);
    }
    case FN_BETWEEN: {
        struct fval a = resolve(&n->a, vals), lo = resolve(&n->b, vals), hi = resolve(&n->c, vals);
        return tv_and(cmp_tv(compare(&a, &lo), FC_GE), cmp_tv(compare(&a, &hi), FC_LE));
    }
    case FN_IN: {
        struct fval a = resolve(&n->a, vals);
        if (a.null)
            return TV_UNKNOWN;
        enum tv res = TV_FALSE;
        for (int i = 0; i < n->count; i++) {
            struct fval v = resolve(&f->list[n->first + i], vals);
            enum tv t = cmp_tv(compare(&a, &v), FC_EQ);
            if (t == TV_TRUE)
                return TV_TRUE;
            if (t == TV_UNKNOWN)
                res = TV_UNKNOWN;
        }
        return res;
    }
    case FN_IS_NULL: {
        struct fval a = resolve(&n->a, vals);
        return a.null ? TV_TRUE : TV_FALSE;
    }
    }
    return TV_UNKNOWN;
}

bool filter_match(const struct filter *f, const struct filter_value *vals)
{
    if (f->all)
        return true;
    return eval(f, f->root, vals) == TV_TRUE;
}
