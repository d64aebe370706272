/*
 * parser: TAG and SQL92 expressions into the node tree of filter_int.h.
 *
 * SQL92 is parsed by recursive descent, lowest precedence first:
 *
 *   expr      := and_expr (OR and_expr)*
 *   and_expr  := not_expr (AND not_expr)*
 *   not_expr  := NOT not_expr | primary
 *   primary   := '(' expr ')' | TRUE | FALSE | operand predicate
 *   predicate := cmp_op operand
 *              | [NOT] BETWEEN operand AND operand
 *              | [NOT] IN '(' literal (',' literal)* ')'
 *              | IS [NOT] NULL
 *   operand   := identifier | "quoted identifier" | 'string' | number
 *   literal   := 'string' | number
 *
 * Keywords are case-insensitive; identifiers (header keys) are not.  The
 * AND inside BETWEEN binds to it: `a BETWEEN 1 AND 5 AND b = 'x'` is
 * (a BETWEEN 1 AND 5) AND (b = 'x').  NOT BETWEEN, NOT IN and IS NOT NULL
 * become a NOT node over the positive form, which gives SQL's answers
 * with NULLs (NOT unknown is unknown).
 *
 * A TAG expression (`*` or `A || B || C`) becomes `tag IN ('A','B','C')`.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "filter/filter_int.h"

struct fparser {
    struct flexer lx;
    struct ftok tok; /* the current token */
    struct filter *f;
    struct filter_error *err;
    int depth;
    bool failed;
};

int filter_type_parse(const char *s, enum filter_type *out)
{
    if (!strcasecmp(s, "TAG"))
        *out = FILTER_TAG;
    else if (!strcasecmp(s, "SQL92"))
        *out = FILTER_SQL92;
    else
        return -1;
    return 0;
}

const char *filter_type_name(enum filter_type t)
{
    return t == FILTER_SQL92 ? "SQL92" : "TAG";
}

/* ---- building ---- */

static bool grow(void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return true;
    int ncap = *cap ? *cap * 2 : 16;
    while (ncap < need)
        ncap *= 2;
    void *np = realloc(*p, (size_t)ncap * elem);
    if (!np)
        return false;
    *p = np;
    *cap = ncap;
    return true;
}

static void oom(struct fparser *ps)
{
    filter_set_error(ps->err, ps->tok.start, "out of memory");
    ps->failed = true;
}

static int new_node(struct fparser *ps, enum fnode_kind kind)
{
    struct filter *f = ps->f;
    if (!grow((void **)&f->nodes, &f->cap_nodes, f->n_nodes + 1, sizeof *f->nodes)) {
        oom(ps);
        return -1;
    }
    struct fnode *n = &f->nodes[f->n_nodes];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    return f->n_nodes++;
}

/* Copies src[0..len) into the pool, turning each doubled `q` into one. */
static const char *pool_unquote(struct filter *f, const char *src, size_t len, char q,
                                size_t *out_len)
{
    char *dst = f->pool + f->pool_len;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        dst[n++] = src[i];
        if (q && src[i] == q && i + 1 < len && src[i + 1] == q)
            i++;
    }
    f->pool_len += n;
    *out_len = n;
    return dst;
}

/* The slot of a header key, added when new. */
static int slot_of(struct fparser *ps, const char *p, size_t len, size_t pos0)
{
    struct filter *f = ps->f;
    for (int i = 0; i < f->n_slots; i++)
        if (f->slots[i].len == len && !memcmp(f->slots[i].p, p, len))
            return i;
    if (f->n_slots == FILTER_MAX_SLOTS) {
        filter_set_error(ps->err, pos0, "more than %d distinct headers", FILTER_MAX_SLOTS);
        ps->failed = true;
        return -1;
    }
    f->slots[f->n_slots].p = p;
    f->slots[f->n_slots].len = len;
    return f->n_slots++;
}

/* ---- tokens ---- */

static const char *tok_text(const struct fparser *ps)
{
    return ps->lx.src + ps->tok.start;
}

static void advance(struct fparser *ps)
{
    ps->tok = flex_next(&ps->lx);
    if (ps->tok.kind == FT_ERROR)
        ps->failed = true;
}

