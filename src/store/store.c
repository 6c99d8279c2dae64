/*
 * store.c — pb_store_open picks the backend named by the URL; the records'
 * *_free helpers. See pb_store.h.
 *
 * URLs: "sqlite:PATH" (PATH taken literally, relative to the working
 * directory unless absolute; the scheme is case-insensitive), and
 * "postgresql://..." / "postgres://...", which are recognised but not yet
 * served. Messages never repeat a URL past its scheme, since a database URL
 * may carry a password.
 */
#include "store_internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool has_scheme(const char *url, const char *scheme)
{
    return strncasecmp(url, scheme, strlen(scheme)) == 0;
}

int pb_store_open(const char *url, pb_store **out, pb_error *err)
{
    if (out)
        *out = NULL;
    if (!url || !out)
        return pb_error_set(err, PB_EVALIDATION, "no store URL; use sqlite:PATH");
    if (has_scheme(url, "sqlite:")) {
        const char *path = url + strlen("sqlite:");
        if (!*path)
            return pb_error_set(err, PB_EVALIDATION, "the store URL sqlite: names no file; use sqlite:PATH");
        return pb_store__sqlite_open(path, out, err);
    }
    if (has_scheme(url, "postgresql://") || has_scheme(url, "postgres://"))
        return pb_error_set(err, PB_EUNSUPPORTED, "the PostgreSQL store is not yet supported; use sqlite:PATH");
    size_t scheme = strcspn(url, ":");
    if (!url[scheme])
        return pb_error_set(err, PB_EVALIDATION, "the store URL has no scheme; use sqlite:PATH");
    return pb_error_set(err, PB_EVALIDATION, "unknown store URL scheme \"%.*s:\"; use sqlite:PATH",
                        (int)(scheme < 32 ? scheme : 32), url);
}

void pb_store_close(pb_store *s)
{
    if (s)
        s->ops->close(s);
}

/* ------------------------------------------------------------- freeing -- */

/* Defines name(type *v, size_t n), which frees v[0..n) each with one, then v
 * (NULL is fine): the *_recs_free of every record that has its own *_rec_free. */
#define RECS_FREE(name, type, one)                                                                           \
    void name(type *v, size_t n)                                                                             \
    {                                                                                                        \
        if (!v)                                                                                              \
            return;                                                                                          \
        for (size_t i = 0; i < n; i++)                                                                       \
            one(&v[i]);                                                                                      \
        free(v);                                                                                             \
    }

void pb_bus_rec_free(pb_bus_rec *b)
{
    if (!b)
        return;
    free(b->name);
    free(b->arn);
    free(b->description);
    free(b->extra_json);
    memset(b, 0, sizeof *b);
}

void pb_rule_rec_free(pb_rule_rec *r)
{
    if (!r)
        return;
    free(r->bus);
    free(r->name);
    free(r->arn);
    free(r->event_pattern);
    free(r->schedule);
    free(r->state);
    free(r->description);
    free(r->role_arn);
    free(r->managed_by);
    free(r->created_by);
    memset(r, 0, sizeof *r);
}

void pb_target_rec_free(pb_target_rec *t)
{
    if (!t)
        return;
    free(t->id);
    free(t->arn);
    free(t->json);
    memset(t, 0, sizeof *t);
}

void pb_tags_free(pb_tag *tags, size_t n)
{
    if (!tags)
        return;
    for (size_t i = 0; i < n; i++) {
        free(tags[i].key);
        free(tags[i].value);
    }
    free(tags);
}

RECS_FREE(pb_bus_recs_free, pb_bus_rec, pb_bus_rec_free)
RECS_FREE(pb_rule_recs_free, pb_rule_rec, pb_rule_rec_free)
RECS_FREE(pb_target_recs_free, pb_target_rec, pb_target_rec_free)

void pb_rule_entries_free(pb_rule_entry *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++) {
        free(v[i].account);
        free(v[i].region);
        pb_rule_rec_free(&v[i].rule);
    }
    free(v);
}

void pb_names_free(char **names, size_t n)
{
    if (!names)
        return;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

void pb_pipeline_rec_free(pb_pipeline_rec *p)
{
    if (!p)
        return;
    free(p->name);
    free(p->arn);
    free(p->display_name);
    free(p->description);
    free(p->role_arn);
    free(p->definition);
    free(p->client_token);
    memset(p, 0, sizeof *p);
}

RECS_FREE(pb_pipeline_recs_free, pb_pipeline_rec, pb_pipeline_rec_free)

void pb_exec_rec_free(pb_exec_rec *e)
{
    if (!e)
        return;
    free(e->id);
    free(e->arn);
    free(e->pipeline_name);
    free(e->pipeline_arn);
    free(e->display_name);
    free(e->description);
    free(e->status);
    free(e->failure_reason);
    free(e->client_token);
    memset(e, 0, sizeof *e);
}

RECS_FREE(pb_exec_recs_free, pb_exec_rec, pb_exec_rec_free)

void pb_exec_entries_free(pb_exec_entry *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++) {
        free(v[i].account);
        free(v[i].region);
        pb_exec_rec_free(&v[i].exec);
    }
    free(v);
}

void pb_step_recs_free(pb_step_rec *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].type);
        free(v[i].display_name);
        free(v[i].description);
        free(v[i].status);
        free(v[i].failure_reason);
        free(v[i].metadata_json);
        free(v[i].properties_json);
        free(v[i].stdout_path);
        free(v[i].stderr_path);
    }
    free(v);
}

void pb_param_recs_free(pb_param_rec *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].value);
    }
    free(v);
}

void pb_outbox_recs_free(pb_outbox_rec *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++) {
        free(v[i].account);
        free(v[i].region);
        free(v[i].bus);
        free(v[i].event_json);
    }
    free(v);
}

void pb_invocation_rec_free(pb_invocation_rec *v)
{
    if (!v)
        return;
    free(v->account);
    free(v->region);
    free(v->bus);
    free(v->rule_arn);
    free(v->rule_name);
    free(v->target_id);
    free(v->target_arn);
    free(v->target_json);
    free(v->event_id);
    free(v->event_json);
    free(v->last_error_code);
    free(v->last_error_message);
    memset(v, 0, sizeof *v);
}

RECS_FREE(pb_invocation_recs_free, pb_invocation_rec, pb_invocation_rec_free)

void pb_dead_letter_rec_free(pb_dead_letter_rec *d)
{
    if (!d)
        return;
    free(d->dlq_arn);
    free(d->account);
    free(d->region);
    free(d->bus);
    free(d->rule_arn);
    free(d->rule_name);
    free(d->target_id);
    free(d->target_arn);
    free(d->target_json);
    free(d->event_id);
    free(d->event_json);
    free(d->payload);
    free(d->error_code);
    free(d->error_message);
    free(d->exhausted);
    memset(d, 0, sizeof *d);
}

RECS_FREE(pb_dead_letter_recs_free, pb_dead_letter_rec, pb_dead_letter_rec_free)

void pb_tick_recs_free(pb_tick_rec *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++) {
        free(v[i].account);
        free(v[i].region);
        free(v[i].bus);
        free(v[i].rule);
    }
    free(v);
}
