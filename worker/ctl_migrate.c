/* worker/ctl_migrate.c: `posternctl migrate [--status] [--dir DIR]`. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/db_schema_migrations.h"
#include "common/mem.h"
#include "worker/ctl.h"

#ifndef POSTERN_DATADIR
#define POSTERN_DATADIR "/usr/local/share/postern"
#endif

static const char migrate_help[] =
"NAME\n"
"    posternctl migrate - bring the database schema up to date\n"
"\n"
"SYNOPSIS\n"
"    posternctl [--config FILE] migrate [--dir DIR]\n"
"    posternctl [--config FILE] migrate --status [--dir DIR]\n"
"\n"
"DESCRIPTION\n"
"    Applies every pending migrations/NNN_name.sql in version order, each\n"
"    in its own transaction, and records it with its SHA-256 in\n"
"    schema_migrations. Running it again when nothing is pending changes\n"
"    nothing. Concurrent runs (say, two hosts deploying at once) take turns\n"
"    on an advisory lock; the later one finds nothing to do.\n"
"\n"
"    If a file that was already applied has changed, nothing is applied and\n"
"    the command fails: migrations are forward-only, so put the change in a\n"
"    new file. A file that fails to apply is rolled back whole; files\n"
"    before it stay applied.\n"
"\n"
"OPTIONS\n"
"    --status     list every migration as applied, pending, CHANGED or\n"
"                 MISSING (applied but the file is gone) and apply nothing;\n"
"                 exits 1 if any is CHANGED\n"
"    --dir DIR    where the .sql files are (default: $POSTERN_MIGRATIONS_DIR,\n"
"                 else " POSTERN_DATADIR "/migrations, else the\n"
"                 migrations/ directory of the source tree posternctl was\n"
"                 built in)\n"
"\n"
"EXIT STATUS\n"
"    0 up to date; 1 a migration failed, changed, or the database could not\n"
"    be reached; 2 bad command line or config.\n"
"\n"
"EXAMPLES\n"
"    posternctl migrate --status\n"
"    POSTERN_DATABASE_URL=postgresql://postern@db/postern posternctl migrate\n";

static bool
is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The installed directory, else the source tree next to build/posternctl. */
static char *
default_dir(void)
{
	char exe[PATH_MAX], *slash;
	const char *env = getenv("POSTERN_MIGRATIONS_DIR");
	ssize_t n;

	if (env != NULL && env[0] != '\0')
		return xstrdup(env);
	if (is_dir(POSTERN_DATADIR "/migrations"))
		return xstrdup(POSTERN_DATADIR "/migrations");
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		for (int up = 0; up < 3 && (slash = strrchr(exe, '/')) != NULL;
		     up++) {
			*slash = '\0';
			char *cand = xasprintf("%s/migrations", exe);
			if (is_dir(cand))
				return cand;
			free(cand);
		}
	}
	return xstrdup("migrations");
}

static void
progress(const struct migration *m, bool done, long ms, void *arg)
{
	struct ctl *ctl = arg;

	if (done)
		ctl_progress(ctl, "  applied %s (%ld ms)", m->name, ms);
	else
		ctl_progress(ctl, "applying %s ...", m->name);
}

static const char *const state_names[] = {
	[MIGRATION_PENDING] = "pending",
	[MIGRATION_APPLIED] = "applied",
	[MIGRATION_CHANGED] = "CHANGED",
	[MIGRATION_MISSING] = "MISSING",
};

int
cmd_migrate(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "status", no_argument, NULL, 's' },
		{ "dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool status = false;
	char *dir = NULL;
	struct db *db;
	struct err err;
	int c, ret = CTL_FAIL, applied = 0;

	while ((c = getopt_long(argc, argv, "+sd:h", opts, NULL)) != -1) {
		switch (c) {
		case 's': status = true; break;
		case 'd': free(dir); dir = xstrdup(optarg); break;
		case 'h': fputs(migrate_help, stdout); free(dir); return CTL_OK;
		default: free(dir); return ctl_usage("migrate", "bad option");
		}
	}
	if (optind < argc) {
		free(dir);
		return ctl_usage("migrate", "unexpected argument '%s'",
		    argv[optind]);
	}
	if (dir == NULL)
		dir = default_dir();
	if ((db = ctl_db(ctl)) == NULL)
		goto out;
	if (status) {
		struct migration *list = NULL;
		size_t n = 0;
		int pending = 0, changed = 0;

		if (db_schema_migrations_status(db, dir, &list, &n, &err) < 0) {
			ctl_fail("%s", err.msg);
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			printf("%03d  %-8s  %-40s %s\n", list[i].version,
			    state_names[list[i].state], list[i].name,
			    list[i].applied_at);
			pending += list[i].state == MIGRATION_PENDING;
			changed += list[i].state == MIGRATION_CHANGED;
		}
		printf("%zu migrations: %d pending, %d changed (%s)\n", n, pending,
		    changed, dir);
		free(list);
		ret = changed > 0 ? CTL_FAIL : CTL_OK;
		goto out;
	}
	if (db_schema_migrations_apply(db, dir, progress, ctl, &applied,
	        &err) < 0) {
		ctl_fail("migrate: %s", err.msg);
		if (applied > 0)
			ctl_fail("migrate: %d migration(s) were applied before "
			    "the failure and stay applied", applied);
		goto out;
	}
	if (applied == 0)
		printf("schema is up to date; nothing to apply (%s)\n", dir);
	else
		printf("applied %d migration(s) from %s\n", applied, dir);
	ret = CTL_OK;
out:
	free(dir);
	return ret;
}
