/* worker/job_imap_sync.c: the `imap_sync` job ingests new mail from the
 * [imap] mailbox into postern, exactly once.
 *
 * Payload: {} (the mailbox is [imap] mailbox). Enqueued with the unique key
 * "imap_sync:<mailbox>" by the IMAP watcher (worker/imap_watch.c) when IDLE
 * reports activity and at least every [imap] poll_s.
 *
 * One ingester per mailbox: a session advisory lock on the runner's
 * connection; a run that finds it taken ends at once (the holder ingests).
 * Then: SELECT (UIDVALIDITY), mailbox_state.last_uid for that UIDVALIDITY,
 * UID SEARCH of what is newer, and per chunk of up to [imap] batch
 * messages (and LIMIT_IMAP_REPLY bytes): one UID FETCH of sizes and dates,
 * one UID FETCH of the bodies (messages over LIMIT_MAIL_SIZE: the header
 * only), the analysis (mailer/inbound: the same code as `posternctl mail
 * inspect`), and ONE transaction holding every row the chunk produces and
 * the advance of mailbox_state. Only after the commit are the messages
 * flagged \Seen or moved ([imap] processed_folder). A crash anywhere
 * repeats at most the uncommitted chunk; inbound_mail's UNIQUE (mailbox,
 * uidvalidity, uid) and UNIQUE (mailbox, sha256) make a repeat a no-op.
 * A new UIDVALIDITY starts at UID 0 again; the content hash keeps mail
 * already ingested from coming in twice.
 *
 * Outcomes (inbound_mail.outcome, reason):
 *   rejected     over the size cap, or MIME refused (raw kept for review)
 *   auto_reply   RFC 3834 and friends: recorded, never answered
 *   bounce       the delivery (VERP token, else the DSN's recipient) is
 *                marked bounced; hard bounces suppress the address
 *   message      a valid reply token whose thread's patient is the From:
 *                patient_message + staff notification + task + audit row;
 *                red-flag words make it urgent (all staff notified, and
 *                an urgent_ack mail when the practice enables it)
 *   held         a valid token but another sender: the patient is asked
 *                (confirm_sender job); release_held makes the message
 *   quarantined  expired, invalid or missing token, unknown thread
 *   duplicate    the thread already has this Message-ID
 * In-Reply-To and References never attach mail to a thread: only the
 * token does. Patients writing with an expired or no token, too large a
 * mail or one whose MIME we refuse (judged by its header alone) get one
 * rejection_notice per reason per day (never automatic mail, never unknown
 * addresses: no backscatter). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "common/buf.h"
#include "common/crypto.h"
#include "common/db_audit.h"
#include "common/db_inbound_mail.h"
#include "common/db_jobs.h"
#include "common/db_payload.h"
#include "common/email.h"
#include "common/job_kinds.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/utf8.h"
#include "mailer/imap.h"
#include "mailer/inbound.h"
#include "worker/handlers.h"
#include "worker/outbox.h"      /* OUTBOX_KEY_ID */

#define CHUNK_BYTES (8 * 1024 * 1024)   /* body bytes fetched at once */
#define RED_FLAGS_MAX 200
#define RED_FLAG_LEN 100

static const char *const builtin_red_flags[] = {
	"chest pain", "can't breathe", "cannot breathe", "difficulty breathing",
	"suicidal", "suicide", "kill myself", "end my life", "overdose",
	"heart attack", "stroke", "unconscious", "severe bleeding",
	"seizure", "anaphylaxis",
};

struct item {
	uint32_t uid;
	uint32_t size;
	int64_t internal_date;
	char *raw;                 /* owned; the header only when too_large */
	size_t len;
	bool fetched;              /* raw is set */
	bool too_large;
	bool analyzed;             /* ib is valid */
	char refused[300];         /* why MIME was refused, "" if it was not */
	bool hdr_only;             /* MIME refused: ib is of the header alone */
	struct inbound ib;
	uint8_t sha[32];
};

struct sync {
	struct job_ctx *ctx;
	const struct cfg *cfg;
	const char *mailbox;
	uint32_t uidvalidity;
	struct imap_conn *imap;
	struct token_key keys[2];
	const char *self[1];
	struct inbound_opts io;
	struct item *items;        /* the chunk */
	size_t n;
	struct audit_entry audit[LIMIT_IMAP_BATCH];
	char audit_details[LIMIT_IMAP_BATCH][64];
	size_t naudit;
	char flags[RED_FLAGS_MAX][RED_FLAG_LEN + 1];
	size_t nflags;
	long long count[8];        /* by outcome, for the log */
	/* The last thread looked up, for this chunk's transaction only:
	 * replies to one notification tend to come together. */
	struct db_thread thread;
	int thread_found;          /* -1: nothing cached */
};

enum { C_MESSAGE, C_HELD, C_QUARANTINED, C_AUTO, C_BOUNCE, C_REJECTED,
       C_DUP, C_SEEN };

/* ---- small pure helpers ---------------------------------------------- */

/* s cut to at most max bytes on a UTF-8 boundary, into a new string. */
static char *
utf8_cut(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	return xstrndup(s, n);
}

/* A Message-ID fit for the msgid domain (no <>, 3..995 bytes, no space
 * or control), into out[size]; "" when it is not one. */
