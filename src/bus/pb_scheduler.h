/*
 * pb_scheduler.h — the scheduler: schedule rules fire their ticks on time.
 *
 * Every enabled rule with a ScheduleExpression on the default bus is kept
 * in a min-heap by its next tick (the next fire time, pb_schedule_next,
 * whole seconds). One thread (real clock) sleeps until the earliest tick,
 * takes every tick due (at most PB_SCHEDULER_BATCH, one per rule) and
 * fires them with pb_delivery_fire: the rules' targets receive the
 * "Scheduled Event" envelope, and the invocations are committed in the
 * transaction that records each (rule, tick) as fired. A tick is never
 * fired twice: the fired ticks are read back from the store at start, and
 * a rule's next tick is always later than its last fired one.
 *
 * Rate rules count from the rule's creation (its created_ms, to the
 * second). Disabled rules are not in the heap; enabling a rule resumes at
 * its first tick after now; a changed expression applies at once.
 *
 * Ticks missed while the server was down are fired at start according to
 * the catch-up policy: none (as AWS), the latest missed tick of each rule,
 * or all of them (the latest PB_CATCHUP_MAX_PER_RULE of each rule). Those
 * carry "pipebridge-catch-up": true in the event and are counted. A running
 * server treats a tick more than PB_SCHEDULER_LATE_MS late the same way (a
 * suspended machine, a clock jump, a store that refused batches that long),
 * so waking a laptop does not fire a night of rate(1 minute) ticks.
 *
 * The manual clock (serve --clock manual): no thread; time stands still
 * until pb_scheduler_advance moves it, firing every tick due up to the new
 * time before returning. The clock is kept in the store, so a restart
 * resumes it where it stood.
 *
 * Memory: an entry per rule (its name inline, the parsed schedule and the
 * (account, region) interned and shared), a slot in a hash table and one
 * in the heap; about 150 bytes per rule (bench/schedule_bench).
 *
 * Ownership: the scheduler borrows store and delivery (they must outlive
 * it) and owns its thread.
 */
#ifndef PB_SCHEDULER_H
#define PB_SCHEDULER_H

#include "bus/pb_delivery.h"
#include "common/pb_error.h"
#include "store/pb_store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PB_SCHEDULER_BATCH 1000      /* ticks per transaction */
#define PB_CATCHUP_MAX_PER_RULE 1000 /* catch-up "all": the latest this many missed ticks of a rule */
#define PB_SCHEDULER_LATE_MS 60000   /* a running server's tick this late was missed, not late */

typedef struct pb_scheduler pb_scheduler;

typedef enum pb_catchup { PB_CATCHUP_NONE = 0, PB_CATCHUP_LATEST = 1, PB_CATCHUP_ALL = 2 } pb_catchup;

/* Fires t[0..n) durably (pb_delivery_fire's contract). */
typedef int (*pb_scheduler_fire_fn)(void *ctx, const pb_delivery_tick *t, size_t n, pb_error *err);

typedef struct pb_scheduler_config {
    pb_store *store;          /* rules, fired ticks and the manual clock; NULL: start empty, no clock kept */
    pb_delivery *delivery;    /* ticks go to pb_delivery_fire(delivery, ...) ... */
    pb_scheduler_fire_fn fire; /* ... or to this, when set (tests, benchmarks) */
    void *fire_ctx;
    bool manual_clock;        /* time moves only by pb_scheduler_advance */
    int64_t manual_start_ms;  /* the manual clock's first value when the store has none; 0: the real time */
    pb_catchup catchup;
    int64_t late_ms;          /* real clock: ticks later than this were missed, and the catch-up policy
                                 applies to them as after a restart; 0: PB_SCHEDULER_LATE_MS */
} pb_scheduler_config;

/* "none" | "latest" | "all" -> *out; 0 or PB_EVALIDATION. */
int pb_scheduler_parse_catchup(const char *text, pb_catchup *out);

/* Loads the enabled schedule rules and their fired ticks from the store,
 * fires what the catch-up policy asks for, and (real clock) starts the
 * thread. Codes: PB_ENOMEM, PB_EIO, and the store's. */
int pb_scheduler_create(const pb_scheduler_config *cfg, pb_scheduler **out, pb_error *err);

/* Stops the thread (a batch being committed finishes first). NULL is fine. */
void pb_scheduler_free(pb_scheduler *s);

/* The scheduler's time in ms: the real time, or the manual clock. */
int64_t pb_scheduler_now_ms(pb_scheduler *s);
bool pb_scheduler_is_manual(const pb_scheduler *s);

/* Puts a rule in (or takes it out of) the heap as it now is: in when bus is
 * "default", expr is a valid expression and enabled; its last fired tick is
 * kept across changes. Codes: PB_EVALIDATION (expression), PB_ENOMEM. */
int pb_scheduler_set_rule(pb_scheduler *s, const pb_scope *sc, const char *bus, const char *name, const char *expr,
                          bool enabled, int64_t created_ms);
void pb_scheduler_remove_rule(pb_scheduler *s, const pb_scope *sc, const char *bus, const char *name);

/* The control plane changed a rule (PutRule, DeleteRule, EnableRule,
 * DisableRule): reads it from the store and applies pb_scheduler_set_rule
 * or pb_scheduler_remove_rule. NULL s is fine. */
void pb_scheduler_rule_changed(pb_scheduler *s, const pb_scope *sc, const char *bus, const char *name);

/* The rule's next tick in ms, or -1 when it is not scheduled (disabled, no
 * schedule) or will never fire again. */
int64_t pb_scheduler_next_fire_ms(pb_scheduler *s, const pb_scope *sc, const char *bus, const char *name);

/* Manual clock: moves it to to_ms, firing every tick due up to it (in time
 * order), and returns once they are committed; *fired (optional) counts them.
 * The clock is then stored. PB_EVALIDATION with the real clock or when to_ms
 * is before the current time; a store error stops at the ticks committed so
 * far (the clock stays where it was; the next advance fires the rest). */
int pb_scheduler_advance(pb_scheduler *s, int64_t to_ms, size_t *fired, pb_error *err);

/* Rules in the heap, and ticks fired since creation (benchmarks, tests). */
size_t pb_scheduler_count(pb_scheduler *s);
uint64_t pb_scheduler_fired(pb_scheduler *s);

/* The tick's "Scheduled Event" (AWS-SPEC §3.1) into out (NUL-terminated),
 * with "pipebridge-catch-up": true after detail when catchup. The id is a
 * UUID v4 derived from (rule ARN, rule creation, tick), so a tick always
 * carries the same id. Returns the length, or 0 when cap is too small. */
size_t pb_scheduler_event(const pb_scope *sc, const char *rule, int64_t created_ms, int64_t tick_ms, bool catchup,
                          char *id_out /* 37 bytes */, char *out, size_t cap);

#endif
