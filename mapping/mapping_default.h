/* Built-in default mappings, compiled from etc/mappings/<crm>-<tracker>.conf at build time. */
#ifndef CB_MAPPING_DEFAULT_H
#define CB_MAPPING_DEFAULT_H

/* The libconfig text of the default mapping for this combination, or NULL if there is none. */
const char *mapping_default_text(const char *crm_type, const char *tracker_type);

#endif
