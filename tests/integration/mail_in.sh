#!/usr/bin/env bash
# tests/integration/mail_in.sh: inbound mail end to end. Replies in the
# styles of real clients (Gmail, Outlook HTML-only, Apple Mail Latin-1,
# Thunderbird German), urgent words, auto-replies, attachments, a wrong
# sender, forged/expired/missing tokens, a duplicate, a DSN bounce and a
# message over the size limit go through Postfix (STARTTLS) into Dovecot
# (or by IMAP APPEND where Postfix would refuse them), and a real
# postern-worker ingests them over IMAPS. Checked: every inbound_mail
# outcome and reason, the patient_messages (trimmed body, elided part,
# confidence, decoded charsets, no HTML), staff notifications, tasks, audit
# rows, attachments, follow-up jobs, bounce → suppression, mailbox_state,
# \Seen flags after commit, a second run ingesting nothing, IDLE delivering
# a new reply at once, and a UIDVALIDITY change (folder recreated with the
# same mail) not duplicating anything. Also the first reply answers a real
# notification the worker sent (its Reply-To address).
#
# Needs the runner's MAILSTACK_* environment (fails, never skips, without).
. "$(dirname "$0")/lib.bash"
cd "$top" || exit 1
for v in MAILSTACK_HOST MAILSTACK_SMTP_PORT MAILSTACK_IMAPS_PORT MAILSTACK_PASSWORD MAILSTACK_CA; do
	[ -n "${!v:-}" ] || { not_ok "$v is set (run through tests/run.sh)"; finish; }
done

suite_start mail_in
run=$(date +%s%N | tail -c 9)
py() { /usr/bin/python3 "$top/tests/integration/inbound.py" "$@"; }
fx=$top/tests/integration/inbound
key=$(sed -n 's/^server_key = //p' "$CONF")
box=reply@practice.test
imapargs=("$MAILSTACK_IMAPS_PORT" "$MAILSTACK_CA" "$box" "$MAILSTACK_PASSWORD")
cleanup() {
	kill_pids
	# the reply mailbox is shared with other suites (test_mail_smoke reads
	# it): leave it empty, the 26 MiB mail above all
	py clear "${imapargs[@]}" INBOX >/dev/null 2>&1
}
trap cleanup EXIT

mkconf() {  # mkconf NAME MAILBOX POLL_S: config with [imap] and [smtp]
	local f=$logs/$1.conf
	(umask 077
	 { cat "$CONF"
	   printf '[worker]\nthreads = 2\npoll_ms = 100\nretry_base_ms = 200\nretry_max_s = 1\ngrace_s = 5\nlease_s = 10\n'
	   printf '[smtp]\nurl = smtp://localhost:%s\ntls = required\nca_file = %s\n' "$MAILSTACK_SMTP_PORT" "$MAILSTACK_CA"
	   printf '[mail]\nfrom_address = postern@practice.test\nreply_domain = practice.test\nbounce_domain = practice.test\n'
	   printf '[imap]\nhost = localhost\nport = %s\ntls = implicit\nca_file = %s\n' "$MAILSTACK_IMAPS_PORT" "$MAILSTACK_CA"
	   printf 'username = %s\npassword = %s\nmailbox = %s\npoll_s = %s\n' "$box" "$MAILSTACK_PASSWORD" "$2" "$3"
	 } >"$f")
	echo "$f"
}
start_worker() {  # start_worker NAME CONF; sets wpid
	"$worker" -c "$2" >>"$logs/$1.log" 2>&1 &
	wpid=$!
	pids+=("$wpid")
	wait_for 20 grep -q "event=worker_started" "$logs/$1.log"
}
q() { psql_db "$1" 2>&1; }
outcome() {  # outcome MSGID: "outcome reason" of the inbound_mail row
	q "SELECT outcome || ' ' || coalesce(reason, '-') FROM inbound_mail WHERE message_id = '$1'"
}