static const char *
msgid_clean(const char *v, char *out, size_t size)
{
	size_t n;

	out[0] = '\0';
	if (v == NULL)
		return NULL;
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v == '<')
		v++;
	n = strcspn(v, ">");
	if (n < 3 || n > 995 || n >= size)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c <= 0x20 || c == 0x7f || c == '<')
			return NULL;
	}
	memcpy(out, v, n);
	out[n] = '\0';
	return out;
}

/* Attachment file name safe for the column: no path separators or
 * controls, at most 255 bytes; "attachment" when empty. */
static char *
filename_clean(const char *name)
{
	char *s = utf8_cut(name != NULL && name[0] ? name : "attachment",
	    LIMIT_MAIL_FILENAME);

	for (char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '/' ||
		    *p == '\\')
			*p = '_';
	return s;
}

static bool
type_allowed(const char *list, const char *type)
{
	size_t tl = strlen(type);

	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ",");
		const char *q = p;
		size_t m = n;

		while (m > 0 && (*q == ' ' || *q == '\t')) {
			q++;
			m--;
		}
		while (m > 0 && (q[m - 1] == ' ' || q[m - 1] == '\t'))
			m--;
		if (m == tl && strncasecmp(q, type, m) == 0)
			return true;
		p += n;
		if (*p == ',')
			p++;
	}
	return false;
}

/* ASCII case-insensitive search of needle in hay[len]. */
static bool
contains_ci(const char *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle);

	if (n == 0 || n > len)
		return false;
	for (size_t i = 0; i + n <= len; i++)
		if (strncasecmp(hay + i, needle, n) == 0)
			return true;
	return false;
}

static const char *
red_flag(const struct sync *s, const char *text, size_t len)
{
	for (size_t i = 0; i < s->nflags; i++)
		if (contains_ci(text, len, s->flags[i]))
			return s->flags[i];
	return NULL;
}

/* [ingest] red_flags_file, one phrase per line ('#' comments), else the
 * built-in list. A missing or unreadable file is an error (the operator
 * asked for it): the job retries and says so. */
static int
load_red_flags(struct sync *s, struct err *err)
{
	const char *path = s->cfg->ingest.red_flags_file;
	char line[512];
	FILE *f;

	s->nflags = 0;
	if (path == NULL || path[0] == '\0') {
		for (size_t i = 0; i < sizeof builtin_red_flags /
		    sizeof builtin_red_flags[0]; i++)
			snprintf(s->flags[s->nflags++], RED_FLAG_LEN + 1, "%s",
			    builtin_red_flags[i]);
		return 0;
	}
	f = fopen(path, "r");
	if (f == NULL)
		return err_set_errno(err, true, errno, "imap_sync: [ingest] "
		    "red_flags_file %s", path);
	while (fgets(line, sizeof line, f) != NULL) {
		size_t n = strcspn(line, "\r\n");
		char *p = line;

		line[n] = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		n = strlen(p);
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			p[--n] = '\0';
		if (n == 0 || p[0] == '#')
			continue;
		if (n > RED_FLAG_LEN || s->nflags == RED_FLAGS_MAX) {
			fclose(f);
			return err_set(err, true, "imap_sync: %s: a phrase over "
			    "%d bytes or more than %d phrases", path,
			    RED_FLAG_LEN, RED_FLAGS_MAX);
		}
		snprintf(s->flags[s->nflags++], RED_FLAG_LEN + 1, "%s", p);
	}
	fclose(f);
	return 0;
}

/* ---- follow-up jobs and audit ---------------------------------------- */

static int
enqueue(struct sync *s, const char *kind, const char *payload,
    const char *once_key, const char *unique_key, struct err *err)
{
	const struct job_kind *k = job_kind_find(kind);
	struct job_new j = {
		.kind = kind,
		.payload = payload,
		.priority = k != NULL ? k->priority : 0,
		.max_attempts = k != NULL ? k->max_attempts : 0,
		.once_key = once_key,
		.unique_key = unique_key,
	};
	int64_t id;

	return db_jobs_enqueue(s->ctx->db, &j, &id, err) < 0 ? -1 : 0;
}

static void
today(char out[16])
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(out, 16, "%Y-%m-%d", &tm);
}

/* One rejection notice per address per reason per day, only to patients
 * we know. */
static int
notice(struct sync *s, int64_t inbound_id, const char *email,
    const char *reason, struct err *err)
{
	char payload[LIMIT_EMAIL + 200], key[LIMIT_EMAIL + 100], day[16];
	int64_t patient;
	int r;

	if (email == NULL || email[0] == '\0')
		return 0;
	r = db_inbound_patient_by_email(s->ctx->db, email, &patient, err);
	if (r <= 0)
		return r;
	today(day);
	/* email is a checked address: no quotes or backslashes in it */
	snprintf(payload, sizeof payload, "{\"inbound_mail_id\": %lld, "
	    "\"email\": \"%s\", \"reason\": \"%s\"}", (long long)inbound_id,
	    email, reason);
	snprintf(key, sizeof key, "rejection_notice:%s:%s:%s", email, reason,
	    day);
	return enqueue(s, "rejection_notice", payload, key, NULL, err);
}

