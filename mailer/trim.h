/* mailer/trim.h: what the patient wrote, cut from what they quoted.
 *
 * Works on already-decoded UTF-8 text (MIME and charsets are decoded
 * before this) and allocates nothing: the answer is a pair of ranges of
 * the input. Lines end in LF or CRLF. The text is cut at the first line
 * that starts quoted or trailing material:
 *
 *   - our own separator line (TEMPLATE_SEPARATOR_MARK in mailer/template.h),
 *     also "> "-quoted or rewrapped over two lines;
 *   - a quote header: "On … wrote:" (also wrapped over up to three lines),
 *     "Le … a écrit :", "Am … schrieb …:", "El … escribió:",
 *     "Il … ha scritto:", "Op … schreef …:", "<name> wrote:" followed by
 *     ">" lines; Outlook header blocks (From/Sent/To/Subject in English,
 *     German, French, Spanish); "-----Original Message-----" and its
 *     translations; Outlook's "_____" rule;
 *   - a run of ">"-quoted lines that lasts to the end of the text;
 *   - a "-- " signature delimiter or a mobile signature ("Sent from my
 *     iPhone", "Get Outlook for iOS", "Von meinem iPhone gesendet", …).
 *
 * Confidence is HIGH when our separator or a quote header was found
 * anywhere in the text, LOW otherwise (nothing found, or only a signature
 * or a bare ">" run). A quote header or ">" run at the very top with the
 * patient's answer below it (bottom posting) gives the whole text as the
 * reply with LOW confidence, so an answer is never cut away.
 *
 * Limits: LIMIT_TRIM_INPUT bytes, LIMIT_TRIM_LINES lines; over either is an
 * error (the caller records it and keeps the whole text), never a silent
 * cut. Time is linear in the input. */
#ifndef POSTERN_MAILER_TRIM_H
#define POSTERN_MAILER_TRIM_H

#include <stddef.h>

#include "common/err.h"
#include "common/limits.h"


enum trim_confidence {
	TRIM_LOW,               /* no separator and no quote header seen */
	TRIM_HIGH,
};

/* What the cut was made at. */
enum trim_cut {
	TRIM_CUT_NONE,          /* nothing: the whole text is the reply */
	TRIM_CUT_SEPARATOR,     /* our "reply above this line" */
	TRIM_CUT_QUOTE_HEADER,  /* "On … wrote:" and its translations */
	TRIM_CUT_OUTLOOK,       /* From:/Sent:/To:/Subject: block */
	TRIM_CUT_ORIGINAL,      /* "-----Original Message-----", "_____" */
	TRIM_CUT_QUOTED,        /* ">" lines to the end */
	TRIM_CUT_SIGNATURE,     /* "-- " */
	TRIM_CUT_MOBILE,        /* "Sent from my iPhone", … */
};

/* Ranges into the input. The input is exactly
 *   [0, reply_off)                       white space only (leading blank lines)
 *   [reply_off, reply_off + reply_len)   the reply (no trailing white space)
 *   [reply_off + reply_len, elided_off)  white space only
 *   [elided_off, len)                    the elided part (empty: nothing cut)
 * Every boundary is at an ASCII byte, so valid UTF-8 in gives valid UTF-8
 * out. */
struct trim_result {
	size_t reply_off, reply_len;
	size_t elided_off, elided_len;
	enum trim_confidence confidence;
	enum trim_cut cut;
};

/* Trims text[len] (need not be NUL-terminated; a NUL is an ordinary
 * byte). 0 and *r set; -1 with err set when len > LIMIT_TRIM_INPUT or the
 * text has more than LIMIT_TRIM_LINES lines (*r then says "whole text,
 * LOW, nothing cut"). Keeps no pointers. */
MUST_CHECK int trim_reply(const char *text, size_t len, struct trim_result *r,
    struct err *err);

/* "none", "separator", "quote_header", … for logs and mail inspect. */
const char *trim_cut_name(enum trim_cut cut);

#endif
