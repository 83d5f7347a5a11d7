/* worker/ctl_mail.c: `posternctl mail test ADDRESS`: sends one test mail
 * through [smtp] exactly as the worker would (same settings, TLS rules and
 * templates) and prints the SMTP outcome. No database. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/email.h"
#include "mailer/compose.h"
#include "mailer/smtp.h"

#include <sodium.h>
#include "mailer/template.h"
#include "worker/ctl.h"

static const char mail_help[] =
"NAME\n"
"    posternctl mail - check outgoing mail\n"
"\n"
"SYNOPSIS\n"
"    posternctl mail test ADDRESS\n"
"\n"
"DESCRIPTION\n"
"    test  sends one test mail (template \"test\") to ADDRESS through the\n"
"          [smtp] server of the config file, From [mail] from_address,\n"
"          with the worker's TLS rules, and prints the outcome of the SMTP\n"
"          dialogue: the last reply code, the command it answered and the\n"
"          reply line. Needs no database.\n"
"\n"
"    The outcome line is\n"
"        result=sent|temporary|permanent code=N stage=STAGE reply=\"...\"\n"
"    (temporary: 4xx, timeout, connection lost; the worker would retry).\n"
"\n"
"EXIT STATUS\n"
"    0 the server accepted the mail; 1 it did not; 2 bad command line.\n"
"\n"
"EXAMPLES\n"
"    posternctl mail test frontdesk@riverside.example\n";

static const char *
stage_name(enum smtp_stage s)
{
	switch (s) {
	case SMTP_STAGE_CONNECT: return "connect";
	case SMTP_STAGE_HELO: return "ehlo";
	case SMTP_STAGE_AUTH: return "auth";
	case SMTP_STAGE_MAIL: return "mail_from";
	case SMTP_STAGE_RCPT: return "rcpt_to";
	case SMTP_STAGE_DATA: return "data";
	}
	return "unknown";
}

static int
mail_test(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cfg *cfg;
	struct template_set *set = NULL;
	struct template_mail tm = { 0 };
	struct smtp_conn *conn = NULL;
	struct smtp_result res = { 0 };
	struct err err = { 0 };
	struct buf msg;
	char to[LIMIT_EMAIL + 1], msgid[COMPOSE_MSGID_NEW_SIZE], when[64];
	const char *at;
	const char *rcpt[1];
	time_t now = time(NULL);
	struct tm utc;
	int c, ret = CTL_FAIL;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(mail_help, stdout); return CTL_OK;
		default: return ctl_bad_option("mail test", c, argv);
		}
	}
	if (argc - optind != 1)
		return ctl_usage("mail test", "give exactly one ADDRESS");
	if (email_normalize_check(argv[optind], to, sizeof to, &err) < 0)
		return ctl_usage("mail test", "ADDRESS: %s", err.msg);
	cfg = ctl_cfg(ctl);
	buf_init(&msg, LIMIT_MAIL_SIZE);
	gmtime_r(&now, &utc);
	strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &utc);
	at = strrchr(cfg->mail.from_address, '@');
	if (template_set_load(cfg->mail.templates_dir, &set, &err) < 0)
		goto fail;
	{
		const struct template_var vars[] = {
			{ "practice_name", "postern" },
			{ "sent_at", when },
		};
		if (template_render(set, TEMPLATE_TEST, false, vars, 2, &tm,
		        &err) < 0)
			goto fail;
	}
	/* from_address's domain; the default (postern@localhost) has no dot,
	 * which a Message-ID may not end in: then a reserved name. */
	if (compose_message_id_new(at != NULL ? at + 1 : "", msgid,
	        sizeof msgid, &err) < 0 &&
	    compose_message_id_new("postern.invalid", msgid, sizeof msgid,
	        &err) < 0)
		goto fail;
	{
		struct compose_mail m = {
			.from = { "postern", cfg->mail.from_address },
			.to = { NULL, to },
			.subject = tm.subject,
			.message_id = msgid,
			.auto_submitted = true,
			.text = tm.text,
			.html = tm.html,
		};
		if (compose_build(&m, &msg, &err) < 0)
			goto fail;
	}
	{
		char secret[SMTP_SECRET_MAX];
		struct smtp_opts o;
		int rc = smtp_opts_from_cfg(&o, cfg, secret, &err);

		if (rc == 0)
			rc = smtp_open(&o, &conn, &err);
		sodium_memzero(secret, sizeof secret);
		if (rc < 0)
			goto fail;
	}
	ctl_progress(ctl, "sending %s to %s via %s", msgid, to, cfg->smtp.url);
	rcpt[0] = to;
	if (smtp_send(conn, cfg->mail.from_address, rcpt, 1, buf_str(&msg),
	        msg.len, &res, &err) == 0) {
		ret = CTL_OK;
		err_clear(&err);
	}
	printf("result=%s code=%ld stage=%s reply=\"%s\"\n",
	    ret == CTL_OK ? "sent" : err.temp ? "temporary" : "permanent",
	    res.code, stage_name(res.stage), res.reply);
	if (ret != CTL_OK)
		fprintf(stderr, "posternctl: mail test: %s\n", err.msg);
	goto out;
fail:
	ret = ctl_fail("mail test: %s", err.msg);
out:
	smtp_close(&conn);
	buf_fini(&msg);
	template_mail_fini(&tm);
	template_set_free(&set);
	return ret;
}

int
cmd_mail(struct ctl *ctl, int argc, char **argv)
{
	static const struct ctl_sub subs[] = {
		{ "test", mail_test },
	};
	return ctl_dispatch(ctl, "mail", mail_help, subs,
	    sizeof subs / sizeof subs[0], argc, argv);
}