static void
audit_add(struct sync *s, int64_t practice, int64_t patient,
    const char *action, const char *object_type, int64_t object_id,
    uint32_t uid)
{
	struct audit_entry *a;

	if (s->naudit == LIMIT_IMAP_BATCH)
		return;                 /* cannot happen: one per message */
	a = &s->audit[s->naudit];
	snprintf(s->audit_details[s->naudit], sizeof s->audit_details[0],
	    "{\"channel\": \"email\", \"uid\": %u}", uid);
	*a = (struct audit_entry){
		.practice_id = practice,
		.actor_kind = patient ? "patient" : "system",
		.actor_id = patient,
		.action = action,
		.object_type = object_type,
		.object_id = object_id,
		.details = s->audit_details[s->naudit],
	};
	s->naudit++;
}

/* ---- one message ------------------------------------------------------ */

static int
store_attachments(struct sync *s, const struct item *it, int64_t inbound_id,
    int64_t message_id, struct err *err)
{
	const struct parsed_mail *pm = it->ib.pm;
	size_t max = (size_t)s->cfg->ingest.attachment_max_kb * 1024;

	for (size_t i = 0; i < pm->natt; i++) {
		const struct parsed_attachment *a = &pm->att[i];
		const char *refused = NULL;
		char *name = filename_clean(a->filename);
		const char *type = a->content_type;
		int r;

		if (i >= LIMIT_MAIL_ATTACHMENTS)
			refused = "too_many";
		else if (!type_allowed(s->cfg->ingest.attachment_types, type))
			refused = "type_not_allowed";
		else if (a->size > max)
			refused = "too_large";
		if (strchr(type, '/') == NULL || strlen(type) > 255)
			type = "application/octet-stream";
		r = db_inbound_attachment(s->ctx->db, inbound_id, message_id,
		    name, type, refused ? NULL : a->data, a->size, refused, err);
		free(name);
		if (r < 0)
			return -1;
	}
	return 0;
}

/* The row fields every outcome shares. */
static void
base_row(const struct sync *s, const struct item *it,
    struct db_inbound_row *r, char *msgid, size_t msgid_size,
    char **from_r, char **subject_r)
{
	const struct parsed_mail *pm = it->analyzed || it->hdr_only ?
	    it->ib.pm : NULL;

	*from_r = NULL;
	*subject_r = NULL;
	memset(r, 0, sizeof *r);
	r->mailbox = s->mailbox;
	r->uidvalidity = s->uidvalidity;
	r->uid = it->uid;
	r->sha256 = it->sha;
	r->size = it->size;
	r->received_at = it->internal_date;
	r->raw = it->too_large ? NULL : it->raw;
	r->raw_len = it->too_large ? 0 : it->len;
	if (pm != NULL) {
		r->message_id = msgid_clean(pm->message_id, msgid, msgid_size);
		if (it->ib.from_addr[0])
			*from_r = xstrdup(it->ib.from_addr);
		else if (pm->from != NULL)
			*from_r = utf8_cut(pm->from, 998);
		if (pm->subject != NULL)
			*subject_r = utf8_cut(pm->subject, 998);
	}
	r->from_addr = *from_r;
	r->subject = *subject_r;
}

static int
ingest_message(struct sync *s, struct item *it, const struct db_thread *t,
    int64_t inbound_id, bool attachments_stored, struct err *err)
{
	const struct parsed_mail *pm = it->ib.pm;
	const struct trim_result *tr = &it->ib.trim;
	const char *body = pm->text + tr->reply_off;
	size_t body_len = tr->reply_len;
	char *bodys = NULL, *elided = NULL, *subject = NULL;
	char msgid[1000], irt[1000];
	const char *flag;
	int64_t message_id = 0;
	int r = -1;

	if (!it->ib.trimmed) {
		body = pm->text;
		body_len = pm->text_len;
	}
	bodys = xstrndup(body, body_len);
	if (tr->elided_len > 0 && it->ib.trimmed)
		elided = xstrndup(pm->text + tr->elided_off, tr->elided_len);
	subject = utf8_cut(pm->subject != NULL ? pm->subject : "", 998);
	flag = red_flag(s, pm->text, pm->text_len);
	{
		struct db_inbound_message m = {
			.inbound_mail_id = inbound_id,
			.t = t,
			.subject = subject,
			.body = bodys,
			.elided = elided,
			.confidence = tr->confidence == TRIM_HIGH ? "high" : "low",
			.message_id = msgid_clean(pm->message_id, msgid,
			    sizeof msgid),
			.in_reply_to = msgid_clean(pm->in_reply_to, irt,
			    sizeof irt),
			.references = pm->references,
			.urgent = flag != NULL,
		};
		r = db_inbound_message(s->ctx->db, &m, &message_id, err);
	}
	if (r < 0)
		goto out;
	if (r == 0) {
		s->count[C_DUP]++;
		r = 0;
		goto out;
	}
	s->count[C_MESSAGE]++;
	if ((attachments_stored ?
	    db_inbound_attachments_link(s->ctx->db, inbound_id, message_id, err) :
	    store_attachments(s, it, inbound_id, message_id, err)) < 0) {
		r = -1;
		goto out;
	}
	audit_add(s, t->practice_id, t->patient_id, "message.received",
	    "patient_message", message_id, it->uid);
	if (flag != NULL) {
		log_warn("event=urgent_message patient=%lld message=%lld "
		    "phrase=%s", (long long)t->patient_id,
		    (long long)message_id, LOG_Q(flag));
		if (t->autoack) {
			char payload[128], key[96], day[16];

			today(day);
			snprintf(payload, sizeof payload, "{\"patient_id\": %lld, "
			    "\"patient_message_id\": %lld}",
			    (long long)t->patient_id, (long long)message_id);
			snprintf(key, sizeof key, "urgent_ack:%lld:%s",
			    (long long)t->patient_id, day);
			if (enqueue(s, "urgent_ack", payload, key, NULL, err) < 0) {
				r = -1;
				goto out;
			}
		}
	}
	r = 0;
out:
	free(bodys);
	free(elided);
	free(subject);
	return r;
}

