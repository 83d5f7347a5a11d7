/* common/db_patients.h: every statement on the patients table, including
 * the bulk import (COPY, one transaction).
 *
 * Callers check values first (common/email.h, worker/ctl_people.c); the
 * table's constraints are the backstop, and a taken email comes back as
 * "a patient with email x already exists in practice y". */
#ifndef POSTERN_COMMON_DB_PATIENTS_H
#define POSTERN_COMMON_DB_PATIENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/db.h"
#include "common/err.h"

/* The stages the schema allows (migrations/001), in care order. */
#define DB_PATIENT_STAGES "new, onboarding, active, maintenance, paused, " \
	"discharged"
/* The stage's canonical spelling when s names one (any case), else NULL. */
const char *db_patients_stage(const char *s);

/* A new patient; strings borrowed for the call. */
struct db_patient_new {
	const char *email;          /* normalised address */
	const char *first_name;     /* NULL or 1..LIMIT_NAME characters; */
	const char *last_name;      /*   at least one of the two is set */
	const char *stage;          /* NULL: new */
	int64_t coach_id;           /* staff_users.id in the practice; 0: none */
	const char *timezone;       /* NULL: the practice's */
	bool portal_access;
	bool email_text_consent;    /* recorded with the time of the insert */
};

/* One patient as read back; strings borrowed from the query result, valid
 * only during the callback. */
struct db_patient {
	int64_t id;
	const char *email, *first_name, *last_name;   /* "" when NULL */
	const char *stage;
	const char *coach_email;                      /* "" when none */
	const char *timezone;                         /* "" when NULL */
	const char *bounce_state;
	bool portal_access, email_text_consent;
};

/* Inserts into practice_id; *id_r is the new id. practice_slug only words
 * errors. */
MUST_CHECK int db_patients_insert(struct db *db, int64_t practice_id,
    const char *practice_slug, const struct db_patient_new *p, int64_t *id_r,
    struct err *err);

/* Calls fn for each patient of the practice, by id. fn returning -1 stops
 * the walk (fn sets err). */
typedef int db_patient_fn(const struct db_patient *p, void *arg,
    struct err *err);
MUST_CHECK int db_patients_list(struct db *db, int64_t practice_id,
    db_patient_fn *fn, void *arg, struct err *err);

/* Of emails[0, n) (normalised, n <= LIMIT_CSV_ROWS), calls fn with each one
 * a patient of the practice already has, spelled as given in emails (any
 * case matches). One query. fn returning -1 stops (fn sets err). */
typedef int db_patient_email_fn(const char *email, void *arg,
    struct err *err);
MUST_CHECK int db_patients_existing(struct db *db, int64_t practice_id,
    const char *const *emails, size_t n, db_patient_email_fn *fn, void *arg,
    struct err *err);

/* 1: tz is a zone name the schema accepts (IANA shape, known to the
 * server's tz database); 0: it is not (err says why); -1: err set (the
 * database failed). */
MUST_CHECK int db_patients_timezone_ok(struct db *db, const char *tz,
    struct err *err);

/* Called every `every` rows sent during an import. */
typedef void db_patients_progress_fn(size_t done, size_t total, void *arg);

/* Inserts rows[0, n) into practice_id with COPY, in one transaction: all
 * or nothing. progress may be NULL. On failure *bad_row_r is the 1-based
 * index of the row the database refused, when it says (else 0). */
MUST_CHECK int db_patients_copy(struct db *db, int64_t practice_id,
    const char *practice_slug, const struct db_patient_new *rows, size_t n,
    db_patients_progress_fn *progress, void *arg, size_t *bad_row_r,
    struct err *err);

#endif
