/* common/db_suppressions.h: every statement on suppressions (addresses
 * not to mail: digests, notifications, reports; never login mail). */
#ifndef POSTERN_COMMON_DB_SUPPRESSIONS_H
#define POSTERN_COMMON_DB_SUPPRESSIONS_H

#include <stddef.h>
#include <stdint.h>

#include "common/db.h"
#include "common/err.h"

#define DB_SUPPRESSION_REASON_MAX 32

/* Whether email is suppressed for practice_id (a row for that practice or
 * for every practice). 1: yes, reason ("hard_bounce", …) into
 * reason[size]; 0: no; -1: err. */
MUST_CHECK int db_suppressions_find(struct db *db, const char *email,
    int64_t practice_id, char *reason, size_t size, struct err *err);

/* A hard bounce at RCPT for delivery_id: its recipient goes on the list
 * for every practice (reason hard_bounce, source "smtp", the delivery
 * linked; an existing entry is kept) and, when the delivery was to a
 * patient, the patient's bounce_state becomes hard with reply as the
 * reason (the banner on the record). One statement. 0 or -1. */
MUST_CHECK int db_suppressions_add_bounce(struct db *db, int64_t delivery_id,
    const char *reply, struct err *err);

#endif
