/*
 * libFuzzer target for the configuration parser (core/config.h, libconfig syntax): any text
 * either loads or is refused with a message; never a crash or a leak. A loaded config is also
 * checked by every connector's check_config, as `crmbridge check` would.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/connector.h"
#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    struct config *cfg = NULL;
    struct strbuf err = STRBUF_INIT;
    if (config_load_string(text, "fuzz.conf", &cfg, &err) == CB_OK) {
        for (size_t i = 0; i < cfg->n_pairs; i++) {
            const struct pair_conf *pc = &cfg->pairs[i];
            for (int s = 0; s < 2; s++) {
                const struct endpoint_conf *ep = config_endpoint(cfg, pc->side[s].endpoint);
                const struct connector_ops *ops = ep && ep->type ? connector_find(ep->type) : NULL;
                if (ops)
                    (void)ops->check_config(ep, &pc->side[s], &err);
            }
        }
        config_free(cfg);
    }
    strbuf_release(&err);
    free(text);
    return 0;
}
