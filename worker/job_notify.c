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

/* Whether this load needs a new delivery row to be sent (what the
 * handler would insert as queued). */
static bool
wants_row(const struct db_notify_load *l, int64_t give_up_s)
{
	return l->d.id == 0 && l->message_id > 0 && l->found &&
	    l->n.outbound && !l->suppressed && l->n.age_s < give_up_s;
}

/* The batch's database work before its first send: one statement reads
 * what every notify job of the batch needs, one more inserts (and commits)
 * all their delivery rows with their Message-IDs. Jobs that need anything
 * else (suppressed, given up, a retry) are read here and finish on their
 * own in job_notify(). */
int
job_notify_prepare(struct job_ctx *ctx, const struct job *const *jobs, int n,
    void **prep, struct err *err)
{
	int64_t give_up_s = (int64_t)ctx->w->cfg.mail.notify_give_up_h * 3600;
	int64_t *ids = xcalloc((size_t)n, sizeof *ids);
	int64_t *new_ids = xcalloc((size_t)n, sizeof *new_ids);
	const char **payloads = xcalloc((size_t)n, sizeof *payloads);
	struct db_notify_load *l = xcalloc((size_t)n, sizeof *l);
	struct db_delivery_new *dn = xcalloc((size_t)n, sizeof *dn);
	char (*msgids)[COMPOSE_MSGID_NEW_SIZE + 2] = xcalloc((size_t)n,
	    sizeof *msgids);
	int *at = xcalloc((size_t)n, sizeof *at);
	int k = 0, ret = -1;

	for (int i = 0; i < n; i++) {
		ids[i] = jobs[i]->id;
		payloads[i] = jobs[i]->payload;
	}
	if (db_deliveries_notify_load_many(ctx->db, n, ids, payloads, l,
	        err) < 0)
		goto out;
	for (int i = 0; i < n; i++) {
		struct db_message_notice *m = &l[i].n;

		if (!wants_row(&l[i], give_up_s))
			continue;
		if (compose_message_id_new(email_domain(m->from_address),
		        msgids[k], sizeof msgids[k], err) < 0)
			goto out;
		dn[k] = (struct db_delivery_new){
			.job_id = jobs[i]->id,
			.kind = DELIVERY_KIND,
			.practice_id = m->practice_id,
			.patient_id = m->patient_id,
			.recipient = m->patient_email,
			.message_id = msgids[k],
			.message_row_id = m->id,
		};
		at[k++] = i;
	}
	if (k > 0 && db_deliveries_insert_many(ctx->db, k, dn, new_ids,
	        err) < 0)
		goto out;
	for (int m = 0; m < k; m++) {
		struct db_delivery *d = &l[at[m]].d;
		size_t len = strlen(msgids[m]);

		d->id = new_ids[m];
		/* stored bare: "<…>" without the brackets (it fit: the
		 * insert checked) */
		snprintf(d->message_id, sizeof d->message_id, "%.*s",
		    (int)(len - 2), msgids[m] + 1);
		str_copy(d->state, sizeof d->state, "queued");
		l[at[m]].fresh = true;
	}
	for (int i = 0; i < n; i++) {
		struct db_notify_load *p = xmalloc(sizeof *p);
		*p = l[i];                       /* takes the strings over */
		memset(&l[i], 0, sizeof l[i]);
		prep[i] = p;
	}
	ret = 0;
out:
	for (int i = 0; i < n; i++)
		db_deliveries_notify_load_fini(&l[i]);
	free(ids);
	free(new_ids);
	free(payloads);
	free(l);
	free(dn);
	free(msgids);
	free(at);
	return ret;
}

void
job_notify_prep_free(void *prep)
{
	if (prep == NULL)
		return;
	db_deliveries_notify_load_fini(prep);
	free(prep);
}

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
	char link[LIMIT_MAIL_LINK], reason[DB_SUPPRESSION_REASON_MAX + 96];
	char msgid[COMPOSE_MSGID_NEW_SIZE + 2];
	char reply_to[TOKEN_ADDRESS_SIZE], bounce[TOKEN_ADDRESS_SIZE];
	int64_t give_up_s = (int64_t)cfg->mail.notify_give_up_h * 3600;
	bool full;
	int rc, ret = -1;

	buf_init(&msg, LIMIT_MAIL_SIZE);
	if (outbox_get(ctx, &ob, err) < 0)
		goto out;
	if (ctx->prep != NULL) {
		/* job_notify_prepare() read it (and made the row) already. */
		l = *(struct db_notify_load *)ctx->prep;
		free(ctx->prep);
		ctx->prep = NULL;
	} else if (db_deliveries_notify_load(ctx->db, j->id, j->payload, &l,
	               err) < 0) {
		/* One round trip: delivery, payload, message, thread,
		 * suppression. */
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
		if (!l.fresh && db_patient_messages_set_message_id(ctx->db,
		        n->id, msgid, err) < 0)
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
