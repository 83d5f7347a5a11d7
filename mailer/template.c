/* mailer/template.c: built-in mail templates, overrides from a directory,
 * and the {{name}} filler (contract in template.h).
 *
 * A template is parsed once, at load, into segments (literal text or a
 * variable index), so rendering cannot meet an unknown name. A set owns its
 * sources and segments; render only reads it. */
#include "mailer/template.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/csv.h"
#include "common/html.h"
#include "common/mem.h"
#include "common/utf8.h"

#define VAR_NAME_MAX 32

enum var_type { VAR_LINE, VAR_MULTI, VAR_URL };

enum {
	V_PRACTICE, V_LINK, V_CODE, V_MINUTES, V_PATIENT, V_STAFF, V_MESSAGE,
	V_SENT_AT, V_SENDER, V_DAYS, V_EXPLANATION, V_EMERGENCY, V_COUNT
};

static const struct {
	const char *name;
	enum var_type type;
} var_defs[V_COUNT] = {
	[V_PRACTICE] = { "practice_name", VAR_LINE },
	[V_LINK] = { "link", VAR_URL },
	[V_CODE] = { "code", VAR_LINE },
	[V_MINUTES] = { "minutes", VAR_LINE },
	[V_PATIENT] = { "patient_name", VAR_LINE },
	[V_STAFF] = { "staff_name", VAR_LINE },
	[V_MESSAGE] = { "message_text", VAR_MULTI },
	[V_SENT_AT] = { "sent_at", VAR_LINE },
	[V_SENDER] = { "sender_address", VAR_LINE },
	[V_DAYS] = { "days", VAR_LINE },
	[V_EXPLANATION] = { "explanation", VAR_LINE },
	[V_EMERGENCY] = { "emergency_text", VAR_MULTI },
};

#define BIT(v) (1u << (v))