/* The bounce branch: which delivery, how hard; the inbound row is in. */
static int
ingest_bounce(struct sync *s, const struct item *it, int64_t delivery,
    int64_t inbound_id, struct err *err)
{
	const struct inbound *ib = &it->ib;
	char reason[400];
	bool hard = ib->have_dsn ? ib->dsn.hard : true;
	int64_t patient, practice;
	int r;

	if (delivery == 0)
		return 0;
	snprintf(reason, sizeof reason, "%s%s%s", ib->have_dsn &&
	    ib->dsn.status[0] ? ib->dsn.status : hard ? "5.0.0" : "4.0.0",
	    ib->have_dsn && ib->dsn.diagnostic[0] ? " " : "",
	    ib->have_dsn ? ib->dsn.diagnostic : "");
	r = db_inbound_bounce(s->ctx->db, delivery, reason, hard, &patient,
	    &practice, err);
	if (r < 0)
		return -1;
	if (r > 0)
		audit_add(s, practice, 0, hard ? "mail.bounced_hard" :
		    "mail.bounced_soft", "inbound_mail", inbound_id, it->uid);
	return 0;
}

/* Decides and writes one message, in the open transaction. */
static int
ingest_one(struct sync *s, struct item *it, struct err *err)
{
	struct db_inbound_row row;
	struct db_thread t;
	char msgid[1000], reason[300];
	char *from = NULL, *subject = NULL;
	const char *notice_reason = NULL;
	int64_t inbound_id = 0, delivery = 0;
	bool is_message = false;
	int r = -1;

	base_row(s, it, &row, msgid, sizeof msgid, &from, &subject);
	memset(&t, 0, sizeof t);

	if (it->too_large) {
		row.outcome = "rejected";
		snprintf(reason, sizeof reason, "too_large: %u bytes, over %d",
		    it->size, LIMIT_MAIL_SIZE);
		row.reason = reason;
		if (it->analyzed && it->ib.cls.kind == CLASSIFY_REPLY)
			notice_reason = "too_large";
		s->count[C_REJECTED]++;
	} else if (!it->analyzed) {
		row.outcome = "rejected";
		snprintf(reason, sizeof reason, "not_readable: %.280s", it->refused);
		row.reason = reason;
		if (it->hdr_only && it->ib.cls.kind == CLASSIFY_REPLY)
			notice_reason = "not_readable";
		s->count[C_REJECTED]++;
	} else if (it->ib.cls.kind == CLASSIFY_AUTO_REPLY) {
		row.outcome = "auto_reply";
		row.reason = it->ib.cls.reason;
		s->count[C_AUTO]++;
	} else if (it->ib.cls.kind == CLASSIFY_BOUNCE) {
		const struct inbound *ib = &it->ib;

		row.outcome = "bounce";
		if (ib->bounce == TOKEN_VALID || ib->bounce == TOKEN_EXPIRED)
			delivery = ib->bounce_info.id;
		else if (ib->have_dsn && ib->dsn.recipient[0] &&
		    db_inbound_delivery_by_rcpt(s->ctx->db, ib->dsn.recipient,
		    &delivery, err) < 0)
			goto out;
		if (delivery != 0)
			snprintf(reason, sizeof reason, "%s %s delivery %lld",
			    ib->have_dsn && !ib->dsn.hard ? "soft" : "hard",
			    ib->have_dsn && ib->dsn.status[0] ? ib->dsn.status :
			    "-", (long long)delivery);
		else
			snprintf(reason, sizeof reason, "no matching delivery");
		row.reason = reason;
		s->count[C_BOUNCE]++;
	} else {
		const struct inbound *ib = &it->ib;

		switch (ib->reply) {
		case TOKEN_VALID:
			if (s->thread_found >= 0 &&
			    s->thread.thread_id == ib->reply_info.id) {
				t = s->thread;
				r = s->thread_found;
			} else {
				r = db_inbound_thread(s->ctx->db,
				    ib->reply_info.id, &t, err);
				if (r < 0)
					goto out;
				t.thread_id = ib->reply_info.id;
				s->thread = t;
				s->thread_found = r;
			}
			row.practice_id = t.practice_id;
			row.patient_id = t.patient_id;
			if (r == 0) {
				row.outcome = "quarantined";
				row.reason = "thread_unknown";
				row.patient_id = 0;
				row.practice_id = 0;
			} else if (ib->from_addr[0] &&
			    strcasecmp(ib->from_addr, t.email) == 0) {
				row.outcome = "message";
				is_message = true;
			} else {
				row.outcome = "held";
				row.reason = "sender_not_patient";
				row.held = true;
			}
			break;
		case TOKEN_EXPIRED:
			row.outcome = "quarantined";
			row.reason = "token_expired";
			notice_reason = "token_expired";
			break;
		case TOKEN_INVALID:
			row.outcome = "quarantined";
			row.reason = "token_invalid";
			break;
		case TOKEN_MISSING:
			row.outcome = "quarantined";
			row.reason = "no_token";
			notice_reason = "no_token";
			break;
		}
		if (ib->cls.kind != CLASSIFY_REPLY)
			notice_reason = NULL;   /* no usable From */
		if (strcmp(row.outcome, "quarantined") == 0)
			s->count[C_QUARANTINED]++;
		else if (row.held)
			s->count[C_HELD]++;
	}

	r = db_inbound_insert(s->ctx->db, &row, &inbound_id, err);
	if (r < 0)
		goto out;
	if (r == 0) {                  /* ingested before (same UID or bytes) */
		s->count[C_SEEN]++;
		r = 0;
		goto out;
	}
	if (is_message) {
		if (ingest_message(s, it, &t, inbound_id, false, err) < 0)
			goto fail;
	} else if (row.held) {
		char payload[64], key[64];

		if (store_attachments(s, it, inbound_id, 0, err) < 0)
			goto fail;
		snprintf(payload, sizeof payload, "{\"inbound_mail_id\": %lld}",
		    (long long)inbound_id);
		snprintf(key, sizeof key, "confirm_sender:%lld",
		    (long long)inbound_id);
		if (enqueue(s, "confirm_sender", payload, NULL, key, err) < 0)
			goto fail;
		audit_add(s, t.practice_id, 0, "message.held", "inbound_mail",
		    inbound_id, it->uid);
	} else if (delivery != 0) {
		if (ingest_bounce(s, it, delivery, inbound_id, err) < 0)
			goto fail;
	}
	if (notice_reason != NULL &&
	    notice(s, inbound_id, it->ib.from_addr, notice_reason, err) < 0)
		goto fail;
	r = 0;
	goto out;
fail:
	r = -1;
out:
	free(from);
	free(subject);
	return r;
}

