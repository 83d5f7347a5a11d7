/* common/log.c: logfmt lines on stderr, one write(2) each. */
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "postern";
static enum log_level log_min = LOG_INFO;
static bool log_cli;

static const char *const level_names[] = {
	[LOG_DEBUG] = "debug", [LOG_INFO] = "info",
	[LOG_WARN] = "warn", [LOG_ERROR] = "error",
};

void
log_init(const char *prog)
{
	log_prog = prog;
}

void
log_set_level(enum log_level level)
{
	log_min = level;
}

int
log_level_parse(const char *name, enum log_level *level_r)
{
	for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*level_r = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void
log_set_cli(bool cli)
{
	log_cli = cli;
}

bool
log_enabled(enum log_level level)
{
	return level >= log_min;
}

static void
write_all(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;        /* stderr gone: nowhere left to complain */
		p += w;
		n -= (size_t)w;
	}
}

/* Formats "ts level prog[pid] " into line; returns its length. */
static size_t
prefix(char *line, size_t size, const char *level)
{
	struct timespec ts;
	struct tm tm;
	char when[32];
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, size, "%s.%03ldZ %s %s[%ld] ", when,
	    ts.tv_nsec / 1000000L, level, log_prog, (long)getpid());
	return n < 0 ? 0 : ((size_t)n < size ? (size_t)n : size - 1);
}

static void emit(const char *level, const char *suffix, const char *fmt,
    va_list ap) __attribute__((format(printf, 3, 0)));

static void
emit(const char *level, const char *suffix, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t n = prefix(line, sizeof line - 1, level);
	int m = vsnprintf(line + n, sizeof line - 1 - n, fmt, ap);

	if (m > 0)
		n += (size_t)m < sizeof line - 1 - n ? (size_t)m
		                                      : sizeof line - 2 - n;
	if (suffix != NULL && n < sizeof line - 2) {
		m = snprintf(line + n, sizeof line - 1 - n, "%s", suffix);
		if (m > 0)
			n += (size_t)m < sizeof line - 1 - n ? (size_t)m
			                                      : sizeof line - 2 - n;
	}
	line[n++] = '\n';
	write_all(line, n);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level < log_min)
		return;
	va_start(ap, fmt);
	emit(level_names[level], NULL, fmt, ap);
	va_end(ap);
}

void
log_warn_errno(const char *fmt, ...)
{
	int e = errno;
	char suffix[160], q[128];
	va_list ap;

	if (LOG_WARN < log_min)
		return;
	snprintf(suffix, sizeof suffix, " errno=%d err=%s", e,
	    log_quote(q, sizeof q, strerror(e)));
	va_start(ap, fmt);
	emit("warn", suffix, fmt, ap);
	va_end(ap);
}

static void emit_plain(const char *fmt, ...) PRINTF_LIKE(1, 2);

static void
emit_plain(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit("fatal", NULL, fmt, ap);
	va_end(ap);
}

void
log_fatal_msg(const char *msg)
{
	char line[LOG_LINE_MAX];
	int n;

	if (log_cli) {
		n = snprintf(line, sizeof line, "%s: %s\n", log_prog, msg);
		if (n > 0)
			write_all(line, (size_t)n < sizeof line ? (size_t)n
			                                        : sizeof line - 1);
		return;
	}
	char q[LOG_LINE_MAX / 2];
	emit_plain("event=fatal msg=%s", log_quote(q, sizeof q, msg));
}

static bool
plain_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || strchr("._@:/+-,", c) != NULL;
}

char *
log_quote(char *dst, size_t size, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;
	bool plain = true;

	if (size < 8) {
		if (size > 0)
			dst[0] = '\0';
		return dst;
	}
	if (s == NULL) {
		memcpy(dst, "-", 2);
		return dst;
	}
	for (const unsigned char *q = p; *q != '\0'; q++)
		if (!plain_char(*q)) {
			plain = false;
			break;
		}
	if (plain && *p != '\0') {
		size_t len = strlen(s);
		if (len < size) {
			memcpy(dst, s, len + 1);
			return dst;
		}
	}
	/* Quoted: keep room for the closing quote, "..." and the NUL. */
	dst[o++] = '"';
	for (; *p != '\0'; p++) {
		char esc[5];
		size_t el;

		if (*p == '"' || *p == '\\') {
			esc[0] = '\\'; esc[1] = (char)*p; el = 2;
		} else if (*p == '\n') {
			esc[0] = '\\'; esc[1] = 'n'; el = 2;
		} else if (*p == '\t') {
			esc[0] = '\\'; esc[1] = 't'; el = 2;
		} else if (*p < 0x20 || *p == 0x7f) {
			esc[0] = '\\'; esc[1] = 'x'; esc[2] = hex[*p >> 4];
			esc[3] = hex[*p & 15]; el = 4;
		} else {
			esc[0] = (char)*p; el = 1;
		}
		if (o + el + 5 > size) {             /* "..." + '"' + NUL */
			memcpy(dst + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(dst + o, esc, el);
		o += el;
	}
	dst[o++] = '"';
	dst[o] = '\0';
	return dst;
}
