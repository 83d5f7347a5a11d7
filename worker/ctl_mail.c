/* worker/ctl_mail.c: `posternctl mail test ADDRESS`: sends one test mail
 * through [smtp] exactly as the worker would (same settings, TLS rules and
 * templates) and prints the SMTP outcome. `posternctl mail inspect FILE|-`:
 * what the ingester makes of one raw message (mailer/parse, classify,
 * trim, token), as one JSON object. No database. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/email.h"
#include "mailer/classify.h"
#include "mailer/compose.h"
#include "mailer/inbound.h"
#include "mailer/smtp.h"

#include <sodium.h>
#include "mailer/template.h"
#include "worker/ctl.h"
#include "worker/outbox.h"      /* OUTBOX_KEY_ID: the key tokens are made with */

static const char mail_help[] =
"NAME\n"
"    posternctl mail - check outgoing mail, inspect inbound mail\n"
"\n"
"SYNOPSIS\n"
"    posternctl mail test ADDRESS\n"
"    posternctl mail inspect FILE|-\n"
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
"    inspect  reads one raw message (RFC 5322, as fetched from IMAP) from\n"
"          FILE, or from standard input for -, and prints on one line one\n"
"          JSON object saying what the ingester makes of it, with the same\n"
"          code (MIME parsing, charset decoding, classification, reply\n"
"          trimming, reply token check). Needs no database; reads the\n"
"          config for the server key, [mail] reply_domain, bounce_domain\n"
"          and from_address. The fields:\n"
"          classification  reply, auto_reply, bounce or unknown\n"
"          reason          why (short text)\n"
"          from, to, subject, message_id\n"
"                          the headers, RFC 2047 decoded, UTF-8; null when\n"
"                          absent\n"
"          reply, elided   the patient's text and what trimming cut away\n"
"                          (quotes, signatures), filled whatever the\n"
"                          classification or token\n"
"          confidence      high (our separator or a quote header found)\n"
"                          or low\n"
"          token           the reply+TOKEN@reply_domain address in To, Cc,\n"
"                          Delivered-To or X-Original-To: valid, expired,\n"
"                          invalid or missing (no reply+ address). Without\n"
"                          a server key a token cannot be checked: it is\n"
"                          reported invalid, with a note on stderr.\n"
"          bounce          null, or {status, hard, recipient} for a bounce\n"
"                          (from its delivery-status part; null members\n"
"                          when it has none)\n"
"          attachments     [{filename, content_type, size}], size decoded\n"
"\n"
"          A mail over a limit (25 MiB, MIME nesting deeper than 10, more\n"
"          than 200 parts, more than 4 MiB of text) is refused with a\n"
"          message on stderr and no JSON, as the ingester would refuse it;\n"
"          a second line says what its header alone shows (the sender and\n"
"          whether it was automatic), from which the ingester decides\n"
"          whether the patient is told.\n"
"\n"
"EXIT STATUS\n"
"    test: 0 the server accepted the mail; 1 it did not.\n"
"    inspect: 0 the mail was parsed (whatever it is); 1 it was refused or\n"
"    could not be read.\n"
"    Both: 2 bad command line.\n"
"\n"
"EXAMPLES\n"
"    posternctl mail test frontdesk@riverside.example\n"
"    posternctl mail inspect quarantined-17.eml | jq .reason\n"
"    posternctl mail inspect - <reply.eml\n";

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

/* ---- mail inspect ---------------------------------------------------- */

/* s as a JSON string (or null). s is valid UTF-8 (mailer/parse.h
 * promises it); controls, quotes, backslashes and U+2028/2029 are
 * escaped. */
static void
json_str(FILE *f, const char *s, size_t n)
{
	if (s == NULL) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			fputc('\\', f);
			fputc(c, f);
		} else if (c == '\n') {
			fputs("\\n", f);
		} else if (c == '\t') {
			fputs("\\t", f);
		} else if (c == '\r') {
			fputs("\\r", f);
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(f, "\\u%04x", c);
		} else if (c == 0xe2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
		    ((unsigned char)s[i + 2] == 0xa8 ||
		    (unsigned char)s[i + 2] == 0xa9)) {
			fprintf(f, "\\u%04x", (unsigned char)s[i + 2] == 0xa8 ?
			    0x2028 : 0x2029);
			i += 2;
		} else {
			fputc(c, f);
		}
	}
	fputc('"', f);
}

static void
json_cstr(FILE *f, const char *s)
{
	json_str(f, s, s ? strlen(s) : 0);
}

