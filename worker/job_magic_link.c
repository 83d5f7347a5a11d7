/* worker/job_magic_link.c: the `magic_link` job mails a login link and the
 * same login as a short code.
 *
 * Payload (httpd enqueues it on POST /login, whatever the address):
 *   {"email": "a@b.example", "practice_id": 3, "requested_ip": "192.0.2.1"}
 * practice_id and requested_ip are optional. An address that belongs to
 * nobody who may log in (an active staff user, a patient with portal
 * access) ends the job done with no mail: the requester learns nothing.
 *
 * The token is made HERE, by the worker, at send time, not by httpd: only
 * its keyed hash is stored, so whoever makes it must put it into the mail
 * in the same breath; httpd never holds a token it cannot deliver, and the
 * job payload and the jobs table never carry a secret. Every attempt makes
 * a fresh token (and code) row: a retry cannot recover a token it only
 * stored hashed. All of a job's tokens expire at the same moment, the
 * first attempt + [mail] login_token_minutes, which is also the give-up
 * deadline: a mail that cannot go out while at least LOGIN_MIN_LEFT_S of
 * that is left is dead (delivery failed), never sent late. Should an
 * attempt's mail arrive although the send looked failed (a drop after the
 * final dot), its token still works until that deadline.
 *
 * One delivery row per job (kind "login", made before the first send), so
 * the Message-ID is the same on every retry. Suppressions do not apply to
 * login mail. Subject and body carry no PHI (the magic_link template names
 * only the practice). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/db_deliveries.h"
#include "common/db_login_tokens.h"
#include "common/email.h"
#include "common/log.h"
#include "common/mem.h"
#include "mailer/compose.h"
#include "worker/handlers.h"
#include "worker/outbox.h"

#define DELIVERY_KIND "login"
#define LOGIN_MIN_LEFT_S 60          /* a link must be good this long at least */
#define CODE_DIGITS 8

