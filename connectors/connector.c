/* The table of connectors, looked up by the endpoint's "type"; plus write_op helpers. */
#include "connectors/connector.h"

#include <string.h>

extern const struct connector_ops zoho_ops;
extern const struct connector_ops jira_ops;
extern const struct connector_ops fxiaoke_ops;
extern const struct connector_ops trello_ops;

static const struct connector_ops *const connectors[] = {&zoho_ops, &jira_ops, &fxiaoke_ops,
                                                         &trello_ops, NULL};

static const struct connector_ops *extra[9];

void connector_register(const struct connector_ops *ops)
{
    for (int i = 0; i < 8; i++) {
        if (!extra[i] || extra[i] == ops) {
            extra[i] = ops;
            return;
        }
    }
}

const struct connector_ops *connector_find(const char *type)
{
    for (int i = 0; type && connectors[i]; i++)
        if (strcmp(connectors[i]->name, type) == 0)
            return connectors[i];
    for (int i = 0; type && extra[i]; i++)
        if (strcmp(extra[i]->name, type) == 0)
            return extra[i];
    return NULL;
}

const char *connector_types(void)
{
    return "zoho, jira, fxiaoke, trello";
}

struct http *connector_http_new(const struct connector_params *p)
{
    struct http_opts o = p->http;
    if (!o.ca_file && p->ep)
        o.ca_file = p->ep->ca_file;
    return http_new(&o);
}

void write_op_init(struct write_op *op)
{
    memset(op, 0, sizeof(*op));
    strbuf_init(&op->err, 4096);
}

void write_op_release(struct write_op *op)
{
    strbuf_release(&op->err);
    record_release(&op->rec);
}
