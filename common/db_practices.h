/* common/db_practices.h: every statement on the practices table.
 *
 * Values are checked by the caller first (slug, names, addresses: see
 * worker/ctl_people.c); the database's constraints are the backstop, and
 * their errors are turned into sentences here where we know what they mean
 * (a taken slug, an unknown timezone). */
#ifndef POSTERN_COMMON_DB_PRACTICES_H
#define POSTERN_COMMON_DB_PRACTICES_H

#include <stdint.h>

#include "common/db.h"
#include "common/err.h"

/* A new practice; all strings borrowed for the call. */
struct db_practice_new {
	const char *name;          /* 1..LIMIT_NAME characters */
	const char *slug;          /* [a-z0-9-], LIMIT_SLUG bytes at most */
	const char *timezone;      /* IANA name; NULL: UTC */
	const char *from_address;  /* normalised address */
	const char *reply_domain;  /* lower-case host name */
};

/* One practice as read back. The strings are borrowed from the query
 * result and valid only during the callback (or until the next call that
 * fills the same struct, for db_practices_find_slug()). */
struct db_practice {
	int64_t id;
	const char *name, *slug, *timezone, *from_address, *reply_domain;
	int64_t staff_count, patient_count;   /* list only; 0 otherwise */
};

/* Inserts; *id_r is the new id. A slug in use is an error that says so. */
MUST_CHECK int db_practices_insert(struct db *db,
    const struct db_practice_new *p, int64_t *id_r, struct err *err);

/* 1: found, *id_r set (id_r may be NULL); 0: no practice has that slug;
 * -1: err set. */
MUST_CHECK int db_practices_find_slug(struct db *db, const char *slug,
    int64_t *id_r, struct err *err);

/* Calls fn for each practice, ordered by slug, with its staff and patient
 * counts. fn returning -1 stops the walk (the -1 is passed on; fn sets err).
 * 0 after the last one. */
typedef int db_practice_fn(const struct db_practice *p, void *arg,
    struct err *err);
MUST_CHECK int db_practices_list(struct db *db, db_practice_fn *fn, void *arg,
    struct err *err);

/* Deletes the practice and everything it owns (its patients and staff,
 * and by cascade their messages, tokens, notifications …) in one
 * transaction: the caller's when one is open, else its own. Audit rows
 * stay (they have no foreign keys on purpose). 1: deleted; 0: no such
 * practice; -1: err set. */
MUST_CHECK int db_practices_delete(struct db *db, int64_t id, struct err *err);

#endif
