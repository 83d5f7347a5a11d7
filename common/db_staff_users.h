/* common/db_staff_users.h: every statement on the staff_users table.
 *
 * Emails are citext in the database, so every lookup here is
 * case-insensitive; the caller normalises them first (common/email.h). */
#ifndef POSTERN_COMMON_DB_STAFF_USERS_H
#define POSTERN_COMMON_DB_STAFF_USERS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/db.h"
#include "common/err.h"

/* The roles, highest first (the application enforces the order). */
#define DB_STAFF_ROLES "owner, admin, staff, viewer"
/* True for owner, admin, staff, viewer (exact, lower case). */
bool db_staff_users_role_ok(const char *role);

/* A new staff user; strings borrowed for the call. */
struct db_staff_new {
	const char *email;         /* normalised address */
	const char *name;          /* 1..LIMIT_NAME characters */
	const char *role;          /* NULL: staff */
};

/* One staff user as read back; strings borrowed from the query result,
 * valid only during the callback. */
struct db_staff_user {
	int64_t id;
	const char *email, *name, *role;
	bool active;
	const char *last_login_at;   /* "" when never */
	int64_t patient_count;       /* patients whose coach this is */
};

/* Inserts into practice_id; *id_r is the new id. practice_slug only words
 * the error when the email is taken ("a staff user with email x already
 * exists in practice y"). */
MUST_CHECK int db_staff_users_insert(struct db *db, int64_t practice_id,
    const char *practice_slug, const struct db_staff_new *s, int64_t *id_r,
    struct err *err);

/* 1: an active staff user of the practice has this email (any case), *id_r
 * set; 0: none; -1: err set. */
MUST_CHECK int db_staff_users_find_email(struct db *db, int64_t practice_id,
    const char *email, int64_t *id_r, struct err *err);

/* Calls fn for each staff user of the practice (inactive ones too), by
 * role rank then email. fn returning -1 stops the walk (fn sets err). */
typedef int db_staff_user_fn(const struct db_staff_user *s, void *arg,
    struct err *err);
MUST_CHECK int db_staff_users_list(struct db *db, int64_t practice_id,
    db_staff_user_fn *fn, void *arg, struct err *err);

#endif