static int
mail_inspect(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cfg *cfg;
	const struct parsed_mail *pm;
	struct inbound ib = { 0 };
	struct token_key keys[2];
	struct err err = { 0 };
	struct buf raw;
	const char *self[1], *path;
	FILE *in;
	int c, ret = CTL_FAIL;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(mail_help, stdout); return CTL_OK;
		default: return ctl_bad_option("mail inspect", c, argv);
		}
	}
	if (argc - optind != 1)
		return ctl_usage("mail inspect", "give exactly one FILE (or -)");
	path = argv[optind];
	cfg = ctl_cfg(ctl);
	buf_init(&raw, LIMIT_MAIL_SIZE);
	in = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (in == NULL) {
		ret = ctl_fail("mail inspect: %s: %s", path, strerror(errno));
		goto out;
	}
	for (;;) {
		char chunk[65536];
		size_t n = fread(chunk, 1, sizeof chunk, in);

		if (n > 0 && buf_add(&raw, chunk, n) < 0) {
			ret = ctl_fail("mail inspect: %s: refused: message over "
			    "%d bytes", path, LIMIT_MAIL_SIZE);
			break;
		}
		if (n < sizeof chunk) {
			if (ferror(in))
				ret = ctl_fail("mail inspect: %s: read error",
				    path);
			else
				ret = CTL_OK;
			break;
		}
	}
	if (in != stdin)
		fclose(in);
	if (ret != CTL_OK)
		goto out;
	ret = CTL_FAIL;
	if (cfg->security.server_key_set) {
		token_key_init(&keys[0], OUTBOX_KEY_ID, TOKEN_REPLY,
		    cfg->security.server_key);
		token_key_init(&keys[1], OUTBOX_KEY_ID, TOKEN_BOUNCE,
		    cfg->security.server_key);
	}
	self[0] = cfg->mail.from_address;
	{
		const struct inbound_opts o = {
			.reply_domain = cfg->mail.reply_domain[0] != '\0' ?
			    cfg->mail.reply_domain : NULL,
			.bounce_domain = cfg->mail.bounce_domain[0] != '\0' ?
			    cfg->mail.bounce_domain : NULL,
			.self = self, .nself = 1,
			.keys = keys,
			.nkeys = cfg->security.server_key_set ? 2 : 0,
			.now = (int64_t)time(NULL),
		};
		int r = inbound_analyze(buf_str(&raw), raw.len, &o, &ib, &err);

		if (r < 0) {
			struct err e2 = { 0 };

			ret = ctl_fail("mail inspect: %s: refused: %s", path,
			    err.msg);
			/* What the ingester still decides from the header. */
			if (inbound_analyze_header(buf_str(&raw), raw.len, &o,
			        &ib, &e2) == 0)
				fprintf(stderr, "posternctl: mail inspect: %s: its "
				    "header alone: %s from %s (a patient's own "
				    "mail gets a rejection notice, automatic "
				    "mail none)\n", path,
				    classify_kind_name(ib.cls.kind),
				    ib.from_addr[0] != '\0' ? ib.from_addr :
				    "an unreadable address");
		}
		sodium_memzero(keys, sizeof keys);
		if (r < 0)
			goto out;
	}
	pm = ib.pm;
	if (!ib.trimmed)
		fprintf(stderr, "posternctl: mail inspect: not trimmed (text "
		    "over the trimming limits): the whole text is the reply\n");
	if (ib.reply != TOKEN_MISSING && !cfg->security.server_key_set)
		fprintf(stderr, "posternctl: mail inspect: no server key "
		    "configured: the reply token cannot be checked and is "
		    "reported invalid\n");

	fputs("{\"classification\":", stdout);
	json_cstr(stdout, classify_kind_name(ib.cls.kind));
	fputs(",\"reason\":", stdout);
	json_cstr(stdout, ib.cls.reason);
	fputs(",\"from\":", stdout);
	json_cstr(stdout, pm->from);
	fputs(",\"to\":", stdout);
	json_cstr(stdout, pm->to);
	fputs(",\"subject\":", stdout);
	json_cstr(stdout, pm->subject);
	fputs(",\"message_id\":", stdout);
	json_cstr(stdout, pm->message_id);
	fputs(",\"reply\":", stdout);
	json_str(stdout, pm->text + ib.trim.reply_off, ib.trim.reply_len);
	fputs(",\"elided\":", stdout);
	json_str(stdout, pm->text + ib.trim.elided_off, ib.trim.elided_len);
	printf(",\"confidence\":\"%s\"", ib.trim.confidence == TRIM_HIGH ?
	    "high" : "low");
	printf(",\"token\":\"%s\"", inbound_token_name(ib.reply));
	fputs(",\"bounce\":", stdout);
	if (ib.cls.kind != CLASSIFY_BOUNCE) {
		fputs("null", stdout);
	} else {
		fputs("{\"status\":", stdout);
		json_cstr(stdout, ib.have_dsn && ib.dsn.status[0] ?
		    ib.dsn.status : NULL);
		printf(",\"hard\":%s", ib.have_dsn && ib.dsn.hard ? "true" :
		    "false");
		fputs(",\"recipient\":", stdout);
		json_cstr(stdout, ib.have_dsn && ib.dsn.recipient[0] ?
		    ib.dsn.recipient : NULL);
		fputc('}', stdout);
	}
	fputs(",\"attachments\":[", stdout);
	for (size_t i = 0; i < pm->natt; i++) {
		fputs(i ? ",{\"filename\":" : "{\"filename\":", stdout);
		json_cstr(stdout, pm->att[i].filename);
		fputs(",\"content_type\":", stdout);
		json_cstr(stdout, pm->att[i].content_type);
		printf(",\"size\":%zu}", pm->att[i].size);
	}
	fputs("]}\n", stdout);
	if (fflush(stdout) != 0 || ferror(stdout))
		ret = ctl_fail("mail inspect: writing the result failed");
	else
		ret = CTL_OK;
out:
	inbound_fini(&ib);
	buf_fini(&raw);
	return ret;
}

int
cmd_mail(struct ctl *ctl, int argc, char **argv)
{
	static const struct ctl_sub subs[] = {
		{ "test", mail_test },
		{ "inspect", mail_inspect },
	};
	return ctl_dispatch(ctl, "mail", mail_help, subs,
	    sizeof subs / sizeof subs[0], argc, argv);
}
