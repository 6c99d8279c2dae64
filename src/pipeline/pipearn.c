/*
 * pipearn.c — pipeline and execution ARNs, names from ARNs, execution ids.
 * See pb_pipearn.h.
 */
#include "pipeline/pb_pipearn.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

char *pb_pipearn_pipeline(const pb_scope *sc, const char *name)
{
    size_t n = strlen(name);
    size_t cap = n + strlen(sc->region) + strlen(sc->account) + 40;
    char *arn = malloc(cap);
    if (!arn)
        return NULL;
    int k = snprintf(arn, cap, "arn:aws:sagemaker:%s:%s:pipeline/", sc->region, sc->account);
    for (size_t i = 0; i <= n; i++)
        arn[(size_t)k + i] = (char)tolower((unsigned char)name[i]);
    return arn;
}

char *pb_pipearn_execution(const char *pipeline_arn, const char *exec_id)
{
    size_t cap = strlen(pipeline_arn) + strlen(exec_id) + 12;
    char *arn = malloc(cap);
    if (arn)
        snprintf(arn, cap, "%s/execution/%s", pipeline_arn, exec_id);
    return arn;
}

bool pb_pipearn_name(const pb_scope *sc, const char *name_or_arn, char *out, size_t cap)
{
    const char *name = name_or_arn;
    if (!strncmp(name_or_arn, "arn:", 4)) {
        char prefix[128];
        int k = snprintf(prefix, sizeof prefix, "arn:aws:sagemaker:%s:%s:pipeline/", sc->region, sc->account);
        if (k > 0 && (size_t)k < sizeof prefix && !strncmp(name_or_arn, prefix, (size_t)k) && name_or_arn[k] &&
            !strchr(name_or_arn + k, '/'))
            name = name_or_arn + k;
    }
    size_t n = strlen(name);
    if (n >= cap)
        return false;
    memcpy(out, name, n + 1);
    return true;
}

void pb_pipearn_exec_id(char out[13])
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char b[12];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        for (int i = 0; i < 12; i++)
            b[i] = (unsigned char)(((uint64_t)ts.tv_nsec * 2654435761u) >> (i * 2)) ^ (unsigned char)(i * 37);
    }
    for (int i = 0; i < 12; i++)
        out[i] = alphabet[b[i] % 36];
    out[12] = '\0';
}