static bool is_kw(const struct fparser *ps, const char *kw)
{
    size_t n = strlen(kw);
    return ps->tok.kind == FT_IDENT && ps->tok.len == n && !strncasecmp(tok_text(ps), kw, n);
}

static bool is_any_kw(const struct fparser *ps)
{
    static const char *const kws[] = {"AND", "OR",   "NOT",  "BETWEEN", "IN",
                                      "IS",  "NULL", "TRUE", "FALSE"};
    for (size_t i = 0; i < sizeof kws / sizeof kws[0]; i++)
        if (is_kw(ps, kws[i]))
            return true;
    return false;
}

/* "expected X, found Y" at the current token. */
static void unexpected(struct fparser *ps, const char *expected)
{
    ps->failed = true;
    if (ps->tok.kind == FT_ERROR)
        return; /* the lexer said why */
    if (ps->tok.kind == FT_END) {
        filter_set_error(ps->err, ps->tok.start, "expected %s but the expression ends", expected);
        return;
    }
    int n = ps->tok.len > 24 ? 24 : (int)ps->tok.len;
    filter_set_error(ps->err, ps->tok.start, "expected %s but found '%.*s%s'", expected, n,
                     tok_text(ps), ps->tok.len > 24 ? "..." : "");
}

/* ---- SQL92 ---- */

static int parse_or(struct fparser *ps);

/* An operand; literal_only refuses identifiers (IN lists). */
static bool parse_operand(struct fparser *ps, struct fopnd *o, bool literal_only)
{
    struct filter *f = ps->f;
    const char *what = literal_only ? "a string or a number" : "a header name, string or number";
    switch (ps->tok.kind) {
    case FT_NUMBER:
        o->kind = FO_NUMBER;
        if (fnum_parse(tok_text(ps), ps->tok.len, &o->num)) {
            unexpected(ps, what);
            return false;
        }
        break;
    case FT_STRING:
        o->kind = FO_STRING;
        o->s = pool_unquote(f, tok_text(ps) + 1, ps->tok.len - 2, '\'', &o->len);
        break;
    case FT_QIDENT:
    case FT_IDENT: {
        if (literal_only) {
            unexpected(ps, what);
            return false;
        }
        if (ps->tok.kind == FT_IDENT && is_any_kw(ps)) {
            if (is_kw(ps, "NULL")) {
                filter_set_error(ps->err, ps->tok.start,
                                 "NULL is tested with IS NULL or IS NOT NULL, not compared");
                ps->failed = true;
            } else
                unexpected(ps, what);
            return false;
        }
        size_t len;
        const char *p = ps->tok.kind == FT_QIDENT
                            ? pool_unquote(f, tok_text(ps) + 1, ps->tok.len - 2, '"', &len)
                            : pool_unquote(f, tok_text(ps), ps->tok.len, 0, &len);
        o->kind = FO_HEADER;
        o->slot = slot_of(ps, p, len, ps->tok.start);
        if (o->slot < 0)
            return false;
        break;
    }
    default:
        unexpected(ps, what);
        return false;
    }
    advance(ps);
    return !ps->failed;
}

/* Two literals of different kinds can never compare: say so now. */
static bool check_kinds(struct fparser *ps, const struct fopnd *a, const struct fopnd *b,
                        size_t pos0)
{
    if (a->kind != FO_HEADER && b->kind != FO_HEADER && a->kind != b->kind) {
        filter_set_error(ps->err, pos0, "cannot compare a string with a number");
        ps->failed = true;
        return false;
    }
    return true;
}

static int wrap_not(struct fparser *ps, int inner)
{
    if (inner < 0)
        return -1;
    struct filter *f = ps->f;
    if (!grow((void **)&f->kids, &f->cap_kids, f->n_kids + 1, sizeof *f->kids)) {
        oom(ps);
        return -1;
    }
    int n = new_node(ps, FN_NOT);
    if (n < 0)
        return -1;
    f->kids[f->n_kids] = inner;
    f->nodes[n].first = f->n_kids++;
    f->nodes[n].count = 1;
    return n;
}

