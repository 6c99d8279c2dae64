/*
 * pb_registry.h — the enabled pattern rules of every bus, compiled for matching.
 *
 * Each (account, region, bus) has one pb_matcher holding all its enabled
 * rules that have an event pattern. Matching never waits for the control
 * plane: the registry keeps two copies of each bus's matcher (the left-right
 * technique). A change is applied to the copy no reader uses, the copies are
 * swapped atomically, and once the readers of the old copy have left the same
 * change is applied to it. Readers take the current copy under a short lock
 * and hold it only while matching.
 */
#ifndef PB_REGISTRY_H
#define PB_REGISTRY_H

#include "common/pb_error.h"
#include "pattern/pb_pattern.h"
#include "store/pb_store.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct pb_registry pb_registry;

int pb_registry_new(pb_registry **out);
void pb_registry_free(pb_registry *r);

/* Loads every rule of the store (start-up). */
int pb_registry_load(pb_registry *r, pb_store *s, pb_error *err);

/* Makes the registry agree with one rule: it is matched with pattern p
 * (borrowed: the registry keeps what it needs) or, with p NULL, not matched
 * (disabled, no pattern, or deleted). Errors: PB_ENOMEM. */
int pb_registry_set_rule(pb_registry *r, const pb_scope *sc, const char *bus, const char *rule,
                         const pb_pattern *p, pb_error *err);

/* The same from a stored rule: compiles its pattern when it is enabled.
 * Errors: PB_EPATTERN, PB_ENOMEM. */
int pb_registry_set_stored_rule(pb_registry *r, const pb_scope *sc, const pb_rule_rec *rule, pb_error *err);

/* Calls fn(ctx, rule) for every rule of the bus the event matches. */
typedef void (*pb_registry_match_fn)(void *ctx, const char *rule);
int pb_registry_match(pb_registry *r, const pb_scope *sc, const char *bus, const char *event, size_t len,
                      pb_match_scratch *scratch, pb_registry_match_fn fn, void *ctx, pb_error *err);

/* Number of rules held for matching, over all buses. */
size_t pb_registry_count(pb_registry *r);

#endif