static const struct {
	const char *name;
	unsigned vars;                  /* BIT(V_…) of the variables it takes */
	const char *txt;                /* built-in "<kind>.txt" */
	const char *html;               /* built-in "<kind>.html" */
} kinds[TEMPLATE_KINDS] = {
[TEMPLATE_MAGIC_LINK] = {
	"magic_link", BIT(V_PRACTICE) | BIT(V_LINK) | BIT(V_CODE) | BIT(V_MINUTES),
	"Subject: Your sign-in link for {{practice_name}}\n"
	"\n"
	"Hello,\n"
	"\n"
	"Use this link to sign in to {{practice_name}}:\n"
	"\n"
	"{{link}}\n"
	"\n"
	"Or enter this code on the sign-in page:\n"
	"\n"
	"    {{code}}\n"
	"\n"
	"The link and the code work once and expire in {{minutes}} minutes.\n"
	"If you did not ask to sign in, you can ignore this email.\n",
	"<p style=\"margin:0 0 16px;\">Hello,</p>\n"
	"<p style=\"margin:0 0 24px;\">Use this button to sign in to "
	"{{practice_name}}:</p>\n"
	"<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" "
	"border=\"0\" style=\"margin:0 auto 24px;border-collapse:collapse;\">"
	"<tr><td align=\"center\" style=\"border-radius:6px;"
	"background-color:#1d4ed8;\">\n"
	"<a href=\"{{link}}\" style=\"display:inline-block;padding:16px 40px;"
	"font-size:20px;font-weight:bold;line-height:1.2;color:#ffffff;"
	"text-decoration:none;border-radius:6px;\">Sign in</a>\n"
	"</td></tr></table>\n"
	"<p style=\"margin:0 0 8px;\">Or enter this code on the sign-in "
	"page:</p>\n"
	"<p style=\"margin:0 0 24px;font-family:'Courier New',Courier,"
	"monospace;font-size:34px;font-weight:bold;letter-spacing:6px;"
	"text-align:center;\">{{code}}</p>\n"
	"<p style=\"margin:0 0 16px;font-size:14px;color:#4b5563;\">The link "
	"and the code work once and expire in {{minutes}} minutes. If you did "
	"not ask to sign in, you can ignore this email.</p>\n"
	"<p style=\"margin:0;font-size:12px;color:#6b7280;"
	"word-break:break-all;\">If the button does not work, open this "
	"address: {{link}}</p>\n",
},
[TEMPLATE_NOTIFY_PHI_FREE] = {
	"notify_phi_free", BIT(V_PRACTICE) | BIT(V_LINK),
	"Subject: New message from {{practice_name}}\n"
	"\n"
	"Hello,\n"
	"\n"
	"You have a new message from {{practice_name}}. Read it and reply "
	"here:\n"
	"\n"
	"{{link}}\n"
	"\n"
	"You can also answer by replying to this email.\n",
	"<p style=\"margin:0 0 16px;\">Hello,</p>\n"
	"<p style=\"margin:0 0 24px;\">You have a new message from "
	"{{practice_name}}.</p>\n"
	"<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" "
	"border=\"0\" style=\"margin:0 auto 24px;border-collapse:collapse;\">"
	"<tr><td align=\"center\" style=\"border-radius:6px;"
	"background-color:#1d4ed8;\">\n"
	"<a href=\"{{link}}\" style=\"display:inline-block;padding:16px 40px;"
	"font-size:20px;font-weight:bold;line-height:1.2;color:#ffffff;"
	"text-decoration:none;border-radius:6px;\">Read and reply</a>\n"
	"</td></tr></table>\n"
	"<p style=\"margin:0;font-size:14px;color:#4b5563;\">You can also "
	"answer by replying to this email.</p>\n",
},
[TEMPLATE_NOTIFY_FULL_TEXT] = {
	"notify_full_text", BIT(V_PRACTICE) | BIT(V_LINK) | BIT(V_PATIENT) |
	    BIT(V_STAFF) | BIT(V_MESSAGE),
	"Subject: New message from {{practice_name}}\n"
	"\n"
	"Hello {{patient_name}},\n"
	"\n"
	"{{staff_name}} ({{practice_name}}) wrote:\n"
	"\n"
	"{{message_text}}\n"
	"\n"
	"Reply to this email to answer, or read the conversation here:\n"
	"{{link}}\n",
	"<p style=\"margin:0 0 16px;\">Hello {{patient_name}},</p>\n"
	"<p style=\"margin:0 0 8px;color:#4b5563;\">{{staff_name}} "
	"({{practice_name}}) wrote:</p>\n"
	"<div style=\"margin:0 0 24px;padding:12px 16px;border-left:4px solid "
	"#1d4ed8;background-color:#f9fafb;white-space:pre-wrap;"
	"word-wrap:break-word;\">{{message_text}}</div>\n"
	"<p style=\"margin:0 0 16px;\">Reply to this email to answer, or read "
	"the conversation online:</p>\n"
	"<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" "
	"border=\"0\" style=\"margin:0 auto;border-collapse:collapse;\">"
	"<tr><td align=\"center\" style=\"border-radius:6px;"
	"background-color:#1d4ed8;\">\n"
	"<a href=\"{{link}}\" style=\"display:inline-block;padding:14px 32px;"
	"font-size:18px;font-weight:bold;line-height:1.2;color:#ffffff;"
	"text-decoration:none;border-radius:6px;\">Open the conversation</a>\n"
	"</td></tr></table>\n",
},
[TEMPLATE_TEST] = {
	"test", BIT(V_PRACTICE) | BIT(V_SENT_AT),
	"Subject: postern test mail for {{practice_name}}\n"
	"\n"
	"This is a test mail from postern for {{practice_name}}, sent at "
	"{{sent_at}}.\n"
	"If you can read it, outgoing mail works.\n",
	"<p style=\"margin:0 0 16px;\">This is a test mail from postern for "
	"{{practice_name}}, sent at {{sent_at}}.</p>\n"
	"<p style=\"margin:0;\">If you can read it, outgoing mail works.</p>\n",
},
[TEMPLATE_CONFIRM_SENDER] = {
	"confirm_sender", BIT(V_PRACTICE) | BIT(V_LINK) | BIT(V_SENDER) |
	    BIT(V_DAYS),
	"Subject: Did you write to {{practice_name}}?\n"
	"\n"
	"Hello,\n"
	"\n"
	"{{practice_name}} received a reply that says it is from you, sent "
	"from {{sender_address}}.\n"
	"\n"
	"If you sent it, confirm here:\n"
	"\n"
	"{{link}}\n"
	"\n"
	"If not, you can ignore this email or tell us so on that page. Until "
	"you confirm, the message is held and not added to your "
	"conversation. The link works for {{days}} days.\n",
	"<p style=\"margin:0 0 16px;\">Hello,</p>\n"
	"<p style=\"margin:0 0 16px;\">{{practice_name}} received a reply "
	"that says it is from you, sent from <strong>{{sender_address}}"
	"</strong>.</p>\n"
	"<p style=\"margin:0 0 24px;\">If you sent it, confirm here:</p>\n"
	"<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" "
	"border=\"0\" style=\"margin:0 auto 24px;border-collapse:collapse;\">"
	"<tr><td align=\"center\" style=\"border-radius:6px;"
	"background-color:#1d4ed8;\">\n"
	"<a href=\"{{link}}\" style=\"display:inline-block;padding:16px 40px;"
	"font-size:20px;font-weight:bold;line-height:1.2;color:#ffffff;"
	"text-decoration:none;border-radius:6px;\">Was this you?</a>\n"
	"</td></tr></table>\n"
	"<p style=\"margin:0 0 16px;font-size:14px;color:#4b5563;\">If not, "
	"you can ignore this email or tell us so on that page. Until you "
	"confirm, the message is held and not added to your conversation. "
	"The link works for {{days}} days.</p>\n"
	"<p style=\"margin:0;font-size:12px;color:#6b7280;"
	"word-break:break-all;\">If the button does not work, open this "
	"address: {{link}}</p>\n",
},
[TEMPLATE_REJECTION_NOTICE] = {
	"rejection_notice", BIT(V_PRACTICE) | BIT(V_LINK) | BIT(V_EXPLANATION),
	"Subject: Your message to {{practice_name}} was not delivered\n"
	"\n"
	"Hello,\n"
	"\n"
	"Your message could not be delivered to {{practice_name}}: "
	"{{explanation}}\n"
	"\n"
	"Please sign in to send your message:\n"
	"\n"
	"{{link}}\n"
	"\n"
	"This is an automatic notice.\n",
	"<p style=\"margin:0 0 16px;\">Hello,</p>\n"
	"<p style=\"margin:0 0 24px;\">Your message could not be delivered "
	"to {{practice_name}}: {{explanation}}</p>\n"
	"<p style=\"margin:0 0 24px;\">Please sign in to send your "
	"message:</p>\n"
	"<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" "
	"border=\"0\" style=\"margin:0 auto 24px;border-collapse:collapse;\">"
	"<tr><td align=\"center\" style=\"border-radius:6px;"
	"background-color:#1d4ed8;\">\n"
	"<a href=\"{{link}}\" style=\"display:inline-block;padding:16px 40px;"
	"font-size:20px;font-weight:bold;line-height:1.2;color:#ffffff;"
	"text-decoration:none;border-radius:6px;\">Sign in</a>\n"
	"</td></tr></table>\n"
	"<p style=\"margin:0;font-size:14px;color:#4b5563;\">This is an "
	"automatic notice.</p>\n",
},
[TEMPLATE_URGENT_ACK] = {
	"urgent_ack", BIT(V_PRACTICE) | BIT(V_EMERGENCY),
	"Subject: {{practice_name}} received your message\n"
	"\n"
	"Hello,\n"
	"\n"
	"We received your message. If this is an emergency:\n"
	"\n"
	"{{emergency_text}}\n"
	"\n"
	"This is an automatic reply from {{practice_name}}.\n",
	"<p style=\"margin:0 0 16px;\">Hello,</p>\n"
	"<p style=\"margin:0 0 8px;\">We received your message. If this is "
	"an emergency:</p>\n"
	"<div style=\"margin:0 0 24px;padding:12px 16px;border-left:4px solid "
	"#b91c1c;background-color:#fef2f2;font-size:18px;font-weight:bold;"
	"white-space:pre-wrap;word-wrap:break-word;\">{{emergency_text}}</div>\n"
	"<p style=\"margin:0;font-size:14px;color:#4b5563;\">This is an "
	"automatic reply from {{practice_name}}.</p>\n",
},
};

