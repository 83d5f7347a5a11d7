/* worker/ctl_people.c: posternctl practice, staff and patient commands,
 * including the CSV patient import.
 *
 * Everything typed or imported is checked here before the database sees
 * it, so errors read as sentences about the input ("FILE:LINE: email
 * "x": has no @"); the schema's constraints stay the backstop. The import
 * validates every row first and imports nothing unless all are good, then
 * loads them with one COPY in one transaction. Bounds: file LIMIT_CSV_FILE
 * bytes, LIMIT_CSV_ROWS rows, LIMIT_CSV_LINE bytes per record,
 * LIMIT_CSV_FIELDS columns; LIMIT_CSV_ERRORS_SHOWN errors listed. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/csv.h"
#include "common/db_patients.h"
#include "common/db_practices.h"
#include "common/db_staff_users.h"
#include "common/email.h"
#include "common/limits.h"
#include "common/mem.h"
#include "worker/ctl.h"
#include "common/utf8.h"

#define PROGRESS_EVERY 10000

/* ---------------------------------------------------------------- help */

static const char practice_help[] =
"NAME\n"
"    posternctl practice - create and list practices\n"
"\n"
"SYNOPSIS\n"
"    posternctl practice add --name NAME --slug SLUG [--timezone TZ]\n"
"                            [--from-address ADDR] [--reply-domain DOMAIN]\n"
"    posternctl practice list\n"
"    posternctl practice SUBCOMMAND --help\n"
"\n"
"DESCRIPTION\n"
"    A practice is one tenant: its staff, patients, mail identity and\n"
"    policies. 'add' creates one, 'list' shows them all. See each\n"
"    subcommand's --help.\n"
"\n"
"OPTIONS\n"
"    -h, --help   this text\n"
"\n"
"EXAMPLES\n"
"    posternctl practice add --name 'Riverside Family Practice' --slug riverside\n"
"    posternctl practice list\n"
"\n"
"EXIT STATUS\n"
"    0 success; 1 failure (bad value, database error); 2 bad command line.\n";

static const char practice_add_help[] =
"NAME\n"
"    posternctl practice add - create a practice\n"
"\n"
"SYNOPSIS\n"
"    posternctl [--config FILE] practice add --name NAME --slug SLUG\n"
"               [--timezone TZ] [--from-address ADDR] [--reply-domain DOMAIN]\n"
"\n"
"DESCRIPTION\n"
"    Creates a practice and prints its id and slug. The slug names the\n"
"    practice on the command line and in URLs and cannot be taken twice.\n"
"    Mail to patients goes out From ADDR; their replies come back to\n"
"    reply+TOKEN@DOMAIN, so DOMAIN's MX must reach postern's IMAP mailbox.\n"
"    No mail is sent by this command.\n"
"\n"
"OPTIONS\n"
"    --name NAME            display name, 1-200 characters\n"
"    --slug SLUG            lower-case letters, digits and inner hyphens,\n"
"                           at most 63 (e.g. riverside-clinic)\n"
"    --timezone TZ          IANA zone for digests and reports\n"
"                           (default UTC), e.g. America/Chicago\n"
"    --from-address ADDR    sender address (default: [mail] from_address\n"
"                           of the config file)\n"
"    --reply-domain DOMAIN  domain of reply addresses (default: [mail]\n"
"                           reply_domain of the config file)\n"
"    -h, --help             this text\n"
"\n"
"EXAMPLES\n"
"    posternctl practice add --name 'Riverside Family Practice' \\\n"
"        --slug riverside --timezone America/Chicago \\\n"
"        --from-address frontdesk@riverside.example \\\n"
"        --reply-domain reply.riverside.example\n"
"\n"
"EXIT STATUS\n"
"    0 created; 1 a value was refused (slug taken, unknown timezone, bad\n"
"    address) or the database failed; 2 bad command line.\n";

static const char practice_list_help[] =
"NAME\n"
"    posternctl practice list - list practices\n"
"\n"
"SYNOPSIS\n"
"    posternctl [--config FILE] practice list\n"
"\n"
"DESCRIPTION\n"
"    Prints one practice per line, tab-separated, after a header line:\n"
"    ID SLUG NAME TIMEZONE FROM_ADDRESS REPLY_DOMAIN STAFF PATIENTS\n"
"    (the last two are counts), ordered by slug.\n"
"\n"
"OPTIONS\n"
"    -h, --help   this text\n"
"\n"
"EXAMPLES\n"
"    posternctl practice list | cut -f2,8\n"
"\n"
"EXIT STATUS\n"
"    0 listed; 1 the database failed; 2 bad command line.\n";

static const char staff_help[] =
"NAME\n"
"    posternctl staff - create and list a practice's staff users\n"
"\n"
"SYNOPSIS\n"
"    posternctl staff add --practice SLUG --email ADDR --name NAME\n"
"                         [--role owner|admin|staff|viewer]\n"
"    posternctl staff list --practice SLUG\n"
"    posternctl staff SUBCOMMAND --help\n"
"\n"
"DESCRIPTION\n"
"    Staff users sign in to the web view by magic link and answer\n"
"    patients. See each subcommand's --help.\n"
"\n"
"OPTIONS\n"
"    -h, --help   this text\n"
"\n"
"EXAMPLES\n"
"    posternctl staff add --practice riverside --email dana@riverside.example \\\n"
"        --name 'Dana Whitfield' --role owner\n"
"    posternctl staff list --practice riverside\n"
"\n"
"EXIT STATUS\n"
"    0 success; 1 failure (bad value, database error); 2 bad command line.\n";

static const char staff_add_help[] =
"NAME\n"
"    posternctl staff add - create a staff user\n"
"\n"
"SYNOPSIS\n"
"    posternctl [--config FILE] staff add --practice SLUG --email ADDR\n"
"               --name NAME [--role owner|admin|staff|viewer]\n"
"\n"
"DESCRIPTION\n"
"    Creates an active staff user of the practice and prints the new id.\n"
"    They can sign in at once with a magic link sent to ADDR; no mail is\n"
"    sent by this command. An address is unique within a practice whatever\n"
"    its case (Ann@x.org and ann@x.org are the same person).\n"
"\n"
"    Roles, highest first: owner (everything, including the practice's\n"
"    settings and roles), admin (staff, patients, reports, quarantine),\n"
"    staff (patients and messages), viewer (read only).\n"
"\n"
"OPTIONS\n"
"    --practice SLUG   the practice\n"
"    --email ADDR      sign-in address (plain local@domain, ASCII)\n"
"    --name NAME       display name, 1-200 characters\n"
"    --role ROLE       owner, admin, staff or viewer (default staff)\n"
"    -h, --help        this text\n"
"\n"
"EXAMPLES\n"
"    posternctl staff add --practice riverside --email dana@riverside.example \\\n"
"        --name 'Dana Whitfield' --role owner\n"
"\n"
"EXIT STATUS\n"
"    0 created; 1 refused (unknown practice, address taken or malformed)\n"
"    or the database failed; 2 bad command line.\n";

