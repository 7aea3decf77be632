/* Names for status codes. Nothing else lives here: detail text travels in a strbuf. */
#include "core/status.h"

const char *cb_status_str(enum cb_status st)
{
    switch (st) {
    case CB_OK: return "ok";
    case CB_ERR_TEMP: return "temporary failure";
    case CB_ERR_WAIT: return "rate limited";
    case CB_ERR_AUTH: return "authentication failed";
    case CB_ERR_FINAL: return "rejected";
    case CB_ERR_NOTFOUND: return "not found";
    case CB_ERR_PARSE: return "unreadable response";
    case CB_ERR_TOOBIG: return "too large";
    case CB_ERR_CONFIG: return "configuration error";
    case CB_ERR_CACHE: return "cache error";
    case CB_ERR_CONFLICT: return "changed concurrently";
    case CB_ERR_STOPPED: return "stopped";
    case CB_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

int cb_status_retryable(enum cb_status st)
{
    return st == CB_ERR_TEMP || st == CB_ERR_WAIT || st == CB_ERR_CONFLICT;
}
