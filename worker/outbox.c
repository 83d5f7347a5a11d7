/* worker/outbox.c: per-thread mail state and the SMTP outcome → delivery
 * state → job result mapping (contract in outbox.h). */
#include "worker/outbox.h"

#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/db_deliveries.h"
#include "common/db_suppressions.h"
#include "common/email.h"
#include "common/log.h"
#include "common/mem.h"
#include "mailer/compose.h"

/* A loaded template set shared by the outboxes; freed with its last
 * reference. Guarded by tpl_mu. */
struct shared_templates {
	struct template_set *set;
	int refs;
};
static pthread_mutex_t tpl_mu = PTHREAD_MUTEX_INITIALIZER;
static struct shared_templates *tpl_current;   /* holds one reference */

static void
tpl_unref_locked(struct shared_templates *t)
{
	if (t != NULL && --t->refs == 0) {
		template_set_free(&t->set);
		free(t);
	}
}

/* Installs set as the current one (takes it over). */
static void
tpl_install(struct template_set *set)
{
	struct shared_templates *t = xcalloc(1, sizeof *t);

	t->set = set;
	t->refs = 1;
	pthread_mutex_lock(&tpl_mu);
	tpl_unref_locked(tpl_current);
	tpl_current = t;
	pthread_mutex_unlock(&tpl_mu);
}

int
outbox_templates_load(const char *dir, struct err *err)
{
	struct template_set *set = NULL;

	if (template_set_load(dir, &set, err) < 0)
		return -1;
	tpl_install(set);
	return 0;
}

void
outbox_templates_unload(void)
{
	pthread_mutex_lock(&tpl_mu);
	tpl_unref_locked(tpl_current);
	tpl_current = NULL;
	pthread_mutex_unlock(&tpl_mu);
}

struct outbox {
	struct smtp_conn *smtp;           /* NULL until the first send */
	struct shared_templates *tpl;     /* one reference */
	const struct template_set *templates;   /* tpl->set */
	struct token_key reply_key, bounce_key;
	uint8_t login_token_key[CRYPTO_KEY_BYTES];
	uint8_t login_code_key[CRYPTO_KEY_BYTES];
	char bounce_domain[EMAIL_DOMAIN_MAX + 1];
};

int
outbox_get(struct job_ctx *ctx, struct outbox **ob_r, struct err *err)
{
	const struct cfg *cfg = &ctx->w->cfg;
	struct outbox *ob;

	if (*ctx->outbox != NULL) {
		ob = *ctx->outbox;
		/* A SIGHUP may have loaded new templates: use them from the
		 * next mail on. */
		pthread_mutex_lock(&tpl_mu);
		if (tpl_current != NULL && ob->tpl != tpl_current) {
			tpl_unref_locked(ob->tpl);
			ob->tpl = tpl_current;
			ob->tpl->refs++;
			ob->templates = ob->tpl->set;
		}
		pthread_mutex_unlock(&tpl_mu);
		*ob_r = ob;
		return 0;
	}
	if (!cfg->security.server_key_set)
		return err_set(err, false, "mail: no server key configured");
	pthread_mutex_lock(&tpl_mu);
	if (tpl_current == NULL) {
		struct template_set *set = NULL;
		pthread_mutex_unlock(&tpl_mu);
		if (template_set_load(cfg->mail.templates_dir, &set, err) < 0) {
			err->temp = true;   /* retried until the override is fixed */
			return -1;
		}
		tpl_install(set);
		pthread_mutex_lock(&tpl_mu);
	}
	ob = xcalloc(1, sizeof *ob);
	ob->tpl = tpl_current;
	ob->tpl->refs++;
	ob->templates = ob->tpl->set;
	pthread_mutex_unlock(&tpl_mu);
	token_key_init(&ob->reply_key, OUTBOX_KEY_ID, TOKEN_REPLY,
	    cfg->security.server_key);
	token_key_init(&ob->bounce_key, OUTBOX_KEY_ID, TOKEN_BOUNCE,
	    cfg->security.server_key);
	crypto_subkey(cfg->security.server_key, SUBKEY_LOGIN_TOKEN,
	    ob->login_token_key);
	crypto_subkey(cfg->security.server_key, SUBKEY_LOGIN_CODE,
	    ob->login_code_key);
	if (!str_copy(ob->bounce_domain, sizeof ob->bounce_domain,
	        cfg->mail.bounce_domain)) {
		outbox_free(&ob);
		return err_set(err, false, "mail: [mail] bounce_domain is longer "
		    "than %d bytes", EMAIL_DOMAIN_MAX);
	}
	*ctx->outbox = ob;
	*ob_r = ob;
	return 0;
}