static const char staff_list_help[] =
"NAME\n"
"    posternctl staff list - list a practice's staff users\n"
"\n"
"SYNOPSIS\n"
"    posternctl [--config FILE] staff list --practice SLUG\n"
"\n"
"DESCRIPTION\n"
"    Prints one staff user per line, tab-separated, after a header line:\n"
"    ID EMAIL NAME ROLE ACTIVE PATIENTS LAST_LOGIN, highest role first.\n"
"    PATIENTS counts the patients they coach; LAST_LOGIN is UTC or '-'.\n"
"\n"
"OPTIONS\n"
"    --practice SLUG   the practice\n"
"    -h, --help        this text\n"
"\n"
"EXAMPLES\n"
"    posternctl staff list --practice riverside\n"
"\n"
"EXIT STATUS\n"
"    0 listed; 1 unknown practice or the database failed; 2 bad command\n"
"    line.\n";

static const char patient_help[] =
"NAME\n"
"    posternctl patient - create, list and import patients\n"
"\n"
"SYNOPSIS\n"
"    posternctl patient add --practice SLUG --email ADDR --name NAME\n"
"                           [--coach ADDR] [--stage STAGE] [--timezone TZ]\n"
"                           [--no-portal]\n"
"    posternctl patient list --practice SLUG\n"
"    posternctl patient import --practice SLUG FILE.csv|-\n"
"    posternctl patient SUBCOMMAND --help\n"
"\n"
"DESCRIPTION\n"
"    Patients are a practice's contacts; with portal access they sign in\n"
"    by magic link and read and answer their messages, mostly by email.\n"
"    See each subcommand's --help.\n"
"\n"
"OPTIONS\n"
"    -h, --help   this text\n"
"\n"
"EXAMPLES\n"
"    posternctl patient add --practice riverside --email ann@example.org \\\n"
"        --name 'Ann Lee'\n"
"    posternctl patient import --practice riverside patients.csv\n"
"\n"
"EXIT STATUS\n"
"    0 success; 1 failure (bad value or rows, database error); 2 bad\n"
"    command line.\n";

static const char patient_add_help[] =
"NAME\n"
"    posternctl patient add - create a patient\n"
"\n"
"SYNOPSIS\n"
"    posternctl [--config FILE] patient add --practice SLUG --email ADDR\n"
"               --name NAME [--coach ADDR] [--stage STAGE] [--timezone TZ]\n"
"               [--no-portal]\n"
"\n"
"DESCRIPTION\n"
"    Creates a patient of the practice and prints the new id. An address\n"
"    is unique within a practice whatever its case. NAME is split at its\n"
"    last space into first and last name ('Mary Ann Lee' is Mary Ann /\n"
"    Lee; a single word is a first name); runs of white space become one\n"
"    space. No mail is sent by this command. Consent to receive message\n"
"    text by email is not given here: the patient gives it in the portal\n"
"    (or import it with the email_text_consent column).\n"
"\n"
"OPTIONS\n"
"    --practice SLUG   the practice\n"
"    --email ADDR      the patient's address (plain local@domain, ASCII)\n"
"    --name NAME       full name, 1-200 characters\n"
"    --coach ADDR      address of an active staff user of the practice, who\n"
"                      becomes the assigned coach\n"
"    --stage STAGE     new (default), onboarding, active, maintenance,\n"
"                      paused or discharged\n"
"    --timezone TZ     IANA zone (default: the practice's)\n"
"    --no-portal       no portal access: the patient cannot sign in and\n"
"                      gets no portal mail until given access (default:\n"
"                      access granted)\n"
"    -h, --help        this text\n"
"\n"
"EXAMPLES\n"
"    posternctl patient add --practice riverside --email ann@example.org \\\n"
"        --name 'Ann Lee' --coach dana@riverside.example --stage onboarding\n"
"\n"
"EXIT STATUS\n"
"    0 created; 1 refused (unknown practice or coach, address taken or\n"
"    malformed) or the database failed; 2 bad command line.\n";

static const char patient_list_help[] =
"NAME\n"
"    posternctl patient list - list a practice's patients\n"
"\n"
"SYNOPSIS\n"
"    posternctl [--config FILE] patient list --practice SLUG\n"
"\n"
"DESCRIPTION\n"
"    Prints one patient per line, tab-separated, after a header line:\n"
"    ID EMAIL FIRST_NAME LAST_NAME STAGE COACH PORTAL CONSENT TIMEZONE\n"
"    BOUNCE, in id order. Empty values print as '-'; PORTAL and CONSENT\n"
"    are yes or no.\n"
"\n"
"OPTIONS\n"
"    --practice SLUG   the practice\n"
"    -h, --help        this text\n"
"\n"
"EXAMPLES\n"
"    posternctl patient list --practice riverside | awk -F'\\t' '$5 == \"new\"'\n"
"\n"
"EXIT STATUS\n"
"    0 listed; 1 unknown practice or the database failed; 2 bad command\n"
"    line.\n";

static const char patient_import_help[] =
"NAME\n"
"    posternctl patient import - add many patients from a CSV file\n"
"\n"
"SYNOPSIS\n"
"    posternctl [--config FILE] [--quiet] patient import --practice SLUG\n"
"               FILE.csv|-\n"
"\n"
"DESCRIPTION\n"
"    Reads FILE (or standard input for '-'), checks every row, and then\n"
"    either imports all rows in one transaction or, if any row is bad,\n"
"    lists the bad rows as FILE:LINE: reason on standard error (the first\n"
"    " "100, then '... and N more') and imports nothing. LINE is the line\n"
"    where the row starts. A row is bad when its address is malformed,\n"
"    appears on an earlier row (in any case) or belongs to a patient the\n"
"    practice already has, its coach is not an active staff user of the\n"
"    practice, or a value is too long or not allowed. Progress goes to\n"
"    standard error every 10000 rows unless --quiet.\n"
"\n"
"    The file is CSV as in RFC 4180, in UTF-8: comma-separated; a field in\n"
"    double quotes may hold commas and line breaks, and \"\" stands for one\n"
"    quote; lines end in LF or CRLF; a UTF-8 byte order mark is skipped.\n"
"    Rows whose fields are all empty are skipped. Limits: 64 MiB, 200000\n"
"    rows, 4096 bytes per row, 32 columns.\n"
"\n"
"    The first line names the columns, in any order and any case (spaces\n"
"    and hyphens count as underscores). Unknown or repeated names are an\n"
"    error. Values are trimmed of surrounding white space.\n"
"        email               required: the patient's address\n"
"        name                full name, split at its last space into first\n"
"                            and last name; or instead:\n"
"        first_name, last_name\n"
"                            both columns; a row may leave one empty\n"
"        stage               new (default when empty), onboarding, active,\n"
"                            maintenance, paused, discharged\n"
"        coach_email         address of the assigned coach (staff user)\n"
"        timezone            IANA zone; empty: the practice's\n"
"        portal_access       yes/no, true/false, 1/0, y/n (default yes)\n"
"        email_text_consent  the same (default no); yes records the consent\n"
"                            with the time of the import\n"
"\n"
"OPTIONS\n"
"    --practice SLUG   the practice to import into\n"
"    -h, --help        this text\n"
"\n"
"EXAMPLES\n"
"    $ cat patients.csv\n"
"    email,name,stage,coach_email\n"
"    ann@example.org,Ann Lee,active,dana@riverside.example\n"
"    \"bo@example.org\",\"Okafor, Bo\",,\n"
"    $ posternctl patient import --practice riverside patients.csv\n"
"    imported 2 patients into riverside\n"
"\n"
"EXIT STATUS\n"
"    0 all rows imported; 1 bad rows (nothing imported), unreadable file or\n"
"    database failure; 2 bad command line.\n";