# --- people and threads -----------------------------------------------------
"$ctl" -q -c "$CONF" practice add --name "Riverside Clinic" --slug riverside \
	--from-address frontdesk@practice.test --reply-domain practice.test >/dev/null ||
	{ not_ok "practice add"; finish; }
q "UPDATE practices SET red_flag_autoack = true, emergency_text = 'Call 911 or go to the nearest emergency room.'" >/dev/null
ann=ann.$run@patients.test
bea=bea.$run@patients.test
cyd=cyd.$run@patients.test
"$ctl" -q -c "$CONF" staff add --practice riverside --email "dana.$run@practice.test" --name "Dana Owner" --role owner >/dev/null
"$ctl" -q -c "$CONF" staff add --practice riverside --email "carl.$run@practice.test" --name "Carl Coach" --role staff >/dev/null
"$ctl" -q -c "$CONF" staff add --practice riverside --email "vic.$run@practice.test" --name "Vic Viewer" --role viewer >/dev/null
"$ctl" -q -c "$CONF" patient add --practice riverside --email "$ann" --name "Ann Lee" >/dev/null
"$ctl" -q -c "$CONF" patient add --practice riverside --email "$bea" --name "Bea Other" >/dev/null
"$ctl" -q -c "$CONF" patient add --practice riverside --email "$cyd" --name "Cyd Bounce" >/dev/null
q "UPDATE patients SET assigned_staff_id = (SELECT id FROM staff_users WHERE email = 'carl.$run@practice.test') WHERE email = '$ann'" >/dev/null
carl=$(q "SELECT id FROM staff_users WHERE email = 'carl.$run@practice.test'")
dana=$(q "SELECT id FROM staff_users WHERE email = 'dana.$run@practice.test'")
thread() {  # thread PATIENT: an outbound message from Carl; prints its id
	q "INSERT INTO patient_messages (practice_id, patient_id, staff_user_id, direction, channel, subject, body)
		SELECT p.practice_id, p.id, $carl, 'outbound', 'web', 'Your visit', 'See you soon'
		FROM patients p WHERE p.email = '$1' RETURNING id" | head -1
}
t_ann=$(thread "$ann")
check "a thread for Ann" test -n "$t_ann"
tok=$(py token "$key" 1 "$t_ann" 30)
check "a reply token (40 base32 characters)" test "${#tok}" -eq 40
to_ann=reply+$tok@practice.test
bad_tok=${tok:0:20}$([ "${tok:20:1}" = a ] && echo b || echo a)${tok:21}
old_tok=$(py token "$key" 1 "$t_ann" -2)
# Cyd's notification went out; its delivery is what the DSN bounces
d_cyd=$(q "INSERT INTO deliveries (kind, practice_id, patient_id, recipient, message_id, state, sent_at)
	SELECT 'notify', practice_id, id, email, 'n.$run@practice.test', 'sent', now() FROM patients WHERE email = '$cyd' RETURNING id" | head -1)
btok=$(py token "$key" 2 "$d_cyd" 30)

# --- the mail ----------------------------------------------------------------
py clear "${imapargs[@]}" INBOX || not_ok "the reply mailbox is emptied"
mk() {  # mk NAME FIXTURE FROM TO MSGID [RCPT]: a filled fixture file
	py fill "$fx/$2" FROM="$3" FROM_NAME="Sender" TO="$4" MSGID="$5" RUN="$run" RCPT="${6:-}" >"$logs/$1.eml"
}
send() {  # send NAME FROM TO
	py smtp "$MAILSTACK_SMTP_PORT" "$MAILSTACK_CA" "$2" "$3" "$logs/$1.eml"
}
mk gmail gmail.eml "$ann" "$to_ann" "gm.$run@mail.test"
mk outlook outlook_html.eml "$ann" "$to_ann" "ol.$run@mail.test"
mk apple apple_latin1.eml "$ann" "$to_ann" "ap.$run@mail.test"
mk tb thunderbird_de.eml "$ann" "$to_ann" "tb.$run@mail.test"
mk urgent urgent.eml "$ann" "$to_ann" "ur.$run@mail.test"
mk ooo auto_reply.eml "$ann" "$to_ann" "oo.$run@mail.test"
mk att attachment.eml "$ann" "$to_ann" "at.$run@mail.test"
mk wrong gmail.eml "$bea" "$to_ann" "wr.$run@mail.test"
mk forged gmail.eml "$ann" "reply+$bad_tok@practice.test" "fo.$run@mail.test"
mk expired gmail.eml "$ann" "reply+$old_tok@practice.test" "ex.$run@mail.test"
mk notoken gmail.eml "$ann" "reply@practice.test" "nt.$run@mail.test"
mk stranger gmail.eml "stranger.$run@elsewhere.test" "reply@practice.test" "st.$run@mail.test"
mk dup urgent.eml "$ann" "$to_ann" "gm.$run@mail.test"
mk dsn dsn.eml "MAILER-DAEMON@patients.test" "bounce+$btok@practice.test" "ds.$run@mail.test" "$cyd"
sent=0
inbox() {  # inbox N [FIELD]: does the INBOX hold N mails (FIELD 2: N \Seen)?
	[ "$(py status "${imapargs[@]}" INBOX | cut -d' ' -f"${2:-1}")" = "$1" ]
}
envelope() {  # envelope NAME: sends it with From and To as envelope
	local to frm
	to=$(sed -n 's/^To: .*<\(.*\)>.*/\1/p; s/^To: \([^<]*\)$/\1/p' "$logs/$1.eml" | head -1 | tr -d '\r')
	frm=$(sed -n 's/^From: .*<\(.*\)>.*/\1/p' "$logs/$1.eml" | head -1 | tr -d '\r')
	send "$1" "$frm" "$to"
}
for n in gmail outlook apple tb urgent ooo att wrong forged expired notoken stranger; do
	envelope "$n" && sent=$((sent + 1))
done
# The duplicate must come after the original: wait for those to arrive.
wait_for 30 inbox 12 ||
	not_ok "12 mails arrived in the mailbox" "$(py status "${imapargs[@]}" INBOX)"
envelope dup && sent=$((sent + 1))
wait_for 30 inbox 13
# The DSN comes from the null sender to the bounce address; the stack
# delivers *@practice.test by local part, so it goes to the reply mailbox
# by APPEND (as an aliased bounce domain would deliver it).
py append "${imapargs[@]}" INBOX "$logs/dsn.eml" && sent=$((sent + 1))
# Over 25 MiB: Postfix would refuse it, so APPEND.
{ py fill "$fx/gmail.eml" FROM="$ann" FROM_NAME=Ann TO="$to_ann" MSGID="big.$run@mail.test" RUN="$run"
  head -c $((26 * 1024 * 1024)) /dev/zero | tr '\0' 'x' | fold -w 76 | sed 's/$/\r/'; } >"$logs/big.eml"
py append "${imapargs[@]}" INBOX "$logs/big.eml" && sent=$((sent + 1))
# MIME we refuse (1,000 parts), from a patient and, marked automatic, from
# another: only the person gets a notice (judged by the header alone).
bomb() {  # bomb FROM MSGID [EXTRA_HEADER]
	printf 'From: Patient <%s>\r\nTo: reply@practice.test\r\nSubject: Scan of my form\r\n' "$1"
	printf 'Message-ID: <%s>\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n' "$2"
	[ -n "${3:-}" ] && printf '%s\r\n' "$3"
	printf 'Content-Type: multipart/mixed; boundary="p"\r\n\r\n'
	for _ in $(seq 1000); do printf -- '--p\r\n\r\nx\r\n'; done
	printf -- '--p--\r\n'
}
bomb "$ann" "bad.$run@mail.test" >"$logs/bad.eml"
bomb "$bea" "badauto.$run@mail.test" "Auto-Submitted: auto-replied" >"$logs/badauto.eml"
py append "${imapargs[@]}" INBOX "$logs/bad.eml" && sent=$((sent + 1))
py append "${imapargs[@]}" INBOX "$logs/badauto.eml" && sent=$((sent + 1))
check "17 test mails handed to Postfix or Dovecot" test "$sent" -eq 17
wait_for 30 inbox 17 ||
	not_ok "all 17 mails arrived in the mailbox" "$(py status "${imapargs[@]}" INBOX)"

# --- ingest -------------------------------------------------------------------
c1=$(mkconf w1 INBOX 60)
start_worker w1 "$c1" || not_ok "the worker starts"
check "the watcher enqueues imap_sync at start and the worker ingests all 17 mails" \
	wait_sql 60 "SELECT count(*) FROM inbound_mail" 17

contains "Gmail reply → message" "$(outcome "gm.$run@mail.test")" "message -"
check "Gmail reply: the quote is cut, high confidence" \
	sql_is "SELECT body || '|' || confidence FROM patient_messages WHERE message_id = 'gm.$run@mail.test'" \
	"Thanks, I will come on Tuesday at 9.|high"
check "Gmail reply: the elided part keeps the quote" \
	sql_is "SELECT elided LIKE '%Reply above this line%' FROM patient_messages WHERE message_id = 'gm.$run@mail.test'" t
check "the message is in Ann's thread, from Ann, addressed to Carl, channel email" \
	sql_is "SELECT thread_id = $t_ann AND staff_user_id = $carl AND direction = 'inbound' AND channel = 'email'
		AND in_reply_to = 'notify.$run@practice.test' AND thread_refs = ARRAY['notify.$run@practice.test']::msgid[]
		FROM patient_messages WHERE message_id = 'gm.$run@mail.test'" t
body=$(q "SELECT body FROM patient_messages WHERE message_id = 'ol.$run@mail.test'")
contains "Outlook HTML-only reply → text, UTF-8 from quoted-printable" "$body" "my knee is much better – thank you!"
check "Outlook HTML: no script, style or remote image survives" \
	sql_is "SELECT body ~ '(alert|color: red|tracker|<)' FROM patient_messages WHERE message_id = 'ol.$run@mail.test'" f
check "Outlook HTML: the From/Sent block is elided" \
	sql_is "SELECT body !~ 'Sent:' FROM patient_messages WHERE message_id = 'ol.$run@mail.test'" t
check "Apple Mail Latin-1 reply: body and RFC 2047 subject decoded to UTF-8" \
	sql_is "SELECT body || '|' || subject FROM patient_messages WHERE message_id = 'ap.$run@mail.test'" \
	"Très bien, à mardi. Merci beaucoup !|Réponse à votre message"
check "Thunderbird German reply: 'Am … schrieb' quote header cut" \
	sql_is "SELECT body LIKE 'Vielen Dank, ich komme am Dienstag.%' AND body NOT LIKE '%schrieb%' AND elided LIKE '%schrieb%'
		FROM patient_messages WHERE message_id = 'tb.$run@mail.test'" t

contains "urgent words → still a message" "$(outcome "ur.$run@mail.test")" "message -"
check "urgent: every non-viewer staff user is notified (owner and coach), not the viewer" \
	sql_is "SELECT string_agg(s.role, ',' ORDER BY s.role) FROM staff_notifications n JOIN staff_users s ON s.id = n.staff_user_id
		WHERE n.type = 'urgent_message'" "owner,staff"
check "urgent: the practice's auto-acknowledgement is queued once" \
	sql_is "SELECT count(*) FROM jobs WHERE kind = 'urgent_ack' AND once_key LIKE 'urgent_ack:%'" 1
check "ordinary replies notify the addressee (Carl) only" \
	sql_is "SELECT count(*) FILTER (WHERE staff_user_id = $carl) = count(*) AND count(*) = 5 FROM staff_notifications WHERE type = 'patient_reply'" t
check "each message has one reply_needed task for the coach" \
	sql_is "SELECT count(*) FROM tasks WHERE kind = 'reply_needed' AND assigned_staff_id = $carl AND status = 'open'" 6

contains "auto-reply → auto_reply, no message" "$(outcome "oo.$run@mail.test")" "auto_reply"
check "auto-reply made no message and no notice" \
	sql_is "SELECT count(*) FROM patient_messages WHERE message_id = 'oo.$run@mail.test'" 0

contains "attachments: the message is made" "$(outcome "at.$run@mail.test")" "message -"
contains "attachments: the PDF is stored with its SHA-256, the .exe refused with a safe name" \
	"$(q "SELECT string_agg(filename || ':' || coalesce(refused, 'stored') || ':' || coalesce((sha256 = sha256(data))::text, '-'), ',' ORDER BY a.id)
		FROM message_attachments a JOIN patient_messages m ON m.id = a.patient_message_id WHERE m.message_id = 'at.$run@mail.test'")" \
	"form.pdf:stored:true,.._.._evil.exe:type_not_allowed:-"

contains "right token, wrong sender → held" "$(outcome "wr.$run@mail.test")" "held sender_not_patient"
check "held: pending, on Ann's record, no message yet, the confirmation mail's token made" \
	sql_is "SELECT i.hold_state = 'pending' AND i.patient_id = p.id
		AND NOT EXISTS (SELECT 1 FROM patient_messages WHERE message_id = 'wr.$run@mail.test')
		AND EXISTS (SELECT 1 FROM login_tokens t WHERE t.purpose = 'confirm_sender' AND t.inbound_mail_id = i.id AND t.patient_id = p.id)
		FROM inbound_mail i, patients p WHERE i.message_id = 'wr.$run@mail.test' AND p.email = '$ann'" t
contains "forged token → quarantined" "$(outcome "fo.$run@mail.test")" "quarantined token_invalid"
contains "expired token → quarantined" "$(outcome "ex.$run@mail.test")" "quarantined token_expired"
contains "no token → quarantined (In-Reply-To never attaches mail)" "$(outcome "nt.$run@mail.test")" "quarantined no_token"
contains "a stranger → quarantined" "$(outcome "st.$run@mail.test")" "quarantined no_token"
check "rejection notices: Ann once each for expired, no token, unreadable and too large; never the stranger" \
	sql_is "SELECT string_agg(payload->>'reason', ',' ORDER BY payload->>'reason') FROM jobs WHERE kind = 'rejection_notice' AND payload->>'email' = '$ann'" \
	"no_token,not_readable,token_expired,too_large"
check "no rejection notice to the stranger" \
	sql_is "SELECT count(*) FROM jobs WHERE kind = 'rejection_notice' AND payload->>'email' LIKE 'stranger%'" 0
check "quarantined mail keeps its raw bytes for review" \
	sql_is "SELECT bool_and(raw IS NOT NULL) FROM inbound_mail WHERE outcome = 'quarantined'" t

contains "the same Message-ID again (other bytes) → duplicate" \
	"$(q "SELECT string_agg(outcome, ',' ORDER BY uid) FROM inbound_mail WHERE message_id = 'gm.$run@mail.test'")" "message,duplicate"
check "the duplicate made no second message" \
	sql_is "SELECT count(*) FROM patient_messages WHERE message_id = 'gm.$run@mail.test'" 1

contains "DSN → bounce, matched by the VERP token" "$(outcome "ds.$run@mail.test")" "bounce hard 5.1.1 delivery $d_cyd"
contains "DSN: the delivery is bounced with the status and diagnostic" \
	"$(q "SELECT state || ' ' || bounce_reason FROM deliveries WHERE id = $d_cyd")" \
	"bounced 5.1.1 550 5.1.1 <$cyd>: Recipient address rejected"
check "DSN: the address is suppressed and Cyd's record shows a hard bounce" \
	sql_is "SELECT (SELECT count(*) FROM suppressions WHERE email = '$cyd' AND reason = 'hard_bounce' AND delivery_id = $d_cyd)
		|| ' ' || bounce_state FROM patients WHERE email = '$cyd'" "1 hard"
check "DSN: owners/admins are told (Cyd has no coach)" \
	sql_is "SELECT count(*) FROM staff_notifications WHERE type = 'mail_bounced' AND staff_user_id = $dana" 1

contains "MIME we refuse → rejected, with the parser's reason" "$(outcome "bad.$run@mail.test")" "rejected not_readable: more than"
check "unreadable mail: From and Subject recorded from its header, raw kept for review" \
	sql_is "SELECT from_addr = '$ann' AND subject = 'Scan of my form' AND raw IS NOT NULL FROM inbound_mail WHERE message_id = 'bad.$run@mail.test'" t
contains "unreadable automatic mail → rejected too" "$(outcome "badauto.$run@mail.test")" "rejected not_readable"
check "unreadable automatic mail: no rejection notice (no backscatter to robots)" \
	sql_is "SELECT count(*) FROM jobs WHERE kind = 'rejection_notice' AND payload->>'email' = '$bea'" 0
contains "over 25 MiB → rejected, not fetched" "$(outcome "big.$run@mail.test")" "rejected too_large"
check "the big mail is recorded from its header (From, size), raw not kept" \
	sql_is "SELECT from_addr = '$ann' AND size > 26000000 AND raw IS NULL FROM inbound_mail WHERE message_id = 'big.$run@mail.test'" t

check "audit: one message.received row per message, all by the patient" \
	sql_is "SELECT count(*) FROM audit_log WHERE action = 'message.received' AND actor_kind = 'patient'" 6
check "audit: the chain is linked (each prev_hash is its predecessor's hash)" \
	sql_is "SELECT count(*) FROM audit_log a JOIN audit_log b ON b.id = a.id - 1 WHERE a.prev_hash IS DISTINCT FROM b.hash" 0
uv=$(py status "${imapargs[@]}" INBOX | cut -d' ' -f3)
# (the mailbox outlives a run: UIDs go on from earlier passes)
check "mailbox_state is at the highest UID of this UIDVALIDITY, past all 17 mails" \
	sql_is "SELECT s.last_uid = max(i.uid) AND count(*) = 17 FROM mailbox_state s
		JOIN inbound_mail i ON i.mailbox = s.mailbox AND i.uidvalidity = s.uidvalidity
		WHERE s.mailbox = 'INBOX' AND s.uidvalidity = $uv GROUP BY s.last_uid" t
check "every mail is flagged \\Seen on the server after the commit" \
	wait_for 10 inbox 17 2

# --- IDLE: a new reply is ingested at once (poll_s is 60) ---------------------
mk idle gmail.eml "$ann" "$to_ann" "id.$run@mail.test"
mark=$(($(wc -l <"$logs/w1.log") + 1))
send idle "$ann" "$to_ann"
check "IDLE: a reply sent now is ingested (poll_s is 60)" \
	wait_sql 30 "SELECT count(*) FROM patient_messages WHERE message_id = 'id.$run@mail.test'" 1
# Who started that sync: the watcher heard the server's news first
# (event=imap_idle_activity), before any ingest ran; a poll would show
# the ingest first (and the activity only from its \Seen flags after).
first_after_send() {
	tail -n +"$mark" "$logs/w1.log" | grep -m1 -o -E "event=(imap_idle_activity|ingested)"
}
check "IDLE: the watcher's IDLE noticed the mail before any ingest ran" \
	test "$(first_after_send)" = "event=imap_idle_activity"
grep -q "event=imap_watch_started" "$logs/w1.log" && ok "the watcher logged its start" || not_ok "the watcher logged its start"

# --- the patient confirms the held reply (what /confirm enqueues) -----------
held_id=$(q "SELECT id FROM inbound_mail WHERE message_id = 'wr.$run@mail.test'")
"$ctl" -q -c "$c1" jobs enqueue release_held "{\"inbound_mail_id\": $held_id, \"decision\": \"confirm\"}" >/dev/null
"$ctl" -q -c "$c1" jobs enqueue release_held "{\"inbound_mail_id\": $held_id, \"decision\": \"decline\"}" >/dev/null
check "release_held: the confirmed reply becomes a message in Ann's thread" \
	wait_sql 30 "SELECT count(*) FROM patient_messages WHERE message_id = 'wr.$run@mail.test' AND thread_id = $t_ann
		AND inbound_mail_id = $held_id AND body = 'Thanks, I will come on Tuesday at 9.'" 1
check "release_held: the row is confirmed, once (the later decline changed nothing)" \
	wait_sql 10 "SELECT outcome || ' ' || hold_state || ' ' || (hold_decided_at IS NOT NULL)::text FROM inbound_mail WHERE id = $held_id" \
	"message confirmed true"
check "release_held: no release job is left over" \
	wait_sql 10 "SELECT count(*) FROM jobs WHERE kind = 'release_held'" 0

# --- a real notification's Reply-To, answered ---------------------------------
m2=$(thread "$ann")
j=$("$ctl" -c "$c1" jobs enqueue notify "{\"message_id\":$m2}" | sed -n 's/^enqueued job \([0-9]*\) .*/\1/p')
check "the notification to Ann is sent" \
	wait_sql 30 "SELECT count(*) FROM deliveries WHERE patient_id = (SELECT id FROM patients WHERE email = '$ann') AND state = 'sent' AND kind = 'notify'" 1
# Ann's mailbox also holds the confirm_sender and rejection notices: the
# notification is the newest.
n_ann=$(/usr/bin/python3 "$top/tests/integration/inbound.py" status "$MAILSTACK_IMAPS_PORT" "$MAILSTACK_CA" "$ann" "$MAILSTACK_PASSWORD" INBOX | cut -d' ' -f1)
reply_to=$(curl -sS --max-time 10 --cacert "$MAILSTACK_CA" --user "$ann:$MAILSTACK_PASSWORD" \
	"imaps://localhost:$MAILSTACK_IMAPS_PORT/INBOX;MAILINDEX=$n_ann" |
	/usr/bin/python3 -c 'import email, email.utils, sys; print(email.utils.parseaddr(email.message_from_binary_file(sys.stdin.buffer)["Reply-To"] or "")[1])')
contains "the notification carries a reply+ address" "$reply_to" "reply+"
mk real gmail.eml "$ann" "$reply_to" "re.$run@mail.test"
send real "$ann" "$reply_to" || not_ok "the reply to the real notification is sent"
check "the reply to the real notification lands in that thread" \
	wait_sql 30 "SELECT count(*) FROM patient_messages WHERE message_id = 're.$run@mail.test' AND thread_id = $m2" 1

# --- nothing twice ------------------------------------------------------------
stop_and_wait "$wpid" 15; check "worker stops" test $? -eq 0
n_in=$(q "SELECT count(*) FROM inbound_mail")
start_worker w2 "$c1" || not_ok "the worker starts again"
wait_for 20 grep -q "event=imap_watch_started" "$logs/w2.log"
sleep 3
check "a second run finds nothing new (the job ran and ended)" \
	wait_sql 20 "SELECT count(*) FROM jobs WHERE kind = 'imap_sync' AND state IN ('queued', 'running')" 0
check "… and ingested nothing twice" sql_is "SELECT count(*) FROM inbound_mail" "$n_in"
# raw bytes are purged by maintenance: 40 days is past keep_raw_days (30)
# but not keep_review_days (180)
q "UPDATE inbound_mail SET created_at = now() - interval '40 days'" >/dev/null
check "maintenance purges the raw bytes of old ingested mail (the record stays)" \
	wait_sql 40 "SELECT count(*) FROM inbound_mail WHERE outcome = 'message' AND (raw IS NOT NULL OR raw_purged_at IS NULL)" 0
check "… and keeps those of quarantined mail for review" \
	sql_is "SELECT bool_and(raw IS NOT NULL) FROM inbound_mail WHERE outcome = 'quarantined'" t
stop_and_wait "$wpid" 15; check "worker stops again" test $? -eq 0

# --- UIDVALIDITY change: the folder recreated with the same mail --------------
folder=uv$run
mk uv1 gmail.eml "$ann" "$to_ann" "uv1.$run@mail.test"
mk uv2 apple_latin1.eml "$ann" "$to_ann" "uv2.$run@mail.test"
mk uv3 auto_reply.eml "$ann" "$to_ann" "uv3.$run@mail.test"
py append "${imapargs[@]}" "$folder" "$logs/uv1.eml" "$logs/uv2.eml" "$logs/uv3.eml" ||
	not_ok "three mails appended to $folder"
# this part logs in with AUTHENTICATE PLAIN and the password from a file,
# and moves what it ingested to a processed folder (UID MOVE)
done_folder=done$run
py append "${imapargs[@]}" "$done_folder" || not_ok "the processed folder is created"
c2=$(mkconf w3 "$folder" 60)
(umask 077; echo "$MAILSTACK_PASSWORD" >"$logs/imap.secret")
sed -i "s/^password = .*/password = wrong/" "$c2"
printf '[imap]\nauth = plain\npassword_file = %s\nprocessed_folder = %s\n' "$logs/imap.secret" "$done_folder" >>"$c2"
start_worker w3 "$c2"
check "folder $folder: 3 mails ingested" \
	wait_sql 30 "SELECT count(*) FROM inbound_mail WHERE mailbox = '$folder'" 3
moved() { [ "$(py status "${imapargs[@]}" "$done_folder" | cut -d' ' -f1)" = 3 ] &&
	[ "$(py status "${imapargs[@]}" "$folder" | cut -d' ' -f1)" = 0 ]; }
check "after the commit the 3 mails are moved to the processed folder (UID MOVE)" wait_for 10 moved
stop_and_wait "$wpid" 15; check "worker stops" test $? -eq 0
uv1=$(py status "${imapargs[@]}" "$folder" | cut -d' ' -f3)
py recreate "${imapargs[@]}" "$folder"
py append "${imapargs[@]}" "$folder" "$logs/uv1.eml" "$logs/uv2.eml" "$logs/uv3.eml"
uv2=$(py status "${imapargs[@]}" "$folder" | cut -d' ' -f3)
check "the recreated folder has a new UIDVALIDITY" test "$uv1" != "$uv2"
start_worker w4 "$c2"
check "after the UIDVALIDITY change the folder is read again (state row for the new one)" \
	wait_sql 30 "SELECT last_uid FROM mailbox_state WHERE mailbox = '$folder' AND uidvalidity = $uv2" 3
check "… and no mail came in twice" \
	sql_is "SELECT count(*) FROM inbound_mail WHERE mailbox = '$folder'" 3
! grep -q "imap_watch_error\|AUTHENTICATE" "$logs/w3.log" && ok "AUTHENTICATE PLAIN with imap.password_file logs in (config password is wrong)" ||
	not_ok "AUTHENTICATE PLAIN with imap.password_file logs in" "$(grep -m3 "error" "$logs/w3.log")"
grep -q "event=uidvalidity_changed" "$logs/w4.log" && ok "the UIDVALIDITY change is logged" ||
	not_ok "the UIDVALIDITY change is logged"
stop_and_wait "$wpid" 15; check "worker stops" test $? -eq 0

# --- a refused login: a clear error, the job retries (never dead) -----------
c3=$(mkconf w5 "$folder" 60)
sed -i "s/^password = .*/password = wrong/" "$c3"
start_worker w5 "$c3"
check "a refused IMAP login is logged clearly by the watcher" \
	wait_for 20 grep -q "event=imap_watch_error.*LOGIN refused" "$logs/w5.log"
check "… and the imap_sync job waits for a retry with the reason, not dead" \
	wait_sql 20 "SELECT state || ' ' || (last_error LIKE '%LOGIN refused%')::text FROM jobs WHERE kind = 'imap_sync'" "queued true"
stop_and_wait "$wpid" 15; check "worker stops" test $? -eq 0
finish