static int parse_predicate(struct fparser *ps)
{
    struct filter *f = ps->f;
    size_t start = ps->tok.start;
    struct fopnd a = {0};
    if (!parse_operand(ps, &a, false))
        return -1;
    enum fcmp_op op;
    switch (ps->tok.kind) {
    case FT_EQ:
        op = FC_EQ;
        break;
    case FT_NE:
        op = FC_NE;
        break;
    case FT_LT:
        op = FC_LT;
        break;
    case FT_LE:
        op = FC_LE;
        break;
    case FT_GT:
        op = FC_GT;
        break;
    case FT_GE:
        op = FC_GE;
        break;
    default:
        goto keyword;
    }
    {
        size_t opos = ps->tok.start;
        advance(ps);
        struct fopnd b = {0};
        if (ps->failed || !parse_operand(ps, &b, false) || !check_kinds(ps, &a, &b, opos))
            return -1;
        int n = new_node(ps, FN_CMP);
        if (n < 0)
            return -1;
        f->nodes[n].op = op;
        f->nodes[n].a = a;
        f->nodes[n].b = b;
        return n;
    }
keyword:;
    bool negate = false;
    if (is_kw(ps, "IS")) {
        advance(ps);
        if (is_kw(ps, "NOT")) {
            negate = true;
            advance(ps);
        }
        if (!is_kw(ps, "NULL")) {
            unexpected(ps, negate ? "NULL" : "NULL or NOT NULL");
            return -1;
        }
        advance(ps);
        int n = new_node(ps, FN_IS_NULL);
        if (n < 0)
            return -1;
        f->nodes[n].a = a;
        return negate ? wrap_not(ps, n) : n;
    }
    if (is_kw(ps, "NOT")) {
        negate = true;
        advance(ps);
        if (!is_kw(ps, "BETWEEN") && !is_kw(ps, "IN")) {
            unexpected(ps, "BETWEEN or IN after NOT");
            return -1;
        }
    }
    if (is_kw(ps, "BETWEEN")) {
        advance(ps);
        struct fopnd lo = {0}, hi = {0};
        size_t lpos = ps->tok.start;
        if (!parse_operand(ps, &lo, false) || !check_kinds(ps, &a, &lo, lpos))
            return -1;
        if (!is_kw(ps, "AND")) {
            unexpected(ps, "AND (of BETWEEN)");
            return -1;
        }
        advance(ps);
        size_t hpos = ps->tok.start;
        if (ps->failed || !parse_operand(ps, &hi, false) || !check_kinds(ps, &a, &hi, hpos) ||
            !check_kinds(ps, &lo, &hi, hpos))
            return -1;
        int n = new_node(ps, FN_BETWEEN);
        if (n < 0)
            return -1;
        f->nodes[n].a = a;
        f->nodes[n].b = lo;
        f->nodes[n].c = hi;
        return negate ? wrap_not(ps, n) : n;
    }
    if (is_kw(ps, "IN")) {
        advance(ps);
        if (ps->tok.kind != FT_LPAREN) {
            unexpected(ps, "'(' after IN");
            return -1;
        }
        advance(ps);
        int first = f->n_list, count = 0;
        for (;;) {
            struct fopnd v = {0};
            size_t vpos = ps->tok.start;
            if (ps->failed || !parse_operand(ps, &v, true) || !check_kinds(ps, &a, &v, vpos))
                return -1;
            if (!grow((void **)&f->list, &f->cap_list, f->n_list + 1, sizeof *f->list)) {
                oom(ps);
                return -1;
            }
            f->list[f->n_list++] = v;
            count++;
            if (ps->tok.kind == FT_COMMA) {
                advance(ps);
                continue;
            }
            if (ps->tok.kind == FT_RPAREN)
                break;
            unexpected(ps, "',' or ')' in the IN list");
            return -1;
        }
        advance(ps);
        int n = new_node(ps, FN_IN);
        if (n < 0)
            return -1;
        f->nodes[n].a = a;
        f->nodes[n].first = first;
        f->nodes[n].count = count;
        return negate ? wrap_not(ps, n) : n;
    }
    (void)start;
    unexpected(ps, "a comparison (= <> < <= > >=, BETWEEN, IN or IS)");
    return -1;
}

