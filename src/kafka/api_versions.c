/* ApiVersions: the table in dispatch.c, nothing more and nothing less. */
#include "common/kerr.h"
#include "kafka/handlers.h"
#include "proto/gen/msgs.h"

int handle_api_versions(struct kreq *r)
{
    int16_t version = r->hdr.api_version;
    struct api_versions_response resp;
    api_versions_response_init(&resp);
    if (version < API_VERSIONS_MIN_VERSION || version > API_VERSIONS_MAX_VERSION) {
        /* Unknown version: a v0 body with UNSUPPORTED_VERSION and the
         * table, which every client can parse. */
        resp.error_code = KERR_UNSUPPORTED_VERSION;
        version = 0;
    } else {
        /* The body (client software name/version in v3) is informational;
         * a malformed one is still an error. */
        struct api_versions_request req;
        if (!KREQ_DECODE(r, api_versions_request, &req))
            return KH_CLOSE;
    }
    resp.api_keys = arena_alloc(&r->arena, (size_t)kapi_count * sizeof *resp.api_keys);
    if (!resp.api_keys)
        return KH_CLOSE;
    resp.api_keys_count = kapi_count;
    for (int i = 0; i < kapi_count; i++) {
        api_versions_response_api_version_init(&resp.api_keys[i]);
        resp.api_keys[i].api_key = kapi_table[i].key;
        resp.api_keys[i].min_version = kapi_table[i].min_version;
        resp.api_keys[i].max_version = kapi_table[i].max_version;
    }
    api_versions_response_encode(&r->out, version, &resp);
    return KH_DONE;
}
