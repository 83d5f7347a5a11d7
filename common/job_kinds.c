/* common/job_kinds.c: the table of job kinds. */
#include "common/job_kinds.h"

#include <string.h>

const struct job_kind job_kinds[] = {
	{ "noop", 0, 3, 0, "does nothing (benchmarks, checks)" },
	{ "probe", 0, 10, 0, "records each run in job_probe_runs; may sleep "
	                     "or fail on request (operators' end-to-end check)" },
	/* Quick, and pruning keeps the claim index small: ahead of the rest. */
	{ "maintenance", -20, 3, 1, "prunes finished jobs and old probe runs" },
	/* Someone is waiting at the login page: first. The give-up deadline
	 * is the token's lifetime ([mail] login_token_minutes), so attempts
	 * are generous; the deadline ends them. */
	{ "magic_link", -10, 25, 0, "mails a login link and code" },
	/* Staff message to a patient; given up after [mail] notify_give_up_h. */
	{ "notify", 0, 25, 0, "mails a patient that a staff message waits" },
	/* Follow-ups of the IMAP ingester. A patient who just wrote may be
	 * waiting for "was this you?"; the emergency text matters most. Each
	 * is given up 24 h after its cause arrived, so attempts are generous
	 * (as for notify); the deadline ends them. */
	{ "confirm_sender", -5, 25, 0, "asks a patient whether a held reply "
	                               "from another address was theirs" },
	{ "rejection_notice", 0, 25, 0, "tells a patient their mail could not "
	                                "be taken, and to sign in instead" },
	{ "urgent_ack", -5, 25, 0, "answers a reply with red-flag words with "
	                           "the practice's emergency text" },
	/* Reads the [imap] mailbox; one at a time (a mailbox has one
	 * ingester anyway). Recurring: failures (IMAP down) retry with
	 * backoff in the one job rather than piling up dead ones. */
	{ "imap_sync", 0, 100, 1, "ingests new mail from the [imap] mailbox" },
	/* A patient confirmed (or declined) a held reply: make the message. */
	{ "release_held", 0, 25, 0, "turns a confirmed held reply into a message" },
	{ NULL, 0, 0, 0, NULL },
};

const struct job_kind *
job_kind_find(const char *name)
{
	for (const struct job_kind *k = job_kinds; k->name != NULL; k++)
		if (strcmp(k->name, name) == 0)
			return k;
	return NULL;
}

int
job_kinds_count(void)
{
	int n = 0;

	while (job_kinds[n].name != NULL)
		n++;
	return n;
}
