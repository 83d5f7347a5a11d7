/* worker/handlers.c: kind → handler. Kinds and their defaults are in
 * common/job_kinds.c; a kind there without a handler here is dead-lettered
 * ("no handler"), never a crash. */
#include "worker/handlers.h"

#include <string.h>

static const struct handler handlers[] = {
	{ "noop", job_noop },
	{ "probe", job_probe },
	{ "maintenance", job_maintenance },
	{ "magic_link", job_magic_link },
	{ "notify", job_notify },
	{ "confirm_sender", job_confirm_sender },
	{ "rejection_notice", job_rejection_notice },
	{ "urgent_ack", job_urgent_ack },
	{ "imap_sync", job_imap_sync },
	{ "release_held", job_release_held },
};

const struct handler *
handler_find(const char *kind)
{
	for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++)
		if (strcmp(handlers[i].kind, kind) == 0)
			return &handlers[i];
	return NULL;
}

static const struct handler_batch batch_handlers[] = {
	{ "notify", job_notify_prepare, job_notify_prep_free },
};

const struct handler_batch *
handler_batch_find(const char *kind)
{
	for (size_t i = 0; i < sizeof batch_handlers / sizeof batch_handlers[0];
	     i++)
		if (strcmp(batch_handlers[i].kind, kind) == 0)
			return &batch_handlers[i];
	return NULL;
}
