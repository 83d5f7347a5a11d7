/* tests/unit/test_trim.c: reply extraction. Each row is a reply as a mail
 * client writes it (after MIME decoding), what the patient wrote, the
 * confidence and what the cut was made at. The inputs are our own,
 * modelled on the layout of Gmail, Outlook (desktop, web, mobile), Apple
 * Mail, iOS, Android, Thunderbird and Yahoo in several languages; the
 * addresses and names are made up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mailer/template.h"
#include "mailer/trim.h"

/* Our separator as mailer/template.c renders it, and the note under it. */
#define SEP "\xe2\x80\x94\xe2\x80\x94 Reply above this line to answer " \
	"Oak Clinic \xe2\x80\x94\xe2\x80\x94"
#define NOTE "You have a new message from Oak Clinic.\n" \
	"Read and reply: https://portal.oak.test/m/7\n"
#define QNOTE "> You have a new message from Oak Clinic.\n" \
	"> Read and reply: https://portal.oak.test/m/7\n"
#define E "\xc3\xa9"                      /* é */
#define NBSP "\xc2\xa0"

struct tcase {
	const char *what;
	const char *in;
	const char *reply;
	enum trim_confidence conf;
	enum trim_cut cut;
};

static const struct tcase cases[] = {
	/* Our separator. */
	{ "separator, HTML reply turned to text",
	  "Yes, Thursday works.\n\n" SEP "\n\n" NOTE,
	  "Yes, Thursday works.", TRIM_HIGH, TRIM_CUT_SEPARATOR },
	{ "separator quoted by a client without a header line",
	  "Yes please.\n\n> " SEP "\n>\n" QNOTE,
	  "Yes please.", TRIM_HIGH, TRIM_CUT_SEPARATOR },
	{ "separator rewrapped over two lines",
	  "Fine by me\n\n> \xe2\x80\x94\xe2\x80\x94 Reply above this\n"
	  "> line to answer Oak Clinic \xe2\x80\x94\xe2\x80\x94\n" QNOTE,
	  "Fine by me", TRIM_HIGH, TRIM_CUT_SEPARATOR },
	{ "separator wrapped after 'Reply'",
	  "ok\n\xe2\x80\x94\xe2\x80\x94 Reply\nabove this line to answer Oak\n",
	  "ok", TRIM_HIGH, TRIM_CUT_SEPARATOR },
	{ "separator, lower-cased by a converter",
	  "Merci\n\n-- reply above this line to answer oak clinic --\n" NOTE,
	  "Merci", TRIM_HIGH, TRIM_CUT_SEPARATOR },
	{ "separator under an unknown header (Swedish)",
	  "Tack!\n\nDen 3 mars 2026 kl. 10:02 skrev Oak Clinic <reply+x@oak.test>:\n\n"
	  "> " SEP "\n" QNOTE,
	  "Tack!", TRIM_HIGH, TRIM_CUT_SEPARATOR },
	{ "separator with CRLF line ends",
	  "Thanks, see you then.\r\n\r\n" SEP "\r\n" NOTE,
	  "Thanks, see you then.", TRIM_HIGH, TRIM_CUT_SEPARATOR },
	{ "a line merely mentioning 'reply' is kept",
	  "Please reply above if needed\nthis line is mine\n",
	  "Please reply above if needed\nthis line is mine", TRIM_LOW,
	  TRIM_CUT_NONE },

	/* Gmail (web, Android). */
	{ "Gmail English",
	  "Hi Dr. Reyes,\n\nThe new dose is fine.\n\nBest,\nSam\n\n"
	  "On Tue, Mar 3, 2026 at 10:02 AM Oak Clinic <reply+abc@oak.test> wrote:\n\n"
	  "> " SEP "\n>\n" QNOTE,
	  "Hi Dr. Reyes,\n\nThe new dose is fine.\n\nBest,\nSam", TRIM_HIGH,
	  TRIM_CUT_QUOTE_HEADER },
	{ "Gmail English, header wrapped over two lines",
	  "Thank you!\n\nOn Tue, Mar 3, 2026 at 10:02 AM Oak Clinic of Springfield <\n"
	  "reply+abcdefghijklmnopqrstuvwxyz234567abcdef@oak.test> wrote:\n\n> hello\n",
	  "Thank you!", TRIM_HIGH, TRIM_CUT_QUOTE_HEADER },
	{ "Gmail English, header wrapped over three lines",
	  "Noted.\n\nOn Tue, Mar 3, 2026 at 10:02 AM\nOak Clinic of Springfield\n"
	  "<reply+abc@oak.test> wrote:\n> hello\n",
	  "Noted.", TRIM_HIGH, TRIM_CUT_QUOTE_HEADER },
	{ "Gmail French",
	  "Bonjour,\n\nJe serai l" "\xc3\xa0" " mardi.\n\n"
	  "Le mar. 3 mars 2026 " "\xc3\xa0" " 10:02, Oak Clinic <reply+abc@oak.test> a "
	  E "crit" NBSP ":\n\n> " SEP "\n",
	  "Bonjour,\n\nJe serai l" "\xc3\xa0" " mardi.", TRIM_HIGH,
	  TRIM_CUT_QUOTE_HEADER },
	{ "Gmail German",
	  "Hallo,\n\ndanke f\xc3\xbcr die Nachricht.\n\n"
	  "Am Di., 3. M\xc3\xa4rz 2026 um 10:02 Uhr schrieb Oak Clinic <\n"
	  "reply+abc@oak.test>:\n\n> " SEP "\n",
	  "Hallo,\n\ndanke f\xc3\xbcr die Nachricht.", TRIM_HIGH,
	  TRIM_CUT_QUOTE_HEADER },
	{ "Gmail Spanish",
	  "Hola,\nsí, el jueves me viene bien.\n\n"
	  "El mar, 3 mar 2026 a las 10:02, Oak Clinic (<reply+abc@oak.test>) "
	  "escribi\xc3\xb3:\n\n> " SEP "\n",
	  "Hola,\nsí, el jueves me viene bien.", TRIM_HIGH,
	  TRIM_CUT_QUOTE_HEADER },
	{ "Gmail Italian",
	  "Va bene, grazie.\n\nIl giorno mar 3 mar 2026 alle ore 10:02 Oak Clinic <"
	  "reply+abc@oak.test> ha scritto:\n\n> ciao\n",
	  "Va bene, grazie.", TRIM_HIGH, TRIM_CUT_QUOTE_HEADER },
	{ "Dutch (Apple Mail)",
	  "Prima, tot dan.\n\nOp 3 mrt. 2026 om 10:02 heeft Oak Clinic <reply+abc@oak.test> "
	  "het volgende geschreven:\n\n> hoi\n",
	  "Prima, tot dan.", TRIM_HIGH, TRIM_CUT_QUOTE_HEADER },
	{ "unknown header form: the \">\" run is cut, low confidence",
	  "Ok.\n\nLe 3 mars, Oak Clinic nous dit:\n\n> bonjour\n",
	  "Ok.\n\nLe 3 mars, Oak Clinic nous dit:", TRIM_LOW, TRIM_CUT_QUOTED },
	{ "Dutch (Thunderbird)",
	  "Prima.\n\nOp 03-03-2026 om 10:02 schreef Oak Clinic:\n> hoi\n",
	  "Prima.", TRIM_HIGH, TRIM_CUT_QUOTE_HEADER },

	/* Apple Mail and iOS. */
	{ "iOS Mail English with its signature",
	  "Yes I can come at 3.\n\nSent from my iPhone\n\n"
	  "On Mar 3, 2026, at 10:02, Oak Clinic <reply+abc@oak.test> wrote:\n\n"
	  "\xef\xbb\xbf" SEP "\n\n" NOTE,
	  "Yes I can come at 3.", TRIM_HIGH, TRIM_CUT_MOBILE },
	{ "iOS Mail French",
	  "D'accord.\n\nEnvoy" E " de mon iPhone\n\n"
	  "Le 3 mars 2026 " "\xc3\xa0" " 10:02, Oak Clinic <reply+abc@oak.test> a " E
	  "crit :\n\n> " SEP "\n",
	  "D'accord.", TRIM_HIGH, TRIM_CUT_MOBILE },
	{ "iOS Mail German",
	  "Passt.\n\nVon meinem iPhone gesendet\n\n"
	  "Am 03.03.2026 um 10:02 schrieb Oak Clinic <reply+abc@oak.test>:\n\n"
	  "> " SEP "\n",
	  "Passt.", TRIM_HIGH, TRIM_CUT_MOBILE },
	{ "iOS Mail Spanish",
	  "Perfecto.\n\nEnviado desde mi iPhone\n\n"
	  "El 3 mar 2026, a las 10:02, Oak Clinic <reply+abc@oak.test> escribi\xc3\xb3:\n\n"
	  "> " SEP "\n",
	  "Perfecto.", TRIM_HIGH, TRIM_CUT_MOBILE },
	{ "Apple Mail macOS, no signature",
	  "Thanks, received.\n\n> On 3 Mar 2026, at 10:02, Oak Clinic <reply+abc@oak.test> wrote:\n"
	  ">\n> " SEP "\n",
	  "Thanks, received.", TRIM_HIGH, TRIM_CUT_QUOTED },

	/* Thunderbird. */
	{ "Thunderbird English with a signature",
	  "Sounds good.\n\n-- \nSam Park\n555-0100\n\n"
	  "On 3/3/26 10:02, Oak Clinic wrote:\n> " SEP "\n",
	  "Sounds good.", TRIM_HIGH, TRIM_CUT_SIGNATURE },
	{ "Thunderbird German",
	  "Alles klar.\n\nAm 03.03.26 um 10:02 schrieb Oak Clinic:\n> " SEP "\n",
	  "Alles klar.", TRIM_HIGH, TRIM_CUT_QUOTE_HEADER },
	{ "Thunderbird old style 'X wrote:'",
	  "Got it.\n\nOak Clinic wrote:\n> " SEP "\n> text\n",
	  "Got it.", TRIM_HIGH, TRIM_CUT_QUOTE_HEADER },

	/* Outlook desktop, web and mobile. */
	{ "Outlook desktop English",
	  "Hello,\r\n\r\nPlease move it to Friday.\r\n\r\nKind regards\r\nSam\r\n\r\n"
	  "From: Oak Clinic <reply+abc@oak.test>\r\nSent: Tuesday, March 3, 2026 10:02 AM\r\n"
	  "To: Sam Park <sam@example.test>\r\nSubject: New message\r\n\r\n" SEP "\r\n",
	  "Hello,\r\n\r\nPlease move it to Friday.\r\n\r\nKind regards\r\nSam",
	  TRIM_HIGH, TRIM_CUT_OUTLOOK },
	{ "Outlook desktop, bold keys from HTML",
	  "Yes.\n\n*From:* Oak Clinic <reply+abc@oak.test>\n*Sent:* Tuesday, March 3, 2026 10:02\n"
	  "*To:* Sam Park\n*Subject:* New message\n",
	  "Yes.", TRIM_HIGH, TRIM_CUT_OUTLOOK },
	{ "Outlook web with its rule",
	  "See you Friday.\n\n________________________________\n"
	  "From: Oak Clinic <reply+abc@oak.test>\nSent: Tuesday, March 3, 2026 10:02\n"
	  "To: sam@example.test\nSubject: New message\n\n" SEP "\n",
	  "See you Friday.", TRIM_HIGH, TRIM_CUT_ORIGINAL },
	{ "Outlook iOS",
	  "Ok\n\nGet Outlook for iOS<https://aka.ms/o0ukef>\n"
	  "________________________________\nFrom: Oak Clinic <reply+abc@oak.test>\n"
	  "Sent: Tuesday, March 3, 2026 10:02:11 AM\nTo: Sam Park <sam@example.test>\n"
	  "Subject: New message\n\n" SEP "\n",
	  "Ok", TRIM_HIGH, TRIM_CUT_MOBILE },
	{ "Outlook Android",
	  "Thanks\n\nSent from Outlook for Android<https://aka.ms/AAb9ysg>\n"
	  "________________________________\nFrom: Oak Clinic\nSent: Tuesday\n",
	  "Thanks", TRIM_HIGH, TRIM_CUT_MOBILE },
	{ "Outlook Mac (Date: instead of Sent:)",
	  "Fine.\n\nFrom: Oak Clinic <reply+abc@oak.test>\nDate: Tuesday, 3 March 2026 at 10:02\n"
	  "To: Sam Park <sam@example.test>\nSubject: New message\n",
	  "Fine.", TRIM_HIGH, TRIM_CUT_OUTLOOK },
	{ "Outlook German",
	  "Danke.\n\nVon: Oak Clinic <reply+abc@oak.test>\nGesendet: Dienstag, 3. M\xc3\xa4rz 2026 10:02\n"
	  "An: Sam Park <sam@example.test>\nBetreff: Neue Nachricht\n",
	  "Danke.", TRIM_HIGH, TRIM_CUT_OUTLOOK },
	{ "Outlook French",
	  "Merci.\n\nDe : Oak Clinic <reply+abc@oak.test>\nEnvoy" E " : mardi 3 mars 2026 10:02\n"
	  "\xc3\x80 : Sam Park <sam@example.test>\nObjet : Nouveau message\n",
	  "Merci.", TRIM_HIGH, TRIM_CUT_OUTLOOK },
	{ "Outlook Spanish",
	  "Gracias.\n\nDe: Oak Clinic <reply+abc@oak.test>\nEnviado: martes, 3 de marzo de 2026 10:02\n"
	  "Para: Sam Park <sam@example.test>\nAsunto: Nuevo mensaje\n",
	  "Gracias.", TRIM_HIGH, TRIM_CUT_OUTLOOK },
	{ "Original Message",
	  "Yes.\n\n-----Original Message-----\nFrom: Oak Clinic\n",
	  "Yes.", TRIM_HIGH, TRIM_CUT_ORIGINAL },
	{ "Samsung Email / Android",
	  "Ok thanks\n\n\n-------- Original message --------\nFrom: Oak Clinic <reply+abc@oak.test>\n"
	  "Date: 3/3/26 10:02 (GMT-05:00)\nTo: sam@example.test\nSubject: New message\n",
	  "Ok thanks", TRIM_HIGH, TRIM_CUT_ORIGINAL },
	{ "Original Message in German",
	  "Ja.\n-----Urspr\xc3\xbcngliche Nachricht-----\nVon: Oak Clinic\n",
	  "Ja.", TRIM_HIGH, TRIM_CUT_ORIGINAL },
	{ "a single From: line in the text is not a header block",
	  "From: my wife's phone, sorry.\nI will come.\n",
	  "From: my wife's phone, sorry.\nI will come.", TRIM_LOW, TRIM_CUT_NONE },

	/* Yahoo. */
	{ "Yahoo web",
	  "Thank you\n\n\nSent from Yahoo Mail on Android\n\n"
	  "  On Tue, Mar 3, 2026 at 10:02, Oak Clinic<reply+abc@oak.test> wrote:   " SEP "\n",
	  "Thank you", TRIM_HIGH, TRIM_CUT_MOBILE },
	{ "Yahoo web, no signature",
	  "Confirmed.\n\nOn Tuesday, March 3, 2026, 10:02:11 AM EST, Oak Clinic <reply+abc@oak.test> wrote:\n\n\n"
	  SEP "\n",
	  "Confirmed.", TRIM_HIGH, TRIM_CUT_QUOTE_HEADER },

	/* Low confidence. */
	{ "nothing to cut",
	  "Just a note: I'll be late.\n\n",
	  "Just a note: I'll be late.", TRIM_LOW, TRIM_CUT_NONE },
	{ "signature only",
	  "See you.\n--\nSam\n",
	  "See you.", TRIM_LOW, TRIM_CUT_SIGNATURE },
	{ "mobile signature only",
	  "Yes\n\nSent from my Galaxy\n",
	  "Yes", TRIM_LOW, TRIM_CUT_MOBILE },
	{ "bare > quote at the end",
	  "Sure.\n\n> some text\n> more\n\n",
	  "Sure.", TRIM_LOW, TRIM_CUT_QUOTED },
	{ "interleaved: only the last quoted run goes",
	  "Answers below.\n> Can you come?\nYes.\n> At 3?\n",
	  "Answers below.\n> Can you come?\nYes.", TRIM_LOW, TRIM_CUT_QUOTED },
	{ "'On … wrote:' without a date is the patient's text",
	  "On Monday my doctor wrote:\nrest for a week.\n",
	  "On Monday my doctor wrote:\nrest for a week.", TRIM_LOW,
	  TRIM_CUT_NONE },
	{ "bottom posting keeps everything",
	  "On Tue, Mar 3, 2026 at 10:02 AM Oak Clinic <reply+abc@oak.test> wrote:\n"
	  "> Can you come?\n\nYes I can.\n",
	  "On Tue, Mar 3, 2026 at 10:02 AM Oak Clinic <reply+abc@oak.test> wrote:\n"
	  "> Can you come?\n\nYes I can.", TRIM_LOW, TRIM_CUT_NONE },
	{ "only a quote: empty reply",
	  "On Tue, Mar 3, 2026 at 10:02 AM Oak Clinic <x@oak.test> wrote:\n> hi\n",
	  "", TRIM_HIGH, TRIM_CUT_QUOTE_HEADER },
	{ "leading blank lines are skipped, indentation kept",
	  "\n\n  indented answer\nsecond line  \n\n" SEP "\n",
	  "  indented answer\nsecond line", TRIM_HIGH, TRIM_CUT_SEPARATOR },
	{ "empty", "", "", TRIM_LOW, TRIM_CUT_NONE },
	{ "white space only", " \n\t\r\n", "", TRIM_LOW, TRIM_CUT_NONE },
	{ "no final newline", "ok", "ok", TRIM_LOW, TRIM_CUT_NONE },
};