int
job_magic_link(struct job_ctx *ctx, struct err *err)
{
	const struct cfg *cfg = &ctx->w->cfg;
	const struct job *j = ctx->job;
	struct outbox *ob;
	struct db_login_load l = { 0 };
	struct db_delivery *d = &l.d;
	struct db_login_subject *s = &l.s;
	struct template_mail tm = { 0 };
	struct buf msg;
	const char *ip = NULL;
	char token[CRYPTO_B64URL_LEN(CRYPTO_TOKEN_BYTES)];
	char code[CODE_DIGITS + 1], minutes[24], link[LIMIT_MAIL_LINK];
	char msgid[COMPOSE_MSGID_NEW_SIZE + 2], bounce[TOKEN_ADDRESS_SIZE];
	uint8_t th[CRYPTO_HASH_BYTES], ch[CRYPTO_HASH_BYTES];
	int64_t lifetime = (int64_t)cfg->mail.login_token_minutes * 60, left;
	int64_t token_id;
	int ret = -1;

	buf_init(&msg, LIMIT_MAIL_SIZE);
	if (outbox_get(ctx, &ob, err) < 0)
		goto out;
	/* One round trip: the delivery (a retry) and whom it names, or the
	 * payload and whom its address names. */
	if (db_deliveries_login_load(ctx->db, j->id, j->payload, &l, err) < 0) {
		err_prefix(err, "magic_link");
		goto out;
	}
	if (d->id > 0) {
		/* A retry, or a rerun after a crash. */
		if (strcmp(d->state, "sent") == 0) {
			ret = 0;
			goto out;
		}
		if (strcmp(d->state, "queued") != 0 &&
		    strcmp(d->state, "deferred") != 0) {
			err_set(err, false, "magic_link: delivery %lld is %s",
			    (long long)d->id, d->state);
			goto out;
		}
		if (!l.found) {
			outbox_give_up(ctx, d->id, err, "magic_link: the person "
			    "can no longer log in");
			goto out;
		}
		left = lifetime - d->age_s;
		snprintf(msgid, sizeof msgid, "<%s>", d->message_id);
	} else {
		struct db_delivery_new dn = { 0 };
		char email[LIMIT_EMAIL + 1];

		if (l.email == NULL) {
			err_set(err, false, "magic_link: payload has no email");
			goto out;
		}
		if (email_normalize_check(l.email, email, sizeof email,
		        err) < 0) {
			err_prefix(err, "magic_link: bad email in payload");
			err->temp = false;
			goto out;
		}
		if (l.practice_id != NULL) {
			char *end;
			long long practice = strtoll(l.practice_id, &end, 10);
			if (*end != '\0' || end == l.practice_id || practice <= 0) {
				err_set(err, false, "magic_link: bad practice_id");
				goto out;
			}
		}
		if (!l.found) {
			log_info("event=magic_link_no_subject job=%lld",
			    (long long)j->id);
			ret = 0;
			goto out;
		}
		ip = l.requested_ip;
		if (compose_message_id_new(email_domain(s->from_address), msgid,
		        sizeof msgid, err) < 0)
			goto out;
		dn.job_id = j->id;
		dn.kind = DELIVERY_KIND;
		dn.practice_id = s->practice_id;
		dn.patient_id = s->patient_id;
		dn.staff_user_id = s->staff_user_id;
		dn.recipient = s->email;
		dn.message_id = msgid;
		if (db_deliveries_insert(ctx->db, &dn, &d->id, err) < 0)
			goto out;
		left = lifetime;
	}
	if (left < LOGIN_MIN_LEFT_S) {
		outbox_give_up(ctx, d->id, err, "magic_link: not sent before the "
		    "link's deadline (%lld min)",
		    (long long)cfg->mail.login_token_minutes);
		goto out;
	}

	/* A fresh token and code for this attempt; only their hashes stay. */
	crypto_token_new(CRYPTO_TOKEN_BYTES, token, sizeof token);
	snprintf(code, sizeof code, "%08u",
	    (unsigned)crypto_random_below(100000000u));
	crypto_keyed_hash(outbox_login_token_key(ob), token, strlen(token), th);
	crypto_keyed_hash(outbox_login_code_key(ob), code, strlen(code), ch);
	if (db_login_tokens_insert(ctx->db, s, th, ch, left, ip, &token_id,
	        err) < 0) {
		if (db_err_is(err, "22P02"))
			err_set(err, false, "magic_link: bad requested_ip");
		goto out;
	}
	if ((size_t)snprintf(link, sizeof link, "%s/verify?t=%s",
	        cfg->httpd.base_url, token) >= sizeof link) {
		outbox_give_up(ctx, d->id, err, "magic_link: base_url too long");
		goto out;
	}
	snprintf(minutes, sizeof minutes, "%lld", (long long)(left / 60));
	{
		const struct template_var vars[] = {
			{ "practice_name", s->practice_name },
			{ "link", link },
			{ "code", code },
			{ "minutes", minutes },
		};
		if (template_render(outbox_templates(ob), TEMPLATE_MAGIC_LINK,
		        false, vars, 4, &tm, err) < 0) {
			outbox_give_up(ctx, d->id, err, "magic_link: template: %s",
			    err->msg);
			goto out;
		}
	}
	{
		struct compose_mail m = {
			.from = { s->from_name[0] != '\0' ? s->from_name
			                                 : s->practice_name,
			          s->from_address },
			.to = { NULL, s->email },
			.subject = tm.subject,
			.message_id = msgid,
			.auto_submitted = true,
			.text = tm.text,
			.html = tm.html,
		};
		if (compose_build(&m, &msg, err) < 0) {
			outbox_give_up(ctx, d->id, err, "magic_link: compose: %s",
			    err->msg);
			goto out;
		}
	}
	if (outbox_bounce_address(ob, d->id, bounce, err) < 0) {
		outbox_give_up(ctx, d->id, err, "magic_link: %s", err->msg);
		goto out;
	}
	log_info("event=login_token_made job=%lld delivery=%lld token_row=%lld "
	    "left_s=%lld", (long long)j->id, (long long)d->id,
	    (long long)token_id, (long long)left);
	ret = outbox_send(ctx, ob, d->id, bounce, s->email, &msg, err);
out:
	sodium_memzero(token, sizeof token);
	sodium_memzero(code, sizeof code);
	sodium_memzero(link, sizeof link);
	if (msg.data != NULL)
		sodium_memzero(msg.data, msg.len);
	buf_fini(&msg);
	template_mail_fini(&tm);
	db_deliveries_login_load_fini(&l);
	return ret;
}