static int parse_primary(struct fparser *ps)
{
    if (ps->tok.kind == FT_LPAREN) {
        size_t open = ps->tok.start;
        if (++ps->depth > FILTER_MAX_DEPTH) {
            filter_set_error(ps->err, open, "nested more than %d levels deep", FILTER_MAX_DEPTH);
            ps->failed = true;
            return -1;
        }
        advance(ps);
        if (ps->failed)
            return -1;
        int n = parse_or(ps);
        if (n < 0)
            return -1;
        if (ps->tok.kind != FT_RPAREN) {
            unexpected(ps, "')'");
            return -1;
        }
        ps->depth--;
        advance(ps);
        return n;
    }
    if (is_kw(ps, "TRUE") || is_kw(ps, "FALSE")) {
        int n = new_node(ps, is_kw(ps, "TRUE") ? FN_TRUE : FN_FALSE);
        advance(ps);
        return n;
    }
    if (ps->tok.kind == FT_IDENT || ps->tok.kind == FT_QIDENT || ps->tok.kind == FT_STRING ||
        ps->tok.kind == FT_NUMBER)
        return parse_predicate(ps);
    unexpected(ps, "a condition");
    return -1;
}

static int parse_not(struct fparser *ps)
{
    if (!is_kw(ps, "NOT"))
        return parse_primary(ps);
    size_t pos = ps->tok.start;
    if (++ps->depth > FILTER_MAX_DEPTH) {
        filter_set_error(ps->err, pos, "nested more than %d levels deep", FILTER_MAX_DEPTH);
        ps->failed = true;
        return -1;
    }
    advance(ps);
    if (ps->failed)
        return -1;
    int n = wrap_not(ps, parse_not(ps));
    ps->depth--;
    return n;
}

/* AND or OR over one or more operands parsed by `sub`. */
static int parse_chain(struct fparser *ps, const char *kw, enum fnode_kind kind,
                       int (*sub)(struct fparser *))
{
    struct filter *f = ps->f;
    int first = sub(ps);
    if (first < 0 || !is_kw(ps, kw))
        return first;
    /* Children are collected here, then stored as one run of kids. */
    int *tmp = NULL, n = 0, cap = 0;
    if (!grow((void **)&tmp, &cap, 1, sizeof *tmp)) {
        oom(ps);
        return -1;
    }
    tmp[n++] = first;
    while (is_kw(ps, kw)) {
        advance(ps);
        int k = ps->failed ? -1 : sub(ps);
        if (k < 0 || !grow((void **)&tmp, &cap, n + 1, sizeof *tmp)) {
            if (k >= 0)
                oom(ps);
            free(tmp);
            return -1;
        }
        tmp[n++] = k;
    }
    int node = -1;
    if (grow((void **)&f->kids, &f->cap_kids, f->n_kids + n, sizeof *f->kids) &&
        (node = new_node(ps, kind)) >= 0) {
        memcpy(f->kids + f->n_kids, tmp, (size_t)n * sizeof *tmp);
        f->nodes[node].first = f->n_kids;
        f->nodes[node].count = n;
        f->n_kids += n;
    } else if (!ps->failed) {
        oom(ps);
    }
    free(tmp);
    return node;
}

static int parse_and(struct fparser *ps)
{
    return parse_chain(ps, "AND", FN_AND, parse_not);
}

static int parse_or(struct fparser *ps)
{
    return parse_chain(ps, "OR", FN_OR, parse_and);
}

static int compile_sql(struct fparser *ps)
{
    advance(ps);
    if (ps->failed)
        return -1;
    if (ps->tok.kind == FT_END) {
        filter_set_error(ps->err, 0, "empty expression");
        ps->failed = true;
        return -1;
    }
    int root = parse_or(ps);
    if (root >= 0 && ps->tok.kind != FT_END) {
        unexpected(ps, "AND, OR or the end of the expression");
        return -1;
    }
    return ps->failed ? -1 : root;
}