/* The careful path of a chunk whose fast transaction failed on data: one
 * savepoint per message; a message the database refuses is recorded as
 * rejected with the reason instead (nothing is dropped). */
static int
ingest_one_guarded(struct sync *s, struct item *it, struct err *err)
{
	size_t naudit = s->naudit;
	struct err e1 = { 0 };

	if (db_cmd(s->ctx->db, "SAVEPOINT one", 0, NULL, err) < 0)
		return -1;
	if (ingest_one(s, it, &e1) == 0)
		return db_cmd(s->ctx->db, "RELEASE SAVEPOINT one", 0, NULL, err);
	if (e1.temp) {
		*err = e1;
		return -1;
	}
	s->naudit = naudit;
	if (db_cmd(s->ctx->db, "ROLLBACK TO SAVEPOINT one", 0, NULL, err) < 0)
		return -1;
	log_warn("event=ingest_refused uid=%u error=%s", it->uid,
	    LOG_Q(e1.msg));
	{
		struct db_inbound_row row;
		char msgid[1000], reason[500];
		char *from, *subject;
		int64_t id;

		base_row(s, it, &row, msgid, sizeof msgid, &from, &subject);
		row.outcome = "rejected";
		snprintf(reason, sizeof reason, "database refused: %.470s",
		    e1.msg);
		row.reason = reason;
		/* the refusal may have been about these fields */
		row.message_id = NULL;
		if (from != NULL && strlen(from) > 200)
			from[200] = '\0';
		int r = db_inbound_insert(s->ctx->db, &row, &id, err);
		free(from);
		free(subject);
		if (r < 0)
			return -1;
		s->count[C_REJECTED]++;
	}
	return 0;
}

/* ---- a chunk ------------------------------------------------------------ */

static int
got_body(void *arg, uint32_t uid, const char *raw, size_t len, struct err *err)
{
	struct sync *s = arg;

	(void)err;
	for (size_t i = 0; i < s->n; i++) {
		struct item *it = &s->items[i];

		if (it->uid != uid || it->too_large)
			continue;
		it->raw = xmalloc(len + 1);
		memcpy(it->raw, raw, len);
		it->raw[len] = '\0';
		it->len = len;
		it->fetched = true;
		return 0;
	}
	return 0;
}