/* The document around every HTML fragment: one centred column, at most
 * 560 px, inline styles, system fonts, no external resources. */
static const char shell_head[] =
	"<!DOCTYPE html>\n"
	"<html>\n"
	"<head>\n"
	"<meta charset=\"utf-8\">\n"
	"<meta name=\"viewport\" content=\"width=device-width, "
	"initial-scale=1\">\n"
	"<title>";
static const char shell_body[] =
	"</title>\n"
	"</head>\n"
	"<body style=\"margin:0;padding:0;background-color:#f3f4f6;\">\n";
static const char shell_separator[] =
	"<p style=\"margin:0;padding:12px 16px 0;font-family:Arial,Helvetica,"
	"sans-serif;font-size:12px;line-height:1.4;color:#6b7280;"
	"text-align:center;\">";
static const char shell_open[] =
	"<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" "
	"cellspacing=\"0\" border=\"0\" style=\"border-collapse:collapse;"
	"background-color:#f3f4f6;\">\n"
	"<tr><td align=\"center\" style=\"padding:16px 8px;\">\n"
	"<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" "
	"cellspacing=\"0\" border=\"0\" style=\"max-width:560px;"
	"border-collapse:collapse;background-color:#ffffff;"
	"border-radius:8px;\">\n"
	"<tr><td style=\"padding:24px 20px;font-family:Arial,Helvetica,"
	"sans-serif;font-size:16px;line-height:1.5;color:#111827;\">\n";