void
outbox_free(struct outbox **obp)
{
	struct outbox *ob = *obp;

	if (ob == NULL)
		return;
	smtp_close(&ob->smtp);
	pthread_mutex_lock(&tpl_mu);
	tpl_unref_locked(ob->tpl);
	pthread_mutex_unlock(&tpl_mu);
	sodium_memzero(ob, sizeof *ob);
	free(ob);
	*obp = NULL;
}

const struct template_set *
outbox_templates(const struct outbox *ob)
{
	return ob->templates;
}

const uint8_t *
outbox_login_token_key(const struct outbox *ob)
{
	return ob->login_token_key;
}

const uint8_t *
outbox_login_code_key(const struct outbox *ob)
{
	return ob->login_code_key;
}

int
outbox_reply_address(const struct outbox *ob, int64_t thread_id,
    const char *domain, char out[TOKEN_ADDRESS_SIZE], struct err *err)
{
	return token_address_make(TOKEN_REPLY, thread_id,
	    (int64_t)time(NULL) + OUTBOX_REPLY_TOKEN_DAYS * 86400LL,
	    &ob->reply_key, domain, out, TOKEN_ADDRESS_SIZE, err);
}

int
outbox_bounce_address(const struct outbox *ob, int64_t delivery_id,
    char out[TOKEN_ADDRESS_SIZE], struct err *err)
{
	return token_address_make(TOKEN_BOUNCE, delivery_id,
	    (int64_t)time(NULL) + OUTBOX_BOUNCE_TOKEN_DAYS * 86400LL,
	    &ob->bounce_key, ob->bounce_domain, out, TOKEN_ADDRESS_SIZE, err);
}

static int
open_smtp(const struct cfg *cfg, struct smtp_conn **c_r, struct err *err)
{
	char secret[SMTP_SECRET_MAX];
	struct smtp_opts o;
	int ret = -1;

	if (smtp_opts_from_cfg(&o, cfg, secret, err) == 0)
		ret = smtp_open(&o, c_r, err);
	sodium_memzero(secret, sizeof secret);
	return ret;
}

/* Records state on the delivery; a database error replaces *err (temp as
 * the database says) so the job is retried and the row written then. */
static int
record(struct job_ctx *ctx, int64_t id, const char *state,
    const struct db_delivery_outcome *o, struct err *err)
{
	struct err dberr = { 0 };

	if (db_deliveries_record(ctx->db, id, state, o, &dberr) < 0) {
		*err = dberr;
		return -1;
	}
	return 0;
}

int
outbox_send(struct job_ctx *ctx, struct outbox *ob, int64_t delivery_id,
    const char *env_from, const char *rcpt, const struct buf *msg,
    struct err *err)
{
	const struct job *j = ctx->job;
	const char *rcpts[1] = { rcpt };
	struct smtp_result res = { 0 };
	struct db_delivery_outcome o = { 0 };
	const char *state;
	char q[300];

	if (ob->smtp == NULL && open_smtp(&ctx->w->cfg, &ob->smtp, err) < 0) {
		/* a bad [smtp] setting: nothing can be sent by anyone */
		o.reason = err->msg;
		if (record(ctx, delivery_id, "failed", &o, err) < 0)
			return -1;
		return -1;
	}
	if (smtp_send(ob->smtp, env_from, rcpts, 1, buf_str(msg), msg->len,
	        &res, err) == 0) {
		o.code = res.code;
		o.reply = res.reply;
		log_info("event=mail_sent job=%lld delivery=%lld code=%ld "
		    "bytes=%zu", (long long)j->id, (long long)delivery_id,
		    res.code, msg->len);
		if (ctx->sent != NULL) {
			/* The runner writes it with the job's completion. */
			ctx->sent->delivery_id = delivery_id;
			ctx->sent->code = res.code;
			str_copy(ctx->sent->reply, sizeof ctx->sent->reply,
			    res.reply);
			return 0;
		}
		return record(ctx, delivery_id, "sent", &o, err);
	}
	/* Whatever went wrong, the next send starts on a fresh connection. */
	smtp_close(&ob->smtp);
	/* A connection lost or stalled after "354" leaves that as the last
	 * reply: record what went wrong instead, and no code. */
	o.code = res.code >= 400 ? res.code : 0;
	o.reply = res.code >= 400 && res.reply[0] != '\0' ? res.reply : err->msg;
	if (err->temp) {
		if (j->attempts < j->max_attempts) {
			state = "deferred";
		} else {
			state = "failed";
			o.reason = "temporary failures until the last attempt";
			err->temp = false;
		}
	} else {
		state = res.stage == SMTP_STAGE_RCPT && res.code / 100 == 5
		    ? "bounced" : "failed";
		o.reason = o.reply;
	}
	log_warn("event=mail_not_sent job=%lld delivery=%lld state=%s "
	    "code=%ld stage=%d reply=%s", (long long)j->id,
	    (long long)delivery_id, state, res.code, (int)res.stage,
	    log_quote(q, sizeof q, o.reply));
	{
		struct err keep = *err;
		if (record(ctx, delivery_id, state, &o, err) < 0)
			return -1;
		/* A 5xx at RCPT is a hard bounce: suppress the address (never
		 * applied to login mail) and flag the patient. */
		if (strcmp(state, "bounced") == 0 &&
		    db_suppressions_add_bounce(ctx->db, delivery_id, o.reply,
		        err) < 0)
			return -1;
		*err = keep;
	}
	return -1;
}