/* ------------------------------------------------------------ helpers */

/* s in double quotes for messages: control characters, quotes and
 * backslashes escaped, cut at about 60 bytes with "...". */
static const char *
quote(char *dst, size_t size, const char *s)
{
	size_t o = 0, i;

	if (size < 16)
		BUG("quote buffer too small");
	dst[o++] = '"';
	for (i = 0; s[i] != '\0' && o + 8 < size && i < 60; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			dst[o++] = '\\';
			dst[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(dst + o, size - o, "\\x%02x", c);
		} else {
			dst[o++] = (char)c;
		}
	}
	if (s[i] != '\0') {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o++] = '"';
	dst[o] = '\0';
	return dst;
}

/* A person's or practice's name: valid UTF-8, white space runs (including
 * line breaks from a quoted CSV field) folded to one space and trimmed, no
 * other control characters (C0, DEL, C1), 1..LIMIT_NAME characters.
 * out[size] must hold strlen(in) + 1 bytes. */
static int
name_clean(const char *in, char *out, size_t size, struct err *err)
{
	size_t n = strlen(in), o = 0, chars = 0;
	bool space = false;

	if (n + 1 > size)
		return err_set(err, false, "name longer than %zu bytes",
		    size - 1);
	if (!utf8_valid(in, n))
		return err_set(err, false, "name is not valid UTF-8");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
		    c == '\v' || c == '\f') {
			space = o > 0;
			continue;
		}
		if (c < 0x20 || c == 0x7f || (c == 0xC2 && i + 1 < n &&
		        (unsigned char)in[i + 1] < 0xA0))
			return err_set(err, false, "name contains a control "
			    "character");
		if (space) {
			out[o++] = ' ';
			chars++;
			space = false;
		}
		out[o++] = (char)c;
		if ((c & 0xC0) != 0x80)
			chars++;
	}
	out[o] = '\0';
	if (o == 0)
		return err_set(err, false, "name is empty");
	if (chars > LIMIT_NAME)
		return err_set(err, false, "name longer than %d characters",
		    LIMIT_NAME);
	return 0;
}

/* Splits a cleaned name in place at its last space: "Mary Ann Lee" is
 * first "Mary Ann", last "Lee"; one word is a first name, *last_r NULL. */
static void
name_split(char *name, char **first_r, char **last_r)
{
	char *sp = strrchr(name, ' ');

	*first_r = name;
	*last_r = NULL;
	if (sp != NULL) {
		*sp = '\0';
		*last_r = sp + 1;
	}
}

/* The schema's slug rule: ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ */
static int
slug_check(const char *s, struct err *err)
{
	size_t n = strlen(s);

	if (n == 0 || n > LIMIT_SLUG)
		return err_set(err, false, "slug must be 1-%d characters",
		    LIMIT_SLUG);
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		        c == '-'))
			return err_set(err, false, "slug may hold only "
			    "lower-case letters, digits and hyphens");
	}
	if (s[0] == '-' || s[n - 1] == '-')
		return err_set(err, false, "slug may not start or end with a "
		    "hyphen");
	return 0;
}

/* yes/no in the usual spellings; empty keeps *v_r. 0 or -1. */
static int
bool_parse(const char *s, bool *v_r)
{
	static const char *const yes[] = { "yes", "y", "true", "t", "1" };
	static const char *const no[] = { "no", "n", "false", "f", "0" };

	if (*s == '\0')
		return 0;
	for (size_t i = 0; i < 5; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*v_r = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*v_r = false;
			return 0;
		}
	}
	return -1;
}

static void
ascii_lower(char *s)
{
	for (; *s != '\0'; s++) {
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
	}
}

/* Finds the practice by slug; prints the failure. 0 or CTL_FAIL. */
static int
practice_id(struct db *db, const char *slug, int64_t *id_r)
{
	struct err err;
	char q[96];
	int rc = db_practices_find_slug(db, slug, id_r, &err);

	if (rc < 0)
		return ctl_fail("%s", err.msg);
	if (rc == 0)
		return ctl_fail("no practice with slug %s (see 'posternctl "
		    "practice list')", quote(q, sizeof q, slug));
	return 0;
}

/* Options shared by the subcommands. */
enum {
	OPT_NAME = 1000, OPT_SLUG, OPT_TIMEZONE, OPT_FROM, OPT_REPLY,
	OPT_PRACTICE, OPT_EMAIL, OPT_ROLE, OPT_COACH, OPT_STAGE, OPT_NO_PORTAL,
};

/* ----------------------------------------------------------- practice */

static int
practice_add(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, OPT_NAME },
		{ "slug", required_argument, NULL, OPT_SLUG },
		{ "timezone", required_argument, NULL, OPT_TIMEZONE },
		{ "from-address", required_argument, NULL, OPT_FROM },
		{ "reply-domain", required_argument, NULL, OPT_REPLY },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = "practice add";
	const char *name = NULL, *slug = NULL, *tz = NULL, *from = NULL,
	           *reply = NULL;
	char name_buf[1024], from_buf[LIMIT_EMAIL + 1],
	    reply_buf[EMAIL_DOMAIN_MAX + 1], q[96];
	struct db_practice_new p;
	struct db *db;
	struct err err;
	int64_t id;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_NAME: name = optarg; break;
		case OPT_SLUG: slug = optarg; break;
		case OPT_TIMEZONE: tz = optarg; break;
		case OPT_FROM: from = optarg; break;
		case OPT_REPLY: reply = optarg; break;
		case 'h': fputs(practice_add_help, stdout); return CTL_OK;
		default: return ctl_bad_option(cmd, c, argv);
		}
	}
	if (optind < argc)
		return ctl_usage(cmd, "unexpected argument '%s'", argv[optind]);
	if (name == NULL || slug == NULL)
		return ctl_usage(cmd, "--name and --slug are required");
	if (name_clean(name, name_buf, sizeof name_buf, &err) < 0 ||
	    slug_check(slug, &err) < 0)
		return ctl_fail("%s", err.msg);
	if (tz != NULL && (*tz == '\0' || strlen(tz) > LIMIT_TIMEZONE))
		return ctl_fail("--timezone: 1-%d bytes, such as "
		    "America/Chicago", LIMIT_TIMEZONE);
	if (from == NULL)
		from = ctl_cfg(ctl)->mail.from_address;
	if (reply == NULL)
		reply = ctl_cfg(ctl)->mail.reply_domain;
	if (email_normalize_check(from, from_buf, sizeof from_buf, &err) < 0)
		return ctl_fail("from address %s: %s (give --from-address)",
		    quote(q, sizeof q, from), err.msg);
	if (email_domain_normalize_check(reply, reply_buf, sizeof reply_buf,
	        &err) < 0)
		return ctl_fail("reply domain %s: %s (give --reply-domain)",
		    quote(q, sizeof q, reply), err.msg);
	if ((db = ctl_db(ctl)) == NULL)
		return CTL_FAIL;
	if (tz != NULL && db_patients_timezone_ok(db, tz, &err) <= 0)
		return ctl_fail("timezone %s: %s", quote(q, sizeof q, tz),
		    err.msg);
	p = (struct db_practice_new){ name_buf, slug, tz, from_buf, reply_buf };
	if (db_practices_insert(db, &p, &id, &err) < 0)
		return ctl_fail("%s", err.msg);
	printf("practice %lld %s created (%s, from %s, replies to "
	    "reply+...@%s)\n", (long long)id, slug, tz != NULL ? tz : "UTC",
	    from_buf, reply_buf);
	return CTL_OK;
}