static const char shell_close[] =
	"</td></tr>\n"
	"</table>\n"
	"</td></tr>\n"
	"</table>\n"
	"</body>\n"
	"</html>\n";

struct seg {
	const char *p;          /* literal text (into the set's source) */
	size_t len;
	int var;                /* V_…, or -1 for a literal */
};

struct tpl {
	struct seg *segs;
	size_t n, alloc;
};

struct kind_tpl {
	char *txt_src;          /* owned sources (LF line ends) */
	char *html_src;
	struct tpl subject, text, html;
};

struct template_set {
	struct kind_tpl k[TEMPLATE_KINDS];
};

const char *
template_kind_name(enum template_kind kind)
{
	return (unsigned)kind < TEMPLATE_KINDS ? kinds[kind].name : NULL;
}

int
template_kind_parse(const char *name, enum template_kind *kind_r)
{
	for (int i = 0; i < TEMPLATE_KINDS; i++) {
		if (name != NULL && strcmp(name, kinds[i].name) == 0) {
			*kind_r = (enum template_kind)i;
			return 0;
		}
	}
	return -1;
}

/* ------------------------------------------------------------ parsing */

static void
seg_add(struct tpl *t, const char *p, size_t len, int var)
{
	if (var < 0 && len == 0)
		return;
	if (t->n == t->alloc) {
		t->alloc = t->alloc ? 2 * t->alloc : 16;
		t->segs = xrealloc(t->segs, t->alloc * sizeof *t->segs);
	}
	t->segs[t->n++] = (struct seg){ p, len, var };
}

static void
tpl_fini(struct tpl *t)
{
	free(t->segs);
	memset(t, 0, sizeof *t);
}

static void
known_list(unsigned mask, char *out, size_t size)
{
	size_t n = 0;

	out[0] = '\0';
	for (int v = 0; v < V_COUNT; v++) {
		if (!(mask & BIT(v)))
			continue;
		int k = snprintf(out + n, size - n, "%s%s", n ? ", " : "",
		    var_defs[v].name);
		if (k < 0 || (size_t)k >= size - n)
			return;
		n += (size_t)k;
	}
}