int
outbox_give_up(struct job_ctx *ctx, int64_t delivery_id, struct err *err,
    const char *fmt, ...)
{
	struct db_delivery_outcome o = { 0 };
	char msg[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	o.reason = msg;
	if (delivery_id > 0 &&
	    db_deliveries_record(ctx->db, delivery_id, "failed", &o, err) < 0)
		return -1;
	return err_set(err, false, "%s", msg);
}

int
outbox_delivery(struct job_ctx *ctx, struct db_delivery *d,
    struct db_delivery_new *dn, const char *from_address, bool suppressed,
    const char *suppression_reason, char *msgid, size_t size,
    struct err *err)
{
	char reason[128];

	if (d->id > 0) {
		if ((size_t)snprintf(msgid, size, "<%s>", d->message_id) >= size)
			return err_set(err, false, "delivery %lld: Message-ID "
			    "too long", (long long)d->id);
		return 1;
	}
	if (compose_message_id_new(email_domain(from_address), msgid, size,
	    err) < 0)
		return -1;
	dn->message_id = msgid;
	if (suppressed) {
		snprintf(reason, sizeof reason, "suppressed: %s",
		    suppression_reason);
		dn->state = "suppressed";
		dn->reason = reason;
	}
	if (db_deliveries_insert(ctx->db, dn, &d->id, err) < 0)
		return -1;
	if (suppressed) {
		log_info("event=mail_suppressed job=%lld delivery=%lld reason=%s",
		    (long long)ctx->job->id, (long long)d->id,
		    suppression_reason);
		return 0;
	}
	return 1;
}

int
outbox_delivery_find(struct job_ctx *ctx, const char *kind,
    struct db_delivery *d, struct err *err)
{
	int rc = db_deliveries_find_job(ctx->db, ctx->job->id, kind, d, err);

	if (rc <= 0)
		return rc < 0 ? -1 : 1;
	if (strcmp(d->state, "sent") == 0 || strcmp(d->state, "suppressed") == 0)
		return 0;
	if (strcmp(d->state, "queued") != 0 && strcmp(d->state, "deferred") != 0)
		return err_set(err, false, "%s: delivery %lld is %s", kind,
		    (long long)d->id, d->state);
	return 1;
}

int
outbox_followup_delivery(struct job_ctx *ctx, struct db_delivery *d,
    const char *kind, const struct db_followup *f, char *msgid, size_t size,
    struct err *err)
{
	struct db_delivery_new dn = {
		.job_id = ctx->job->id,
		.kind = kind,
		.practice_id = f->practice_id,
		.patient_id = f->patient_id,
		.recipient = f->email,
	};

	return outbox_delivery(ctx, d, &dn, f->from_address, f->suppressed,
	    f->suppression_reason, msgid, size, err);
}

int
outbox_followup_send(struct job_ctx *ctx, struct outbox *ob,
    int64_t delivery_id, const char *what, const struct db_followup *f,
    const struct template_mail *tm, const char *msgid, bool reply,
    struct buf *msg, struct err *err)
{
	const char *refs[1] = { f->in_reply_to };
	bool re = reply && f->in_reply_to[0] != '\0';
	char bounce[TOKEN_ADDRESS_SIZE];
	struct compose_mail m = {
		.from = { f->from_name[0] != '\0' ? f->from_name
		                                  : f->practice_name,
		          f->from_address },
		.to = { NULL, f->email },
		.subject = tm->subject,
		.message_id = msgid,
		.in_reply_to = re ? f->in_reply_to : NULL,
		.references = refs,
		.n_references = re ? 1 : 0,
		.auto_submitted = true,
		.auto_replied = reply,
		.text = tm->text,
		.html = tm->html,
	};

	if (compose_build(&m, msg, err) < 0)
		return outbox_give_up(ctx, delivery_id, err, "%s: compose: %s",
		    what, err->msg);
	if (outbox_bounce_address(ob, delivery_id, bounce, err) < 0)
		return outbox_give_up(ctx, delivery_id, err, "%s: %s", what,
		    err->msg);
	return outbox_send(ctx, ob, delivery_id, bounce, f->email, msg, err);
}
