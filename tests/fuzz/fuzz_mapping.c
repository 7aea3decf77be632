/*
 * libFuzzer target for the mapping file parser (mapping/mapping.h). mapping_load reads a path,
 * so each input is written to one scratch file first. A mapping that loads is also used once:
 * an item goes to remote fields and back for both sides, with every field resolved as people
 * against a small directory.
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
        cJSON *item = cJSON_Parse(
            "{\"title\":\"t\",\"description\":\"*d*\",\"status\":\"done\","
            "\"priority\":\"high\",\"labels\":[\"a\"],\"due\":\"2026-01-02\","
            "\"assignee\":\"Li Wei <li@x.cn>\",\"reporter\":\"张伟\"}");
        for (int s = 0; s < 2; s++) {
            /* every remote field of the mapping holds people here: the resolution runs on all */
            struct person_list users = {0};
            person_list_add(&users, "u1", "Li Wei", "LI@x.cn");
            person_list_add(&users, "u2", "张伟", NULL);
            person_list_add(&users, "u3", "张伟", "zw2@x.cn");
            mapping_set_people(m, (enum side)s, &users, mapping_remote_fields(m, (enum side)s));
        }
        for (int s = 0; s < 2; s++) {
            struct strbuf warn = STRBUF_INIT;
            cJSON *remote = mapping_to_remote(m, (enum side)s, item, &warn);
            cJSON *p = cJSON_CreateObject();
            const cJSON *v;
            cJSON_ArrayForEach(v, remote)
                cJSON_AddItemToObject(p, v->string, person_to_json("u1", "Li Wei", "li@x.cn"));
            struct remote_view rv = {"1", "K-1", NULL, p};
            cJSON *back = mapping_to_item(m, (enum side)s, &rv, &warn);
            cJSON_ArrayForEach(v, item)
                cJSON_Delete(mapping_roundtrip(m, (enum side)s, v->string, v));
            cJSON_Delete(back);
            cJSON_Delete(p);
            cJSON_Delete(remote);
            strbuf_release(&warn);
        }
        cJSON_Delete(mapping_take_unmapped(m));
        cJSON_Delete(item);
        mapping_free(m);
    }
    strbuf_release(&err);
    return 0;
}