static void
analyze(struct sync *s, struct item *it)
{
	struct err e = { 0 };

	if (!it->too_large) {
		crypto_sha256(it->raw, it->len, it->sha);
	} else {
		/* the header only: hash it with the size, so the same big mail
		 * after a UIDVALIDITY change is still the same */
		crypto_hash_sha256_state st;
		char sz[24];

		snprintf(sz, sizeof sz, "\n%u", it->size);
		crypto_hash_sha256_init(&st);
		crypto_hash_sha256_update(&st, (const uint8_t *)it->raw, it->len);
		crypto_hash_sha256_update(&st, (const uint8_t *)sz, strlen(sz));
		crypto_hash_sha256_final(&st, it->sha);
	}
	if (inbound_analyze(it->raw, it->len, &s->io, &it->ib, &e) == 0) {
		it->analyzed = true;
		return;
	}
	inbound_fini(&it->ib);
	snprintf(it->refused, sizeof it->refused, "%s", e.msg);
	/* What the header says is still worth having: who wrote, the
	 * subject for the record, and whether the mail was automatic (a
	 * person gets a rejection notice, a robot never does). */
	if (!it->too_large &&
	    inbound_analyze_header(it->raw, it->len, &s->io, &it->ib, &e) == 0)
		it->hdr_only = true;
	else
		inbound_fini(&it->ib);
}

static void
items_free(struct sync *s)
{
	for (size_t i = 0; i < s->n; i++) {
		if (s->items[i].analyzed || s->items[i].hdr_only)
			inbound_fini(&s->items[i].ib);
		free(s->items[i].raw);
	}
	free(s->items);
	s->items = NULL;
	s->n = 0;
}

static int
chunk_tx(struct sync *s, bool guarded, struct err *err)
{
	uint32_t last = 0;

	s->naudit = 0;
	s->thread_found = -1;
	memset(s->count, 0, sizeof s->count);
	if (db_begin(s->ctx->db, err) < 0)
		return -1;
	for (size_t i = 0; i < s->n; i++) {
		struct item *it = &s->items[i];

		if (it->fetched) {
			if ((guarded ? ingest_one_guarded(s, it, err) :
			    ingest_one(s, it, err)) < 0)
				goto fail;
		}
		/* expunged before we fetched it: nothing to record */
		last = it->uid;
	}
	if (db_inbound_advance(s->ctx->db, s->mailbox, s->uidvalidity, last,
	    err) < 0)
		goto fail;
	if (db_audit_append(s->ctx->db, s->cfg->security.server_key, s->audit,
	    s->naudit, err) < 0)
		goto fail;
	if (db_commit(s->ctx->db, err) < 0)
		return -1;
	return 0;
fail:
	db_rollback(s->ctx->db);
	return -1;
}

/* uids[n] (ascending): list, fetch, analyze, commit, mark. */
static int
do_chunk(struct sync *s, const struct imap_msg *msgs, size_t n,
    struct err *err)
{
	uint32_t uids[LIMIT_IMAP_BATCH], fetch[LIMIT_IMAP_BATCH];
	size_t nf = 0, total = 0;
	int ret = -1;

	s->items = xcalloc(n, sizeof *s->items);
	s->n = n;
	for (size_t i = 0; i < n; i++) {
		struct item *it = &s->items[i];

		it->uid = msgs[i].uid;
		it->size = msgs[i].size;
		it->internal_date = msgs[i].internal_date;
		uids[i] = it->uid;
		if (it->size > LIMIT_MAIL_SIZE) {
			struct buf hb;
			int r;

			it->too_large = true;
			buf_init(&hb, LIMIT_PARSE_HEADER);
			r = imap_fetch_header(s->imap, it->uid, &hb, err);
			if (r < 0) {
				buf_fini(&hb);
				goto out;
			}
			if (r == 1) {
				it->len = hb.len;
				it->raw = xmalloc(hb.len + 1);
				memcpy(it->raw, buf_str(&hb), hb.len);
				it->raw[hb.len] = '\0';
				it->fetched = true;
			}
			buf_fini(&hb);
		} else {
			fetch[nf++] = it->uid;
			total += it->size;
		}
	}
	if (nf > 0 && imap_fetch_many(s->imap, fetch, nf, total, got_body, s,
	    err) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (s->items[i].fetched)
			analyze(s, &s->items[i]);

	if (chunk_tx(s, false, err) < 0) {
		if (err->temp)
			goto out;
		log_warn("event=ingest_chunk_refused first_uid=%u error=%s "
		    "action=retry_one_by_one", uids[0], LOG_Q(err->msg));
		err_clear(err);
		if (chunk_tx(s, true, err) < 0)
			goto out;
	}
	log_info("event=ingested mailbox=%s uidvalidity=%u uids=%u-%u "
	    "messages=%lld held=%lld quarantined=%lld auto_replies=%lld "
	    "bounces=%lld rejected=%lld duplicates=%lld already=%lld",
	    LOG_Q(s->mailbox), s->uidvalidity, uids[0], uids[n - 1],
	    s->count[C_MESSAGE], s->count[C_HELD], s->count[C_QUARANTINED],
	    s->count[C_AUTO], s->count[C_BOUNCE], s->count[C_REJECTED],
	    s->count[C_DUP], s->count[C_SEEN]);
	/* After the commit only: a failure here is logged; the mail is in
	 * postern already and last_uid moved past it. */
	{
		struct err e2 = { 0 };
		const char *folder = s->cfg->imap.processed_folder;

		if (imap_mark_done(s->imap, uids, n, folder[0] ? folder : NULL,
		    &e2) < 0)
			log_warn("event=imap_mark_failed mailbox=%s uids=%u-%u "
			    "error=%s", LOG_Q(s->mailbox), uids[0],
			    uids[n - 1], LOG_Q(e2.msg));
	}
	ret = 0;
out:
	items_free(s);
	return ret;
}

/* Mail at or below last_uid is in postern already; a crash after a
 * commit and before imap_mark_done() leaves it unmarked: mark it now. */
static int
mark_leftovers(struct sync *s, uint32_t last, struct err *err)
{
	const char *folder = s->cfg->imap.processed_folder;
	uint32_t *uids = NULL;
	size_t n = 0;
	int r;

	if (imap_uids_upto(s->imap, last, folder[0] == '\0', LIMIT_IMAP_BATCH,
	    &uids, &n, err) < 0)
		return -1;
	if (n == 0)
		return 0;
	r = imap_mark_done(s->imap, uids, n, folder[0] ? folder : NULL, err);
	if (r == 0)
		log_info("event=imap_marked_leftovers mailbox=%s count=%zu",
		    LOG_Q(s->mailbox), n);
	free(uids);
	return r;
}

/* Ingests uids[n] (ascending, from UID SEARCH) chunk by chunk: sizes
 * first, then chunks of [imap] batch messages and at most CHUNK_BYTES of
 * bodies. *last follows each commit. */
static int
ingest_uids(struct sync *s, const uint32_t *uids, size_t n, uint32_t *last,
    struct err *err)
{
	size_t done = 0;

