/* worker/job_notify.c: the `notify` job mails a patient that a staff
 * message waits for them.
 *
 * Payload (the staff reply form enqueues it in the message's transaction):
 *   {"message_id": 42}     a patient_messages row, direction outbound
 *
 * PHI-free by default (notify_phi_free: practice name and a link); the
 * message text (notify_full_text) only when practices.phi_in_email AND
 * patients.email_text_consent. Every mail starts with our separator line,
 * has Reply-To reply+TOKEN@<practice reply_domain> naming the thread (so
 * replying to either form works), envelope sender bounce+TOKEN naming the
 * delivery, Auto-Submitted, and one Message-ID for all retries (the
 * delivery row, kind "notify", made before the first send; it is also
 * recorded as the message's message_id, and the thread's earlier ids go
 * into References and In-Reply-To). An address on
 * the suppression list gets a delivery row in state suppressed with the
 * reason, and no mail; the job is done. A mail not out within [mail]
 * notify_give_up_h of the message is given up (delivery failed, job dead
 * with the reason). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/db_deliveries.h"
#include "common/db_patient_messages.h"
#include "common/db_suppressions.h"
#include "common/email.h"
#include "common/log.h"
#include "common/mem.h"
#include "mailer/compose.h"
#include "worker/handlers.h"
#include "worker/outbox.h"

#define DELIVERY_KIND "notify"
#define LINK_MAX 600

int
job_notify(struct job_ctx *ctx, struct err *err)
{
	const struct cfg *cfg = &ctx->w->cfg;
	const struct job *j = ctx->job;
	struct outbox *ob;
	struct db_notify_load l = { 0 };
	struct db_delivery *d = &l.d;
	struct db_message_notice *n = &l.n;
	struct template_mail tm = { 0 };
	struct buf msg;
	char link[LINK_MAX], reason[DB_SUPPRESSION_REASON_MAX + 96];
	char msgid[COMPOSE_MSGID_NEW_SIZE + 2];
	char reply_to[TOKEN_ADDRESS_SIZE], bounce[TOKEN_ADDRESS_SIZE];
	int64_t give_up_s = (int64_t)cfg->mail.notify_give_up_h * 3600;
	bool full;
	int rc, ret = -1;

	buf_init(&msg, LIMIT_MAIL_SIZE);
	if (outbox_get(ctx, &ob, err) < 0)
		goto out;
	/* One round trip: delivery, payload, message, thread, suppression. */
	if (db_deliveries_notify_load(ctx->db, j->id, j->payload, &l, err) < 0) {
		err_prefix(err, "notify");
		goto out;
	}
	if (d->id > 0) {
		if (strcmp(d->state, "sent") == 0 ||
		    strcmp(d->state, "suppressed") == 0) {
			ret = 0;                 /* done before a crash */
			goto out;
		}
		if (strcmp(d->state, "queued") != 0 &&
		    strcmp(d->state, "deferred") != 0) {
			err_set(err, false, "notify: delivery %lld is %s",
			    (long long)d->id, d->state);
			goto out;
		}
	}
	if (l.message_id == 0) {
		err_set(err, false, "notify: payload has no valid message_id");
		goto out;
	}
	if (!l.found || !n->outbound) {
		if (d->id > 0)
			outbox_give_up(ctx, d->id, err, "notify: message %lld is "
			    "gone or not outbound", (long long)l.message_id);
		else
			err_set(err, false, "notify: message %lld is gone or not "
			    "outbound", (long long)l.message_id);
		goto out;
	}
	if (d->id == 0) {
		/* The delivery row, with its Message-ID, commits before the
		 * first send; the same statement names the message by it. */
		struct db_delivery_new dn = {
			.job_id = j->id,
			.kind = DELIVERY_KIND,
			.practice_id = n->practice_id,
			.patient_id = n->patient_id,
			.recipient = n->patient_email,
			.message_row_id = n->id,
		};
		if (compose_message_id_new(email_domain(n->from_address), msgid,
		        sizeof msgid, err) < 0)
			goto out;
		dn.message_id = msgid;
		if (l.suppressed) {
			snprintf(reason, sizeof reason, "suppressed: %s",
			    l.suppression_reason);
			dn.state = "suppressed";
			dn.reason = reason;
		} else if (n->age_s >= give_up_s) {
			snprintf(reason, sizeof reason, "notify: gave up: not sent "
			    "within %d h of the message", cfg->mail.notify_give_up_h);
			dn.state = "failed";
			dn.reason = reason;
		}
		if (db_deliveries_insert(ctx->db, &dn, &d->id, err) < 0)
			goto out;
		if (l.suppressed) {
			log_info("event=mail_suppressed job=%lld delivery=%lld "
			    "reason=%s", (long long)j->id, (long long)d->id,
			    l.suppression_reason);
			ret = 0;
			goto out;
		}
		if (dn.state != NULL) {
			err_set(err, false, "%s", reason);
			goto out;
		}
	} else {
		snprintf(msgid, sizeof msgid, "<%s>", d->message_id);
		if (n->age_s >= give_up_s) {
			outbox_give_up(ctx, d->id, err, "notify: gave up: not sent "
			    "within %d h of the message",
			    cfg->mail.notify_give_up_h);
			goto out;
		}
		/* A row made before the message was named (older versions
		 * wrote the two apart): name it now; a no-op otherwise. */
		if (db_patient_messages_set_message_id(ctx->db, n->id, msgid,
		        err) < 0)
			goto out;
	}

	if ((size_t)snprintf(link, sizeof link, "%s/messages/%lld",
	        cfg->httpd.base_url, (long long)n->thread_id) >= sizeof link) {
		outbox_give_up(ctx, d->id, err, "notify: base_url too long");
		goto out;
	}
	full = n->phi_in_email && n->email_text_consent;
	if (full) {
		const struct template_var vars[] = {
			{ "practice_name", n->practice_name },
			{ "link", link },
			{ "patient_name", n->patient_name },
			{ "staff_name", n->staff_name[0] != '\0' ? n->staff_name
			                                        : n->practice_name },
			{ "message_text", n->body },
		};
		rc = template_render(outbox_templates(ob),
		    TEMPLATE_NOTIFY_FULL_TEXT, true, vars, 5, &tm, err);
	} else {
		const struct template_var vars[] = {
			{ "practice_name", n->practice_name },
			{ "link", link },
		};
		rc = template_render(outbox_templates(ob),
		    TEMPLATE_NOTIFY_PHI_FREE, true, vars, 2, &tm, err);
	}
	if (rc < 0) {
		outbox_give_up(ctx, d->id, err, "notify: template: %s", err->msg);
		goto out;
	}
	if (outbox_reply_address(ob, n->thread_id, n->reply_domain, reply_to,
	        err) < 0 ||
	    outbox_bounce_address(ob, d->id, bounce, err) < 0) {
		outbox_give_up(ctx, d->id, err, "notify: %s", err->msg);
		goto out;
	}
	{
		struct compose_mail m = {
			.from = { n->from_name[0] != '\0' ? n->from_name
			                                 : n->practice_name,
			          n->from_address },
			.to = { full ? n->patient_name : NULL, n->patient_email },
			.reply_to = { n->practice_name, reply_to },
			.subject = tm.subject,
			.message_id = msgid,
			.in_reply_to = n->n_refs > 0 ? n->refs[n->n_refs - 1] : NULL,
			.references = (const char *const *)n->refs,
			.n_references = n->n_refs,
			.auto_submitted = true,
			.text = tm.text,
			.html = tm.html,
		};
		if (compose_build(&m, &msg, err) < 0) {
			outbox_give_up(ctx, d->id, err, "notify: compose: %s",
			    err->msg);
			goto out;
		}
	}
	log_info("event=notify_compose job=%lld delivery=%lld form=%s",
	    (long long)j->id, (long long)d->id, full ? "full_text" : "phi_free");
	ret = outbox_send(ctx, ob, d->id, bounce, n->patient_email, &msg, err);
out:
	buf_fini(&msg);
	template_mail_fini(&tm);
	db_deliveries_notify_load_fini(&l);
	return ret;
}
