/* Resolving secrets written as a literal, "env:NAME" or "file:PATH". */
#ifndef CB_SECRET_H
#define CB_SECRET_H

#include "core/status.h"
#include "core/strbuf.h"

/* Resolves spec into *out (caller frees) and registers it for log redaction. A file secret is
 * read whole with trailing whitespace removed; it must be non-empty. On failure returns
 * CB_ERR_CONFIG with a reason in err (never the secret itself) and *out is unchanged. */
enum cb_status secret_resolve(const char *spec, char **out, struct strbuf *err) CB_WUR;

#endif