/* Parses s[0..len) (starting on line `line` of file) into t. */
static int
parse_tpl(const char *file, unsigned line, const char *s, size_t len,
    enum template_kind kind, bool subject, struct tpl *t, struct err *err)
{
	size_t i = 0, lit = 0;

	while (i < len) {
		char name[VAR_NAME_MAX + 1];
		size_t k = 0;
		int v;

		if (s[i] == '\n') {
			line++;
			i++;
			continue;
		}
		if (s[i] != '{' || i + 1 >= len || s[i + 1] != '{') {
			i++;
			continue;
		}
		while (i + 2 + k < len && k <= VAR_NAME_MAX &&
		    ((s[i + 2 + k] >= 'a' && s[i + 2 + k] <= 'z') ||
		    s[i + 2 + k] == '_'))
			k++;
		if (k == 0 || k > VAR_NAME_MAX || i + 3 + k >= len ||
		    s[i + 2 + k] != '}' || s[i + 3 + k] != '}')
			return err_set(err, false, "%s:%u: a {{ that does not "
			    "start a {{name}} placeholder", file, line);
		memcpy(name, s + i + 2, k);
		name[k] = '\0';
		for (v = 0; v < V_COUNT; v++)
			if (strcmp(name, var_defs[v].name) == 0)
				break;
		if (v == V_COUNT || !(kinds[kind].vars & BIT(v))) {
			char known[256];

			known_list(kinds[kind].vars, known, sizeof known);
			return err_set(err, false, "%s:%u: unknown variable "
			    "{{%s}} (%s knows: %s)", file, line, name,
			    kinds[kind].name, known);
		}
		if (subject && var_defs[v].type == VAR_MULTI)
			return err_set(err, false, "%s:%u: {{%s}} spans lines "
			    "and cannot be in a subject", file, line, name);
		seg_add(t, s + lit, i - lit, -1);
		seg_add(t, NULL, 0, v);
		i += 4 + k;
		lit = i;
	}
	seg_add(t, s + lit, len - lit, -1);
	return 0;
}

/* HTML we refuse in a template: scripts, anything loaded from elsewhere
 * (images, frames, styles, fonts), forms, and event handlers. */
static int
lint_html(const char *file, const char *s, struct err *err)
{
	static const char *const bad[] = {       /* anywhere */
		"<script", "<iframe", "<frame", "<object", "<embed", "<applet",
		"<img", "<picture", "<video", "<audio", "<source", "<link",
		"<meta", "<base", "<form", "<input", "<button", "<style",
		"<svg", "<math", "<!doctype", "<html", "<head", "<body",
	};
	static const char *const bad_in_tag[] = {
		"javascript:", "vbscript:", "data:", "url(", "@import",
		"expression(", "src=", "srcset=", "background=",
	};
	unsigned line = 1;
	bool in_tag = false;

	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '\n')
			line++;
		else if (*p == '<')
			in_tag = true;
		else if (*p == '>')
			in_tag = false;
		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
			if (strncasecmp(p, bad[i], strlen(bad[i])) == 0)
				return err_set(err, false, "%s:%u: %s is not "
				    "allowed in mail HTML (no scripts, remote "
				    "content, forms or a document of its own)",
				    file, line, bad[i]);
		for (size_t i = 0; in_tag &&
		    i < sizeof bad_in_tag / sizeof bad_in_tag[0]; i++)
			if (strncasecmp(p, bad_in_tag[i],
			    strlen(bad_in_tag[i])) == 0)
				return err_set(err, false, "%s:%u: %s is not "
				    "allowed in mail HTML (no scripts or remote "
				    "content)", file, line, bad_in_tag[i]);
		/* an event handler attribute: on…= inside a tag */
		if (in_tag && (*p == ' ' || *p == '\t' || *p == '\n') &&
		    strncasecmp(p + 1, "on", 2) == 0) {
			const char *q = p + 3;
			while ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z'))
				q++;
			while (*q == ' ' || *q == '\t')
				q++;
			if (q > p + 3 && *q == '=')
				return err_set(err, false, "%s:%u: event handler "
				    "attributes are not allowed in mail HTML",
				    file, line);
		}
	}
	return 0;
}

