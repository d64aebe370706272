/*
 * Every admin endpoint: method, path pattern, handler.  Matched segment
 * by segment in this order (admin.c); `{name}` takes one non-empty
 * segment, read with admin_path_param(rq, i).  GET /metrics is served by
 * admin.c itself (it is text, not JSON).  docs/admin-api.md documents
 * each endpoint; add a line here and a section there.
 */
#include "admin/admin_int.h"

const struct admin_route admin_routes[] = {
    {"GET", "/v1/status", admin_handle_status},
    {"GET", "/v1/topics", admin_handle_topics},
    {"GET", "/v1/topics/{topic}", admin_handle_topic},
    {"GET", "/v1/groups", admin_handle_groups},
    {"GET", "/v1/groups/{group}", admin_handle_group},
    {"GET", "/v1/messages", admin_handle_messages_by_key},
    {"GET", "/v1/messages/{topic}/{partition}", admin_handle_message_by_time},
    {"GET", "/v1/messages/{topic}/{partition}/{offset}", admin_handle_message_at},
    {"GET", "/v1/delayed", admin_handle_delayed_list},
    {"GET", "/v1/delayed/count", admin_handle_delayed_count},
    {"GET", "/v1/dlq", admin_handle_dlq},
};
const int admin_n_routes = (int)(sizeof admin_routes / sizeof admin_routes[0]);
