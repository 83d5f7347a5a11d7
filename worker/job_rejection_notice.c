/* worker/job_rejection_notice.c: the `rejection_notice` job tells a patient
 * that a mail they sent could not be taken, and where to send it instead.
 *
 * Payload (the IMAP ingester enqueues it only for an address that belongs
 * to a known patient and never for automatic mail, with once_key
 * "rejection_notice:<email>:<reason>:<YYYY-MM-DD>": at most one per
 * address, reason and day):
 *   {"inbound_mail_id": 42, "email": "a@b.example", "reason": R}
 *   R: token_expired  a reply to a notification too old to answer
 *      no_token       mail to a reply address without a notification's token
 *      too_large      over the size limit
 *      not_readable   MIME we refuse
 *
 * The mail: "Your message could not be delivered to <practice>: <why>;
 * please sign in at <base_url>/login to send your message" — no PHI, not
 * even the subject of the refused mail. Practice: the one of the patient
 * with that address; with several, the inbound_mail row's practice when
 * the address is a patient there, else the patient with the lowest id in
 * an active practice (db_followups_rejection). We never fall back to
 * [mail] from_address: an address that is no patient in an active
 * practice any more gets nothing (job done).
 *
 * It is an automatic response (RFC 3834): Auto-Submitted: auto-replied,
 * X-Auto-Response-Suppress: All, In-Reply-To the refused mail when it had
 * a Message-ID, and no Reply-To token (a reply to the notice lands in
 * quarantine, and the once_key stops a ping-pong). One delivery row (kind
 * rejection_notice), the suppression list applies, given up
 * REJECTION_GIVE_UP_H after the refused mail arrived. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/db_deliveries.h"
#include "common/db_followups.h"
#include "common/db_payload.h"
#include "common/email.h"
#include "common/log.h"
#include "common/mem.h"
#include "mailer/compose.h"
#include "worker/handlers.h"
#include "worker/outbox.h"

#define DELIVERY_KIND "rejection_notice"
#define REJECTION_GIVE_UP_H 24
#define LINK_MAX 600

static const struct {
	const char *reason;
	const char *explanation;     /* one line, ends the sentence */
} reasons[] = {
	{ "token_expired", "you replied to a notification that is too old to "
	  "be answered by email." },
	{ "no_token", "it was not a reply to one of our notifications, so we "
	  "cannot tell which conversation it belongs to." },
	{ "too_large", "it is larger than we can accept by email (large "
	  "attachments are the usual cause)." },
	{ "not_readable", "we could not read the way it was put together "
	  "by your mail program." },
};

struct payload {
	int64_t mail_id;
	char email[LIMIT_EMAIL + 1];
	const char *reason;          /* from reasons[] */
	const char *explanation;
};

static int
parse_payload(struct job_ctx *ctx, struct payload *p, struct err *err)
{
	static const char *const keys[] = { "inbound_mail_id", "email",
		                            "reason" };
	char *v[3] = { NULL, NULL, NULL }, *end;
	long long id;
	int ret = -1;

	memset(p, 0, sizeof *p);
	if (db_payload_get(ctx->db, ctx->job->payload, keys, 3, v, err) < 0)
		return -1;
	if (v[0] == NULL || v[1] == NULL || v[2] == NULL) {
		err_set(err, false, "rejection_notice: payload needs "
		    "inbound_mail_id, email and reason");
		goto out;
	}
	id = strtoll(v[0], &end, 10);
	if (*end != '\0' || id <= 0) {
		err_set(err, false, "rejection_notice: bad inbound_mail_id");
		goto out;
	}
	p->mail_id = id;
	if (email_normalize_check(v[1], p->email, sizeof p->email, err) < 0) {
		err_prefix(err, "rejection_notice: bad email in payload");
		err->temp = false;
		goto out;
	}
	for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
		if (strcmp(v[2], reasons[i].reason) == 0) {
			p->reason = reasons[i].reason;
			p->explanation = reasons[i].explanation;
		}
	if (p->reason == NULL) {
		char q[64];
		err_set(err, false, "rejection_notice: unknown reason %s",
		    log_quote(q, sizeof q, v[2]));
		goto out;
	}
	ret = 0;
out:
	for (int i = 0; i < 3; i++)
		free(v[i]);
	return ret;
}

int
job_rejection_notice(struct job_ctx *ctx, struct err *err)
{
	const struct cfg *cfg = &ctx->w->cfg;
	const struct job *j = ctx->job;
	struct outbox *ob;
	struct db_delivery d = { 0 };
	struct db_followup f;
	struct payload p;
	struct template_mail tm = { 0 };
	struct buf msg;
	char link[LINK_MAX];
	char msgid[COMPOSE_MSGID_NEW_SIZE + 2];
	int rc, ret = -1;

	buf_init(&msg, LIMIT_MAIL_SIZE);
	if (outbox_get(ctx, &ob, err) < 0)
		goto out;
	rc = outbox_delivery_find(ctx, DELIVERY_KIND, &d, err);
	if (rc <= 0) {
		ret = rc;                /* 0: done before a crash */
		goto out;
	}
	if (parse_payload(ctx, &p, err) < 0)
		goto out;
	rc = db_followups_rejection(ctx->db, p.mail_id, p.email, &f, err);
	if (rc < 0)
		goto out;
	if (rc == 0) {
		/* Nothing to send any more: the delivery (if one was made)
		 * is failed with why, the job done. */
		struct db_delivery_outcome o = {
			.reason = "no patient with the address any more",
		};
		log_info("event=rejection_notice_dropped job=%lld "
		    "inbound_mail=%lld reason=no_patient", (long long)j->id,
		    (long long)p.mail_id);
		if (d.id > 0 &&
		    db_deliveries_record(ctx->db, d.id, "failed", &o, err) < 0)
			goto out;
		ret = 0;
		goto out;
	}
	rc = outbox_followup_delivery(ctx, &d, DELIVERY_KIND, &f, msgid,
	    sizeof msgid, err);
	if (rc <= 0) {
		ret = rc;                /* 0: suppressed, done */
		goto out;
	}
	if (f.age_s >= (int64_t)REJECTION_GIVE_UP_H * 3600) {
		outbox_give_up(ctx, d.id, err, "rejection_notice: gave up: not "
		    "sent within %d h of the refused mail", REJECTION_GIVE_UP_H);
		goto out;
	}
	if ((size_t)snprintf(link, sizeof link, "%s/login",
	        cfg->httpd.base_url) >= sizeof link) {
		outbox_give_up(ctx, d.id, err, "rejection_notice: base_url too "
		    "long");
		goto out;
	}
	{
		const struct template_var vars[] = {
			{ "practice_name", f.practice_name },
			{ "link", link },
			{ "explanation", p.explanation },
		};
		if (template_render(outbox_templates(ob),
		        TEMPLATE_REJECTION_NOTICE, false, vars, 3, &tm, err) < 0) {
			outbox_give_up(ctx, d.id, err, "rejection_notice: "
			    "template: %s", err->msg);
			goto out;
		}
	}
	log_info("event=rejection_notice_compose job=%lld delivery=%lld "
	    "reason=%s inbound_mail=%lld", (long long)j->id, (long long)d.id,
	    p.reason, (long long)p.mail_id);
	ret = outbox_followup_send(ctx, ob, d.id, "rejection_notice", &f, &tm,
	    msgid, true, &msg, err);
out:
	buf_fini(&msg);
	template_mail_fini(&tm);
	return ret;
}