/* src (owned, NUL-terminated) with CRLF made LF; checked text. */
static int
check_source(const char *file, char *src, size_t *len_r, struct err *err)
{
	size_t n = *len_r, j = 0;
	unsigned line = 1;

	if (!utf8_valid(src, n))
		return err_set(err, false, "%s: invalid UTF-8", file);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c == '\r' && i + 1 < n && src[i + 1] == '\n')
			continue;
		if (c == '\n')
			line++;
		else if ((c < 0x20 && c != '\t') || c == 0x7f)
			return err_set(err, false, "%s:%u: a control character",
			    file, line);
		src[j++] = (char)c;
	}
	src[j] = '\0';
	*len_r = j;
	return 0;
}

/* Reads path into a new string. 1: read; 0: no such file; -1: err set. */
static int
read_file(const char *path, char **src_r, size_t *len_r, struct err *err)
{
	struct stat st;
	struct buf b;
	char chunk[8192];
	int fd, ret = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return err_set_errno(err, false, errno, "%s", path);
	}
	buf_init(&b, LIMIT_TEMPLATE_FILE);
	if (fstat(fd, &st) < 0) {
		err_set_errno(err, false, errno, "%s", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set(err, false, "%s: not a regular file", path);
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof chunk);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err_set_errno(err, false, errno, "%s", path);
			goto out;
		}
		if (r == 0)
			break;
		if (buf_add(&b, chunk, (size_t)r) < 0) {
			err_set(err, false, "%s: larger than %d bytes", path,
			    LIMIT_TEMPLATE_FILE);
			goto out;
		}
	}
	if (memchr(buf_str(&b), '\0', b.len) != NULL) {
		err_set(err, false, "%s: contains a NUL byte", path);
		goto out;
	}
	*src_r = buf_steal(&b, len_r);
	ret = 1;
out:
	close(fd);
	buf_fini(&b);
	return ret;
}

/* "<kind>.txt": "Subject: …", an empty line, the body. */
static int
load_txt(const char *file, struct kind_tpl *kt, enum template_kind kind,
    struct err *err)
{
	char *s = kt->txt_src;
	char *nl = strchr(s, '\n');
	size_t slen;

	if (strncmp(s, "Subject:", 8) != 0 || nl == NULL)
		return err_set(err, false, "%s:1: the first line must be "
		    "\"Subject: …\"", file);
	if (nl[1] != '\n')
		return err_set(err, false, "%s:2: an empty line must follow "
		    "the subject", file);
	s += 8;
	while (*s == ' ' || *s == '\t')
		s++;
	slen = (size_t)(nl - s);
	while (slen > 0 && (s[slen - 1] == ' ' || s[slen - 1] == '\t'))
		slen--;
	if (slen == 0)
		return err_set(err, false, "%s:1: empty subject", file);
	if (parse_tpl(file, 1, s, slen, kind, true, &kt->subject, err) < 0)
		return -1;
	return parse_tpl(file, 3, nl + 2, strlen(nl + 2), kind, false,
	    &kt->text, err);
}

static int
load_kind(const char *dir, enum template_kind kind, struct kind_tpl *kt,
    struct err *err)
{
	char path[PATH_MAX], file[PATH_MAX];
	size_t len;
	int r = 0;

