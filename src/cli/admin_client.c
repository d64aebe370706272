#include "cli/admin_client.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"

/* Seconds: a broker that accepts nothing within this is reported down. */
#define CONNECT_TIMEOUT_S 5
#define REQUEST_TIMEOUT_S 60
/* Larger answers are not ours (the largest, a topic's partitions, is far
 * below); refuse rather than fill memory. */
#define MAX_ANSWER (64 << 20)

void admin_client_init(struct admin_client *c, const char *prog)
{
    c->prog = prog;
    const char *env = getenv("RUNNEL_ADMIN");
    c->addr = env && *env ? env : ADMIN_CLIENT_DEFAULT;
}

char *admin_client_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(strlen(s) * 3 + 1), *o = out;
    if (!out)
        return NULL;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        /* RFC 3986 unreserved characters stay as they are. */
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            *o++ = (char)ch;
        } else {
            *o++ = '%';
            *o++ = hex[ch >> 4];
            *o++ = hex[ch & 15];
        }
    }
    *o = 0;
    return out;
}

struct answer {
    char *buf;
    size_t len, cap;
    bool too_large;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct answer *a = arg;
    size_t len = size * n;
    if (a->len + len > MAX_ANSWER) {
        a->too_large = true;
        return 0;
    }
    if (a->len + len + 1 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16384;
        while (cap < a->len + len + 1)
            cap *= 2;
        char *b = realloc(a->buf, cap);
        if (!b)
            return 0;
        a->buf = b;
        a->cap = cap;
    }
    memcpy(a->buf + a->len, p, len);
    a->len += len;
    a->buf[a->len] = 0;
    return len;
}

int admin_client_get(struct admin_client *c, const char *path, json_t **out)
{
    *out = NULL;
    char url[2048];
    if ((size_t)snprintf(url, sizeof url, "http://%s%s", c->addr, path) >= sizeof url) {
        cli_error(c->prog, "request too long");
        return CLI_FAIL;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
        cli_error(c->prog, "cannot initialise libcurl");
        return CLI_FAIL;
    }
    CURL *h = curl_easy_init();
    if (!h) {
        curl_global_cleanup();
        cli_error(c->prog, "cannot initialise libcurl");
        return CLI_FAIL;
    }
    struct answer a = {0};
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)REQUEST_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
    /* Talk to the broker, never through an http_proxy from the environment. */
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    curl_global_cleanup();

    int ret = CLI_FAIL;
    if (rc != CURLE_OK) {
        if (a.too_large)
            cli_error(c->prog, "answer from the admin API at %s is over %d bytes", c->addr,
                      MAX_ANSWER);
        else
            cli_error(c->prog,
                      "admin API at %s not reachable: %s (is the broker running, with "
                      "admin.listener set to that address?)",
                      c->addr, curl_err[0] ? curl_err : curl_easy_strerror(rc));
        goto done;
    }
    json_error_t jerr;
    json_t *j = a.buf ? json_loadb(a.buf, a.len, 0, &jerr) : NULL;
    if (status >= 400) {
        json_t *msg = j ? json_object_get(j, "error") : NULL;
        if (json_is_string(msg))
            cli_error(c->prog, "%s", json_string_value(msg));
        else
            cli_error(c->prog, "admin API at %s answered HTTP %ld", c->addr, status);
        json_decref(j);
        goto done;
    }
    if (!j || !json_is_object(j)) {
        cli_error(c->prog, "admin API at %s answered HTTP %ld with something that is not JSON",
                  c->addr, status);
        json_decref(j);
        goto done;
    }
    *out = j;
    ret = CLI_OK;
done:
    free(a.buf);
    return ret;
}
