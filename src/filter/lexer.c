/*
 * lexer: SQL92 filter expressions into tokens.
 *
 * Tokens keep their place in the source (start, len) so that every error
 * can name a position, and strings are unescaped only by the parser when
 * it stores them.  Identifiers are [A-Za-z_$][A-Za-z0-9_.$-]*: '-' and
 * '.' are allowed after the first character because header keys such as
 * `x-region` or `app.version` are common, and the language has no
 * arithmetic for a '-' to be confused with.  Any other key is written
 * "quoted".
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "filter/filter_int.h"

void filter_set_error(struct filter_error *err, size_t pos0, const char *fmt, ...)
{
    if (!err || err->position)
        return;                         /* the first error is the one worth reporting */
    char msg[sizeof err->message - 32]; /* room for " at position N" */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    err->position = (int)pos0 + 1;
    snprintf(err->message, sizeof err->message, "%.150s at position %d", msg, err->position);
}

static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$';
}

static bool is_ident_char(char c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A quoted run ending at the first lone `q`; `qq` stands for one `q`. */
static bool scan_quoted(struct flexer *lx, char q)
{
    size_t i = lx->pos + 1;
    while (i < lx->len) {
        if (lx->src[i] == q) {
            if (i + 1 < lx->len && lx->src[i + 1] == q) {
                i += 2;
                continue;
            }
            lx->pos = i + 1;
            return true;
        }
        i++;
    }
    return false;
}

struct ftok flex_next(struct flexer *lx)
{
    const char *s = lx->src;
    while (lx->pos < lx->len &&
           (s[lx->pos] == ' ' || s[lx->pos] == '\t' || s[lx->pos] == '\n' || s[lx->pos] == '\r'))
        lx->pos++;
    struct ftok t = {.kind = FT_END, .start = lx->pos, .len = 0};
    if (lx->pos >= lx->len)
        return t;
    char c = s[lx->pos];
    char n = lx->pos + 1 < lx->len ? s[lx->pos + 1] : 0;
    size_t start = lx->pos;
    if (is_ident_start(c)) {
        while (lx->pos < lx->len && is_ident_char(s[lx->pos]))
            lx->pos++;
        t.kind = FT_IDENT;
    } else if (is_digit(c) || (c == '-' && is_digit(n))) {
        lx->pos++;
        while (lx->pos < lx->len && is_digit(s[lx->pos]))
            lx->pos++;
        if (lx->pos + 1 < lx->len && s[lx->pos] == '.' && is_digit(s[lx->pos + 1])) {
            lx->pos++;
            while (lx->pos < lx->len && is_digit(s[lx->pos]))
                lx->pos++;
        }
        if (lx->pos < lx->len && (is_ident_char(s[lx->pos]) || s[lx->pos] == '.')) {
            filter_set_error(lx->err, start, "malformed number");
            t.kind = FT_ERROR;
            return t;
        }
        t.kind = FT_NUMBER;
    } else if (c == '\'' || c == '"') {
        if (!scan_quoted(lx, c)) {
            filter_set_error(lx->err, start, "unterminated %s",
                             c == '\'' ? "string" : "quoted identifier");
            t.kind = FT_ERROR;
            return t;
        }
        if (c == '"' && lx->pos - start == 2) {
            filter_set_error(lx->err, start, "empty quoted identifier");
            t.kind = FT_ERROR;
            return t;
        }
        t.kind = c == '\'' ? FT_STRING : FT_QIDENT;
    } else {
        lx->pos++;
        switch (c) {
        case '(':
            t.kind = FT_LPAREN;
            break;
        case ')':
            t.kind = FT_RPAREN;
            break;
        case ',':
            t.kind = FT_COMMA;
            break;
        case '=':
            t.kind = FT_EQ;
            break;
        case '<':
            t.kind = n == '=' ? FT_LE : n == '>' ? FT_NE : FT_LT;
            lx->pos += n == '=' || n == '>';
            break;
        case '>':
            t.kind = n == '=' ? FT_GE : FT_GT;
            lx->pos += n == '=';
            break;
        case '!':
            if (n == '=') {
                t.kind = FT_NE;
                lx->pos++;
                break;
            }
            /* fall through */
        default:
            if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
                filter_set_error(lx->err, start, "unexpected character '%c'", c);
            else
                filter_set_error(lx->err, start, "unexpected byte 0x%02x", (unsigned char)c);
            t.kind = FT_ERROR;
            return t;
        }
    }
    t.len = lx->pos - start;
    return t;
}