static bool
all_ws(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strchr(" \t\r\n", p[i]))
			return false;
	return true;
}

/* The ranges cover the input as trim.h says. */
static void
check_cover(const char *in, size_t len, const struct trim_result *r)
{
	assert_true(r->reply_off + r->reply_len <= r->elided_off);
	assert_int_equal(r->elided_off + r->elided_len, len);
	assert_true(all_ws(in, r->reply_off));
	assert_true(all_ws(in + r->reply_off + r->reply_len,
	    r->elided_off - r->reply_off - r->reply_len));
	if (r->reply_len > 0) {
		assert_false(strchr(" \t\r\n", in[r->reply_off +
		    r->reply_len - 1]));
	}
}

static void
test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct tcase *c = &cases[i];
		size_t len = strlen(c->in);
		struct trim_result r;
		struct err err = { 0 };

		if (trim_reply(c->in, len, &r, &err) < 0)
			fail_msg("case %zu (%s): %s", i, c->what, err.msg);
		check_cover(c->in, len, &r);
		if (r.reply_len != strlen(c->reply) ||
		    memcmp(c->in + r.reply_off, c->reply, r.reply_len) != 0)
			fail_msg("case %zu (%s): reply [%.*s], want [%s]", i,
			    c->what, (int)r.reply_len, c->in + r.reply_off,
			    c->reply);
		if (r.confidence != c->conf || r.cut != c->cut)
			fail_msg("case %zu (%s): confidence %d cut %s, want "
			    "%d %s", i, c->what, (int)r.confidence,
			    trim_cut_name(r.cut), (int)c->conf,
			    trim_cut_name(c->cut));
		if (r.cut == TRIM_CUT_NONE)
			assert_int_equal(r.elided_len, 0);
		else
			assert_true(r.elided_len > 0);
	}
}

