/* worker/job_confirm_sender.c: the `confirm_sender` job asks a patient
 * whether a reply that says it is from them really is ("was this you?").
 *
 * Payload (the IMAP ingester enqueues it in the transaction that holds the
 * mail):
 *   {"inbound_mail_id": 42}   an inbound_mail row, outcome held, hold_state
 *                             pending, patient_id set, from_addr = the
 *                             address that actually wrote
 *
 * The mail goes to the PATIENT's stored address, never to from_addr, and
 * carries no PHI: the practice's name, the address the held mail came
 * from and a link <base_url>/confirm?t=TOKEN, where the patient confirms
 * or declines (httpd/confirm.c). No text and no subject of the held mail.
 * A row that is gone, names no patient, or is no longer held and pending
 * (decided, expired) ends the job done with no mail.
 *
 * The token is made here at send time, like a login link's
 * (job_magic_link.c): 256 bits, only its keyed hash stored (SUBKEY_LOGIN_
 * TOKEN) in a login_tokens row of purpose confirm_sender with the patient
 * and the inbound mail; every attempt makes a fresh one, each good for
 * CONFIRM_TOKEN_DAYS. Spending one spends its siblings
 * (db_login_tokens_confirm_consume).
 *
 * One delivery row per job (kind confirm_sender, made before the first
 * send, its Message-ID reused on every retry). The suppression list
 * applies (a suppressed address: delivery suppressed, job done). A mail
 * not out within CONFIRM_GIVE_UP_H of the held mail's arrival is given up
 * (delivery failed, job dead). No Reply-To token and no separator line:
 * this mail is not part of a thread. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/db_deliveries.h"
#include "common/db_followups.h"
#include "common/db_login_tokens.h"
#include "common/db_payload.h"
#include "common/email.h"
#include "common/log.h"
#include "common/mem.h"
#include "mailer/compose.h"
#include "worker/handlers.h"
#include "worker/outbox.h"

#define DELIVERY_KIND "confirm_sender"
/* How long the patient has to decide (the page says so). */
#define CONFIRM_TOKEN_DAYS 7
/* A "was this you?" mail later than this after the reply arrived is
 * given up (the practice sees the held mail meanwhile). */
#define CONFIRM_GIVE_UP_H 24
#define LINK_MAX 600

static int
mail_id_from_payload(struct job_ctx *ctx, int64_t *id_r, struct err *err)
{
	static const char *const keys[] = { "inbound_mail_id" };
	char *v = NULL, *end;
	long long id;

	if (db_payload_get(ctx->db, ctx->job->payload, keys, 1, &v, err) < 0)
		return -1;
	if (v == NULL)
		return err_set(err, false, "confirm_sender: payload has no "
		    "inbound_mail_id");
	id = strtoll(v, &end, 10);
	if (*end != '\0' || id <= 0) {
		free(v);
		return err_set(err, false, "confirm_sender: bad inbound_mail_id");
	}
	free(v);
	*id_r = id;
	return 0;
}

/* Nothing to send any more: the delivery (if one was made) is failed with
 * why, the job done. */
static int
drop(struct job_ctx *ctx, int64_t delivery_id, int64_t mail_id,
    const char *why, struct err *err)
{
	struct db_delivery_outcome o = { .reason = why };

	log_info("event=confirm_sender_dropped job=%lld inbound_mail=%lld "
	    "reason=%s", (long long)ctx->job->id, (long long)mail_id, why);
	if (delivery_id > 0 &&
	    db_deliveries_record(ctx->db, delivery_id, "failed", &o, err) < 0)
		return -1;
	return 0;
}

