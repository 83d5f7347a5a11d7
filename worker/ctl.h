/* worker/ctl.h: what posternctl's commands share.
 *
 * Each command is one function `int cmd_x(struct ctl *ctl, int argc,
 * char **argv)` in a worker/ctl_<family>.c file, listed in ctl.c's command
 * table. argv[0] is the command's name ("practice"); families dispatch on
 * argv[1] ("add", "list", "import") and then parse options with getopt_long
 * on argv + 1 (ctl.c sets optind = 0 before calling, a full glibc reset; set
 * it to 0 again before a second getopt_long pass). A command
 * prints results on stdout, progress and errors on stderr, and returns an
 * exit status: CTL_OK, CTL_FAIL (it ran and failed: bad data, database
 * error) or CTL_USAGE (bad command line; a hint to --help is printed). */
#ifndef POSTERN_WORKER_CTL_H
#define POSTERN_WORKER_CTL_H

#include <stdbool.h>
#include <stdio.h>

#include "common/cfg.h"
#include "common/db.h"
#include "common/err.h"

enum { CTL_OK = 0, CTL_FAIL = 1, CTL_USAGE = 2 };

struct ctl {
	const char *config_path;   /* --config, or NULL: POSTERN_CONFIG/default */
	bool quiet;                /* --quiet: no progress lines */
	bool cfg_loaded;
	struct cfg cfg;
	struct db *db;             /* opened by ctl_db() on first use */
};

/* Loads the config once (exits the program with a clear message when it
 * is bad: this is startup). */
const struct cfg *ctl_cfg(struct ctl *ctl);
/* Connects once (3 tries); on failure prints the reason and returns NULL. */
struct db *ctl_db(struct ctl *ctl);

/* Prints "posternctl: <msg>" on stderr. Returns CTL_FAIL. */
int ctl_fail(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* Prints "posternctl <cmd>: <msg>" and a hint to --help. Returns CTL_USAGE. */
int ctl_usage(const char *cmd, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Progress on stderr unless --quiet. */
void ctl_progress(struct ctl *ctl, const char *fmt, ...) PRINTF_LIKE(2, 3);

/* A family's subcommand table, for ctl_dispatch(). */
struct ctl_sub {
	const char *name;
	int (*fn)(struct ctl *ctl, int argc, char **argv);
};
/* Runs "cmd sub args…" (argv[0] = cmd): the subcommand with argv + 1,
 * or help (stdout for --help, stderr with CTL_USAGE when none given). */
int ctl_dispatch(struct ctl *ctl, const char *cmd, const char *help,
    const struct ctl_sub *subs, size_t nsubs, int argc, char **argv);
/* Prints "posternctl CMD: …" for a getopt failure; returns CTL_USAGE.
 * For getopt_long run with opterr = 0 and an optstring starting with ':'. */
int ctl_bad_option(const char *cmd, int c, char **argv);

/* Commands (ctl_*.c). */
int cmd_migrate(struct ctl *ctl, int argc, char **argv);
int cmd_config(struct ctl *ctl, int argc, char **argv);
int cmd_practice(struct ctl *ctl, int argc, char **argv);
int cmd_staff(struct ctl *ctl, int argc, char **argv);
int cmd_patient(struct ctl *ctl, int argc, char **argv);
int cmd_demo(struct ctl *ctl, int argc, char **argv);
int cmd_jobs(struct ctl *ctl, int argc, char **argv);
int cmd_mail(struct ctl *ctl, int argc, char **argv);

#endif
