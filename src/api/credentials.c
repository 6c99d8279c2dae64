/*
 * credentials.c — the access keys the server accepts.
 *
 * <data-dir>/credentials holds one credential per line: ACCESS_KEY SECRET
 * ACCOUNT (12 digits); blank lines and '#' comments are ignored. On first
 * start the file is created (mode 0600) with the development credential
 * test / test / 000000000000, which the server refuses to expose on a
 * non-loopback address.
 */
#include "pb_api.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_CREDENTIALS 1024
#define DEV_KEY "test"

typedef struct cred {
    char key[129];
    char secret[129];
    char account[13];
} cred;

struct pb_credentials {
    cred *v;
    size_t n;
};

static bool account_ok(const char *a)
{
    if (strlen(a) != 12)
        return false;
    for (int i = 0; i < 12; i++)
        if (a[i] < '0' || a[i] > '9')
            return false;
    return true;
}

int pb_credentials_load(const char *data_dir, pb_credentials **out, bool *created, pb_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/credentials", data_dir);
    *created = false;
    FILE *f = fopen(path, "r");
    if (!f && errno == ENOENT) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd < 0)
            return pb_error_set(err, PB_EIO, "cannot create %s: %s", path, strerror(errno));
        static const char text[] = "# ACCESS_KEY SECRET ACCOUNT — one credential per line\n"
                                   "test test 000000000000\n";
        if (write(fd, text, sizeof text - 1) != (ssize_t)(sizeof text - 1) || fsync(fd) != 0) {
            close(fd);
            return pb_error_set(err, PB_EIO, "cannot write %s: %s", path, strerror(errno));
        }
        close(fd);
        *created = true;
        f = fopen(path, "r");
    }
    if (!f)
        return pb_error_set(err, PB_EIO, "cannot read %s: %s", path, strerror(errno));
    pb_credentials *c = calloc(1, sizeof *c);
    if (!c) {
        fclose(f);
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    }
    char line[1024];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#' || *p == '\n' || *p == '\0')
            continue;
        cred cr;
        char extra[2];
        int k = sscanf(p, "%128s %128s %12s %1s", cr.key, cr.secret, cr.account, extra);
        if (k != 3 || !account_ok(cr.account)) {
            fclose(f);
            pb_credentials_free(c);
            return pb_error_set(err, PB_EVALIDATION, "%s:%d: expected ACCESS_KEY SECRET ACCOUNT(12 digits)", path,
                                lineno);
        }
        if (c->n >= MAX_CREDENTIALS) {
            fclose(f);
            pb_credentials_free(c);
            return pb_error_set(err, PB_EVALIDATION, "%s: more than %d credentials", path, MAX_CREDENTIALS);
        }
        cred *nv = realloc(c->v, (c->n + 1) * sizeof *nv);
        if (!nv) {
            fclose(f);
            pb_credentials_free(c);
            return pb_error_set(err, PB_ENOMEM, "out of memory");
        }
        c->v = nv;
        c->v[c->n++] = cr;
    }
    fclose(f);
    if (!c->n) {
        pb_credentials_free(c);
        return pb_error_set(err, PB_EVALIDATION, "%s holds no credential", path);
    }
    *out = c;
    return 0;
}

void pb_credentials_free(pb_credentials *c)
{
    if (c) {
        free(c->v);
        free(c);
    }
}

bool pb_credentials_dev_only(const pb_credentials *c)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->v[i].key, DEV_KEY) != 0 || strcmp(c->v[i].secret, DEV_KEY) != 0)
            return false;
    return true;
}

int pb_credentials_lookup(void *ctx, const char *access_key, char *secret, size_t secretcap, char account[13])
{
    const pb_credentials *c = ctx;
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->v[i].key, access_key)) {
            snprintf(secret, secretcap, "%s", c->v[i].secret);
            memcpy(account, c->v[i].account, 13);
            return 0;
        }
    return PB_ENOTFOUND;
}