/* Files under tests/fixtures/replies/: NAME.txt is the input, NAME.want
 * the reply; the first line of .want is "high" or "low". Run from the
 * top of the tree; skipped when the directory is not there. */
static void
test_fixtures(void **state)
{
	static const char *const names[] = {
		"gmail-en", "outlook-desktop-de", "ios-fr", "thunderbird-es",
	};
	char path[256];
	int done = 0;

	(void)state;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char in[8192], want[8192];
		size_t n, wn;
		FILE *f;
		struct trim_result r;
		struct err err = { 0 };
		const char *nl;
		enum trim_confidence conf;

		snprintf(path, sizeof path, "tests/fixtures/replies/%s.txt",
		    names[i]);
		if ((f = fopen(path, "rb")) == NULL)
			continue;
		n = fread(in, 1, sizeof in, f);
		fclose(f);
		snprintf(path, sizeof path, "tests/fixtures/replies/%s.want",
		    names[i]);
		if ((f = fopen(path, "rb")) == NULL)
			fail_msg("%s missing", path);
		wn = fread(want, 1, sizeof want - 1, f);
		fclose(f);
		want[wn] = '\0';
		nl = strchr(want, '\n');
		assert_non_null(nl);
		conf = strncmp(want, "high", 4) == 0 ? TRIM_HIGH : TRIM_LOW;
		wn = strlen(nl + 1);
		while (wn > 0 && nl[wn] == '\n')         /* file's final LF */
			wn--;
		if (trim_reply(in, n, &r, &err) < 0)
			fail_msg("%s: %s", names[i], err.msg);
		check_cover(in, n, &r);
		if (r.reply_len != wn || memcmp(in + r.reply_off, nl + 1,
		    wn) != 0)
			fail_msg("%s: reply [%.*s]", names[i],
			    (int)r.reply_len, in + r.reply_off);
		assert_int_equal(r.confidence, conf);
		done++;
	}
	/* all or none (run from elsewhere than the top of the tree) */
	if (done != 0)
		assert_int_equal(done, sizeof names / sizeof names[0]);
}

