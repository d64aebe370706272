/*
 * filter_int.h: what the lexer, the parser and the evaluator share.
 *
 * A compiled filter is a tree of nodes in one array, children referring
 * to each other by index; AND and OR are n-ary (their children are a run
 * of the `kids` array), so a long chain `a OR b OR c ...` is one node and
 * evaluation depth is bounded by the nesting of parentheses and NOTs
 * (FILTER_MAX_DEPTH), not by the length of the expression.
 */
#ifndef RUNNEL_FILTER_INT_H
#define RUNNEL_FILTER_INT_H

#include "filter/filter.h"

/* Parentheses and NOTs nested deeper than this are refused. */
#define FILTER_MAX_DEPTH 64

/* ---- lexer ---- */

enum ftok_kind {
    FT_END,
    FT_IDENT,  /* bare identifier (keywords are recognised by the parser) */
    FT_QIDENT, /* "quoted identifier" ("" inside is one ") */
    FT_STRING, /* 'string' ('' inside is one ') */
    FT_NUMBER, /* -?digits(.digits)? */
    FT_LPAREN,
    FT_RPAREN,
    FT_COMMA,
    FT_EQ, /* = */
    FT_NE, /* <> or != */
    FT_LT,
    FT_LE,
    FT_GT,
    FT_GE,
    FT_ERROR, /* lexing failed: the lexer's error is set */
};

struct ftok {
    enum ftok_kind kind;
    size_t start, len; /* the token's bytes in the source, quotes included */
};

struct flexer {
    const char *src;
    size_t len, pos;
    struct filter_error *err;
};

/* The next token; FT_ERROR with lx->err set on a bad character, an
 * unterminated string or a malformed number. */
struct ftok flex_next(struct flexer *lx);
/* Sets err (first error wins) with a 0-based position. */
void filter_set_error(struct filter_error *err, size_t pos0, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- values and nodes ---- */

/* A number: integers are kept exact, anything with a fraction (or too
 * large for int64) as a long double. */
struct fnum {
    bool is_int;
    int64_t i;
    long double d;
};
/* Parses the whole of p[0..len) as -?digits(.digits)?: 0, else -1. */
int fnum_parse(const char *p, size_t len, struct fnum *out);
int fnum_cmp(const struct fnum *a, const struct fnum *b);

enum fopnd_kind { FO_HEADER, FO_STRING, FO_NUMBER };

struct fopnd {
    enum fopnd_kind kind;
    int slot;      /* FO_HEADER */
    const char *s; /* FO_STRING: unescaped, in the filter's pool */
    size_t len;
    struct fnum num; /* FO_NUMBER */
};

enum fnode_kind {
    FN_TRUE,
    FN_FALSE,
    FN_AND, /* kids[first .. first+count) */
    FN_OR,
    FN_NOT,     /* kids[first] */
    FN_CMP,     /* a op b */
    FN_BETWEEN, /* a BETWEEN b AND c */
    FN_IN,      /* a IN (list[first .. first+count)) */
    FN_IS_NULL, /* a IS NULL */
};

enum fcmp_op { FC_EQ, FC_NE, FC_LT, FC_LE, FC_GT, FC_GE };

struct fnode {
    enum fnode_kind kind;
    enum fcmp_op op;
    int first, count;
    struct fopnd a, b, c;
};

struct filter {
    enum filter_type type;
    bool all; /* matches every record */
    int root;
    struct fnode *nodes;
    int n_nodes, cap_nodes;
    int *kids;
    int n_kids, cap_kids;
    struct fopnd *list; /* IN lists */
    int n_list, cap_list;
    struct {
        const char *p;
        size_t len;
    } slots[FILTER_MAX_SLOTS];
    int n_slots;
    char *pool; /* unescaped strings and identifiers; never reallocated */
    size_t pool_len, pool_cap;
};

#endif
