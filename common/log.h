/* common/log.h: one logfmt line per event on stderr.
 *
 *   2026-11-21T10:00:00.123Z info worker[812] event=job_done job=42 ms=3
 *
 * Callers write the key=value part; keys are stable snake_case with ids
 * first. Untrusted values go through log_quote(). Never log secrets, tokens
 * or message text: log a length or a short hash. Each line is written with
 * one write(2), so lines from threads do not interleave. Lines are cut at
 * LOG_LINE_MAX bytes. */
#ifndef POSTERN_COMMON_LOG_H
#define POSTERN_COMMON_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define LOG_LINE_MAX 2048

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* prog is borrowed and must outlive logging (a string literal). */
void log_init(const char *prog);
void log_set_level(enum log_level level);
/* 0 and *level_r set, or -1 for an unknown name. */
MUST_CHECK int log_level_parse(const char *name, enum log_level *level_r);
/* CLI style: die() prints "prog: message" for people instead of logfmt. */
void log_set_cli(bool cli);
bool log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) PRINTF_LIKE(2, 3);
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
/* Appends errno=N err="strerror" from the errno at the call. */
void log_warn_errno(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* Used by die(): the one fatal line (logfmt, or "prog: msg" in CLI style). */
void log_fatal_msg(const char *msg);

/* Writes s into dst as a logfmt value: bare if it is plain [A-Za-z0-9._@:/+-],
 * otherwise in double quotes with \" \\ \n \t and \xNN escapes. Cut to fit
 * dst (ending in "..." when cut). s may be NULL ("-"). Returns dst. */
char *log_quote(char *dst, size_t size, const char *s);

/* log_quote() into a buffer of its own (a compound literal, alive to the
 * end of the enclosing block): for an argument of one log call. */
#define LOG_Q(s) log_quote((char[300]){ 0 }, 300, (s))

#endif