static int
print_practice(const struct db_practice *p, void *arg, struct err *err)
{
	(void)arg;
	(void)err;
	printf("%lld\t%s\t%s\t%s\t%s\t%s\t%lld\t%lld\n", (long long)p->id,
	    p->slug, p->name, p->timezone, p->from_address, p->reply_domain,
	    (long long)p->staff_count, (long long)p->patient_count);
	return 0;
}

/* Parses a subcommand that takes only --help (and --practice when
 * slug_r is not NULL). 0 to go on, or an exit status + 1 in *ret_r. */
static bool
simple_opts(const char *cmd, const char *help, int argc, char **argv,
    const char **slug_r, int *ret_r)
{
	static const struct option opts[] = {
		{ "practice", required_argument, NULL, OPT_PRACTICE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(help, stdout);
			*ret_r = CTL_OK;
			return false;
		}
		if (c == OPT_PRACTICE && slug_r != NULL) {
			*slug_r = optarg;
			continue;
		}
		if (c == OPT_PRACTICE)
			c = '?';
		*ret_r = ctl_bad_option(cmd, c, argv);
		return false;
	}
	if (optind < argc) {
		*ret_r = ctl_usage(cmd, "unexpected argument '%s'",
		    argv[optind]);
		return false;
	}
	if (slug_r != NULL && *slug_r == NULL) {
		*ret_r = ctl_usage(cmd, "--practice is required");
		return false;
	}
	return true;
}

static int
practice_list(struct ctl *ctl, int argc, char **argv)
{
	struct db *db;
	struct err err;
	int ret;

	if (!simple_opts("practice list", practice_list_help, argc, argv, NULL,
	        &ret))
		return ret;
	if ((db = ctl_db(ctl)) == NULL)
		return CTL_FAIL;
	puts("ID\tSLUG\tNAME\tTIMEZONE\tFROM_ADDRESS\tREPLY_DOMAIN\tSTAFF\t"
	    "PATIENTS");
	if (db_practices_list(db, print_practice, NULL, &err) < 0)
		return ctl_fail("%s", err.msg);
	return CTL_OK;
}

int
cmd_practice(struct ctl *ctl, int argc, char **argv)
{
	static const struct ctl_sub subs[] = {
		{ "add", practice_add },
		{ "list", practice_list },
	};
	return ctl_dispatch(ctl, "practice", practice_help, subs, 2, argc, argv);
}

/* -------------------------------------------------------------- staff */

static int
staff_add(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "practice", required_argument, NULL, OPT_PRACTICE },
		{ "email", required_argument, NULL, OPT_EMAIL },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "role", required_argument, NULL, OPT_ROLE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = "staff add";
	const char *slug = NULL, *email = NULL, *name = NULL, *role = "staff";
	char email_buf[LIMIT_EMAIL + 1], name_buf[1024], q[96];
	struct db_staff_new s;
	struct db *db;
	struct err err;
	int64_t pid, id;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_PRACTICE: slug = optarg; break;
		case OPT_EMAIL: email = optarg; break;
		case OPT_NAME: name = optarg; break;
		case OPT_ROLE: role = optarg; break;
		case 'h': fputs(staff_add_help, stdout); return CTL_OK;
		default: return ctl_bad_option(cmd, c, argv);
		}
	}
	if (optind < argc)
		return ctl_usage(cmd, "unexpected argument '%s'", argv[optind]);
	if (slug == NULL || email == NULL || name == NULL)
		return ctl_usage(cmd, "--practice, --email and --name are "
		    "required");
	if (!db_staff_users_role_ok(role))
		return ctl_usage(cmd, "--role must be one of %s",
		    DB_STAFF_ROLES);
	if (email_normalize_check(email, email_buf, sizeof email_buf,
	        &err) < 0)
		return ctl_fail("email %s: %s", quote(q, sizeof q, email),
		    err.msg);
	if (name_clean(name, name_buf, sizeof name_buf, &err) < 0)
		return ctl_fail("%s", err.msg);
	if ((db = ctl_db(ctl)) == NULL)
		return CTL_FAIL;
	if (practice_id(db, slug, &pid) != 0)
		return CTL_FAIL;
	s = (struct db_staff_new){ email_buf, name_buf, role };
	if (db_staff_users_insert(db, pid, slug, &s, &id, &err) < 0)
		return ctl_fail("%s", err.msg);
	printf("staff user %lld %s (%s) added to %s\n", (long long)id,
	    email_buf, role, slug);
	return CTL_OK;
}

static int
print_staff(const struct db_staff_user *s, void *arg, struct err *err)
{
	(void)arg;
	(void)err;
	printf("%lld\t%s\t%s\t%s\t%s\t%lld\t%s\n", (long long)s->id, s->email,
	    s->name, s->role, s->active ? "yes" : "no",
	    (long long)s->patient_count,
	    *s->last_login_at != '\0' ? s->last_login_at : "-");
	return 0;
}

static int
staff_list(struct ctl *ctl, int argc, char **argv)
{
	const char *slug = NULL;
	struct db *db;
	struct err err;
	int64_t pid;
	int ret;

	if (!simple_opts("staff list", staff_list_help, argc, argv, &slug,
	        &ret))
		return ret;
	if ((db = ctl_db(ctl)) == NULL || practice_id(db, slug, &pid) != 0)
		return CTL_FAIL;
	puts("ID\tEMAIL\tNAME\tROLE\tACTIVE\tPATIENTS\tLAST_LOGIN");
	if (db_staff_users_list(db, pid, print_staff, NULL, &err) < 0)
		return ctl_fail("%s", err.msg);
	return CTL_OK;
}