/* ---- TAG ---- */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int compile_tag(struct fparser *ps, const char *s, size_t len)
{
    struct filter *f = ps->f;
    size_t b = 0, e = len;
    while (b < e && is_blank(s[b]))
        b++;
    while (e > b && is_blank(s[e - 1]))
        e--;
    if (b == e) {
        filter_set_error(ps->err, 0, "empty tag expression (use * for every record)");
        return -1;
    }
    if (e - b == 1 && s[b] == '*') {
        f->all = true;
        return new_node(ps, FN_TRUE);
    }
    int first = f->n_list, count = 0;
    size_t i = 0;
    for (;;) {
        /* One tag: up to the next "||" or the end, blanks trimmed. */
        size_t ts = i;
        while (i < len && s[i] != '|')
            i++;
        size_t te = i, tb = ts;
        while (tb < te && is_blank(s[tb]))
            tb++;
        while (te > tb && is_blank(s[te - 1]))
            te--;
        if (tb == te) {
            filter_set_error(ps->err, tb < len ? tb : len, "empty tag");
            return -1;
        }
        if (te - tb == 1 && s[tb] == '*') {
            filter_set_error(ps->err, tb, "'*' stands alone: it already means every tag");
            return -1;
        }
        if (!grow((void **)&f->list, &f->cap_list, f->n_list + 1, sizeof *f->list)) {
            oom(ps);
            return -1;
        }
        struct fopnd *v = &f->list[f->n_list++];
        memset(v, 0, sizeof *v);
        v->kind = FO_STRING;
        v->s = pool_unquote(f, s + tb, te - tb, 0, &v->len);
        count++;
        if (i >= len)
            break;
        if (i + 1 >= len || s[i + 1] != '|') {
            filter_set_error(ps->err, i, "a tag cannot contain '|' (tags are separated by ||)");
            return -1;
        }
        i += 2;
    }
    int n = new_node(ps, FN_IN);
    if (n < 0)
        return -1;
    f->nodes[n].a.kind = FO_HEADER;
    f->nodes[n].a.slot = slot_of(ps, "tag", 3, 0);
    f->nodes[n].first = first;
    f->nodes[n].count = count;
    return n;
}

/* ---- entry points ---- */

void filter_free(struct filter *f)
{
    if (!f)
        return;
    free(f->nodes);
    free(f->kids);
    free(f->list);
    free(f->pool);
    free(f);
}

struct filter *filter_compile(enum filter_type type, const char *expr, size_t len,
                              struct filter_error *err)
{
    struct filter_error scratch;
    if (!err)
        err = &scratch;
    memset(err, 0, sizeof *err);
    if (len > FILTER_MAX_LEN) {
        filter_set_error(err, FILTER_MAX_LEN, "longer than %d bytes", FILTER_MAX_LEN);
        return NULL;
    }
    for (size_t i = 0; i < len; i++)
        if (expr[i] == 0) {
            filter_set_error(err, i, "NUL byte in the expression");
            return NULL;
        }
    struct filter *f = calloc(1, sizeof *f);
    if (!f || !(f->pool = malloc(len + 1))) {
        free(f);
        filter_set_error(err, 0, "out of memory");
        return NULL;
    }
    f->type = type;
    f->pool_cap = len + 1;
    struct fparser ps = {.lx = {.src = expr, .len = len, .err = err}, .f = f, .err = err};
    int root = type == FILTER_SQL92 ? compile_sql(&ps) : compile_tag(&ps, expr, len);
    if (root < 0 || ps.failed) {
        if (!err->position)
            filter_set_error(err, 0, "invalid expression");
        filter_free(f);
        return NULL;
    }
    f->root = root;
    if (f->nodes[root].kind == FN_TRUE)
        f->all = true;
    return f;
}

bool filter_matches_all(const struct filter *f)
{
    return f->all;
}

int filter_slot_count(const struct filter *f)
{
    return f->n_slots;
}

int filter_slot(const struct filter *f, const void *key, size_t len)
{
    for (int i = 0; i < f->n_slots; i++)
        if (f->slots[i].len == len && !memcmp(f->slots[i].p, key, len))
            return i;
    return -1;
}
