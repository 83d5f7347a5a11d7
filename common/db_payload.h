/* common/db_payload.h: fields of a job's JSON payload, read with
 * PostgreSQL's own JSON parser (no JSON parser in C here; payloads are
 * small and a handler talks to the database anyway). No table. */
#ifndef POSTERN_COMMON_DB_PAYLOAD_H
#define POSTERN_COMMON_DB_PAYLOAD_H

#include "common/db.h"
#include "common/err.h"

#define DB_PAYLOAD_KEYS_MAX 4

/* The text of top-level fields keys[0..n) (n <= DB_PAYLOAD_KEYS_MAX) of
 * payload (a JSON object) into vals[i]: a heap string, or NULL when the
 * field is absent or JSON null. 0, or -1 with err set (not JSON, not an
 * object: permanent). The caller frees each vals[i]. */
MUST_CHECK int db_payload_get(struct db *db, const char *payload,
    const char *const *keys, int n, char **vals, struct err *err);

#endif