int
cmd_staff(struct ctl *ctl, int argc, char **argv)
{
	static const struct ctl_sub subs[] = {
		{ "add", staff_add },
		{ "list", staff_list },
	};
	return ctl_dispatch(ctl, "staff", staff_help, subs, 2, argc, argv);
}

/* ------------------------------------------------------------ patient */

static int
patient_add(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "practice", required_argument, NULL, OPT_PRACTICE },
		{ "email", required_argument, NULL, OPT_EMAIL },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "coach", required_argument, NULL, OPT_COACH },
		{ "stage", required_argument, NULL, OPT_STAGE },
		{ "timezone", required_argument, NULL, OPT_TIMEZONE },
		{ "no-portal", no_argument, NULL, OPT_NO_PORTAL },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = "patient add";
	const char *slug = NULL, *email = NULL, *name = NULL, *coach = NULL,
	           *stage = "new", *tz = NULL;
	char email_buf[LIMIT_EMAIL + 1], coach_buf[LIMIT_EMAIL + 1],
	    name_buf[1024], q[96], *first, *last;
	struct db_patient_new p = { .portal_access = true };
	struct db *db;
	struct err err;
	int64_t pid, id;
	int c, rc;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_PRACTICE: slug = optarg; break;
		case OPT_EMAIL: email = optarg; break;
		case OPT_NAME: name = optarg; break;
		case OPT_COACH: coach = optarg; break;
		case OPT_STAGE: stage = optarg; break;
		case OPT_TIMEZONE: tz = optarg; break;
		case OPT_NO_PORTAL: p.portal_access = false; break;
		case 'h': fputs(patient_add_help, stdout); return CTL_OK;
		default: return ctl_bad_option(cmd, c, argv);
		}
	}
	if (optind < argc)
		return ctl_usage(cmd, "unexpected argument '%s'", argv[optind]);
	if (slug == NULL || email == NULL || name == NULL)
		return ctl_usage(cmd, "--practice, --email and --name are "
		    "required");
	if ((p.stage = db_patients_stage(stage)) == NULL)
		return ctl_usage(cmd, "--stage must be one of %s",
		    DB_PATIENT_STAGES);
	if (email_normalize_check(email, email_buf, sizeof email_buf,
	        &err) < 0)
		return ctl_fail("email %s: %s", quote(q, sizeof q, email),
		    err.msg);
	if (coach != NULL && email_normalize_check(coach, coach_buf,
	                         sizeof coach_buf, &err) < 0)
		return ctl_fail("coach %s: %s", quote(q, sizeof q, coach),
		    err.msg);
	if (name_clean(name, name_buf, sizeof name_buf, &err) < 0)
		return ctl_fail("%s", err.msg);
	name_split(name_buf, &first, &last);
	p.first_name = first;
	p.last_name = last;
	p.email = email_buf;
	if ((db = ctl_db(ctl)) == NULL || practice_id(db, slug, &pid) != 0)
		return CTL_FAIL;
	if (tz != NULL) {
		if (strlen(tz) > LIMIT_TIMEZONE)
			return ctl_fail("timezone longer than %d bytes",
			    LIMIT_TIMEZONE);
		if ((rc = db_patients_timezone_ok(db, tz, &err)) <= 0)
			return ctl_fail("timezone %s: %s", quote(q, sizeof q,
			    tz), err.msg);
		p.timezone = tz;
	}
	if (coach != NULL) {
		rc = db_staff_users_find_email(db, pid, coach_buf, &p.coach_id,
		    &err);
		if (rc < 0)
			return ctl_fail("%s", err.msg);
		if (rc == 0)
			return ctl_fail("coach %s is not an active staff user "
			    "of %s", coach_buf, slug);
	}
	if (db_patients_insert(db, pid, slug, &p, &id, &err) < 0)
		return ctl_fail("%s", err.msg);
	printf("patient %lld %s added to %s (stage %s%s%s%s)\n", (long long)id,
	    email_buf, slug, p.stage, coach != NULL ? ", coach " : "",
	    coach != NULL ? coach_buf : "",
	    p.portal_access ? "" : ", no portal access");
	return CTL_OK;
}

static const char *
dash(const char *s)
{
	return *s != '\0' ? s : "-";
}

static int
print_patient(const struct db_patient *p, void *arg, struct err *err)
{
	(void)arg;
	(void)err;
	printf("%lld\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", (long long)p->id,
	    p->email, dash(p->first_name), dash(p->last_name), p->stage,
	    dash(p->coach_email), p->portal_access ? "yes" : "no",
	    p->email_text_consent ? "yes" : "no", dash(p->timezone),
	    p->bounce_state);
	return 0;
}

static int
patient_list(struct ctl *ctl, int argc, char **argv)
{
	const char *slug = NULL;
	struct db *db;
	struct err err;
	int64_t pid;
	int ret;

	if (!simple_opts("patient list", patient_list_help, argc, argv, &slug,
	        &ret))
		return ret;
	if ((db = ctl_db(ctl)) == NULL || practice_id(db, slug, &pid) != 0)
		return CTL_FAIL;
	puts("ID\tEMAIL\tFIRST_NAME\tLAST_NAME\tSTAGE\tCOACH\tPORTAL\tCONSENT\t"
	    "TIMEZONE\tBOUNCE");
	if (db_patients_list(db, pid, print_patient, NULL, &err) < 0)
		return ctl_fail("%s", err.msg);
	return CTL_OK;
}

/* ------------------------------------------------------------- import */

/* Strings of one import: carved from 1 MiB blocks, freed together. */
struct arena_block {
	struct arena_block *next;
	size_t used;
	char data[1024 * 1024];
};

struct arena {
	struct arena_block *head;
};

static char *
arena_strdup(struct arena *a, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p;

	if (n > sizeof a->head->data)
		BUG("arena string of %zu bytes", n);
	if (a->head == NULL || sizeof a->head->data - a->head->used < n) {
		struct arena_block *b = xmalloc(sizeof *b);
		b->next = a->head;
		b->used = 0;
		a->head = b;
	}
	p = a->head->data + a->head->used;
	memcpy(p, s, n);
	a->head->used += n;
	return p;
}

static void
arena_fini(struct arena *a)
{
	while (a->head != NULL) {
		struct arena_block *b = a->head;
		a->head = b->next;
		free(b);
	}
}

/* String → int64 map (open addressing, FNV-1a), keys borrowed from an
 * arena. Emails go in lower-cased, so lookups ignore case (they are ASCII,
 * so that is all of case). Sized for LIMIT_CSV_ROWS. */
struct strmap {
	const char **keys;
	int64_t *vals;
	size_t cap, n;
};

