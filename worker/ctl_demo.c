/* worker/ctl_demo.c: `posternctl demo seed [--force]`, a demo practice
 * with staff, patients, messages, notifications, appointments and tasks,
 * so the web views have something to show on a fresh install.
 *
 * Everything is created in one transaction: a failed seed leaves nothing
 * behind, and --force (delete the demo practice, then seed) is atomic too.
 * People go through db_practices/db_staff_users/db_patients like any other
 * caller. The fixture rows of the message tables are inserted by the
 * static helpers below: there is no common/db_patient_messages.c (or
 * notifications, appointments, tasks) yet; when those modules exist these
 * statements should move into them. Only *.test addresses are used (RFC
 * 2606), so a misconfigured demo can never mail a real person. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common/db_patients.h"
#include "common/db_practices.h"
#include "common/db_staff_users.h"
#include "worker/ctl.h"

#define DEMO_SLUG "riverside"
#define DEMO_NAME "Riverside Family Practice"
#define DEMO_TZ "America/Chicago"
#define DEMO_FROM "frontdesk@practice.test"
#define DEMO_REPLY_DOMAIN "practice.test"

static const char demo_help[] =
"NAME\n"
"    posternctl demo - seed a demo practice\n"
"\n"
"SYNOPSIS\n"
"    posternctl [--config FILE] demo seed [--force]\n"
"\n"
"DESCRIPTION\n"
"    Creates the practice '" DEMO_NAME "' (slug " DEMO_SLUG ",\n"
"    timezone " DEMO_TZ ", mail from " DEMO_FROM ", replies to\n"
"    reply+...@" DEMO_REPLY_DOMAIN ") with an owner, an admin, two coaches,\n"
"    eight patients at various stages, message threads in both directions\n"
"    (web and email), unread notifications for patients and staff, two\n"
"    appointments and two open tasks. It prints the addresses to sign in\n"
"    with: every account logs in by magic link, so point the config's\n"
"    [smtp] at a test mail server (all addresses end in .test, RFC 2606:\n"
"    they can never reach a real person).\n"
"\n"
"    If the practice already exists the command says so and changes\n"
"    nothing, so it is safe to run on every start of a demo container.\n"
"    Run 'posternctl migrate' first.\n"
"\n"
"OPTIONS\n"
"    --force      delete the demo practice and everything in it first, then\n"
"                 seed afresh (one transaction: on failure the old demo\n"
"                 stays). Audit log rows are kept, as always.\n"
"    -h, --help   this text\n"
"\n"
"EXAMPLES\n"
"    posternctl migrate && posternctl demo seed\n"
"    posternctl demo seed --force\n"
"\n"
"EXIT STATUS\n"
"    0 seeded, or already there; 1 the database failed; 2 bad command line.\n";

struct demo_staff {
	const char *email, *name, *role;
};

static const struct demo_staff staff[] = {
	{ "owner@practice.test", "Dana Whitfield", "owner" },
	{ "admin@practice.test", "Marcus Reed", "admin" },
	{ "sofia.alvarez@practice.test", "Sofia Alvarez", "staff" },
	{ "jordan.kim@practice.test", "Jordan Kim", "staff" },
};
enum { OWNER, ADMIN, ALVAREZ, KIM, NSTAFF };

struct demo_patient {
	const char *email, *first, *last, *stage;
	int coach;                  /* index into staff[], -1: none */
	const char *timezone;       /* NULL: the practice's */
	bool portal, consent;
};

