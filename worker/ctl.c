/* worker/ctl.c: posternctl, the operator's command line.
 *
 * Global options, the command table and the shared helpers of ctl.h. The
 * commands themselves live in worker/ctl_<family>.c. */
#include "worker/ctl.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/crypto.h"
#include "common/log.h"

#ifndef POSTERN_VERSION
#define POSTERN_VERSION "0.1.0"
#endif

static const char usage_text[] =
"NAME\n"
"    posternctl - administer a postern installation\n"
"\n"
"SYNOPSIS\n"
"    posternctl [--config FILE] [--quiet] COMMAND [ARGS...]\n"
"    posternctl COMMAND --help\n"
"\n"
"DESCRIPTION\n"
"    posternctl changes and inspects postern's database: it applies schema\n"
"    migrations, adds practices, staff and patients (one by one or from a\n"
"    CSV file) and seeds a demo. It talks to PostgreSQL only; it never\n"
"    needs the worker or the web service to be running.\n"
"\n"
"COMMANDS\n"
"    migrate [--status]        apply pending schema migrations, or list them\n"
"    config check|keys         validate the config file; list known keys\n"
"    practice add|list         create or list practices\n"
"    staff add|list            create or list a practice's staff users\n"
"    patient add|list|import   create, list or bulk-import patients (CSV)\n"
"    demo seed [--force]       create the demo practice, staff and patients\n"
"    jobs stats|list|show|retry|cancel|enqueue\n"
"                              inspect and steer the job queue\n"
"    mail test ADDRESS         send a test mail via [smtp], print the outcome\n"
"\n"
"    Run 'posternctl COMMAND --help' for each command's own options.\n"
"\n"
"OPTIONS\n"
"    -c, --config FILE   config file (default: $POSTERN_CONFIG, else\n"
"                        " CFG_DEFAULT_PATH ")\n"
"    -q, --quiet         no progress lines on stderr\n"
"    -h, --help          this text\n"
"    -V, --version       print the version\n"
"\n"
"ENVIRONMENT\n"
"    POSTERN_CONFIG        config file, when --config is not given\n"
"    POSTERN_DATABASE_URL  overrides [database] url (keeps the password out\n"
"                          of the file)\n"
"    POSTERN_SERVER_KEY    overrides [security] server_key (base64, 32 bytes)\n"
"\n"
"EXIT STATUS\n"
"    0 success; 1 the command failed (bad data, database unreachable or\n"
"    refused); 2 bad command line or bad config file.\n"
"\n"
"EXAMPLES\n"
"    posternctl -c /etc/postern/postern.conf migrate\n"
"    posternctl practice add --name 'Riverside Family Practice' --slug riverside\n"
"    posternctl patient import --practice riverside patients.csv\n";

struct command {
	const char *name;
	int (*fn)(struct ctl *, int, char **);
};

static const struct command commands[] = {
	{ "migrate", cmd_migrate },
	{ "config", cmd_config },
	{ "practice", cmd_practice },
	{ "staff", cmd_staff },
	{ "patient", cmd_patient },
	{ "demo", cmd_demo },
	{ "jobs", cmd_jobs },
	{ "mail", cmd_mail },
};

const struct cfg *
ctl_cfg(struct ctl *ctl)
{
	struct err err;

	if (ctl->cfg_loaded)
		return &ctl->cfg;
	if (cfg_load(&ctl->cfg, ctl->config_path, &err) < 0) {
		log_fatal_msg(err.msg);
		exit(CTL_USAGE);
	}
	ctl->cfg_loaded = true;
	return &ctl->cfg;
}

struct db *
ctl_db(struct ctl *ctl)
{
	const struct cfg *cfg = ctl_cfg(ctl);
	struct db_opts opts = {
		.url = cfg->database.url,
		.app_name = "posternctl",
		.connect_timeout_s = cfg->database.connect_timeout_s,
		.statement_timeout_ms = 0,   /* imports and migrations run long */
		.tries = 3,
	};
	struct err err;

	if (ctl->db != NULL)
		return ctl->db;
	if (db_open(&opts, &ctl->db, &err) < 0) {
		ctl_fail("%s", err.msg);
		return NULL;
	}
	return ctl->db;
}