	for (int html = 0; html <= 1; html++) {
		char **src = html ? &kt->html_src : &kt->txt_src;

		r = 0;
		snprintf(file, sizeof file, "built-in %s.%s", kinds[kind].name,
		    html ? "html" : "txt");
		if (dir != NULL && dir[0] != '\0') {
			int n = snprintf(path, sizeof path, "%s/%s.%s", dir,
			    kinds[kind].name, html ? "html" : "txt");
			if (n < 0 || (size_t)n >= sizeof path)
				return err_set(err, false, "templates directory "
				    "name too long");
			r = read_file(path, src, &len, err);
			if (r < 0)
				return -1;
			if (r == 1)
				snprintf(file, sizeof file, "%s", path);
		}
		if (r == 0) {
			*src = xstrdup(html ? kinds[kind].html : kinds[kind].txt);
			len = strlen(*src);
		}
		if (check_source(file, *src, &len, err) < 0)
			return -1;
		if (html) {
			if (lint_html(file, *src, err) < 0 ||
			    parse_tpl(file, 1, *src, len, kind, false, &kt->html,
			    err) < 0)
				return -1;
		} else if (load_txt(file, kt, kind, err) < 0) {
			return -1;
		}
	}
	return 0;
}

int
template_set_load(const char *dir, struct template_set **set_r,
    struct err *err)
{
	struct template_set *set = xcalloc(1, sizeof *set);

	*set_r = NULL;
	if (dir != NULL && dir[0] != '\0') {
		struct stat st;

		if (stat(dir, &st) < 0) {
			err_set_errno(err, false, errno, "templates directory "
			    "%s", dir);
			template_set_free(&set);
			return -1;
		}
		if (!S_ISDIR(st.st_mode)) {
			template_set_free(&set);
			return err_set(err, false, "templates directory %s: "
			    "not a directory", dir);
		}
	}
	for (int k = 0; k < TEMPLATE_KINDS; k++) {
		if (load_kind(dir, (enum template_kind)k, &set->k[k], err) < 0) {
			template_set_free(&set);
			return -1;
		}
	}
	*set_r = set;
	return 0;
}

void
template_set_free(struct template_set **setp)
{
	struct template_set *set = *setp;

	if (set == NULL)
		return;
	for (int k = 0; k < TEMPLATE_KINDS; k++) {
		tpl_fini(&set->k[k].subject);
		tpl_fini(&set->k[k].text);
		tpl_fini(&set->k[k].html);
		free(set->k[k].txt_src);
		free(set->k[k].html_src);
	}
	free(set);
	*setp = NULL;
}

/* ------------------------------------------------------------ rendering */

static int
check_value(const char *name, enum var_type type, const char *v,
    struct err *err)
{
	size_t n;

	if (v == NULL)
		return err_set(err, false, "variable %s: no value", name);
	n = strlen(v);
	if (n > (type == VAR_URL ? LIMIT_TEMPLATE_URL : LIMIT_TEMPLATE_VALUE))
		return err_set(err, false, "variable %s: longer than %d bytes",
		    name, type == VAR_URL ? LIMIT_TEMPLATE_URL :
		    LIMIT_TEMPLATE_VALUE);
	if (!utf8_valid(v, n))
		return err_set(err, false, "variable %s: invalid UTF-8", name);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if ((c == '\r' || c == '\n') && type != VAR_MULTI)
			return err_set(err, false, "variable %s: contains a "
			    "line break", name);
		if (((c < 0x20 && c != '\t' && c != '\r' && c != '\n') ||
		    c == 0x7f) || (c == '\t' && type == VAR_URL))
			return err_set(err, false, "variable %s: contains a "
			    "control character", name);
	}
	if (type == VAR_URL) {
		if (strncasecmp(v, "https://", 8) != 0 &&
		    strncasecmp(v, "http://", 7) != 0)
			return err_set(err, false, "variable %s: not an "
			    "http(s) URL", name);
		for (size_t i = 0; i < n; i++)
			if (v[i] == ' ' || v[i] == '"' || v[i] == '<' ||
			    v[i] == '>' || (unsigned char)v[i] >= 0x80)
				return err_set(err, false, "variable %s: a "
				    "space, quote, angle bracket or non-ASCII "
				    "character in the URL", name);
	}
	return 0;
}