/* Our real notification, as mailer/template.c renders it, quoted the way
 * Gmail and Thunderbird do and hard-wrapped at every width a client might
 * use: the cut is always at the separator or the header above it, with
 * high confidence, and the patient's text comes back whole. */
static void
test_rendered_and_rewrapped(void **state)
{
	static const char answer[] = "Yes, Thursday at 3 works for me.\n\nSam";
	const struct template_var vars[] = {
		{ "practice_name", "Oak Family Medicine & Wellness Center of "
		    "Springfield" },
		{ "link", "https://portal.oak.test/m/7" },
	};
	struct template_set *set = NULL;
	struct template_mail m;
	struct err err = { 0 };
	int tried = 0;

	(void)state;
	if (template_set_load(NULL, &set, &err) < 0)
		fail_msg("template_set_load: %s", err.msg);
	if (template_render(set, TEMPLATE_NOTIFY_PHI_FREE, true, vars, 2, &m,
	    &err) < 0)
		fail_msg("template_render: %s", err.msg);
	assert_non_null(strstr(m.text, TEMPLATE_SEPARATOR_MARK));
	for (int width = 28; width <= 100; width++) {
		for (int header = 0; header < 2; header++) {
			char in[8192];
			size_t n = 0, col = 0;
			struct trim_result r;

			n += (size_t)snprintf(in, sizeof in, "%s\n\n%s", answer,
			    header ? "On Tue, Mar 3, 2026 at 10:02 AM Oak <"
			    "reply+x@oak.test> wrote:\n" : "");
			/* "> " + words, wrapped greedily at width bytes */
			memcpy(in + n, "> ", 2);
			n += 2, col = 2;
			for (const char *p = m.text; *p != '\0' &&
			    n < sizeof in - 16; ) {
				size_t w = strcspn(p, " \n");

				if (col > 2 && col + w > (size_t)width) {
					memcpy(in + n, "\n> ", 3);
					n += 3, col = 2;
				}
				memcpy(in + n, p, w);
				n += w, col += w, p += w;
				if (*p == '\n') {
					memcpy(in + n, "\n> ", 3);
					n += 3, col = 2;
					p++;
				} else if (*p == ' ') {
					in[n++] = ' ', col++;
					p++;
				}
			}
			in[n] = '\0';
			if (trim_reply(in, n, &r, &err) < 0)
				fail_msg("width %d: %s", width, err.msg);
			if (r.reply_len != strlen(answer) ||
			    memcmp(in + r.reply_off, answer, r.reply_len) != 0 ||
			    r.confidence != TRIM_HIGH)
				fail_msg("width %d header %d: cut %s conf %d "
				    "reply [%.*s]\n%s", width, header,
				    trim_cut_name(r.cut), (int)r.confidence,
				    (int)r.reply_len, in + r.reply_off, in);
			tried++;
		}
	}
	assert_int_equal(tried, 2 * 73);
	/* and the HTML-to-text form: the separator line, unquoted */
	{
		char in[8192];
		struct trim_result r;
		int n = snprintf(in, sizeof in, "%s\n\n%s", answer, m.text);

		assert_true(n > 0 && (size_t)n < sizeof in);
		assert_int_equal(trim_reply(in, (size_t)n, &r, &err), 0);
		assert_int_equal(r.cut, TRIM_CUT_SEPARATOR);
		assert_int_equal(r.reply_len, strlen(answer));
	}
	template_mail_fini(&m);
	template_set_free(&set);
}

