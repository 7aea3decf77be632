/* Lookup of the built-in mapping texts (generated into mapping_defaults_gen.c by CMake). */
#include "mapping/mapping_default.h"

#include <string.h>

#include "mapping_defaults_gen.h"

const char *mapping_default_text(const char *crm_type, const char *tracker_type)
{
    for (int i = 0; mapping_defaults[i].crm; i++)
        if (strcmp(mapping_defaults[i].crm, crm_type) == 0 &&
            strcmp(mapping_defaults[i].tracker, tracker_type) == 0)
            return (const char *)mapping_defaults[i].text;
    return NULL;
}