static const struct demo_patient patients[] = {
	{ "ann.lee@patients.test", "Ann", "Lee", "active", ALVAREZ, NULL,
	  true, true },
	{ "bo.okafor@patients.test", "Bo", "Okafor", "onboarding", KIM, NULL,
	  true, false },
	{ "carmen.diaz@patients.test", "Carmen", "Díaz", "maintenance", ALVAREZ,
	  "America/Denver", true, true },
	{ "david.nguyen@patients.test", "David", "Nguyen", "new", -1, NULL,
	  true, false },
	{ "elena.petrova@patients.test", "Elena", "Petrova", "active", KIM,
	  "America/New_York", true, false },
	{ "farid.haddad@patients.test", "Farid", "Haddad", "paused", ALVAREZ,
	  NULL, true, false },
	{ "grace.oconnor@patients.test", "Grace", "O'Connor", "onboarding", KIM,
	  NULL, true, true },
	{ "hiro.tanaka@patients.test", "Hiro", "Tanaka", "discharged", -1,
	  NULL, false, false },
};
enum { ANN, BO, CARMEN, DAVID, ELENA, FARID, GRACE, HIRO, NPATIENTS };

struct seed {
	bool force;
	bool existed;               /* and not forced: nothing done */
	int64_t practice_id;
	int64_t staff_id[NSTAFF];
	int64_t patient_id[NPATIENTS];
	int messages, notifications, appointments, tasks;
};

static void
fmt_id(char *out, size_t size, int64_t id)
{
	snprintf(out, size, "%lld", (long long)id);
}

/* One message; thread 0 starts a thread. `ago` is a PostgreSQL interval
 * ("3 days"), so the inbox shows a history. */
static int
add_message(struct db *db, struct seed *s, int patient, int st,
    int64_t thread, const char *direction, const char *channel,
    const char *subject, const char *body, bool is_read, const char *ago,
    int64_t *id_r, struct err *err)
{
	static const char sql[] =
	    "INSERT INTO patient_messages (practice_id, patient_id,"
	    " staff_user_id, thread_id, direction, channel, subject, body,"
	    " is_read, confidence, created_at)"
	    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
	    " CASE WHEN $5 = 'inbound' AND $6 = 'email' THEN 'high' END,"
	    " now() - $10::interval) RETURNING id";
	char pid[24], pat[24], sid[24], tid[24];
	const char *params[] = { pid, pat, sid, thread > 0 ? tid : NULL,
		                 direction, channel, subject, body,
		                 is_read ? "true" : "false", ago };
	PGresult *res = NULL;
	int ret;

	fmt_id(pid, sizeof pid, s->practice_id);
	fmt_id(pat, sizeof pat, s->patient_id[patient]);
	fmt_id(sid, sizeof sid, s->staff_id[st]);
	fmt_id(tid, sizeof tid, thread);
	if (db_query(db, sql, 10, params, PGRES_TUPLES_OK, &res, err) < 0)
		return -1;
	ret = db_get_i64(res, 0, 0, id_r, err);
	PQclear(res);
	s->messages++;
	return ret;
}

static int
add_patient_note(struct db *db, struct seed *s, int patient, const char *type,
    const char *title, const char *body, const char *ago, struct err *err)
{
	static const char sql[] =
	    "INSERT INTO patient_notifications (patient_id, type, title, body,"
	    " created_at) VALUES ($1, $2, $3, $4, now() - $5::interval)";
	char pat[24];
	const char *params[] = { pat, type, title, body, ago };

	fmt_id(pat, sizeof pat, s->patient_id[patient]);
	s->notifications++;
	return db_cmd(db, sql, 5, params, err);
}

static int
add_staff_note(struct db *db, struct seed *s, int st, int patient,
    const char *type, const char *title, const char *body, const char *ago,
    struct err *err)
{
	static const char sql[] =
	    "INSERT INTO staff_notifications (staff_user_id, patient_id, type,"
	    " title, body, created_at)"
	    " VALUES ($1, $2, $3, $4, $5, now() - $6::interval)";
	char sid[24], pat[24];
	const char *params[] = { sid, patient >= 0 ? pat : NULL, type, title,
		                 body, ago };

	fmt_id(sid, sizeof sid, s->staff_id[st]);
	if (patient >= 0)
		fmt_id(pat, sizeof pat, s->patient_id[patient]);
	s->notifications++;
	return db_cmd(db, sql, 6, params, err);
}