static uint64_t
fnv1a(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static void
strmap_init(struct strmap *m, size_t want)
{
	m->cap = 64;
	while (m->cap < want * 2)
		m->cap *= 2;
	m->keys = xcalloc(m->cap, sizeof *m->keys);
	m->vals = xcalloc(m->cap, sizeof *m->vals);
	m->n = 0;
}

static void
strmap_fini(struct strmap *m)
{
	free(m->keys);
	free(m->vals);
	m->keys = NULL;
	m->vals = NULL;
}

static size_t
strmap_slot(const struct strmap *m, const char *key)
{
	size_t i = (size_t)fnv1a(key) & (m->cap - 1);

	while (m->keys[i] != NULL && strcmp(m->keys[i], key) != 0)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static bool
strmap_get(const struct strmap *m, const char *key, int64_t *val_r)
{
	size_t i = strmap_slot(m, key);

	if (m->keys[i] == NULL)
		return false;
	if (val_r != NULL)
		*val_r = m->vals[i];
	return true;
}

/* Adds key (borrowed) unless present; grows at half full. */
static void
strmap_put(struct strmap *m, const char *key, int64_t val)
{
	size_t i;

	if ((m->n + 1) * 2 > m->cap) {
		struct strmap big;
		strmap_init(&big, m->cap);
		for (size_t j = 0; j < m->cap; j++) {
			if (m->keys[j] != NULL)
				strmap_put(&big, m->keys[j], m->vals[j]);
		}
		strmap_fini(m);
		*m = big;
	}
	i = strmap_slot(m, key);
	if (m->keys[i] != NULL)
		return;
	m->keys[i] = key;
	m->vals[i] = val;
	m->n++;
}

enum col {
	COL_EMAIL, COL_NAME, COL_FIRST, COL_LAST, COL_STAGE, COL_COACH,
	COL_TZ, COL_PORTAL, COL_CONSENT, NCOLS
};

static const char *const col_names[NCOLS] = {
	"email", "name", "first_name", "last_name", "stage", "coach_email",
	"timezone", "portal_access", "email_text_consent",
};

/* One error to show: rows are checked in file order, so the reading
 * pass fills these in line order; the "already a patient" pass comes
 * after and is merged in by line when printing. */
struct bad {
	unsigned long line;
	char *msg;
};

struct import {
	struct ctl *ctl;
	struct db *db;
	const char *file;            /* as shown in messages */
	const char *slug;
	int64_t practice_id;
	int col[NCOLS];              /* field index, -1 when absent */
	size_t ncols;
	struct arena arena;
	struct strmap emails;        /* lower-cased email → row index */
	struct strmap staff;         /* lower-cased email → staff id */
	struct strmap tzs;           /* zone → 1 good, 0 bad */
	struct db_patient_new *rows;
	unsigned long *lines;
	size_t nrows, rows_alloc;
	struct bad bad[LIMIT_CSV_ERRORS_SHOWN];
	size_t nbad_shown, nbad;
	struct bad exist[LIMIT_CSV_ERRORS_SHOWN];
	size_t nexist_shown, nexist;
	bool *exists;                /* per row: already a patient */
};

static void PRINTF_LIKE(3, 4)
bad_row(struct import *im, unsigned long line, const char *fmt, ...)
{
	va_list ap;
	char msg[ERR_MSG_MAX + 128];

	im->nbad++;
	if (im->nbad_shown == LIMIT_CSV_ERRORS_SHOWN)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	im->bad[im->nbad_shown].line = line;
	im->bad[im->nbad_shown].msg = xstrdup(msg);
	im->nbad_shown++;
}

static int
staff_to_map(const struct db_staff_user *s, void *arg, struct err *err)
{
	struct import *im = arg;
	char key[LIMIT_EMAIL + 1];

	(void)err;
	if (!s->active)
		return 0;
	snprintf(key, sizeof key, "%s", s->email);
	ascii_lower(key);
	strmap_put(&im->staff, arena_strdup(&im->arena, key), s->id);
	return 0;
}

/* Maps the header's names to columns; prints what is wrong. */
static int
read_header(struct import *im, const struct csv_record *rec)
{
	char name[64], q[96];
	bool ok = true;

	for (int i = 0; i < NCOLS; i++)
		im->col[i] = -1;
	im->ncols = rec->nfields;
	for (size_t f = 0; f < rec->nfields; f++) {
		int found = -1;
		/* longer than any column name: unknown (never cut to match) */
		if (rec->len[f] >= sizeof name)
			snprintf(name, sizeof name, "?");
		else
			snprintf(name, sizeof name, "%s", rec->field[f]);
		str_trim(name);
		ascii_lower(name);
		for (char *p = name; *p != '\0'; p++) {
			if (*p == ' ' || *p == '-')
				*p = '_';
		}
		for (int i = 0; i < NCOLS; i++) {
			if (strcmp(name, col_names[i]) == 0)
				found = i;
		}
		if (found < 0) {
			fprintf(stderr, "%s:%lu: unknown column %s (known: "
			    "email, name, first_name, last_name, stage, "
			    "coach_email, timezone, portal_access, "
			    "email_text_consent)\n", im->file, rec->line,
			    quote(q, sizeof q, rec->field[f]));
			ok = false;
		} else if (im->col[found] >= 0) {
			fprintf(stderr, "%s:%lu: column %s appears twice\n",
			    im->file, rec->line, col_names[found]);
			ok = false;
		} else {
			im->col[found] = (int)f;
		}
	}
	if (!ok)
		return -1;
	if (im->col[COL_EMAIL] < 0) {
		fprintf(stderr, "%s:%lu: missing required column email\n",
		    im->file, rec->line);
		return -1;
	}
	if (im->col[COL_NAME] >= 0 &&
	    (im->col[COL_FIRST] >= 0 || im->col[COL_LAST] >= 0)) {
		fprintf(stderr, "%s:%lu: give either a name column or "
		    "first_name and last_name, not both\n", im->file,
		    rec->line);
		return -1;
	}
	if (im->col[COL_NAME] < 0 &&
	    (im->col[COL_FIRST] < 0 || im->col[COL_LAST] < 0)) {
		fprintf(stderr, "%s:%lu: missing required column name (or "
		    "both first_name and last_name)\n", im->file, rec->line);
		return -1;
	}
	return 0;
}

/* The trimmed value of column c in the record, in tmp (LIMIT_CSV_LINE + 1
 * bytes); "" when the column is absent. */
static char *
value(const struct import *im, const struct csv_record *rec, enum col c,
    char *tmp, size_t size)
{
	tmp[0] = '\0';
	if (im->col[c] >= 0)
		snprintf(tmp, size, "%s", rec->field[im->col[c]]);
	return str_trim(tmp);
}

/* Appends a row and claims its address. A bad row is kept too, as a
 * placeholder with no names, so a later row with the same address is
 * still reported as a duplicate; placeholders never reach the database. */
static void
keep(struct import *im, const struct db_patient_new *p, const char *key,
    unsigned long line)
{
	if (im->nrows == im->rows_alloc) {
		im->rows_alloc = im->rows_alloc == 0 ? 1024 : im->rows_alloc * 2;
		im->rows = xrealloc(im->rows, im->rows_alloc * sizeof *im->rows);
		im->lines = xrealloc(im->lines, im->rows_alloc *
		    sizeof *im->lines);
	}
	im->rows[im->nrows] = *p;
	im->lines[im->nrows] = line;
	strmap_put(&im->emails, arena_strdup(&im->arena, key),
	    (int64_t)im->nrows);
	im->nrows++;
}

static bool
placeholder(const struct db_patient_new *p)
{
	return p->first_name == NULL && p->last_name == NULL;
}

/* Checks one data row and keeps it. One reason per bad row: the first
 * problem found (fixing it shows the next). */
static void
check_row(struct import *im, const struct csv_record *rec)
{
	char v[LIMIT_CSV_LINE + 1], email[LIMIT_EMAIL + 1], key[LIMIT_EMAIL + 1],
	    first[LIMIT_CSV_LINE + 1], last[LIMIT_CSV_LINE + 1], q[96];
	struct db_patient_new p = { .portal_access = true };
	unsigned long line = rec->line;
	char *first_p = NULL, *last_p = NULL;
	struct err err;
	int64_t prev;
	size_t f;

	for (f = 0; f < rec->nfields; f++) {
		if (rec->field[f][strspn(rec->field[f], " \t\r\n")] != '\0')
			break;
	}
	if (f == rec->nfields)
		return;                    /* a blank row: ,,, */
	if (rec->nfields != im->ncols) {
		bad_row(im, line, "%zu fields, but the header has %zu",
		    rec->nfields, im->ncols);
		return;
	}
	/* the email first: a duplicate is found even on an otherwise bad row */
	value(im, rec, COL_EMAIL, v, sizeof v);
	if (email_normalize_check(v, email, sizeof email, &err) < 0) {
		bad_row(im, line, "email %s: %s", quote(q, sizeof q, v),
		    err.msg);
		return;
	}
	snprintf(key, sizeof key, "%s", email);
	ascii_lower(key);
	if (strmap_get(&im->emails, key, &prev)) {
		bad_row(im, line, "email %s appears again (first on line %lu)",
		    email, im->lines[prev]);
		return;
	}
	p.email = arena_strdup(&im->arena, email);
	/* names */
	if (im->col[COL_NAME] >= 0) {
		value(im, rec, COL_NAME, v, sizeof v);
		if (name_clean(v, first, sizeof first, &err) < 0)
			goto bad;
		name_split(first, &first_p, &last_p);
	} else {
		value(im, rec, COL_FIRST, v, sizeof v);
		if (*v != '\0') {
			if (name_clean(v, first, sizeof first, &err) < 0) {
				err_prefix(&err, "first_name");
				goto bad;
			}
			first_p = first;
		}
		value(im, rec, COL_LAST, v, sizeof v);
		if (*v != '\0') {
			if (name_clean(v, last, sizeof last, &err) < 0) {
				err_prefix(&err, "last_name");
				goto bad;
			}
			last_p = last;
		}
		if (first_p == NULL && last_p == NULL) {
			err_set(&err, false, "first_name and last_name are "
			    "both empty");
			goto bad;
		}
	}
	/* stage */
	value(im, rec, COL_STAGE, v, sizeof v);
	p.stage = *v != '\0' ? db_patients_stage(v) : "new";
	if (p.stage == NULL) {
		err_set(&err, false, "unknown stage %s (one of: %s)",
		    quote(q, sizeof q, v), DB_PATIENT_STAGES);
		goto bad;
	}
	/* coach */
	value(im, rec, COL_COACH, v, sizeof v);
	if (*v != '\0') {
		char coach[LIMIT_EMAIL + 1];
		if (email_normalize_check(v, coach, sizeof coach, &err) < 0) {
			err_prefix(&err, "coach_email %s", quote(q, sizeof q,
			    v));
			goto bad;
		}
		ascii_lower(coach);
		if (!strmap_get(&im->staff, coach, &p.coach_id)) {
			err_set(&err, false, "unknown coach %s (not an active "
			    "staff user of %s)", coach, im->slug);
			goto bad;
		}
	}
	/* timezone: each distinct zone is asked of the database once */
	value(im, rec, COL_TZ, v, sizeof v);
	if (*v != '\0') {
		int64_t good;
		if (strlen(v) > LIMIT_TIMEZONE) {
			err_set(&err, false, "timezone longer than %d bytes",
			    LIMIT_TIMEZONE);
			goto bad;
		}
		if (!strmap_get(&im->tzs, v, &good)) {
			int rc = db_patients_timezone_ok(im->db, v, &err);
			if (rc < 0) {
				err_prefix(&err, "checking timezone %s",
				    quote(q, sizeof q, v));
				goto bad;          /* not cached: asked again */
			}
			good = rc;
			strmap_put(&im->tzs, arena_strdup(&im->arena, v), good);
		}
		if (!good) {
			err_set(&err, false, "timezone %s: not a zone the "
			    "server knows, such as America/Chicago",
			    quote(q, sizeof q, v));
			goto bad;
		}
		p.timezone = arena_strdup(&im->arena, v);
	}
	value(im, rec, COL_PORTAL, v, sizeof v);
	if (bool_parse(v, &p.portal_access) < 0) {
		err_set(&err, false, "portal_access %s: not yes or no",
		    quote(q, sizeof q, v));
		goto bad;
	}
	value(im, rec, COL_CONSENT, v, sizeof v);
	if (bool_parse(v, &p.email_text_consent) < 0) {
		err_set(&err, false, "email_text_consent %s: not yes or no",
		    quote(q, sizeof q, v));
		goto bad;
	}
	p.first_name = first_p != NULL ? arena_strdup(&im->arena, first_p)
	                               : NULL;
	p.last_name = last_p != NULL ? arena_strdup(&im->arena, last_p) : NULL;
	keep(im, &p, key, line);
	return;
bad:
	bad_row(im, line, "%s", err.msg);
	p = (struct db_patient_new){ .email = p.email };
	keep(im, &p, key, line);
}

static int
mark_existing(const char *email, void *arg, struct err *err)
{
	struct import *im = arg;
	char key[LIMIT_EMAIL + 1];
	int64_t row;

	(void)err;
	snprintf(key, sizeof key, "%s", email);
	ascii_lower(key);
	if (strmap_get(&im->emails, key, &row))
		im->exists[row] = true;
	return 0;
}

/* Prints the bad rows in line order, at most LIMIT_CSV_ERRORS_SHOWN. */
static void
print_bad(struct import *im)
{
	size_t i = 0, j = 0, shown = 0, total = im->nbad + im->nexist;

	while (shown < LIMIT_CSV_ERRORS_SHOWN &&
	    (i < im->nbad_shown || j < im->nexist_shown)) {
		const struct bad *b;
		if (j == im->nexist_shown || (i < im->nbad_shown &&
		        im->bad[i].line <= im->exist[j].line))
			b = &im->bad[i++];
		else
			b = &im->exist[j++];
		fprintf(stderr, "%s:%lu: %s\n", im->file, b->line, b->msg);
		shown++;
	}
	if (total > shown)
		fprintf(stderr, "… and %zu more\n", total - shown);
}

static void
import_progress(size_t done, size_t total, void *arg)
{
	ctl_progress(arg, "imported %zu/%zu", done, total);
}

static void
import_fini(struct import *im)
{
	for (size_t i = 0; i < im->nbad_shown; i++)
		free(im->bad[i].msg);
	for (size_t i = 0; i < im->nexist_shown; i++)
		free(im->exist[i].msg);
	free(im->rows);
	free(im->lines);
	free(im->exists);
	strmap_fini(&im->emails);
	strmap_fini(&im->staff);
	strmap_fini(&im->tzs);
	arena_fini(&im->arena);
}

/* Rows kept so far are in im->rows; the placeholders of bad rows have no
 * names (first and last NULL) and are dropped before the COPY. */
static size_t
compact_rows(struct import *im)
{
	size_t o = 0;

	for (size_t i = 0; i < im->nrows; i++) {
		if (placeholder(&im->rows[i]))
			continue;
		im->rows[o] = im->rows[i];
		im->lines[o] = im->lines[i];
		o++;
	}
	return o;
}

static int
run_import(struct import *im, FILE *fp)
{
	struct csv_reader *r = csv_reader_new_file(fp, NULL);
	struct csv_record rec;
	struct err err;
	unsigned long data_rows = 0;
	const char **emails = NULL;
	size_t n, bad_row_at;
	int rc, ret = CTL_FAIL;

	rc = csv_read(r, &rec, &err);
	if (rc == 0) {
		fprintf(stderr, "%s: empty file (the first line must name the "
		    "columns)\n", im->file);
		goto out;
	}
	if (rc < 0) {
		fprintf(stderr, "%s:%lu: %s\n", im->file, rec.line, err.msg);
		goto out;
	}
	if (read_header(im, &rec) < 0)
		goto out;
	while ((rc = csv_read(r, &rec, &err)) != 0) {
		if (rc < 0) {
			bad_row(im, rec.line, "%s", err.msg);
			if (csv_reader_failed(r))
				break;
			continue;
		}
		if (++data_rows > LIMIT_CSV_ROWS) {
			bad_row(im, rec.line, "more than %d rows: split the "
			    "file", LIMIT_CSV_ROWS);
			break;
		}
		check_row(im, &rec);
		if (data_rows % PROGRESS_EVERY == 0)
			ctl_progress(im->ctl, "validated %lu rows…", data_rows);
	}
	/* against the practice's patients, one query for all rows */
	im->exists = xcalloc(im->nrows, sizeof *im->exists);
	emails = xcalloc(im->nrows, sizeof *emails);
	n = 0;
	for (size_t i = 0; i < im->nrows; i++) {
		if (!placeholder(&im->rows[i]))     /* reported already */
			emails[n++] = im->rows[i].email;
	}
	if (db_patients_existing(im->db, im->practice_id, emails, n,
	        mark_existing, im, &err) < 0) {
		ctl_fail("%s", err.msg);
		goto out;
	}
	for (size_t i = 0; i < im->nrows; i++) {
		char msg[ERR_MSG_MAX];
		if (!im->exists[i])
			continue;
		if (im->nexist++ >= LIMIT_CSV_ERRORS_SHOWN)
			continue;
		snprintf(msg, sizeof msg, "a patient with email %s already "
		    "exists in practice %s", im->rows[i].email, im->slug);
		im->exist[im->nexist_shown].line = im->lines[i];
		im->exist[im->nexist_shown].msg = xstrdup(msg);
		im->nexist_shown++;
	}
	if (im->nbad + im->nexist > 0) {
		print_bad(im);
		ctl_fail("%s: %zu bad row%s; nothing imported", im->file,
		    im->nbad + im->nexist, im->nbad + im->nexist == 1 ? ""
		                                                     : "s");
		goto out;
	}
	n = compact_rows(im);
	if (data_rows >= PROGRESS_EVERY)
		ctl_progress(im->ctl, "validated %lu rows, importing", data_rows);
	if (n > 0 && db_patients_copy(im->db, im->practice_id, im->slug,
	                 im->rows, n, n >= PROGRESS_EVERY ? import_progress
	                                                  : NULL,
	                 im->ctl, &bad_row_at, &err) < 0) {
		if (bad_row_at > 0 && bad_row_at <= n)
			ctl_fail("%s:%lu: %s; nothing imported", im->file,
			    im->lines[bad_row_at - 1], err.msg);
		else
			ctl_fail("%s; nothing imported", err.msg);
		goto out;
	}
	printf("imported %zu patient%s into %s\n", n, n == 1 ? "" : "s",
	    im->slug);
	ret = CTL_OK;
out:
	free(emails);
	csv_reader_free(&r);
	return ret;
}

static int
patient_import(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "practice", required_argument, NULL, OPT_PRACTICE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = "patient import", *slug = NULL, *path;
	struct import im;
	struct err err;
	struct stat st;
	FILE *fp;
	int c, ret;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_PRACTICE: slug = optarg; break;
		case 'h': fputs(patient_import_help, stdout); return CTL_OK;
		default: return ctl_bad_option(cmd, c, argv);
		}
	}
	if (slug == NULL)
		return ctl_usage(cmd, "--practice is required");
	if (optind + 1 != argc)
		return ctl_usage(cmd, "give one FILE (or - for standard input)");
	path = argv[optind];
	if (strcmp(path, "-") == 0) {
		fp = stdin;
	} else if ((fp = fopen(path, "rb")) == NULL) {
		err_set_errno(&err, false, errno, "%s", path);
		return ctl_fail("%s", err.msg);
	}
	if (fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_size > LIMIT_CSV_FILE) {
		ret = ctl_fail("%s: %lld bytes, more than the %d allowed: split "
		    "the file", path, (long long)st.st_size, LIMIT_CSV_FILE);
		goto close;
	}
	memset(&im, 0, sizeof im);
	im.ctl = ctl;
	im.file = fp == stdin ? "stdin" : path;
	im.slug = slug;
	strmap_init(&im.emails, 1024);
	strmap_init(&im.staff, 64);
	strmap_init(&im.tzs, 16);
	ret = CTL_FAIL;
	if ((im.db = ctl_db(ctl)) == NULL ||
	    practice_id(im.db, slug, &im.practice_id) != 0)
		goto fini;
	if (db_staff_users_list(im.db, im.practice_id, staff_to_map, &im,
	        &err) < 0) {
		ctl_fail("%s", err.msg);
		goto fini;
	}
	ret = run_import(&im, fp);
fini:
	import_fini(&im);
close:
	if (fp != stdin)
		fclose(fp);
	return ret;
}

int
cmd_patient(struct ctl *ctl, int argc, char **argv)
{
	static const struct ctl_sub subs[] = {
		{ "add", patient_add },
		{ "list", patient_list },
		{ "import", patient_import },
	};
	return ctl_dispatch(ctl, "patient", patient_help, subs, 3, argc, argv);
}