	while (done < n && !*s->ctx->stop) {
		struct imap_msg msgs[LIMIT_IMAP_BATCH];
		size_t k = n - done, nm = 0, take = 0, bytes = 0;

		if (k > (size_t)s->cfg->imap.batch)
			k = (size_t)s->cfg->imap.batch;
		if (imap_list(s->imap, uids + done, k, msgs, &nm, err) < 0)
			return -1;
		if (nm == 0) {              /* all expunged meanwhile */
			done += k;
			continue;
		}
		while (take < nm) {
			size_t sz = msgs[take].size > LIMIT_MAIL_SIZE ? 0 :
			    msgs[take].size;

			if (take > 0 && bytes + sz > CHUNK_BYTES)
				break;
			bytes += sz;
			take++;
		}
		if (do_chunk(s, msgs, take, err) < 0)
			return -1;
		*last = msgs[take - 1].uid;
		while (done < n && uids[done] <= *last)
			done++;
	}
	return 0;
}

static int
sync_mailbox(struct sync *s, struct err *err)
{
	uint32_t uidnext, last, before;
	bool other;

	if (imap_select(s->imap, s->mailbox, &s->uidvalidity, &uidnext,
	    err) < 0)
		return -1;
	if (db_inbound_last_uid(s->ctx->db, s->mailbox, s->uidvalidity, &last,
	    &other, err) < 0)
		return -1;
	if (last == 0 && other)
		log_warn("event=uidvalidity_changed mailbox=%s uidvalidity=%u "
		    "action=resync_by_content_hash", LOG_Q(s->mailbox),
		    s->uidvalidity);
	if (mark_leftovers(s, last, err) < 0)
		return -1;
	for (;;) {
		uint32_t *uids = NULL;
		size_t n = 0;
		int r;

		if (*s->ctx->stop)
			return 0;
		if (imap_uids_after(s->imap, last, LIMIT_IMAP_BATCH, &uids, &n,
		    err) < 0)
			return -1;
		if (n == 0)
			return 0;
		before = last;
		r = ingest_uids(s, uids, n, &last, err);
		free(uids);
		if (r < 0)
			return -1;
		if (last == before && !*s->ctx->stop) {
			/* the UIDs found are gone by the time of the FETCH: the
			 * next run looks again (never a busy loop) */
			log_info("event=imap_sync_no_progress mailbox=%s "
			    "last_uid=%u", LOG_Q(s->mailbox), last);
			return 0;
		}
	}
}

/* The state both handlers share; NULL with err set. */
static struct sync *
sync_new(struct job_ctx *ctx, struct err *err)
{
	const struct cfg *cfg = &ctx->w->cfg;
	struct sync *s;

	if (!cfg->security.server_key_set) {
		err_set(err, false, "no server key: reply tokens cannot be "
		    "checked");
		return NULL;
	}
	s = xcalloc(1, sizeof *s);
	s->ctx = ctx;
	s->cfg = cfg;
	s->mailbox = cfg->imap.mailbox;
	if (load_red_flags(s, err) < 0) {
		free(s);
		return NULL;
	}
	token_key_init(&s->keys[0], OUTBOX_KEY_ID, TOKEN_REPLY,
	    cfg->security.server_key);
	token_key_init(&s->keys[1], OUTBOX_KEY_ID, TOKEN_BOUNCE,
	    cfg->security.server_key);
	s->self[0] = cfg->mail.from_address;
	s->io = (struct inbound_opts){
		.reply_domain = NULL,        /* practices have their own */
		.bounce_domain = cfg->mail.bounce_domain[0] ?
		    cfg->mail.bounce_domain : NULL,
		.self = s->self,
		.nself = 1,
		.keys = s->keys,
		.nkeys = 2,
		.now = (int64_t)time(NULL),
	};
	return s;
}

static void
sync_free(struct sync *s)
{
	sodium_memzero(s->keys, sizeof s->keys);
	free(s);
}

int
job_imap_sync(struct job_ctx *ctx, struct err *err)
{
	const struct cfg *cfg = &ctx->w->cfg;
	struct sync *s;
	int r, ret = -1;

	if (cfg->imap.username[0] == '\0')
		return err_set(err, false, "imap_sync: [imap] username is not "
		    "set: no mailbox to read");
	s = sync_new(ctx, err);
	if (s == NULL) {
		err_prefix(err, "imap_sync");
		return -1;
	}

	r = db_inbound_lock(ctx->db, s->mailbox, err);
	if (r < 0)
		goto out_free;
	if (r == 0) {
		log_info("event=imap_sync_busy mailbox=%s note=\"another "
		    "ingester holds the mailbox\"", LOG_Q(s->mailbox));
		ret = 0;
		goto out_free;
	}
	{
		char secret[IMAP_SECRET_MAX];
		struct imap_opts o;
		int rc = imap_opts_from_cfg(&o, cfg, secret, err);

		if (rc == 0)
			rc = imap_open(&o, &s->imap, err);
		sodium_memzero(secret, sizeof secret);
		if (rc < 0) {
			/* a recurring job: keep one retrying (with backoff)
			 * rather than a trail of dead ones */
			err->temp = true;
			goto out_unlock;
		}
	}
	if (sync_mailbox(s, err) < 0) {
		err->temp = true;
		goto out_unlock;
	}
	ret = 0;
out_unlock:
	imap_close(&s->imap);
	db_inbound_unlock(ctx->db, s->mailbox);
out_free:
	sync_free(s);
	return ret;
}

/* ---- release_held ----------------------------------------------------- */

/* Payload {"inbound_mail_id": N, "decision": "confirm"|"decline"},
 * enqueued by httpd's /confirm when the patient answered the
 * confirm_sender mail. One transaction: the held row is decided (it must
 * still be held and pending: a second run changes nothing), and on
 * "confirm" the message is made from its raw bytes exactly as the
 * ingester would have (thread from the reply token, which may have
 * expired meanwhile; the thread must still be this patient's), with its
 * notification, task, the attachments already stored and an audit row. */
int
job_release_held(struct job_ctx *ctx, struct err *err)
{
	static const char *const keys[] = { "inbound_mail_id", "decision" };
	char *v[2] = { NULL, NULL };
	struct db_held held = { 0 };
	struct item it = { 0 };
	struct db_thread t;
	struct sync *s = NULL;
	int64_t id;
	bool confirm;
	int r, ret = -1;

	if (db_payload_get(ctx->db, ctx->job->payload, keys, 2, v, err) < 0)
		return -1;
	id = v[0] != NULL ? strtoll(v[0], NULL, 10) : 0;
	confirm = v[1] != NULL && strcmp(v[1], "confirm") == 0;
	if (id <= 0 || v[1] == NULL || (!confirm && strcmp(v[1], "decline") != 0)) {
		err_set(err, false, "release_held: payload needs inbound_mail_id "
		    "and decision confirm|decline");
		goto out;
	}
	s = sync_new(ctx, err);
	if (s == NULL) {
		err_prefix(err, "release_held");
		goto out;
	}
	if (db_begin(ctx->db, err) < 0)
		goto out;
	r = db_inbound_decide_held(ctx->db, id, confirm, &held, err);
	if (r <= 0) {
		db_rollback(ctx->db);
		if (r == 0) {
			log_info("event=release_held_skipped inbound_mail=%lld "
			    "note=\"not held any more\"", (long long)id);
			ret = 0;
		}
		goto out;
	}
	if (!confirm) {
		audit_add(s, held.practice_id, held.patient_id,
		    "message.sender_declined", "inbound_mail", id, 0);
	} else {
		it.raw = held.raw;
		it.len = held.raw_len;
		it.fetched = true;
		analyze(s, &it);
		r = 0;
		if (it.analyzed && (it.ib.reply == TOKEN_VALID ||
		    it.ib.reply == TOKEN_EXPIRED))
			r = db_inbound_thread(ctx->db, it.ib.reply_info.id, &t, err);
		if (r < 0)
			goto rollback;
		if (r == 0 || t.patient_id != held.patient_id) {
			/* cannot happen for a row the ingester held */
			if (db_inbound_set_outcome(ctx->db, id, "quarantined",
			    "confirmed, but the thread is gone", err) < 0)
				goto rollback;
		} else if (ingest_message(s, &it, &t, id, true, err) < 0) {
			goto rollback;
		}
	}
	if (db_audit_append(ctx->db, s->cfg->security.server_key, s->audit,
	    s->naudit, err) < 0 || db_commit(ctx->db, err) < 0)
		goto rollback;
	log_info("event=held_mail_decided inbound_mail=%lld decision=%s",
	    (long long)id, confirm ? "confirm" : "decline");
	ret = 0;
	goto out;
rollback:
	db_rollback(ctx->db);
out:
	if (it.analyzed || it.hdr_only)
		inbound_fini(&it.ib);
	free(held.raw);
	free(v[0]);
	free(v[1]);
	if (s != NULL)
		sync_free(s);
	return ret;
}