/* An appointment `in` from now (an interval), 30 minutes long, at 10:00
 * practice time of that day. */
static int
add_appointment(struct db *db, struct seed *s, int patient, int st,
    const char *in, bool confirmed, const char *notes, int64_t *id_r,
    struct err *err)
{
	static const char sql[] =
	    "WITH t AS (SELECT (date_trunc('day', (now() + $4::interval)"
	    "   AT TIME ZONE '" DEMO_TZ "') + interval '10 hours')"
	    "   AT TIME ZONE '" DEMO_TZ "' AS starts)"
	    " INSERT INTO appointments (practice_id, patient_id, staff_user_id,"
	    " starts_at, ends_at, status, confirmed_at, location, notes)"
	    " SELECT $1, $2, $3, t.starts, t.starts + interval '30 minutes',"
	    " CASE WHEN $5::boolean THEN 'confirmed' ELSE 'requested' END,"
	    " CASE WHEN $5::boolean THEN now() END,"
	    " 'Riverside Family Practice, room 2', $6 FROM t RETURNING id";
	char pid[24], pat[24], sid[24];
	const char *params[] = { pid, pat, sid, in,
		                 confirmed ? "true" : "false", notes };
	PGresult *res = NULL;
	int ret;

	fmt_id(pid, sizeof pid, s->practice_id);
	fmt_id(pat, sizeof pat, s->patient_id[patient]);
	fmt_id(sid, sizeof sid, s->staff_id[st]);
	if (db_query(db, sql, 6, params, PGRES_TUPLES_OK, &res, err) < 0)
		return -1;
	ret = db_get_i64(res, 0, 0, id_r, err);
	PQclear(res);
	s->appointments++;
	return ret;
}

static int
add_task(struct db *db, struct seed *s, int st, int patient, const char *kind,
    const char *title, int64_t message_id, int64_t appointment_id,
    struct err *err)
{
	static const char sql[] =
	    "INSERT INTO tasks (practice_id, assigned_staff_id, patient_id,"
	    " kind, title, due_at, source_message_id, appointment_id)"
	    " VALUES ($1, $2, $3, $4, $5, now() + interval '1 day', $6, $7)";
	char pid[24], sid[24], pat[24], mid[24], aid[24];
	const char *params[] = { pid, sid, pat, kind, title,
		                 message_id > 0 ? mid : NULL,
		                 appointment_id > 0 ? aid : NULL };

	fmt_id(pid, sizeof pid, s->practice_id);
	fmt_id(sid, sizeof sid, s->staff_id[st]);
	fmt_id(pat, sizeof pat, s->patient_id[patient]);
	fmt_id(mid, sizeof mid, message_id);
	fmt_id(aid, sizeof aid, appointment_id);
	s->tasks++;
	return db_cmd(db, sql, 7, params, err);
}

static int
seed_people(struct db *db, struct seed *s, struct err *err)
{
	struct db_practice_new p = { DEMO_NAME, DEMO_SLUG, DEMO_TZ, DEMO_FROM,
		                     DEMO_REPLY_DOMAIN };

	if (db_practices_insert(db, &p, &s->practice_id, err) < 0)
		return -1;
	for (int i = 0; i < NSTAFF; i++) {
		struct db_staff_new n = { staff[i].email, staff[i].name,
			                  staff[i].role };
		if (db_staff_users_insert(db, s->practice_id, DEMO_SLUG, &n,
		        &s->staff_id[i], err) < 0)
			return -1;
	}
	for (int i = 0; i < NPATIENTS; i++) {
		const struct demo_patient *d = &patients[i];
		struct db_patient_new n = {
			.email = d->email, .first_name = d->first,
			.last_name = d->last, .stage = d->stage,
			.coach_id = d->coach >= 0 ? s->staff_id[d->coach] : 0,
			.timezone = d->timezone, .portal_access = d->portal,
			.email_text_consent = d->consent,
		};
		if (db_patients_insert(db, s->practice_id, DEMO_SLUG, &n,
		        &s->patient_id[i], err) < 0)
			return -1;
	}
	return 0;
}

