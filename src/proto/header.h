/*
 * header: Kafka request and response headers.
 *
 * The message bodies are generated (proto/gen/msgs.h); the headers are
 * small and irregular, so they are written by hand here.
 *
 * Request header v1: api_key int16, api_version int16, correlation_id
 * int32, client_id nullable string.  v2 (flexible request versions) adds a
 * tagged-field section, but client_id stays a classic int16-length string.
 * Which one applies depends on the API and version at the front of the
 * header, so a dispatcher peeks those 4 bytes, asks kapi_is_flexible(),
 * then decodes the whole header.
 *
 * Response header v0: correlation_id int32.  v1 (flexible response
 * versions) adds an empty tagged-field section.  EXCEPTION: ApiVersions
 * responses always use header v0, whatever the version, so that a client
 * can read the answer before it knows what the broker speaks; the
 * dispatcher passes flexible = false for API key 18.
 */
#ifndef RUNNEL_PROTO_HEADER_H
#define RUNNEL_PROTO_HEADER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/kbuf.h"
#include "proto/gen/msgs.h"

struct kreq_header {
    int16_t api_key, api_version;
    int32_t correlation_id;
    kstr_t client_id; /* view into the frame; len == -1 when null */
};

/*
 * Reads a request header (v2 when flexible, else v1).  Returns 0, or -1
 * with r->err set; the body starts at r->p afterwards.  Unknown tagged
 * fields in a v2 header are skipped.
 */
int kreq_header_decode(kr_t *r, struct kreq_header *h, bool flexible);

/* Writes a response header: v1 (with an empty tagged section) or v0. */
void kresp_header_encode(kw_t *w, int32_t correlation_id, bool flexible);

#endif
