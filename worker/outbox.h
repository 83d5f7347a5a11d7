/* worker/outbox.h: what mail handlers share, one per runner thread.
 *
 * A struct outbox holds one runner thread's SMTP connection (opened on the
 * first send, reused for every later one, dropped after a failed send so
 * the next one starts clean, closed when the thread ends), the parsed
 * templates and the keys derived from the server key. It is made on the
 * first mail job a thread runs (runner threads that never mail never
 * connect) and freed by runner_main() on exit.
 *
 * outbox_send() is the one place where an SMTP outcome becomes a
 * deliveries row state and a job result:
 *   2xx                           sent                    job done
 *   4xx, timeout, connection lost deferred (reply kept)   retry (err->temp)
 *     ... on the job's last attempt: failed               dead
 *   5xx at RCPT                   bounced                 dead
 *     (and the address suppressed, the patient's bounce_state hard)
 *   other 5xx / permanent error   failed                  dead */
#ifndef POSTERN_WORKER_OUTBOX_H
#define POSTERN_WORKER_OUTBOX_H

#include <stdint.h>

#include "common/buf.h"
#include "common/crypto.h"
#include "common/db_deliveries.h"
#include "common/db_followups.h"
#include "common/err.h"
#include "mailer/smtp.h"
#include "mailer/template.h"
#include "mailer/token.h"
#include "worker/handlers.h"

/* Key id written into reply and bounce tokens made here. */
#define OUTBOX_KEY_ID 1
/* How long a reply address stays good (days); a bounce address. */
#define OUTBOX_REPLY_TOKEN_DAYS 180
#define OUTBOX_BOUNCE_TOKEN_DAYS 30

struct outbox;   /* opaque: fields live in outbox.c */

/* The process's templates: [mail] templates_dir loaded and checked by
 * postern-worker at start (a broken override is a startup error naming
 * file:line) and again at SIGHUP. On error the templates in use stay and
 * -1 is returned with err set. Thread-safe: outboxes pick up the new set
 * at their next mail; a set is freed when no outbox uses it any more. */
MUST_CHECK int outbox_templates_load(const char *dir, struct err *err);
/* Drops the process's reference (at exit). */
void outbox_templates_unload(void);

/* The thread's outbox, made on first use into *ctx->outbox (keys
 * derived; templates as loaded by outbox_templates_load(), or loaded from
 * [mail] templates_dir now if nothing loaded them yet). -1 with err set:
 * no server key, or a bad template override (temp: retried until fixed). */
MUST_CHECK int outbox_get(struct job_ctx *ctx, struct outbox **ob_r,
    struct err *err);
void outbox_free(struct outbox **obp);         /* NULL-safe; sets NULL */

const struct template_set *outbox_templates(const struct outbox *ob);
/* Subkeys (borrowed; valid while ob lives). */
const uint8_t *outbox_login_token_key(const struct outbox *ob);
const uint8_t *outbox_login_code_key(const struct outbox *ob);

/* reply+TOKEN@domain naming thread_id, or bounce+TOKEN@[mail]
 * bounce_domain naming delivery_id, into out[TOKEN_ADDRESS_SIZE]. */
MUST_CHECK int outbox_reply_address(const struct outbox *ob,
    int64_t thread_id, const char *domain, char out[TOKEN_ADDRESS_SIZE],
    struct err *err);
MUST_CHECK int outbox_bounce_address(const struct outbox *ob,
    int64_t delivery_id, char out[TOKEN_ADDRESS_SIZE], struct err *err);

/* Sends msg from env_from to rcpt over the thread's connection and records
 * the outcome on delivery_id (table in the file comment). 0: sent. -1: err
 * set, err->temp tells retry from dead; the delivery row already says
 * what happened. */
MUST_CHECK int outbox_send(struct job_ctx *ctx, struct outbox *ob,
    int64_t delivery_id, const char *env_from, const char *rcpt,
    const struct buf *msg, struct err *err);

/* The delivery row an earlier attempt of this job made (kind), into *d
 * (d->id 0 when none). 1: go on; 0: it was sent or suppressed already
 * (done before a crash); -1: err set (also when the row is in a state a
 * job cannot resume, e.g. bounced). */
int outbox_delivery_find(struct job_ctx *ctx, const char *kind,
    struct db_delivery *d, struct err *err);

/* The delivery row of a job that sends one mail: made now (*d->id == 0)
 * with a fresh Message-ID from from_address's domain, in state suppressed
 * when suppressed (reason in the row, logged), else queued; or the one an
 * earlier attempt made, whose Message-ID is reused. msgid[size] gets
 * "<id>". 1: go on and send; 0: suppressed, the job is done; -1: err. */
int outbox_delivery(struct job_ctx *ctx, struct db_delivery *d,
    struct db_delivery_new *dn, const char *from_address, bool suppressed,
    const char *suppression_reason, char *msgid, size_t size,
    struct err *err);

/* Marks the delivery failed with reason (nothing was sent: a deadline, a
 * message that cannot be composed) and returns -1 with err set to reason,
 * permanent, so handlers can `return outbox_give_up(…)`. */
int outbox_give_up(struct job_ctx *ctx, int64_t delivery_id,
    struct err *err, const char *fmt, ...) PRINTF_LIKE(4, 5);

/* The two halves every one-mail follow-up (confirm_sender,
 * rejection_notice, urgent_ack) shares, to the patient f->email from the
 * practice's identity in f. outbox_followup_delivery: outbox_delivery for
 * this job's row of kind. outbox_followup_send: the mail composed from tm
 * (with reply, an automatic reply to f->in_reply_to when there is one),
 * then sent with the delivery's bounce address; a mail that cannot be
 * composed gives the delivery up, prefixed with what. msg is the caller's,
 * so it can wipe what it put in. Results as outbox_delivery and
 * outbox_send. */
int outbox_followup_delivery(struct job_ctx *ctx, struct db_delivery *d,
    const char *kind, const struct db_followup *f, char *msgid, size_t size,
    struct err *err);
MUST_CHECK int outbox_followup_send(struct job_ctx *ctx, struct outbox *ob,
    int64_t delivery_id, const char *what, const struct db_followup *f,
    const struct template_mail *tm, const char *msgid, bool reply,
    struct buf *msg, struct err *err);

#endif