static int
seed_activity(struct db *db, struct seed *s, struct err *err)
{
	int64_t m1, m2, bo_reply, appt_bo, appt_carmen, unused;

	/* Ann and her coach: a full thread, email and web */
	if (add_message(db, s, ANN, ALVAREZ, 0, "outbound", "email",
	        "Welcome to your coaching plan",
	        "Hi Ann,\n\nWelcome aboard! This week, let's aim for three "
	        "20-minute walks and a food diary. Reply to this email any "
	        "time.\n\nSofia", true, "6 days", &m1, err) < 0 ||
	    add_message(db, s, ANN, ALVAREZ, m1, "inbound", "email",
	        "Re: Welcome to your coaching plan",
	        "Thanks Sofia! I managed two walks so far. Is a bike ride "
	        "OK instead of the third?", true, "5 days", &m2, err) < 0 ||
	    add_message(db, s, ANN, ALVAREZ, m1, "outbound", "web",
	        "Re: Welcome to your coaching plan",
	        "A bike ride is great - anything that gets your heart rate up "
	        "counts. Keep it up!", false, "1 day", &unused, err) < 0 ||
	    add_patient_note(db, s, ANN, "new_message", "New message from "
	        "Sofia Alvarez", "Sofia Alvarez answered your question about "
	        "exercise.", "1 day", err) < 0)
		return -1;
	/* Bo: onboarding, replied by email, waiting for an answer */
	if (add_message(db, s, BO, KIM, 0, "outbound", "email",
	        "Your onboarding checklist",
	        "Hi Bo,\n\nBefore our first session, please fill in the intake "
	        "form in the portal and tell me your main goal.\n\nJordan",
	        true, "2 days", &m1, err) < 0 ||
	    add_message(db, s, BO, KIM, m1, "inbound", "email",
	        "Re: Your onboarding checklist",
	        "Done with the form. My main goal is to sleep better - I wake "
	        "up at 4am most nights.", false, "3 hours", &bo_reply,
	        err) < 0 ||
	    add_staff_note(db, s, KIM, BO, "patient_message_received",
	        "Bo Okafor replied", "Re: Your onboarding checklist", "3 hours",
	        err) < 0 ||
	    add_task(db, s, KIM, BO, "reply_needed", "Reply to Bo Okafor",
	        bo_reply, 0, err) < 0 ||
	    add_appointment(db, s, BO, KIM, "2 days", true,
	        "First coaching session", &appt_bo, err) < 0 ||
	    add_patient_note(db, s, BO, "appointment_confirmed",
	        "Appointment confirmed", "Your first coaching session with "
	        "Jordan Kim is confirmed.", "1 day", err) < 0)
		return -1;
	/* Carmen: a question through the portal, and an appointment request */
	if (add_message(db, s, CARMEN, ALVAREZ, 0, "inbound", "web",
	        "Question about my meal plan",
	        "Can I swap the Tuesday fish for tofu? I am trying to eat "
	        "less meat.", false, "5 hours", &unused, err) < 0 ||
	    add_staff_note(db, s, ALVAREZ, CARMEN, "patient_message_received",
	        "Carmen Díaz sent a message", "Question about my meal plan",
	        "5 hours", err) < 0 ||
	    add_appointment(db, s, CARMEN, ALVAREZ, "5 days", false,
	        "Quarterly check-in", &appt_carmen, err) < 0 ||
	    add_task(db, s, ALVAREZ, CARMEN, "confirm_appointment",
	        "Confirm Carmen Díaz's check-in", 0, appt_carmen, err) < 0 ||
	    add_staff_note(db, s, ALVAREZ, CARMEN, "appointment_requested",
	        "Appointment requested", "Carmen Díaz asked for a check-in.",
	        "4 hours", err) < 0)
		return -1;
	/* Elena: results posted in the portal, not read yet */
	if (add_message(db, s, ELENA, KIM, 0, "outbound", "web",
	        "Your lab results are in",
	        "Hi Elena, your latest results are in the portal. Everything "
	        "looks on track; let's go through them at your next session.",
	        false, "1 day", &unused, err) < 0 ||
	    add_patient_note(db, s, ELENA, "new_message", "New message from "
	        "Jordan Kim", "Your lab results are in.", "1 day", err) < 0)
		return -1;
	/* the owner: a practice-level note */
	return add_staff_note(db, s, OWNER, -1, "welcome", "Welcome to postern",
	    "This is the demo practice. Invite your team from Settings.",
	    "6 days", err);
}