static void
test_limits(void **state)
{
	struct trim_result r;
	struct err err = { 0 };
	size_t n = LIMIT_TRIM_LINES + 2;   /* x, then that many LFs */
	char *big = malloc(n);

	(void)state;
	assert_non_null(big);
	/* too many lines: an error, and the whole text as reply */
	memset(big, '\n', n);
	big[0] = 'x';
	assert_int_equal(trim_reply(big, n, &r, &err), -1);
	assert_non_null(strstr(err.msg, "lines"));
	assert_int_equal(r.reply_len, n);
	assert_int_equal(r.elided_len, 0);
	/* exactly at the cap is fine */
	assert_int_equal(trim_reply(big, n - 1, &r, &err), 0);
	assert_int_equal(r.reply_len, 1);
	free(big);
	/* too large */
	big = malloc(LIMIT_TRIM_INPUT + 1);
	assert_non_null(big);
	memset(big, 'a', LIMIT_TRIM_INPUT + 1);
	assert_int_equal(trim_reply(big, LIMIT_TRIM_INPUT + 1, &r, &err), -1);
	assert_non_null(strstr(err.msg, "larger"));
	/* at the cap, one long line of quotes: linear, one cut */
	for (size_t i = 0; i < LIMIT_TRIM_INPUT; i += 2) {
		big[i] = '>';
		big[i + 1] = i % 64 == 0 ? '\n' : ' ';
	}
	assert_int_equal(trim_reply(big, LIMIT_TRIM_INPUT, &r, &err), 0);
	assert_int_equal(r.cut, TRIM_CUT_QUOTED);
	free(big);
	/* a NUL is just a byte */
	assert_int_equal(trim_reply("a\0b\n> q\n", 8, &r, &err), 0);
	assert_int_equal(r.reply_len, 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_fixtures),
		cmocka_unit_test(test_rendered_and_rewrapped),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
