/*
 * pb_store.h — where pipebridge keeps its state, behind a table of functions.
 *
 * The API layer talks to a pb_store through pb_store_ops, so SQLite (the
 * embedded default) and, later, PostgreSQL are interchangeable. Every
 * function that writes is one transaction: it is applied whole or not at all,
 * and once it returns 0 the change survives a crash (kill -9).
 *
 * Resources are scoped by (account, region): the account of the caller's
 * access key and the region of its SigV4 credential scope, as in AWS.
 * Records returned to the caller are owned by the caller and released with
 * the matching *_free function. Strings in records are NUL-terminated UTF-8;
 * optional members are NULL when unset.
 */
#ifndef PB_STORE_H
#define PB_STORE_H

#include "common/pb_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pb_store pb_store;

typedef struct pb_scope {
    const char *account; /* 12 digits */
    const char *region;  /* e.g. "us-east-1" */
} pb_scope;

typedef struct pb_tag {
    char *key;
    char *value;
} pb_tag;

typedef struct pb_bus_rec {
    char *name;
    char *arn;
    char *description;   /* optional */
    char *extra_json;    /* optional: other members echoed back (KmsKeyIdentifier, DeadLetterConfig, LogConfig) as a JSON object */
    int64_t created_ms;  /* milliseconds since the epoch */
    int64_t modified_ms;
} pb_bus_rec;

typedef struct pb_rule_rec {
    char *bus;           /* bus name */
    char *name;
    char *arn;
    char *event_pattern; /* optional, as given */
    char *schedule;      /* optional */
    char *state;         /* "ENABLED" | "DISABLED" | "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS" */
    char *description;   /* optional */
    char *role_arn;      /* optional */
    char *managed_by;    /* optional */
    char *created_by;    /* account id */
    int64_t created_ms;
    int64_t modified_ms;
} pb_rule_rec;

typedef struct pb_target_rec {
    char *id;
    char *arn;
    char *json;          /* the whole Target object as stored (compact JSON), echoed back as is */
} pb_target_rec;

/* A rule with its scope, for loading every rule at start-up. */
typedef struct pb_rule_entry {
    char *account;
    char *region;
    pb_rule_rec rule;
} pb_rule_entry;

struct pb_store_ops {
    void (*close)(pb_store *s);

    /* Buses. create: PB_EEXISTS if present. get/delete: PB_ENOTFOUND.
     * delete: PB_ECONFLICT when rules remain on the bus; removes the bus's tags.
     * list: names > after (NULL: from the start) starting with prefix (NULL: any),
     * ascending by name, at most limit; *more says whether further records exist. */
    int (*bus_create)(pb_store *s, const pb_scope *sc, const pb_bus_rec *b, const pb_tag *tags, size_t ntags);
    int (*bus_get)(pb_store *s, const pb_scope *sc, const char *name, pb_bus_rec *out);
    int (*bus_delete)(pb_store *s, const pb_scope *sc, const char *name);
    int (*bus_list)(pb_store *s, const pb_scope *sc, const char *prefix, const char *after, size_t limit,
                    pb_bus_rec **out, size_t *n, bool *more);

    /* Rules. put: insert or fully replace (keeping created_ms, created_by and
     * targets); tags are applied only when the rule is created; *created says
     * which happened; PB_ENOTFOUND if the bus does not exist.
     * delete: PB_ENOTFOUND if absent; PB_ECONFLICT if targets remain; removes its tags.
     * set_state: PB_ENOTFOUND if absent. */
    int (*rule_put)(pb_store *s, const pb_scope *sc, const pb_rule_rec *r, const pb_tag *tags, size_t ntags,
                    bool *created);
    int (*rule_get)(pb_store *s, const pb_scope *sc, const char *bus, const char *name, pb_rule_rec *out);
    int (*rule_delete)(pb_store *s, const pb_scope *sc, const char *bus, const char *name);
    int (*rule_set_state)(pb_store *s, const pb_scope *sc, const char *bus, const char *name, const char *state);
    int (*rule_list)(pb_store *s, const pb_scope *sc, const char *bus, const char *prefix, const char *after,
                     size_t limit, pb_rule_rec **out, size_t *n, bool *more);
    /* every rule of every scope and bus (start-up) */
    int (*rule_list_all)(pb_store *s, pb_rule_entry **out, size_t *n);

    /* Targets of a rule. put: upsert by id, all or nothing; PB_ELIMIT if the
     * rule would then have more than max_targets; PB_ENOTFOUND if the rule is
     * absent. remove: ids not present are ignored. list: ids > after, ascending. */
    int (*targets_put)(pb_store *s, const pb_scope *sc, const char *bus, const char *rule, const pb_target_rec *t,
                       size_t n, size_t max_targets);
    int (*targets_remove)(pb_store *s, const pb_scope *sc, const char *bus, const char *rule,
                          const char *const *ids, size_t n);
    int (*targets_list)(pb_store *s, const pb_scope *sc, const char *bus, const char *rule, const char *after,
                        size_t limit, pb_target_rec **out, size_t *n, bool *more);
    /* names of the rules on bus with a target whose arn equals target_arn */
    int (*rules_by_target)(pb_store *s, const pb_scope *sc, const char *bus, const char *target_arn,
                           const char *after, size_t limit, char ***names, size_t *n, bool *more);

    /* Tags by resource ARN (the caller checks the resource exists). set:
     * overwrite existing keys, all or nothing; PB_ELIMIT if the resource would
     * then have more than max_tags. list: ascending by key. */
    int (*tags_set)(pb_store *s, const char *arn, const pb_tag *tags, size_t n, size_t max_tags);
    int (*tags_remove)(pb_store *s, const char *arn, const char *const *keys, size_t n);
    int (*tags_list)(pb_store *s, const char *arn, pb_tag **out, size_t *n);
};

struct pb_store {
    const struct pb_store_ops *ops;
};

/* Opens the store named by url: "sqlite:PATH" (created with its schema when
 * missing; migrations applied in order and recorded). "postgresql://..." and
 * "postgres://..." answer PB_EUNSUPPORTED ("the PostgreSQL store is not yet
 * supported"); anything else PB_EVALIDATION. */
int pb_store_open(const char *url, pb_store **out, pb_error *err);
void pb_store_close(pb_store *s);

void pb_bus_rec_free(pb_bus_rec *b);          /* frees members, not b */
void pb_rule_rec_free(pb_rule_rec *r);
void pb_target_rec_free(pb_target_rec *t);
void pb_tags_free(pb_tag *tags, size_t n);    /* frees members and the array */
void pb_bus_recs_free(pb_bus_rec *v, size_t n);
void pb_rule_recs_free(pb_rule_rec *v, size_t n);
void pb_target_recs_free(pb_target_rec *v, size_t n);
void pb_rule_entries_free(pb_rule_entry *v, size_t n);
void pb_names_free(char **names, size_t n);

#endif
