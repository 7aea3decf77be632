/* Status codes shared by every layer, and the failure classes the engine acts on. */
#ifndef CB_STATUS_H
#define CB_STATUS_H

#define CB_WUR __attribute__((warn_unused_result))
#define CB_PRINTF(a, b) __attribute__((format(printf, a, b)))

enum cb_status {
    CB_OK = 0,
    CB_ERR_TEMP,     /* retry now: 5xx, network error, timeout */
    CB_ERR_WAIT,     /* retry later: rate limited, quota spent */
    CB_ERR_AUTH,     /* credentials rejected: final until reconfigured */
    CB_ERR_FINAL,    /* this request is wrong (400, 403, 404, invalid data): skip the record */
    CB_ERR_NOTFOUND, /* the remote object does not exist (or is not visible) */
    CB_ERR_PARSE,    /* a peer sent something we cannot read */
    CB_ERR_TOOBIG,   /* a capped buffer would overflow */
    CB_ERR_CONFIG,   /* configuration is invalid */
    CB_ERR_CACHE,    /* the local cache failed */
    CB_ERR_CONFLICT, /* the remote changed under us (compare-and-swap failed) */
    CB_ERR_STOPPED,  /* interrupted by a signal */
    CB_ERR_INTERNAL, /* a bug or an allocation failure */
};

/* A short lower-case name for a status ("temporary failure", ...). Never NULL. */
const char *cb_status_str(enum cb_status st);

/* True for the classes worth retrying in a later cycle without a change of config. */
int cb_status_retryable(enum cb_status st);

#endif