int
ctl_fail(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "posternctl: %s\n", msg);
	return CTL_FAIL;
}

int
ctl_usage(const char *cmd, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "posternctl %s: %s\nTry 'posternctl %s --help'.\n", cmd,
	    msg, cmd);
	return CTL_USAGE;
}

void
ctl_progress(struct ctl *ctl, const char *fmt, ...)
{
	va_list ap;

	if (ctl->quiet)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
ctl_dispatch(struct ctl *ctl, const char *cmd, const char *help,
    const struct ctl_sub *subs, size_t nsubs, int argc, char **argv)
{
	if (argc < 2) {
		fputs(help, stderr);
		return CTL_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(help, stdout);
		return CTL_OK;
	}
	for (size_t i = 0; i < nsubs; i++) {
		if (strcmp(argv[1], subs[i].name) == 0) {
			optind = 0;        /* glibc: full reset for a new argv */
			return subs[i].fn(ctl, argc - 1, argv + 1);
		}
	}
	return ctl_usage(cmd, "unknown subcommand '%s'", argv[1]);
}

int
ctl_bad_option(const char *cmd, int c, char **argv)
{
	const char *opt = optind > 0 ? argv[optind - 1] : "?";

	if (c == ':')
		return ctl_usage(cmd, "option '%s' needs a value", opt);
	if (optopt != 0 && optopt != '?')
		return ctl_usage(cmd, "unknown option '-%c'", optopt);
	return ctl_usage(cmd, "unknown option '%s'", opt);
}

static const char config_help[] =
"NAME\n"
"    posternctl config - check the configuration\n"
"\n"
"SYNOPSIS\n"
"    posternctl [--config FILE] config check\n"
"    posternctl config keys\n"
"\n"
"DESCRIPTION\n"
"    check   reads the config file exactly as the daemons do and prints the\n"
"            effective settings (secrets masked). Unknown keys, bad values,\n"
"            over-long lines and secrets in a file that others may read are\n"
"            errors naming FILE:LINE.\n"
"    keys    lists every key postern knows, as section.key.\n"
"\n"
"EXIT STATUS\n"
"    0 the file is good; 2 it is not.\n";

int
cmd_config(struct ctl *ctl, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		fputs(config_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? CTL_USAGE : CTL_OK;
	}
	if (strcmp(argv[1], "keys") == 0) {
		cfg_print_keys(stdout);
		return CTL_OK;
	}
	if (strcmp(argv[1], "check") == 0) {
		const struct cfg *cfg = ctl_cfg(ctl);
		cfg_log(cfg);
		printf("%s: ok\n", cfg->path);
		return CTL_OK;
	}
	return ctl_usage("config", "unknown subcommand '%s'", argv[1]);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl ctl = { 0 };
	struct err err;
	int c, ret;

	log_init("posternctl");
	log_set_cli(true);
	log_set_level(LOG_WARN);
	/* '+': stop at the command name; its options are its own. */
	while ((c = getopt_long(argc, argv, "+c:qhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': ctl.config_path = optarg; break;
		case 'q': ctl.quiet = true; break;
		case 'h': fputs(usage_text, stdout); return CTL_OK;
		case 'V': puts("posternctl " POSTERN_VERSION); return CTL_OK;
		default:
			fputs("Try 'posternctl --help'.\n", stderr);
			return CTL_USAGE;
		}
	}
	if (optind >= argc) {
		fputs(usage_text, stderr);
		return CTL_USAGE;
	}
	if (crypto_init(&err) < 0)
		die("%s", err.msg);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(commands[i].name, argv[optind]) != 0)
			continue;
		int cargc = argc - optind;
		char **cargv = argv + optind;
		optind = 0;          /* glibc: full reset for the command's parse */
		ret = commands[i].fn(&ctl, cargc, cargv);
		db_close(&ctl.db);
		if (ctl.cfg_loaded)
			cfg_fini(&ctl.cfg);
		return ret;
	}
	fprintf(stderr, "posternctl: unknown command '%s'\nTry 'posternctl "
	    "--help'.\n", argv[optind]);
	return CTL_USAGE;
}