static int
fill(const struct tpl *t, const char *const values[V_COUNT], bool html,
    struct buf *b)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct seg *s = &t->segs[i];

		if (s->var < 0) {
			if (buf_add(b, s->p, s->len) < 0)
				return -1;
		} else if (html) {
			if (html_escapes(b, values[s->var]) < 0)
				return -1;
		} else if (buf_adds(b, values[s->var]) < 0) {
			return -1;
		}
	}
	return 0;
}

int
template_render(const struct template_set *set, enum template_kind kind,
    bool separator, const struct template_var *vars, size_t nvars,
    struct template_mail *out, struct err *err)
{
	const char *values[V_COUNT] = { 0 };
	const struct kind_tpl *kt;
	struct buf subj, text, html;
	int ret = -1;

	memset(out, 0, sizeof *out);
	if ((unsigned)kind >= TEMPLATE_KINDS)
		return err_set(err, false, "template kind %d", (int)kind);
	kt = &set->k[kind];
	for (size_t i = 0; i < nvars; i++) {
		int v;

		for (v = 0; v < V_COUNT; v++)
			if (vars[i].name != NULL &&
			    strcmp(vars[i].name, var_defs[v].name) == 0)
				break;
		if (v == V_COUNT || !(kinds[kind].vars & BIT(v)))
			return err_set(err, false, "%s: no variable %s",
			    kinds[kind].name, vars[i].name ? vars[i].name :
			    "(null)");
		if (values[v] != NULL)
			return err_set(err, false, "%s: variable %s given twice",
			    kinds[kind].name, var_defs[v].name);
		if (check_value(var_defs[v].name, var_defs[v].type,
		    vars[i].value, err) < 0) {
			err_prefix(err, "%s", kinds[kind].name);
			return -1;
		}
		values[v] = vars[i].value;
	}
	for (int v = 0; v < V_COUNT; v++)
		if ((kinds[kind].vars & BIT(v)) && values[v] == NULL)
			return err_set(err, false, "%s: variable %s not given",
			    kinds[kind].name, var_defs[v].name);

	buf_init(&subj, LIMIT_TEMPLATE_OUT);
	buf_init(&text, LIMIT_TEMPLATE_OUT);
	buf_init(&html, LIMIT_TEMPLATE_OUT);
	if (fill(&kt->subject, values, false, &subj) < 0)
		goto over;
	if (separator && (buf_adds(&text, TEMPLATE_SEPARATOR_HEAD) < 0 ||
	    buf_adds(&text, values[V_PRACTICE]) < 0 ||
	    buf_adds(&text, TEMPLATE_SEPARATOR_TAIL "\n\n") < 0))
		goto over;
	if (fill(&kt->text, values, false, &text) < 0)
		goto over;
	if (buf_adds(&html, shell_head) < 0 ||
	    html_escape(&html, subj.data, subj.len) < 0 ||
	    buf_adds(&html, shell_body) < 0)
		goto over;
	if (separator && (buf_adds(&html, shell_separator) < 0 ||
	    html_escapes(&html, TEMPLATE_SEPARATOR_HEAD) < 0 ||
	    html_escapes(&html, values[V_PRACTICE]) < 0 ||
	    html_escapes(&html, TEMPLATE_SEPARATOR_TAIL) < 0 ||
	    buf_adds(&html, "</p>\n") < 0))
		goto over;
	if (buf_adds(&html, shell_open) < 0 ||
	    fill(&kt->html, values, true, &html) < 0 ||
	    buf_adds(&html, shell_close) < 0)
		goto over;
	out->subject = buf_steal(&subj, NULL);
	out->text = buf_steal(&text, NULL);
	out->html = buf_steal(&html, NULL);
	ret = 0;
	goto out;
over:
	err_set(err, false, "%s: a rendered part is larger than %d bytes",
	    kinds[kind].name, LIMIT_TEMPLATE_OUT);
out:
	buf_fini(&subj);
	buf_fini(&text);
	buf_fini(&html);
	return ret;
}

void
template_mail_fini(struct template_mail *m)
{
	free(m->subject);
	free(m->text);
	free(m->html);
	memset(m, 0, sizeof *m);
}
