/* worker/job_urgent_ack.c: the `urgent_ack` job answers a patient's reply
 * that contained red-flag words with the practice's emergency text.
 *
 * Payload (the IMAP ingester enqueues it, in the transaction that stores
 * the message, when the practice has red_flag_autoack on, with once_key
 * "urgent_ack:<patient_id>:<YYYY-MM-DD>": at most one per patient a day):
 *   {"patient_id": 7, "patient_message_id": 42}
 *
 * The mail: "We received your message. If this is an emergency:
 * <practices.emergency_text>" — no PHI (not the message, not its
 * subject). Staff have already been told by the ingester (an urgent staff
 * notification); this mail is the patient-side safety net. A message that
 * is gone, or a practice that has switched the auto-acknowledgement off
 * since, ends the job done with no mail.
 *
 * Loop-safe automatic response (RFC 3834): Auto-Submitted: auto-replied,
 * X-Auto-Response-Suppress: All, In-Reply-To the patient's mail, no
 * Reply-To token (a reply to it lands in quarantine, never in a loop),
 * no separator line.
 *
 * Suppression: applied like notify. We considered sending safety text
 * even to suppressed addresses, but the list holds hard bounces (the mail
 * would not arrive), complaints and manual entries (someone decided this
 * address gets no mail from us); the staff notification is what makes
 * sure a human looks at the message either way. One delivery row (kind
 * urgent_ack); given up URGENT_GIVE_UP_H after the message arrived. */
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

#define DELIVERY_KIND "urgent_ack"
#define URGENT_GIVE_UP_H 24

static int
parse_id(const char *v, const char *name, int64_t *id_r, struct err *err)
{
	char *end;
	long long id;

	if (v == NULL)
		return err_set(err, false, "urgent_ack: payload has no %s", name);
	id = strtoll(v, &end, 10);
	if (*end != '\0' || id <= 0)
		return err_set(err, false, "urgent_ack: bad %s", name);
	*id_r = id;
	return 0;
}

static int
ids_from_payload(struct job_ctx *ctx, int64_t *patient_r, int64_t *message_r,
    struct err *err)
{
	static const char *const keys[] = { "patient_id",
		                            "patient_message_id" };
	char *v[2] = { NULL, NULL };
	int ret = -1;

	if (db_payload_get(ctx->db, ctx->job->payload, keys, 2, v, err) < 0)
		return -1;
	if (parse_id(v[0], keys[0], patient_r, err) == 0 &&
	    parse_id(v[1], keys[1], message_r, err) == 0)
		ret = 0;
	free(v[0]);
	free(v[1]);
	return ret;
}

/* Nothing to send any more: the delivery (if one was made) is failed with
 * why, the job done. */
static int
drop(struct job_ctx *ctx, int64_t delivery_id, int64_t message_id,
    const char *why, struct err *err)
{
	struct db_delivery_outcome o = { .reason = why };

	log_info("event=urgent_ack_dropped job=%lld message=%lld reason=\"%s\"",
	    (long long)ctx->job->id, (long long)message_id, why);
	if (delivery_id > 0 &&
	    db_deliveries_record(ctx->db, delivery_id, "failed", &o, err) < 0)
		return -1;
	return 0;
}

int
job_urgent_ack(struct job_ctx *ctx, struct err *err)
{
	const struct job *j = ctx->job;
	struct outbox *ob;
	struct db_delivery d = { 0 };
	struct db_followup f;
	struct template_mail tm = { 0 };
	struct buf msg;
	char msgid[COMPOSE_MSGID_NEW_SIZE + 2];
	int64_t patient_id = 0, message_id = 0;
	int rc, ret = -1;

	buf_init(&msg, LIMIT_MAIL_SIZE);
	if (outbox_get(ctx, &ob, err) < 0)
		goto out;
	rc = outbox_delivery_find(ctx, DELIVERY_KIND, &d, err);
	if (rc <= 0) {
		ret = rc;                /* 0: done before a crash */
		goto out;
	}
	if (ids_from_payload(ctx, &patient_id, &message_id, err) < 0)
		goto out;
	rc = db_followups_urgent(ctx->db, patient_id, message_id, &f, err);
	if (rc < 0)
		goto out;
	if (rc == 0) {
		ret = drop(ctx, d.id, message_id, "no such inbound message of "
		    "the patient", err);
		goto out;
	}
	if (!f.live) {
		ret = drop(ctx, d.id, message_id, "the practice no longer "
		    "auto-acknowledges", err);
		goto out;
	}
	if (f.text_too_long) {
		err_set(err, false, "urgent_ack: emergency text too long");
		goto out;
	}
	rc = outbox_followup_delivery(ctx, &d, DELIVERY_KIND, &f, msgid,
	    sizeof msgid, err);
	if (rc <= 0) {
		ret = rc;                /* 0: suppressed, done */
		goto out;
	}
	if (f.age_s >= (int64_t)URGENT_GIVE_UP_H * 3600) {
		outbox_give_up(ctx, d.id, err, "urgent_ack: gave up: not sent "
		    "within %d h of the message", URGENT_GIVE_UP_H);
		goto out;
	}
	{
		const struct template_var vars[] = {
			{ "practice_name", f.practice_name },
			{ "emergency_text", f.text },
		};
		if (template_render(outbox_templates(ob), TEMPLATE_URGENT_ACK,
		        false, vars, 2, &tm, err) < 0) {
			outbox_give_up(ctx, d.id, err, "urgent_ack: template: %s",
			    err->msg);
			goto out;
		}
	}
	log_info("event=urgent_ack_compose job=%lld delivery=%lld message=%lld",
	    (long long)j->id, (long long)d.id, (long long)message_id);
	ret = outbox_followup_send(ctx, ob, d.id, "urgent_ack", &f, &tm, msgid,
	    true, &msg, err);
out:
	buf_fini(&msg);
	template_mail_fini(&tm);
	return ret;
}
