/*
 * libFuzzer target for the mapping file parser (mapping/mapping.h). mapping_load reads a path,
 * so each input is written to one scratch file first. A mapping that loads is also used once:
 * an item goes to remote fields and back for both sides.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mapping/mapping.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0])
        snprintf(path, sizeof(path), "/tmp/cb-fuzz-mapping-%d.conf", (int)getpid());
    if (size > 64 * 1024)
        return 0;
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    struct mapping *m = NULL;
    struct strbuf err = STRBUF_INIT;
    if (mapping_load(path, "zoho", "jira", &m, &err) == CB_OK) {
        cJSON *item =
            cJSON_Parse("{\"title\":\"t\",\"description\":\"*d*\",\"status\":\"done\","
                        "\"priority\":\"high\",\"labels\":[\"a\"],\"due\":\"2026-01-02\"}");
        for (int s = 0; s < 2; s++) {
            struct strbuf warn = STRBUF_INIT;
            cJSON *remote = mapping_to_remote(m, (enum side)s, item, &warn);
            cJSON_Delete(remote);
            strbuf_release(&warn);
        }
        cJSON_Delete(item);
        mapping_free(m);
    }
    strbuf_release(&err);
    return 0;
}
