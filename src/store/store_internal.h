/*
 * store_internal.h — what the store's files share (and what its tests reach).
 *
 * store.c parses the URL given to pb_store_open and hands "sqlite:PATH" to the
 * SQLite backend (sqlite.c, with sqlite_pipelines.c for the SageMaker
 * pipelines and sqlite_delivery.c for invocations and dead letters; they
 * share sqlite_internal.h). migrations.c holds the schema as
 * an ordered list of migrations and the runner that applies the missing ones
 * at open, each in its own transaction, recording them in `schema_migrations`.
 *
 * Nothing here is for the API layer: it uses pb_store.h only.
 */
#ifndef PB_STORE_INTERNAL_H
#define PB_STORE_INTERNAL_H

#include "store/pb_store.h"

#include <sqlite3.h>
#include <stddef.h>

/* One schema change. Versions are positive and strictly increasing along the
 * list; a migration, once released, is never edited: changes are new entries. */
typedef struct pb_store__migration {
    int version;
    const char *name; /* a few words, recorded with the version */
    const char *sql;  /* one or more statements, constant text (no values) */
} pb_store__migration;

extern const pb_store__migration pb_store__migrations[];
extern const size_t pb_store__nmigrations;

/* Applies to db, in order, every migration of m[0..n) not yet recorded in
 * schema_migrations (created when missing), one transaction each: a migration
 * that fails leaves neither its changes nor its record. Returns 0; PB_EINTERNAL
 * if the list is not strictly increasing; PB_EUNSUPPORTED if db records a
 * version newer than the last of the list; PB_EIO (message with SQLite's) when
 * a statement fails. */
int pb_store__migrate(sqlite3 *db, const pb_store__migration *m, size_t n, pb_error *err);

/* Opens (creating when missing) the SQLite database at path, which must not be
 * empty; *out is set only on success. See sqlite.c. */
int pb_store__sqlite_open(const char *path, pb_store **out, pb_error *err);

/* The connection of a store opened by pb_store__sqlite_open, for tests and
 * diagnostics only (the store's own mutex is not held). */
sqlite3 *pb_store__sqlite_db(pb_store *s);

#endif
