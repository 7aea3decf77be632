/*
 * Internal to cache/: the key file and AES-256-GCM sealing of tokens at rest. A sealed blob is
 * version (1 byte) | nonce (12) | ciphertext | tag (16); the additional data is the endpoint
 * name, so a blob copied to another endpoint fails authentication.
 */
#ifndef CB_CACHE_CRYPT_H
#define CB_CACHE_CRYPT_H

#include <stddef.h>

#include "core/status.h"
#include "core/strbuf.h"

#define CRYPT_KEY_LEN 32
/* Largest plaintext crypt_seal accepts. */
#define CRYPT_MAX_PLAIN (64 * 1024)

/* Reads dir/secret.key into key, creating it (mode 0600, random) when absent. Refuses a key file
 * whose mode gives group or others any access, or of the wrong size. On failure returns
 * CB_ERR_CACHE with the reason in err and key is left cleared. */
enum cb_status crypt_key_load(const char *dir, unsigned char key[CRYPT_KEY_LEN],
                              struct strbuf *err) CB_WUR;

/* Seals len bytes of pt with aad into blob (replacing its contents). Returns CB_ERR_TOOBIG over
 * CRYPT_MAX_PLAIN and CB_ERR_INTERNAL if OpenSSL fails; blob is unchanged on failure. */
enum cb_status crypt_seal(const unsigned char key[CRYPT_KEY_LEN], const char *aad, const void *pt,
                          size_t len, struct strbuf *blob) CB_WUR;

/* Opens blob into out (replacing its contents). Returns CB_ERR_CACHE when the blob is malformed
 * or fails authentication (wrong key, wrong aad, tampered), CB_ERR_TOOBIG when the plaintext
 * exceeds out's cap; out is unchanged on failure. Intermediate plaintext is wiped. */
enum cb_status crypt_unseal(const unsigned char key[CRYPT_KEY_LEN], const char *aad,
                            const void *blob, size_t len, struct strbuf *out) CB_WUR;

#endif