int
job_confirm_sender(struct job_ctx *ctx, struct err *err)
{
	const struct cfg *cfg = &ctx->w->cfg;
	const struct job *j = ctx->job;
	struct outbox *ob;
	struct db_delivery d = { 0 };
	struct db_followup f;
	struct template_mail tm = { 0 };
	struct buf msg;
	char token[CRYPTO_B64URL_LEN(CRYPTO_TOKEN_BYTES)];
	char link[LINK_MAX], days[16], sender[LIMIT_EMAIL + 1];
	char msgid[COMPOSE_MSGID_NEW_SIZE + 2];
	uint8_t th[CRYPTO_HASH_BYTES];
	int64_t mail_id = 0, token_id;
	int rc, ret = -1;

	buf_init(&msg, LIMIT_MAIL_SIZE);
	if (outbox_get(ctx, &ob, err) < 0)
		goto out;
	rc = outbox_delivery_find(ctx, DELIVERY_KIND, &d, err);
	if (rc <= 0) {
		ret = rc;                /* 0: done before a crash */
		goto out;
	}
	if (mail_id_from_payload(ctx, &mail_id, err) < 0)
		goto out;
	rc = db_followups_confirm(ctx->db, mail_id, &f, err);
	if (rc < 0)
		goto out;
	if (rc == 0) {
		ret = drop(ctx, d.id, mail_id, "gone or names no patient", err);
		goto out;
	}
	if (!f.live) {
		ret = drop(ctx, d.id, mail_id, "no longer held", err);
		goto out;
	}
	/* from_addr is whatever the outside wrote: only a plain address
	 * goes into a mail (one line, no display name, no markup). */
	if (f.text_too_long ||
	    email_normalize_check(f.text, sender, sizeof sender, err) < 0) {
		if (d.id > 0)
			outbox_give_up(ctx, d.id, err, "confirm_sender: the held "
			    "mail's sender is not a plain address");
		else
			err_set(err, false, "confirm_sender: the held mail's "
			    "sender is not a plain address");
		goto out;
	}
	rc = outbox_followup_delivery(ctx, &d, DELIVERY_KIND, &f, msgid,
	    sizeof msgid, err);
	if (rc <= 0) {
		ret = rc;                /* 0: suppressed, done */
		goto out;
	}
	if (f.age_s >= (int64_t)CONFIRM_GIVE_UP_H * 3600) {
		outbox_give_up(ctx, d.id, err, "confirm_sender: gave up: not sent "
		    "within %d h of the held mail", CONFIRM_GIVE_UP_H);
		goto out;
	}

	/* A fresh token for this attempt; only its hash stays. */
	crypto_token_new(CRYPTO_TOKEN_BYTES, token, sizeof token);
	crypto_keyed_hash(outbox_login_token_key(ob), token, strlen(token), th);
	if (db_login_tokens_insert_confirm(ctx->db, f.patient_id, mail_id, th,
	        (int64_t)CONFIRM_TOKEN_DAYS * 86400, &token_id, err) < 0)
		goto out;
	if ((size_t)snprintf(link, sizeof link, "%s/confirm?t=%s",
	        cfg->httpd.base_url, token) >= sizeof link) {
		outbox_give_up(ctx, d.id, err, "confirm_sender: base_url too "
		    "long");
		goto out;
	}
	snprintf(days, sizeof days, "%d", CONFIRM_TOKEN_DAYS);
	{
		const struct template_var vars[] = {
			{ "practice_name", f.practice_name },
			{ "link", link },
			{ "sender_address", sender },
			{ "days", days },
		};
		if (template_render(outbox_templates(ob),
		        TEMPLATE_CONFIRM_SENDER, false, vars, 4, &tm, err) < 0) {
			outbox_give_up(ctx, d.id, err, "confirm_sender: template: "
			    "%s", err->msg);
			goto out;
		}
	}
	log_info("event=confirm_token_made job=%lld delivery=%lld "
	    "inbound_mail=%lld token_row=%lld", (long long)j->id,
	    (long long)d.id, (long long)mail_id, (long long)token_id);
	ret = outbox_followup_send(ctx, ob, d.id, "confirm_sender", &f, &tm,
	    msgid, false, &msg, err);
out:
	sodium_memzero(token, sizeof token);
	sodium_memzero(link, sizeof link);
	if (msg.data != NULL)
		sodium_memzero(msg.data, msg.len);
	buf_fini(&msg);
	template_mail_fini(&tm);
	return ret;
}
