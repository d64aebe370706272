/*
 * The filter language (TAG and SQL92): matching, three-valued logic,
 * comparisons of strings and numbers, errors with their positions, and
 * malformed input (random and truncated expressions never crash); then
 * filter_scan over real record batches: offsets kept, verbatim and
 * rebuilt batches in every codec, gaps, the closing COMMIT marker.
 */
#include <stdlib.h>
#include <string.h>

#include "filter/filter.h"
#include "filter/scan.h"
#include "storage/batch.h"
#include "storage/compress.h"
#include "storage/plog.h"
#include "tap.h"

/* ---- language ---- */

/*
 * Headers as "k=v;k2=v2"; a key without '=' has a null value.  Returns
 * 1 match, 0 no match, -1 the expression does not compile.
 */
static int eval_hdrs(enum filter_type type, const char *expr, const char *hdrs)
{
    struct filter_error err;
    struct filter *f = filter_compile(type, expr, strlen(expr), &err);
    if (!f)
        return -1;
    struct filter_value vals[FILTER_MAX_SLOTS];
    for (int i = 0; i < filter_slot_count(f); i++)
        vals[i] = (struct filter_value){NULL, -1};
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", hdrs);
    for (char *save = NULL, *kv = strtok_r(buf, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(kv, '=');
        size_t klen = eq ? (size_t)(eq - kv) : strlen(kv);
        int slot = filter_slot(f, kv, klen);
        if (slot < 0)
            continue;
        vals[slot] = eq ? (struct filter_value){(const uint8_t *)eq + 1, (int32_t)strlen(eq + 1)}
                        : (struct filter_value){NULL, -1};
    }
    int r = filter_match(f, vals) ? 1 : 0;
    filter_free(f);
    return r;
}

static int sql(const char *expr, const char *hdrs)
{
    return eval_hdrs(FILTER_SQL92, expr, hdrs);
}

static int tag(const char *expr, const char *hdrs)
{
    return eval_hdrs(FILTER_TAG, expr, hdrs);
}

/* The error of a bad expression: its position, and that the message
 * contains `want`. */
static int err_pos(enum filter_type type, const char *expr, const char *want)
{
    struct filter_error err;
    struct filter *f = filter_compile(type, expr, strlen(expr), &err);
    if (f) {
        filter_free(f);
        fprintf(stderr, "  compiled but should not: %s\n", expr);
        return -1;
    }
    if (want && !strstr(err.message, want)) {
        fprintf(stderr, "  '%s': message '%s' lacks '%s'\n", expr, err.message, want);
        return -2;
    }
    char pos[32];
    snprintf(pos, sizeof pos, "at position %d", err.position);
    if (!strstr(err.message, pos)) {
        fprintf(stderr, "  '%s': message '%s' lacks '%s'\n", expr, err.message, pos);
        return -3;
    }
    return err.position;
}

static void test_types(void)
{
    enum filter_type t;
    CHECK(filter_type_parse("TAG", &t) == 0 && t == FILTER_TAG);
    CHECK(filter_type_parse("sql92", &t) == 0 && t == FILTER_SQL92);
    CHECK(filter_type_parse("SQL", &t) < 0);
    CHECK(filter_type_parse("", &t) < 0);
    CHECK(!strcmp(filter_type_name(FILTER_SQL92), "SQL92"));
}

static void test_tag(void)
{
    CHECK_EQ_INT(tag("*", ""), 1);
    CHECK_EQ_INT(tag(" * ", "tag=x"), 1);
    CHECK_EQ_INT(tag("TagA", "tag=TagA"), 1);
    CHECK_EQ_INT(tag("TagA", "tag=TagB"), 0);
    CHECK_EQ_INT(tag("TagA", "tag=taga"), 0); /* case matters */
    CHECK_EQ_INT(tag("TagA", ""), 0);         /* no tag: no match */
    CHECK_EQ_INT(tag("TagA", "tag"), 0);      /* null value */
    CHECK_EQ_INT(tag("TagA", "Tag=TagA"), 0); /* the header is `tag` */
    CHECK_EQ_INT(tag("TagA || TagB || TagC", "tag=TagC"), 1);
    CHECK_EQ_INT(tag("TagA||TagB", "tag=TagB"), 1);
    CHECK_EQ_INT(tag("TagA||TagB", "tag=TagA||TagB"), 0);
    CHECK_EQ_INT(tag("  paid  ||refunded ", "tag=refunded"), 1);
    CHECK_EQ_INT(tag("Tag A || b", "tag=Tag A"), 1);
    CHECK_EQ_INT(tag("a'b || \"c\"", "tag=a'b"), 1); /* quotes are just bytes */
    CHECK_EQ_INT(tag("a'b || \"c\"", "tag=\"c\""), 1);
    CHECK_EQ_INT(tag("x", "region=x"), 0);

    CHECK_EQ_INT(err_pos(FILTER_TAG, "", "empty tag expression"), 1);
    CHECK_EQ_INT(err_pos(FILTER_TAG, "   ", "empty tag expression"), 1);
    CHECK_EQ_INT(err_pos(FILTER_TAG, "A ||", "empty tag"), 5);
    CHECK_EQ_INT(err_pos(FILTER_TAG, "|| A", "empty tag"), 1);
    CHECK_EQ_INT(err_pos(FILTER_TAG, "A || || B", "empty tag"), 6);
    CHECK_EQ_INT(err_pos(FILTER_TAG, "A | B", "cannot contain '|'"), 3);
    CHECK_EQ_INT(err_pos(FILTER_TAG, "A|", "cannot contain '|'"), 2);
    CHECK_EQ_INT(err_pos(FILTER_TAG, "* || A", "stands alone"), 1);
    CHECK_EQ_INT(err_pos(FILTER_TAG, "A || *", "stands alone"), 6);
}

static void test_sql_basics(void)
{
    CHECK_EQ_INT(sql("region = 'eu'", "region=eu"), 1);
    CHECK_EQ_INT(sql("region = 'eu'", "region=us"), 0);
    CHECK_EQ_INT(sql("region = 'eu'", ""), 0);
    CHECK_EQ_INT(sql("region <> 'eu'", "region=us"), 1);
    CHECK_EQ_INT(sql("region != 'eu'", "region=us"), 1);
    CHECK_EQ_INT(sql("region <> 'eu'", ""), 0); /* NULL <> x is unknown */
    CHECK_EQ_INT(sql("tag IN ('paid','refunded') AND region = 'eu'", "tag=paid;region=eu"), 1);
    CHECK_EQ_INT(sql("tag IN ('paid','refunded') AND region = 'eu'", "tag=refunded;region=eu"), 1);
    CHECK_EQ_INT(sql("tag IN ('paid','refunded') AND region = 'eu'", "tag=new;region=eu"), 0);
    CHECK_EQ_INT(sql("tag IN ('paid','refunded') AND region = 'eu'", "tag=paid;region=us"), 0);
    CHECK_EQ_INT(sql("tag IN ('paid','refunded') AND region = 'eu'", "tag=paid"), 0);
    /* Keywords in any case; identifiers exactly. */
    CHECK_EQ_INT(sql("a = 'x' and b = 'y'", "a=x;b=y"), 1);
    CHECK_EQ_INT(sql("a = 'x' oR NoT b = 'y'", "a=q;b=z"), 1);
    CHECK_EQ_INT(sql("A = 'x'", "a=x"), 0);
    CHECK_EQ_INT(sql("A = 'x'", "A=x"), 1);
    /* Quoted identifiers, escapes, odd keys. */
    CHECK_EQ_INT(sql("\"my key\" = 'v'", "my key=v"), 1);
    CHECK_EQ_INT(sql("\"and\" = 'v'", "and=v"), 1);
    CHECK_EQ_INT(sql("\"we\"\"ird\" = 'v'", "we\"ird=v"), 1);
    CHECK_EQ_INT(sql("a = 'it''s'", "a=it's"), 1);
    CHECK_EQ_INT(sql("a = ''", "a="), 1);
    CHECK_EQ_INT(sql("a = ''", ""), 0);
    CHECK_EQ_INT(sql("x-region = 'eu' AND app.version >= 2", "x-region=eu;app.version=10"), 1);
    CHECK_EQ_INT(sql("$k_1 = 'v'", "$k_1=v"), 1);
    CHECK_EQ_INT(sql("city = 'Z\xc3\xbcrich'", "city=Z\xc3\xbcrich"), 1);
    CHECK_EQ_INT(sql("\ta\n=\r'x' ", "a=x"), 1); /* any blank separates */
    /* Literals on both sides. */
    CHECK_EQ_INT(sql("1 = 1", ""), 1);
    CHECK_EQ_INT(sql("'a' < 'b'", ""), 1);
    CHECK_EQ_INT(sql("'x' = a", "a=x"), 1);
    CHECK_EQ_INT(sql("5 > a", "a=3"), 1);
}

static void test_sql_numbers(void)
{
    CHECK_EQ_INT(sql("amount > 100", "amount=150"), 1);
    CHECK_EQ_INT(sql("amount > 100", "amount=99"), 0);
    CHECK_EQ_INT(sql("amount > 100", "amount=1000"), 1); /* not "1000" < "100" */
    CHECK_EQ_INT(sql("amount > 100", "amount=100.5"), 1);
    CHECK_EQ_INT(sql("amount >= 100.0", "amount=100"), 1);
    CHECK_EQ_INT(sql("amount > 100", "amount=abc"), 0); /* not a number: unknown */
    CHECK_EQ_INT(sql("NOT amount > 100", "amount=abc"), 0);
    CHECK_EQ_INT(sql("amount > 100", ""), 0);
    CHECK_EQ_INT(sql("amount < 1", "amount=-3"), 1);
    CHECK_EQ_INT(sql("amount > -1", "amount=0"), 1);
    CHECK_EQ_INT(sql("amount>-1", "amount=-0.5"), 1);
    CHECK_EQ_INT(sql("a = 10", "a=10.0"), 1);
    CHECK_EQ_INT(sql("a = 10", "a=010"), 1);
    CHECK_EQ_INT(sql("a = '10'", "a=10.0"), 0); /* a string literal compares bytes */
    CHECK_EQ_INT(sql("a = 10", "a= 10"), 0);    /* " 10" is not a number */
    CHECK_EQ_INT(sql("a = 10", "a=1e1"), 0);
    CHECK_EQ_INT(sql("a = 9223372036854775807", "a=9223372036854775807"), 1);
    CHECK_EQ_INT(sql("a > 9223372036854775806", "a=9223372036854775807"), 1);
    CHECK_EQ_INT(sql("a < -9223372036854775807", "a=-9223372036854775808"), 1);
    CHECK_EQ_INT(sql("a > 9223372036854775807", "a=99999999999999999999"), 1);
    CHECK_EQ_INT(sql("a = 0.1", "a=0.10"), 1);
    CHECK_EQ_INT(sql("a < 0.25", "a=0.2"), 1);
    /* Header against header: numbers when both are, else strings. */
    CHECK_EQ_INT(sql("a < b", "a=9;b=10"), 1);
    CHECK_EQ_INT(sql("a < b", "a=x9;b=x10"), 0);
    CHECK_EQ_INT(sql("a = b", "a=7;b=7.0"), 1);
    CHECK_EQ_INT(sql("a = b", "a=7"), 0);
    /* String order: bytes, shorter first. */
    CHECK_EQ_INT(sql("a < 'b'", "a=ab"), 1);
    CHECK_EQ_INT(sql("a > 'a'", "a=ab"), 1);
    CHECK_EQ_INT(sql("a <= 'a'", "a=a"), 1);
    CHECK_EQ_INT(sql("a > 'Z'", "a=a"), 1);
}

static void test_sql_predicates(void)
{
    CHECK_EQ_INT(sql("a BETWEEN 1 AND 5", "a=3"), 1);
    CHECK_EQ_INT(sql("a BETWEEN 1 AND 5", "a=1"), 1);
    CHECK_EQ_INT(sql("a BETWEEN 1 AND 5", "a=5"), 1);
    CHECK_EQ_INT(sql("a BETWEEN 1 AND 5", "a=6"), 0);
    CHECK_EQ_INT(sql("a BETWEEN 1 AND 5", ""), 0);
    CHECK_EQ_INT(sql("a NOT BETWEEN 1 AND 5", "a=6"), 1);
    CHECK_EQ_INT(sql("a NOT BETWEEN 1 AND 5", "a=3"), 0);
    CHECK_EQ_INT(sql("a NOT BETWEEN 1 AND 5", ""), 0);
    CHECK_EQ_INT(sql("a between 'b' and 'd'", "a=c"), 1);
    CHECK_EQ_INT(sql("a BETWEEN 1 AND 5 AND b = 'x'", "a=2;b=x"), 1);
    CHECK_EQ_INT(sql("a BETWEEN 1 AND 5 AND b = 'x'", "a=2;b=y"), 0);
    CHECK_EQ_INT(sql("a BETWEEN lo AND hi", "a=5;lo=1;hi=10"), 1);
    CHECK_EQ_INT(sql("a IN (1, 2, 3)", "a=2"), 1);
    CHECK_EQ_INT(sql("a IN (1, 2, 3)", "a=2.0"), 1);
    CHECK_EQ_INT(sql("a IN (1, 2, 3)", "a=4"), 0);
    CHECK_EQ_INT(sql("a IN (1, 2, 3)", "a=x"), 0);
    CHECK_EQ_INT(sql("a NOT IN (1, 2, 3)", "a=x"), 0); /* unknown, not TRUE */
    CHECK_EQ_INT(sql("a NOT IN ('x', 'y')", "a=z"), 1);
    CHECK_EQ_INT(sql("a NOT IN ('x', 'y')", "a=x"), 0);
    CHECK_EQ_INT(sql("a NOT IN ('x', 'y')", ""), 0);
    CHECK_EQ_INT(sql("a IN ('x')", "a=x"), 1);
    CHECK_EQ_INT(sql("a IN ('x', 1)", "a=1"), 1);
    CHECK_EQ_INT(sql("a IS NULL", ""), 1);
    CHECK_EQ_INT(sql("a IS NULL", "a"), 1); /* a null header value */
    CHECK_EQ_INT(sql("a IS NULL", "a="), 0);
    CHECK_EQ_INT(sql("a IS NOT NULL", "a=1"), 1);
    CHECK_EQ_INT(sql("a IS NOT NULL", ""), 0);
    CHECK_EQ_INT(sql("a is not null", "a=1"), 1);
}

static void test_sql_logic(void)
{
    CHECK_EQ_INT(sql("TRUE", ""), 1);
    CHECK_EQ_INT(sql("FALSE", ""), 0);
    CHECK_EQ_INT(sql("NOT FALSE", ""), 1);
    CHECK_EQ_INT(sql("NOT NOT TRUE", ""), 1);
    CHECK_EQ_INT(sql("true AND a = 'x'", "a=x"), 1);
    /* Three-valued logic with NULL (absent) headers. */
    CHECK_EQ_INT(sql("NOT (a = 'x')", ""), 0);
    CHECK_EQ_INT(sql("a = 'x' OR b IS NULL", ""), 1);
    CHECK_EQ_INT(sql("a = 'x' OR TRUE", ""), 1);
    CHECK_EQ_INT(sql("a = 'x' AND FALSE", ""), 0);
    CHECK_EQ_INT(sql("NOT (a = 'x' AND FALSE)", ""), 1);
    CHECK_EQ_INT(sql("NOT (a = 'x' AND TRUE)", ""), 0);
    CHECK_EQ_INT(sql("NOT (a = 'x' OR FALSE)", ""), 0);
    CHECK_EQ_INT(sql("NOT (a = 'x' OR TRUE)", ""), 0);
    /* Precedence: NOT over AND over OR; parentheses. */
    CHECK_EQ_INT(sql("a = '1' OR b = '1' AND c = '1'", "a=1"), 1);
    CHECK_EQ_INT(sql("a = '1' OR b = '1' AND c = '1'", "b=1"), 0);
    CHECK_EQ_INT(sql("(a = '1' OR b = '1') AND c = '1'", "a=1"), 0);
    CHECK_EQ_INT(sql("(a = '1' OR b = '1') AND c = '1'", "b=1;c=1"), 1);
    CHECK_EQ_INT(sql("NOT a = '1' AND b = '1'", "a=2;b=1"), 1);
    CHECK_EQ_INT(sql("((((a = '1'))))", "a=1"), 1);

    /* A long chain is one node, not a deep tree. */
    char *big = malloc(FILTER_MAX_LEN + 1);
    size_t n = 0;
    for (int i = 0; n + 32 < FILTER_MAX_LEN; i++)
        n += (size_t)snprintf(big + n, FILTER_MAX_LEN + 1 - n, "%sa = %d", i ? " OR " : "", i);
    CHECK_EQ_INT(sql(big, "a=300"), 1);
    CHECK_EQ_INT(sql(big, "a=-1"), 0);
    free(big);

    /* matches_all, slots. */
    struct filter_error err;
    struct filter *f = filter_compile(FILTER_SQL92, "TRUE", 4, &err);
    CHECK(f && filter_matches_all(f));
    filter_free(f);
    f = filter_compile(FILTER_TAG, "*", 1, &err);
    CHECK(f && filter_matches_all(f) && filter_slot_count(f) == 0);
    filter_free(f);
    const char *e = "a = b OR b = c OR \"a\" = 'x'";
    f = filter_compile(FILTER_SQL92, e, strlen(e), &err);
    CHECK(f && !filter_matches_all(f) && filter_slot_count(f) == 3);
    CHECK(f && filter_slot(f, "b", 1) == 1 && filter_slot(f, "d", 1) == -1);
    filter_free(f);
    f = filter_compile(FILTER_TAG, "x", 1, &err);
    CHECK(f && filter_slot_count(f) == 1 && filter_slot(f, "tag", 3) == 0);
    filter_free(f);
}

static void test_sql_errors(void)
{
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "", "empty expression"), 1);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "   ", "empty expression"), 1);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "a =", "expression ends"), 4);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "a = 'x", "unterminated string"), 5);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "\"a = 'x'", "unterminated quoted identifier"), 1);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "\"\" = 'x'", "empty quoted identifier"), 1);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "(a = 1", "expected ')'"), 7);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "a = 1)", "AND, OR or the end"), 6);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "a == 1", "found '='"), 4);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "a = 1 AND", "expression ends"), 10);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "a = 1 OR OR b = 2", "found 'OR'"), 10);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "a BETWEEN 1 5", "AND (of BETWEEN)"), 13);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "a IN ()", "a string or a number"), 7);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "a IN (b)", "a string or a number"), 7);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "a IN ('x' 'y')", "',' or ')'"), 11);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "a IN 'x'", "'(' after IN"), 6);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "a IS 5", "NULL or NOT NULL"), 6);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "a IS NOT 5", "expected NULL"), 10);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "a = NULL", "IS NULL"), 5);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "a NOT LIKE 'x'", "BETWEEN or IN after NOT"), 7);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "a # 1", "unexpected character '#'"), 3);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "a = \xc3\xbc", "unexpected byte 0xc3"), 5);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "5abc = 1", "malformed number"), 1);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "a = 1.", "malformed number"), 5);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "a = 1.2.3", "malformed number"), 5);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "a = - 1", "unexpected character '-'"), 5);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "1 = 'x'", "cannot compare a string with a number"), 3);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "a BETWEEN 1 AND 'z'", "cannot compare"), 17);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "a", "expected a comparison"), 2);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "a b", "expected a comparison"), 3);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "AND", "found 'AND'"), 1);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "()", "expected a condition"), 2);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "TRUE = TRUE", "found '='"), 6);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "a = TRUE", "found 'TRUE'"), 5);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "a = 'x' b = 'y'", "AND, OR or the end"), 9);
    CHECK_EQ_INT(err_pos(FILTER_SQL92, "TagA || TagB", "unexpected character '|'"), 6);
    /* A long token is shortened in the message. */
    CHECK(err_pos(FILTER_SQL92, "a = 1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                  "...'") == 7);

    /* Nesting, length, NUL bytes, too many headers. */
    char deep[400];
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        deep[n++] = '(';
    memcpy(deep + n, "a = 1", 5);
    n += 5;
    for (int i = 0; i < 100; i++)
        deep[n++] = ')';
    deep[n] = 0;
    CHECK_EQ_INT(err_pos(FILTER_SQL92, deep, "nested more than 64"), 65);
    n = 0;
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(deep + n, sizeof deep - n, "NOT ");
    snprintf(deep + n, sizeof deep - n, "TRUE");
    CHECK_EQ_INT(err_pos(FILTER_SQL92, deep, "nested more than 64"), 257);
    n = 0;
    for (int i = 0; i < 64; i++)
        deep[n++] = '(';
    memcpy(deep + n, "a = 1", 5);
    n += 5;
    for (int i = 0; i < 64; i++)
        deep[n++] = ')';
    deep[n] = 0;
    CHECK_EQ_INT(sql(deep, "a=1"), 1); /* 64 levels are fine */

    char *big = malloc(FILTER_MAX_LEN + 2);
    memset(big, ' ', FILTER_MAX_LEN + 1);
    big[FILTER_MAX_LEN + 1] = 0;
    CHECK(err_pos(FILTER_SQL92, big, "longer than 4096 bytes") > 0);
    free(big);
    struct filter_error err;
    CHECK(filter_compile(FILTER_SQL92, "a = '\0'", 7, &err) == NULL && err.position == 6);
    CHECK(strstr(err.message, "NUL byte") != NULL);
    char many[2048];
    n = 0;
    for (int i = 0; i < 65; i++)
        n += (size_t)snprintf(many + n, sizeof many - n, "%sh%d = 1", i ? " OR " : "", i);
    CHECK(err_pos(FILTER_SQL92, many, "more than 64 distinct headers") > 0);
}

/* Random and truncated input: every outcome is a filter or an error
 * with a position inside (or just past) the input; never a crash. */
static void test_malformed(void)
{
    static const char *const pieces[] = {
        "a",     "b",   "tag", "'x'", "'it''s'", "\"k\"", "1",  "-2",   "3.5",
        "=",     "<>",  "!=",  "<",   "<=",      ">",     ">=", "(",    ")",
        ",",     "AND", "OR",  "NOT", "BETWEEN", "IN",    "IS", "NULL", "TRUE",
        "FALSE", " ",   "'",   "\"",  "||",      "*",     "!",  "\xff", ".",
    };
    const size_t np = sizeof pieces / sizeof pieces[0];
    srand(12345);
    int compiled = 0, failed = 0, bad_pos = 0;
    char buf[512];
    for (int iter = 0; iter < 30000; iter++) {
        size_t n = 0;
        int parts = rand() % 16;
        for (int k = 0; k < parts; k++) {
            const char *p = pieces[(size_t)rand() % np];
            size_t l = strlen(p);
            if (n + l + 1 >= sizeof buf)
                break;
            memcpy(buf + n, p, l);
            n += l;
            if (rand() % 2)
                buf[n++] = ' ';
        }
        if (iter % 3 == 0 && n > 0) /* raw bytes too */
            for (int k = rand() % 4; k >= 0; k--)
                buf[(size_t)rand() % n] = (char)(rand() % 255 + 1);
        for (int type = 0; type < 2; type++) {
            struct filter_error err;
            struct filter *f = filter_compile((enum filter_type)type, buf, n, &err);
            if (f) {
                compiled++;
                struct filter_value vals[FILTER_MAX_SLOTS];
                for (int i = 0; i < filter_slot_count(f); i++)
                    vals[i] = rand() % 3 ? (struct filter_value){(const uint8_t *)"12", 2}
                                         : (struct filter_value){NULL, -1};
                (void)filter_match(f, vals);
                filter_free(f);
            } else {
                failed++;
                if (err.position < 1 || err.position > (int)n + 1)
                    bad_pos++;
            }
        }
    }
    CHECK(compiled > 100);
    CHECK(failed > 100);
    CHECK_EQ_INT(bad_pos, 0);

    /* Every prefix of valid expressions. */
    static const char *const valid[] = {
        "tag IN ('paid','refunded') AND region = 'eu'",
        "NOT (a BETWEEN -1.5 AND 2) OR \"x y\" IS NOT NULL AND b NOT IN ('p''q', 3)",
        "(a <> 'x' OR b >= 10) AND c != d AND TRUE",
    };
    for (size_t v = 0; v < sizeof valid / sizeof valid[0]; v++) {
        size_t len = strlen(valid[v]);
        int ok = 0;
        for (size_t cut = 0; cut <= len; cut++) {
            for (int type = 0; type < 2; type++) {
                struct filter_error err;
                char *copy = malloc(cut ? cut : 1); /* exact size: ASan sees overreads */
                memcpy(copy, valid[v], cut);
                struct filter *f = filter_compile((enum filter_type)type, copy, cut, &err);
                if (f) {
                    ok += cut == len && type == FILTER_SQL92;
                    filter_free(f);
                } else {
                    CHECK(err.position >= 1 && err.position <= (int)cut + 1);
                }
                free(copy);
            }
        }
        CHECK_EQ_INT(ok, 1);
    }
}

/* ---- scan over record batches ---- */

struct rec {
    const char *tag;    /* NULL: no tag header */
    const char *region; /* NULL: no region header */
};

/* One batch at base offset `base` with records for recs[]. */
static uint8_t *make_batch(int codec, int64_t base, const struct rec *recs, int n, size_t *len)
{
    struct batch_builder b;
    batch_builder_init(&b, codec, 1700000000000);
    b.base_offset = base;
    for (int i = 0; i < n; i++) {
        struct batch_header_kv h[2];
        int nh = 0;
        if (recs[i].tag)
            h[nh++] =
                (struct batch_header_kv){(const uint8_t *)"tag", 3, (const uint8_t *)recs[i].tag,
                                         (int32_t)strlen(recs[i].tag)};
        if (recs[i].region)
            h[nh++] = (struct batch_header_kv){(const uint8_t *)"region", 6,
                                               (const uint8_t *)recs[i].region,
                                               (int32_t)strlen(recs[i].region)};
        char value[32];
        int vl = snprintf(value, sizeof value, "v%lld", (long long)(base + i));
        batch_builder_add(&b, 1700000000000 + i, "k", 1, value, vl, h, nh);
    }
    uint8_t *out;
    CHECK(batch_builder_finish(&b, &out, len) == 0);
    batch_builder_free(&b);
    return out;
}

/* Walks the scan output: offsets and values of the records it holds,
 * and the batches' [base, last] ranges. */
struct seen {
    int64_t offs[256];
    int n;
    int64_t markers[8]; /* offsets of COMMIT marker records */
    int n_markers;
    int64_t bases[64], lasts[64];
    int32_t counts[64];
    int nb;
    int bad;
};

static void walk(const uint8_t *p, size_t len, struct seen *s)
{
    memset(s, 0, sizeof *s);
    size_t pos = 0;
    while (pos < len) {
        struct batch_hdr h;
        /* Not batch_validate: that insists the last record's delta is
         * lastOffsetDelta, which a batch with its tail filtered out (like
         * one Kafka's cleaner rebuilt) does not keep. */
        if (batch_parse_header(p + pos, len - pos, INT32_MAX, &h) != PLOG_OK ||
            batch_size(&h) > (int64_t)(len - pos) ||
            batch_compute_crc(p + pos, (size_t)batch_size(&h)) != h.crc) {
            s->bad++;
            return;
        }
        s->bases[s->nb] = h.base_offset;
        s->lasts[s->nb] = batch_last_offset(&h);
        s->counts[s->nb++] = h.records_count;
        struct batch_records rs;
        struct batch_record r;
        CHECK(batch_records_begin(p + pos, &h, &rs) == PLOG_OK);
        while (batch_records_next(&rs, &r) == 1) {
            int64_t off = h.base_offset + r.offset_delta;
            if (h.attributes & BATCH_ATTR_CONTROL) {
                /* Kafka's marker: key {version 0, type 1 = COMMIT}. */
                static const uint8_t commit[4] = {0, 0, 0, 1};
                if ((h.attributes & BATCH_ATTR_TRANSACTIONAL) == 0 || r.key_len != 4 ||
                    memcmp(r.key, commit, 4) || r.value_len != 6)
                    s->bad++;
                s->markers[s->n_markers++] = off;
                continue;
            }
            char want[32];
            int wl = snprintf(want, sizeof want, "v%lld", (long long)off);
            if (r.value_len != wl || memcmp(r.value, want, (size_t)wl))
                s->bad++; /* the record at an offset is the one that was there */
            s->offs[s->n++] = off;
        }
        batch_records_end(&rs);
        pos += (size_t)batch_size(&h);
    }
}

static void test_scan(void)
{
    /* Offsets 0-4: paid, new, paid(us), refunded, -; 5-7: new, new, new;
     * 8-9: paid, paid. */
    const struct rec b0[] = {
        {"paid", "eu"}, {"new", "eu"}, {"paid", "us"}, {"refunded", "eu"}, {NULL, "eu"}};
    const struct rec b1[] = {{"new", "eu"}, {"new", NULL}, {"new", "eu"}};
    const struct rec b2[] = {{"paid", "eu"}, {"paid", "eu"}};
    const char *sqlx = "tag IN ('paid','refunded') AND region = 'eu'";
    int codecs[] = {COMPRESS_NONE, COMPRESS_GZIP, COMPRESS_SNAPPY, COMPRESS_LZ4, COMPRESS_ZSTD};
    for (size_t c = 0; c < sizeof codecs / sizeof codecs[0]; c++) {
        size_t l0, l1, l2;
        uint8_t *x0 = make_batch(codecs[c], 0, b0, 5, &l0);
        uint8_t *x1 = make_batch(codecs[c], 5, b1, 3, &l1);
        uint8_t *x2 = make_batch(codecs[c], 8, b2, 2, &l2);
        uint8_t *all = malloc(l0 + l1 + l2);
        memcpy(all, x0, l0);
        memcpy(all + l0, x1, l1);
        memcpy(all + l0 + l1, x2, l2);
        struct filter_error err;
        struct filter *f = filter_compile(FILTER_SQL92, sqlx, strlen(sqlx), &err);
        CHECK(f != NULL);

        /* From 0, fed in two calls: 0 and 3 rebuilt from b0 (its
         * lastOffsetDelta kept), b1 left out, b2 sent as it is. */
        struct filter_scan s;
        filter_scan_init(&s, f, 0);
        CHECK_EQ_INT(filter_scan_feed(&s, all, l0), PLOG_OK);
        CHECK_EQ_INT(filter_scan_feed(&s, all + l0, l1 + l2), PLOG_OK);
        CHECK_EQ_INT(filter_scan_finish(&s, true), PLOG_OK);
        struct seen sn;
        walk(s.out, s.out_len, &sn);
        CHECK_EQ_INT(sn.bad, 0);
        CHECK_EQ_INT(sn.n, 4);
        CHECK(sn.offs[0] == 0 && sn.offs[1] == 3 && sn.offs[2] == 8 && sn.offs[3] == 9);
        CHECK_EQ_INT(sn.nb, 2);
        CHECK(sn.bases[0] == 0 && sn.lasts[0] == 4 && sn.counts[0] == 2);
        CHECK(sn.bases[1] == 8 && sn.lasts[1] == 9 && sn.counts[1] == 2);
        CHECK_EQ_INT(s.out_len - l2 > 0, 1);
        CHECK(!memcmp(s.out + s.out_len - l2, x2, l2)); /* verbatim, codec and all */
        struct batch_hdr h;
        CHECK(batch_parse_header(s.out, s.out_len, INT32_MAX, &h) == PLOG_OK);
        CHECK_EQ_INT(batch_codec(&h), codecs[c]); /* rebuilt in the source codec */
        CHECK_EQ_INT(s.next_offset, 10);
        CHECK_EQ_INT(s.covered, 10);
        CHECK_EQ_INT(s.first_sent, 0);
        CHECK_EQ_INT(s.records_read, 10);
        CHECK_EQ_INT(s.records_sent, 4);
        CHECK_EQ_INT(s.marker_bytes, 0); /* nothing after the last batch sent */
        free(s.out);
        filter_scan_release(&s);

        /* From 1 (inside b0) up to b1 only: 3 is sent, then a marker
         * covers 5-7, its record at 7; without a marker, nothing more. */
        for (int marker = 0; marker < 2; marker++) {
            filter_scan_init(&s, f, 1);
            CHECK_EQ_INT(filter_scan_feed(&s, all, l0 + l1), PLOG_OK);
            CHECK_EQ_INT(filter_scan_finish(&s, marker), PLOG_OK);
            walk(s.out, s.out_len, &sn);
            CHECK_EQ_INT(sn.bad, 0);
            CHECK(sn.n == 1 && sn.offs[0] == 3);
            CHECK_EQ_INT(s.first_sent, 3);
            if (marker) {
                CHECK(sn.nb == 2 && sn.bases[1] == 5 && sn.lasts[1] == 7 && sn.counts[1] == 1);
                CHECK(sn.n_markers == 1 && sn.markers[0] == 7);
                CHECK(s.marker_bytes > 61 && s.covered == 8);
            } else {
                CHECK(sn.nb == 1 && sn.n_markers == 0 && s.marker_bytes == 0);
            }
            free(s.out);
            filter_scan_release(&s);
        }

        /* Nothing matches: one marker over everything examined, or
         * nothing at all. */
        struct filter *none = filter_compile(FILTER_TAG, "shipped", 7, &err);
        filter_scan_init(&s, none, 2);
        CHECK_EQ_INT(filter_scan_feed(&s, all, l0 + l1 + l2), PLOG_OK);
        CHECK_EQ_INT(filter_scan_finish(&s, true), PLOG_OK);
        walk(s.out, s.out_len, &sn);
        CHECK(sn.bad == 0 && sn.n == 0 && sn.nb == 1);
        CHECK(sn.bases[0] == 2 && sn.lasts[0] == 9 && sn.counts[0] == 1);
        CHECK(sn.n_markers == 1 && sn.markers[0] == 9);
        CHECK_EQ_INT(s.first_sent, -1);
        CHECK_EQ_INT(s.records_read, 10);
        free(s.out);
        filter_scan_release(&s);
        filter_scan_init(&s, none, 2);
        CHECK_EQ_INT(filter_scan_feed(&s, all, l0 + l1 + l2), PLOG_OK);
        CHECK_EQ_INT(filter_scan_finish(&s, false), PLOG_OK);
        CHECK(s.out_len == 0 && s.next_offset == 10);
        free(s.out);
        filter_scan_release(&s);
        filter_free(none);

        /* `*`: every batch verbatim, except the one cut by the fetch
         * offset, which is rebuilt from it. */
        struct filter *star = filter_compile(FILTER_TAG, "*", 1, &err);
        filter_scan_init(&s, star, 6);
        CHECK_EQ_INT(filter_scan_feed(&s, all + l0, l1 + l2), PLOG_OK);
        CHECK_EQ_INT(filter_scan_finish(&s, true), PLOG_OK);
        walk(s.out, s.out_len, &sn);
        CHECK(sn.bad == 0 && sn.n == 4 && sn.offs[0] == 6 && sn.offs[3] == 9);
        CHECK(sn.nb == 2 && sn.bases[0] == 5 && sn.lasts[0] == 7);
        CHECK(!memcmp(s.out + s.out_len - l2, x2, l2));
        free(s.out);
        filter_scan_release(&s);
        filter_free(star);

        /* Damaged input: a cut batch, a corrupt record. */
        filter_scan_init(&s, f, 0);
        CHECK_EQ_INT(filter_scan_feed(&s, all, l0 - 1), PLOG_ERR_CORRUPT);
        free(s.out);
        filter_scan_release(&s);
        if (codecs[c] == COMPRESS_NONE) {
            uint8_t *bad = malloc(l0);
            memcpy(bad, x0, l0);
            bad[BATCH_RECORDS_OFFSET] = 0x7f; /* first record's length: far too long */
            filter_scan_init(&s, f, 0);
            CHECK_EQ_INT(filter_scan_feed(&s, bad, l0), PLOG_ERR_CORRUPT);
            free(s.out);
            filter_scan_release(&s);
            free(bad);
        }
        filter_free(f);
        free(all);
        free(x0);
        free(x1);
        free(x2);
    }
}

static void test_scan_details(void)
{
    struct filter_error err;
    struct filter *f = filter_compile(FILTER_TAG, "a", 1, &err);
    /* Repeated headers: the last one counts. */
    struct batch_builder b;
    batch_builder_init(&b, COMPRESS_NONE, 1000);
    struct batch_header_kv h1[2] = {{(const uint8_t *)"tag", 3, (const uint8_t *)"a", 1},
                                    {(const uint8_t *)"tag", 3, (const uint8_t *)"b", 1}};
    struct batch_header_kv h2[2] = {{(const uint8_t *)"tag", 3, (const uint8_t *)"b", 1},
                                    {(const uint8_t *)"tag", 3, (const uint8_t *)"a", 1}};
    batch_builder_add(&b, 1000, NULL, 0, "x", 1, h1, 2);
    batch_builder_add(&b, 1001, NULL, 0, "y", 1, h2, 2);
    b.base_offset = 100;
    uint8_t *x;
    size_t xl;
    CHECK(batch_builder_finish(&b, &x, &xl) == 0);
    batch_builder_free(&b);
    struct filter_scan s;
    filter_scan_init(&s, f, 100);
    CHECK_EQ_INT(filter_scan_feed(&s, x, xl), PLOG_OK);
    struct batch_hdr h;
    CHECK(batch_parse_header(s.out, s.out_len, INT32_MAX, &h) == PLOG_OK);
    CHECK(h.records_count == 1 && h.last_offset_delta == 1);
    struct batch_records rs;
    struct batch_record r;
    CHECK(batch_records_begin(s.out, &h, &rs) == PLOG_OK);
    CHECK(batch_records_next(&rs, &r) == 1 && r.offset_delta == 1 && r.value[0] == 'y');
    CHECK_EQ_INT(r.timestamp_delta, 1); /* its own timestamp */
    batch_records_end(&rs);
    free(s.out);
    filter_scan_release(&s);

    /* Control batches are never sent; LogAppendTime keeps the batch time. */
    x[21 + 1] |= BATCH_ATTR_CONTROL;
    batch_update_crc(x, xl);
    filter_scan_init(&s, f, 100);
    CHECK_EQ_INT(filter_scan_feed(&s, x, xl), PLOG_OK);
    CHECK_EQ_INT(filter_scan_finish(&s, true), PLOG_OK);
    CHECK(s.out_len == s.marker_bytes && s.records_sent == 0 && s.covered == 102);
    free(s.out);
    filter_scan_release(&s);
    x[21 + 1] = (uint8_t)((x[21 + 1] & ~BATCH_ATTR_CONTROL) | BATCH_ATTR_LOG_APPEND_TIME);
    batch_put_be64(x + BATCH_MAX_TS_OFFSET, 5555);
    batch_update_crc(x, xl);
    filter_scan_init(&s, f, 100);
    CHECK_EQ_INT(filter_scan_feed(&s, x, xl), PLOG_OK);
    CHECK(batch_parse_header(s.out, s.out_len, INT32_MAX, &h) == PLOG_OK);
    CHECK_EQ_INT(h.max_timestamp, 5555);
    CHECK(h.attributes & BATCH_ATTR_LOG_APPEND_TIME);
    CHECK(batch_compute_crc(s.out, s.out_len) == h.crc);
    free(s.out);
    filter_scan_release(&s);

    /* A batch wholly below the fetch offset is passed over; an empty
     * span wider than int32 is cut to what one batch can say. */
    filter_scan_init(&s, f, 102);
    CHECK_EQ_INT(filter_scan_feed(&s, x, xl), PLOG_OK);
    CHECK_EQ_INT(filter_scan_finish(&s, true), PLOG_OK);
    CHECK(s.out_len == 0 && s.next_offset == 102);
    free(s.out);
    filter_scan_release(&s);
    filter_scan_init(&s, f, 0);
    s.next_offset = (int64_t)INT32_MAX * 3;
    CHECK_EQ_INT(filter_scan_finish(&s, true), PLOG_OK);
    CHECK(batch_parse_header(s.out, s.out_len, INT32_MAX, &h) == PLOG_OK);
    CHECK(h.base_offset == 0 && h.last_offset_delta == INT32_MAX && s.covered == INT32_MAX + 1LL);
    CHECK(batch_compute_crc(s.out, s.out_len) == h.crc && h.records_count == 1);
    struct seen sn;
    walk(s.out, s.out_len, &sn);
    CHECK(sn.bad == 0 && sn.n_markers == 1 && sn.markers[0] == INT32_MAX);
    free(s.out);
    filter_scan_release(&s);
    free(x);
    filter_free(f);
}

int main(void)
{
    test_types();
    test_tag();
    test_sql_basics();
    test_sql_numbers();
    test_sql_predicates();
    test_sql_logic();
    test_sql_errors();
    test_malformed();
    test_scan();
    test_scan_details();
    return tap_done();
}
