/* httpd/confirm.h: /confirm, where a patient says whether a reply that
 * came from another address was theirs (DESIGN.md, "Patient reply by
 * email": a held reply reaches the record only after that).
 *
 *   GET  /confirm?t=T   "A message from <address>, received <date>, says
 *                       it is from you. Was it you?" with two buttons;
 *                       reads, spends nothing (mail scanners that fetch
 *                       links do no harm)
 *   POST /confirm       fields t and decision=confirm|decline: spends the
 *                       token (and its siblings for the same mail) and
 *                       enqueues release_held {"inbound_mail_id": N,
 *                       "decision": …} (unique_key release_held:<N>) in
 *                       one transaction; the release itself is the
 *                       worker's
 *
 * The token was made by the confirm_sender job (worker/
 * job_confirm_sender.c): 43 base64url characters, stored as its keyed
 * hash (SUBKEY_LOGIN_TOKEN) in login_tokens with purpose confirm_sender.
 * A malformed link answers 400; an unknown, used or expired one, or one
 * whose mail is no longer held, 410 with one page. No session is needed:
 * the link in the patient's own mailbox is the proof. */
#ifndef POSTERN_HTTPD_CONFIRM_H
#define POSTERN_HTTPD_CONFIRM_H

#include "httpd/http.h"

enum MHD_Result confirm_page(struct http_req *r);

#endif