static int
seed_tx(struct db *db, void *arg, struct err *err)
{
	struct seed *s = arg;
	int64_t old;
	int rc;

	s->messages = s->notifications = s->appointments = s->tasks = 0;
	s->existed = false;
	rc = db_practices_find_slug(db, DEMO_SLUG, &old, err);
	if (rc < 0)
		return -1;
	if (rc == 1) {
		if (!s->force) {
			s->existed = true;
			s->practice_id = old;
			return 0;
		}
		if (db_practices_delete(db, old, err) < 0)
			return -1;
	}
	if (seed_people(db, s, err) < 0 || seed_activity(db, s, err) < 0)
		return -1;
	return 0;
}

static void
print_summary(const struct seed *s)
{
	printf("demo practice %s created (id %lld): %s\n", DEMO_SLUG,
	    (long long)s->practice_id, DEMO_NAME);
	printf("staff sign-in addresses (magic link):\n");
	for (int i = 0; i < NSTAFF; i++)
		printf("  %-30s %-6s %s\n", staff[i].email, staff[i].role,
		    staff[i].name);
	printf("patient sign-in addresses (magic link):\n");
	for (int i = 0; i < NPATIENTS; i++) {
		const struct demo_patient *d = &patients[i];
		printf("  %-30s %-11s %s %s%s\n", d->email, d->stage, d->first,
		    d->last, d->portal ? "" : " (no portal access)");
	}
	printf("%d patients, %d messages, %d notifications, %d appointments, "
	    "%d tasks\n", NPATIENTS, s->messages, s->notifications,
	    s->appointments, s->tasks);
}

static int
demo_seed(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct seed s = { 0 };
	struct db *db;
	struct err err;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":fh", opts, NULL)) != -1) {
		switch (c) {
		case 'f': s.force = true; break;
		case 'h': fputs(demo_help, stdout); return CTL_OK;
		case ':':
			return ctl_usage("demo seed", "option '%s' needs a "
			    "value", argv[optind - 1]);
		default:
			return ctl_usage("demo seed", "unknown option '%s'",
			    argv[optind - 1]);
		}
	}
	if (optind < argc)
		return ctl_usage("demo seed", "unexpected argument '%s'",
		    argv[optind]);
	if ((db = ctl_db(ctl)) == NULL)
		return CTL_FAIL;
	if (db_tx(db, seed_tx, &s, &err) < 0)
		return ctl_fail("demo seed: %s (nothing changed)", err.msg);
	if (s.existed) {
		printf("demo practice %s already exists (id %lld): nothing "
		    "changed (use --force to recreate it)\n", DEMO_SLUG,
		    (long long)s.practice_id);
		return CTL_OK;
	}
	print_summary(&s);
	return CTL_OK;
}

int
cmd_demo(struct ctl *ctl, int argc, char **argv)
{
	if (argc < 2) {
		fputs(demo_help, stderr);
		return CTL_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(demo_help, stdout);
		return CTL_OK;
	}
	if (strcmp(argv[1], "seed") != 0)
		return ctl_usage("demo", "unknown subcommand '%s'", argv[1]);
	optind = 0;
	return demo_seed(ctl, argc - 1, argv + 1);
}
