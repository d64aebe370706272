/*
 * header: Kafka request/response headers (formats in header.h).
 */
#include "proto/header.h"

int kreq_header_decode(kr_t *r, struct kreq_header *h, bool flexible)
{
    h->api_key = kr_i16(r);
    h->api_version = kr_i16(r);
    h->correlation_id = kr_i32(r);
    /* Classic nullable string even in v2: Kafka kept it for old parsers. */
    h->client_id = kr_str(r);
    if (flexible)
        kr_skip_tags(r);
    return r->err ? -1 : 0;
}

void kresp_header_encode(kw_t *w, int32_t correlation_id, bool flexible)
{
    kw_i32(w, correlation_id);
    if (flexible)
        kw_uvarint(w, 0); /* no tagged fields */
}
