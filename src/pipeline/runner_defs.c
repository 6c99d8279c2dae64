/*
 * runner_defs.c — the runner's cache of parsed pipeline definitions.
 *
 * A definition is parsed once per (pipeline ARN, version) and shared by
 * every execution of that version and by the API's StartPipelineExecution
 * (parameter binding). Entries are counted references; at most
 * CACHE_IDLE_MAX unreferenced ones are kept, the least recently used are
 * freed first. A pb_pipedef is immutable, so sharing needs no lock beyond
 * the cache's own.
 */
#include "runner_internal.h"

#include <stdlib.h>
#include <string.h>

#define CACHE_IDLE_MAX 64

/* FNV-1a: the text is part of the key, since a pipeline deleted and created
 * again under its name starts again at version 1. */
static uint64_t text_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static bool same(const defcache_entry *e, const char *arn, int64_t version, uint64_t hash, size_t len)
{
    return e->version == version && e->text_hash == hash && e->text_len == len && !strcmp(e->arn, arn);
}

int pb_runner_definition(pb_runner *r, const char *pipeline_arn, int64_t version_id, const char *text,
                         const pb_pipedef **out, pb_error *err)
{
    size_t len = strlen(text);
    uint64_t hash = text_hash(text, len);
    pthread_mutex_lock(&r->cache_mu);
    for (defcache_entry *e = r->cache; e; e = e->next) {
        if (same(e, pipeline_arn, version_id, hash, len)) {
            e->refs++;
            e->used = ++r->cache_clock;
            *out = e->def;
            pthread_mutex_unlock(&r->cache_mu);
            return 0;
        }
    }
    pthread_mutex_unlock(&r->cache_mu);

    /* parse outside the lock: a large definition takes a while */
    pb_pipedef *def = NULL;
    int rc = pb_pipedef_parse(text, len, &def, err);
    if (rc)
        return rc;
    defcache_entry *e = calloc(1, sizeof *e);
    char *arn = strdup(pipeline_arn);
    if (!e || !arn) {
        free(e);
        free(arn);
        pb_pipedef_free(def);
        return pb_error_set(err, PB_ENOMEM, "out of memory");
    }
    pthread_mutex_lock(&r->cache_mu);
    /* another thread may have parsed it meanwhile: use that one */
    for (defcache_entry *o = r->cache; o; o = o->next) {
        if (same(o, pipeline_arn, version_id, hash, len)) {
            o->refs++;
            o->used = ++r->cache_clock;
            *out = o->def;
            pthread_mutex_unlock(&r->cache_mu);
            free(e);
            free(arn);
            pb_pipedef_free(def);
            return 0;
        }
    }
    e->arn = arn;
    e->version = version_id;
    e->text_hash = hash;
    e->text_len = len;
    e->def = def;
    e->refs = 1;
    e->used = ++r->cache_clock;
    e->next = r->cache;
    r->cache = e;
    *out = def;
    pthread_mutex_unlock(&r->cache_mu);
    return 0;
}

/* Frees unreferenced entries beyond CACHE_IDLE_MAX, oldest first. Lock held. */
static void trim(pb_runner *r)
{
    for (;;) {
        size_t idle = 0;
        defcache_entry **oldest = NULL;
        for (defcache_entry **pe = &r->cache; *pe; pe = &(*pe)->next) {
            if ((*pe)->refs)
                continue;
            idle++;
            if (!oldest || (*pe)->used < (*oldest)->used)
                oldest = pe;
        }
        if (idle <= CACHE_IDLE_MAX || !oldest)
            return;
        defcache_entry *e = *oldest;
        *oldest = e->next;
        pb_pipedef_free(e->def);
        free(e->arn);
        free(e);
    }
}

void pb_runner_definition_release(pb_runner *r, const pb_pipedef *def)
{
    if (!def)
        return;
    pthread_mutex_lock(&r->cache_mu);
    for (defcache_entry *e = r->cache; e; e = e->next) {
        if (e->def == def) {
            if (e->refs)
                e->refs--;
            break;
        }
    }
    trim(r);
    pthread_mutex_unlock(&r->cache_mu);
}

void pb__defcache_free(pb_runner *r)
{
    defcache_entry *e = r->cache;
    while (e) {
        defcache_entry *next = e->next;
        pb_pipedef_free(e->def);
        free(e->arn);
        free(e);
        e = next;
    }
    r->cache = NULL;
}
