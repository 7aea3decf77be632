/*
 * Tokens at rest: the 32-byte key file in the state directory and AES-256-GCM sealing with a
 * random 96-bit nonce per seal (OpenSSL EVP). Key material and plaintext copies are wiped with
 * OPENSSL_cleanse. It does not know about LMDB or endpoints beyond the additional data string;
 * cache.c stores the blobs.
 */
#include "cache/crypt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define BLOB_VERSION 1
#define NONCE_LEN 12
#define TAG_LEN 16
#define OVERHEAD (1 + NONCE_LEN + TAG_LEN)

/* Reads or writes exactly n bytes; -1 with errno set otherwise. */
static int io_full(int fd, unsigned char *p, size_t n, int wr)
{
    while (n) {
        ssize_t r = wr ? write(fd, p, n) : read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EIO;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Writes a fresh key to a private temporary file, then links it into place: link() fails if
 * another process won the race, and nobody ever sees a half-written key. */
static enum cb_status key_create(const char *dir, const char *path, struct strbuf *err)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s/secret.key.%ld.tmp", dir, (long)getpid());
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        strbuf_setf(err, "cannot create secret key '%s': %s", path, strerror(errno));
        return CB_ERR_CACHE;
    }
    unsigned char k[CRYPT_KEY_LEN];
    int e = EIO;
    int ok = RAND_bytes(k, sizeof(k)) == 1;
    if (ok && (io_full(fd, k, sizeof(k), 1) != 0 || fsync(fd) != 0)) {
        ok = 0;
        e = errno;
    }
    OPENSSL_cleanse(k, sizeof(k));
    close(fd);
    if (ok && link(tmp, path) != 0 && errno != EEXIST) {
        ok = 0;
        e = errno;
    }
    unlink(tmp);
    if (!ok) {
        strbuf_setf(err, "cannot create secret key '%s': %s", path, strerror(e));
        return CB_ERR_CACHE;
    }
    return CB_OK;
}

static enum cb_status key_read(int fd, const char *path, unsigned char *key, struct strbuf *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        strbuf_setf(err, "cannot read secret key '%s': %s", path, strerror(errno));
        return CB_ERR_CACHE;
    }
    if (!S_ISREG(st.st_mode)) {
        strbuf_setf(err, "cannot use secret key '%s': not a regular file", path);
        return CB_ERR_CACHE;
    }
    if (st.st_mode & 077) {
        strbuf_setf(err,
                    "cannot use secret key '%s': mode %04o gives group or others access; "
                    "run chmod 600 '%s'",
                    path, (unsigned)(st.st_mode & 07777), path);
        return CB_ERR_CACHE;
    }
    if (st.st_size != CRYPT_KEY_LEN) {
        strbuf_setf(err, "cannot use secret key '%s': it holds %lld bytes, expected %d", path,
                    (long long)st.st_size, CRYPT_KEY_LEN);
        return CB_ERR_CACHE;
    }
    if (io_full(fd, key, CRYPT_KEY_LEN, 0) != 0) {
        strbuf_setf(err, "cannot read secret key '%s': %s", path, strerror(errno));
        return CB_ERR_CACHE;
    }
    return CB_OK;
}

enum cb_status crypt_key_load(const char *dir, unsigned char key[CRYPT_KEY_LEN], struct strbuf *err)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof(path), "%s/secret.key", dir) >= sizeof(path) - 32) {
        strbuf_setf(err, "cannot use secret key in '%s': path too long", dir);
        return CB_ERR_CACHE;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        if (key_create(dir, path, err) != CB_OK)
            return CB_ERR_CACHE;
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) {
        strbuf_setf(err, "cannot open secret key '%s': %s", path, strerror(errno));
        return CB_ERR_CACHE;
    }
    enum cb_status st = key_read(fd, path, key, err);
    close(fd);
    if (st != CB_OK)
        OPENSSL_cleanse(key, CRYPT_KEY_LEN);
    return st;
}

/* One AES-256-GCM pass over n bytes of in into out (which may equal in). Encrypting writes the
 * tag; decrypting checks it. Returns 1 on success, 0 on failure (including a bad tag). */
static int gcm(int enc, const unsigned char *key, const char *aad, const unsigned char *nonce,
               const unsigned char *in, size_t n, unsigned char *out, unsigned char *tag)
{
    size_t alen = strlen(aad);
    if (n > INT_MAX || alen > INT_MAX)
        return 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int len = 0;
    int ok = ctx && EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce, enc) == 1 &&
             EVP_CipherUpdate(ctx, NULL, &len, (const unsigned char *)aad, (int)alen) == 1 &&
             EVP_CipherUpdate(ctx, out, &len, in, (int)n) == 1 &&
             (enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1) &&
             EVP_CipherFinal_ex(ctx, out + len, &len) == 1 &&
             (!enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1);
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

enum cb_status crypt_seal(const unsigned char key[CRYPT_KEY_LEN], const char *aad, const void *pt,
                          size_t len, struct strbuf *blob)
{
    if (len > CRYPT_MAX_PLAIN)
        return CB_ERR_TOOBIG;
    size_t n = OVERHEAD + len;
    unsigned char *b = xmalloc(n);
    b[0] = BLOB_VERSION;
    int ok = RAND_bytes(b + 1, NONCE_LEN) == 1 &&
             gcm(1, key, aad, b + 1, pt, len, b + 1 + NONCE_LEN, b + n - TAG_LEN);
    struct strbuf tmp;
    strbuf_init(&tmp, blob->cap);
    enum cb_status st = ok ? strbuf_add(&tmp, b, n) : CB_ERR_INTERNAL;
    OPENSSL_cleanse(b, n);
    free(b);
    if (st == CB_OK) {
        strbuf_release(blob);
        *blob = tmp;
    }
    return st;
}

enum cb_status crypt_unseal(const unsigned char key[CRYPT_KEY_LEN], const char *aad,
                            const void *blob, size_t len, struct strbuf *out)
{
    const unsigned char *b = blob;
    if (len < OVERHEAD || b[0] != BLOB_VERSION)
        return CB_ERR_CACHE;
    size_t n = len - OVERHEAD;
    unsigned char tag[TAG_LEN];
    memcpy(tag, b + len - TAG_LEN, TAG_LEN);
    /* Copy the ciphertext in and decrypt in place, so the plaintext exists in one buffer. */
    struct strbuf tmp;
    strbuf_init(&tmp, out->cap);
    if (strbuf_add(&tmp, b + 1 + NONCE_LEN, n) != CB_OK)
        return CB_ERR_TOOBIG;
    unsigned char *p = (unsigned char *)tmp.buf;
    if (!gcm(0, key, aad, b + 1, p, n, p, tag)) {
        OPENSSL_cleanse(p, n);
        strbuf_release(&tmp);
        return CB_ERR_CACHE;
    }
    if (out->alloc)
        OPENSSL_cleanse(out->buf, out->alloc);
    strbuf_release(out);
    *out = tmp;
    return CB_OK;
}
