#!/usr/bin/env bash
# tests/integration/mail_followups.sh: the IMAP ingester's follow-up mails
# and the /confirm page, end to end. Rows the ingester would make are made
# here by SQL (a held inbound_mail row, refused ones, an inbound patient
# message); the jobs are enqueued with the ingester's payloads and keys and
# run by a real postern-worker through Postfix into Dovecot, read back over
# IMAPS:
#   confirm_sender   the PATIENT (never the sender) gets "was this you?"
#                    with no PHI; the token's keyed hash is the stored row;
#                    GET /confirm shows sender and date and spends nothing;
#                    POST confirm/decline spends it (and its siblings) and
#                    queues release_held with the right payload; a second
#                    POST, an expired, unknown or malformed token fail
#   rejection_notice one mail per reason, Auto-Submitted: auto-replied, no
#                    Reply-To token, the practice chosen as documented; the
#                    once_key dedups a second enqueue the same day
#   urgent_ack       the practice's emergency text, auto-replied; nothing
#                    when the practice has switched it off
#
# Needs the runner's MAILSTACK_* environment (fails, never skips, without).
# Addresses carry a per-run tag: the stack's mailboxes outlive one run.
. "$(dirname "$0")/lib.bash"
cd "$top" || exit 1
for v in MAILSTACK_HOST MAILSTACK_SMTP_PORT MAILSTACK_IMAPS_PORT MAILSTACK_PASSWORD MAILSTACK_CA; do
	[ -n "${!v:-}" ] || { not_ok "$v is set (run through tests/run.sh)"; finish; }
done

suite_start mail_followups
httpd=$POSTERN_BUILD/postern-httpd
run=$(date +%s%N | tail -c 9)
day=$(date -u +%Y-%m-%d)
server_key=$(sed -n 's/^server_key = //p' "$CONF")
port=$(free_port 18380)
url=http://127.0.0.1:$port
conf=$logs/main.conf
(umask 077
 { cat "$CONF"
   printf '[worker]\nthreads = 2\npoll_ms = 100\nretry_base_ms = 200\nretry_max_s = 1\ngrace_s = 2\n'
   printf '[smtp]\nurl = smtp://%s:%s\ntls = required\nca_file = %s\ntimeout_s = 10\n' \
	"$MAILSTACK_HOST" "$MAILSTACK_SMTP_PORT" "$MAILSTACK_CA"
   printf '[mail]\nfrom_address = postern@practice.test\nreply_domain = practice.test\nbounce_domain = practice.test\n'
   printf '[httpd]\nbase_url = https://portal.test\nport = %s\n' "$port"
 } >"$conf")

down_conf=$logs/down.conf
sed 's|^url = smtp://.*|url = smtp://127.0.0.1:1|' "$conf" >"$down_conf"
chmod 600 "$down_conf"
enqueue() {  # enqueue KIND PAYLOAD [ONCE_KEY]: prints posternctl's line
	if [ -n "${3:-}" ]; then
		"$ctl" -c "$CONF" jobs enqueue "$1" "$2" --once-key "$3"
	else
		"$ctl" -c "$CONF" jobs enqueue "$1" "$2"
	fi
}
job_id() { sed -n 's/^enqueued job \([0-9]*\) .*/\1/p' <<<"$1"; }
imap_count() {  # imap_count ADDR: messages in ADDR's INBOX
	curl -sS --max-time 10 --cacert "$MAILSTACK_CA" --user "$1:$MAILSTACK_PASSWORD" \
		"imaps://localhost:$MAILSTACK_IMAPS_PORT/INBOX" -X 'EXAMINE INBOX' 2>/dev/null |
		sed -n 's/^\* \([0-9]*\) EXISTS.*/\1/p' | tr -d '\r'
}
count_is_at_least() { [ "$(imap_count "$1")" -ge "$2" ] 2>/dev/null; }
fetch() {  # fetch ADDR N FILE: message N of ADDR's INBOX, raw
	curl -sS --max-time 10 --cacert "$MAILSTACK_CA" --user "$1:$MAILSTACK_PASSWORD" \
		"imaps://localhost:$MAILSTACK_IMAPS_PORT/INBOX;MAILINDEX=$2" >"$3"
}
cat >"$logs/mail.py" <<'PY'
import base64, email, email.policy, hashlib, struct, sys
from email.header import decode_header, make_header
cmd = sys.argv[1]
if cmd == "hash":      # hash B64_SERVER_KEY SUBKEY_ID TEXT: keyed hash, hex
    key = base64.b64decode(sys.argv[2])
    salt = struct.pack("<Q", int(sys.argv[3])) + bytes(8)
    sub = hashlib.blake2b(b"", digest_size=32, key=key, salt=salt,
                          person=b"postern1" + bytes(8)).digest()
    print(hashlib.blake2b(sys.argv[4].encode(), digest_size=32, key=sub).hexdigest())
    sys.exit(0)
m = email.message_from_bytes(open(sys.argv[2], "rb").read(), policy=email.policy.compat32)
if cmd == "header":    # header FILE NAME: every value, decoded, one a line
    for v in m.get_all(sys.argv[3]) or []:
        print(str(make_header(decode_header(v))))
elif cmd == "all":      # all FILE: every header decoded, every text part decoded
    for k, v in m.items():
        print(k + ": " + str(make_header(decode_header(v))))
    for part in m.walk():
        if part.get_content_maintype() == "text":
            sys.stdout.write(part.get_payload(decode=True).decode("utf-8"))
elif cmd in ("text", "html"):
    for part in m.walk():
        if part.get_content_type() == "text/" + ("plain" if cmd == "text" else "html"):
            sys.stdout.write(part.get_payload(decode=True).decode("utf-8"))
PY
mail_py() { python3 "$logs/mail.py" "$@"; }
no_phi() {  # no_phi FILE: neither the raw mail nor its decoded form has PHI
	! grep -q "Biopsy\|biopsy\|A1C\|Secretname\|chest pain" "$1" &&
		! mail_py all "$1" | grep -q "Biopsy\|biopsy\|A1C\|Secretname\|chest pain"
}
req() {  # req NAME CURL_ARGS...: status in $st, body in $body
	local n=$1; shift
	st=$(curl -sS --max-time 10 -o "$logs/$n.b" -w '%{http_code}' "$@" 2>"$logs/$n.err")
	body=$(cat "$logs/$n.b")
}
jstate() { psql_db "SELECT coalesce((SELECT state FROM jobs WHERE id = $1), 'deleted(done)')"; }
b64tok() { head -c32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }

# --- people and rows ----------------------------------------------------------
"$ctl" -q -c "$CONF" practice add --name "Riverside Clinic" --slug riverside \
	--from-address frontdesk@practice.test --reply-domain practice.test >/dev/null ||
	{ not_ok "practice add"; finish; }
"$ctl" -q -c "$CONF" practice add --name "Open Practice" --slug open \
	--from-address open@practice.test --reply-domain practice.test >/dev/null ||
	{ not_ok "practice add open"; finish; }
emergency="Call 112, or our night line 555-0100 <24h>."
psql_db "UPDATE practices SET emergency_text = '$emergency', red_flag_autoack = true,
	timezone = 'Europe/Berlin' WHERE slug = 'riverside'" >/dev/null
ann=ann.$run@patients.test         # held reply, confirmed
bea=bea.$run@patients.test         # held reply, declined
spouse=spouse.$run@patients.test   # wrote "as" ann and bea: never mailed
ron=ron.$run@patients.test         # rejection notices (in both practices)
sup=sup.$run@patients.test         # suppressed: no notice
uma=uma.$run@patients.test         # urgent reply, riverside (autoack on)
ole=ole.$run@patients.test         # urgent reply, open (autoack off)
lee=lee.$run@patients.test         # held reply, too old to ask about
rae=rae.$run@patients.test         # held reply, asked after SMTP came back
for p in "riverside $ann Ann Secretname" "riverside $bea Bea Hidden" "riverside $ron Ron Reject" \
	"open $ron Ron Reject" "riverside $sup Sue Pressed" "riverside $uma Uma Urgent" "open $ole Ole Open" \
	"riverside $lee Lee Late" "riverside $rae Rae Retry"; do
	set -- $p
	"$ctl" -q -c "$CONF" patient add --practice "$1" --email "$2" --name "$3 $4" >/dev/null ||
		not_ok "patient add $2"
done
psql_db "INSERT INTO suppressions (email, practice_id, reason, source)
	VALUES ('$sup', NULL, 'manual', 'mail_followups.sh')" >/dev/null
check "people, practices and a suppression are in place" \
	sql_is "SELECT count(*) FROM patients" 9

secret_subject="Biopsy result question"
secret_body="my A1C was 6.1 and the biopsy"
pid_of() { psql_db "SELECT id FROM patients WHERE email = '$1' ORDER BY id LIMIT 1"; }
prac_of() { psql_db "SELECT id FROM practices WHERE slug = '$1'"; }
# inbound ROWNUM OUTCOME HOLD PATIENT_EMAIL PRACTICE_SLUG FROM REASON: prints the row id
inbound() {
	local pat=NULL prac=NULL hold=NULL decided=NULL
	[ -n "$4" ] && pat=$(pid_of "$4")
	[ -n "$5" ] && prac=$(prac_of "$5")
	[ -n "$3" ] && hold="'$3'"
	[ -n "$3" ] && [ "$3" != pending ] && decided="now()"
	psql_db "INSERT INTO inbound_mail (mailbox, uidvalidity, uid, message_id, sha256, from_addr,
		subject, size, outcome, reason, practice_id, patient_id, hold_state, hold_decided_at, raw, received_at)
		VALUES ('INBOX', 1, $1, 'in$1.$run@home.test', sha256(convert_to('$run $1', 'UTF8')), '$6',
		'$secret_subject', 100, '$2', '$7', $prac, $pat, $hold, $decided,
		convert_to('Subject: $secret_subject\r\n\r\n$secret_body', 'UTF8'),
		'2026-11-20 13:05:00+00') RETURNING id" | head -1
}
m_ann=$(inbound 1 held pending "$ann" riverside "$spouse" sender_not_patient)
m_bea=$(inbound 2 held pending "$bea" riverside "$spouse" sender_not_patient)
m_done=$(inbound 3 message confirmed "$ann" riverside "$spouse" sender_not_patient)
m_exp=$(inbound 4 held pending "$ann" riverside "$spouse" sender_not_patient)
m_old=$(inbound 5 quarantined "" "$ron" open "$ron" token_expired)
m_not=$(inbound 6 quarantined "" "$ron" "" "$ron" no_token)
m_big=$(inbound 7 rejected "" "" "" "$ron" "too_large: 1 bytes")
m_mime=$(inbound 8 rejected "" "" "" "$ron" "not_readable: x")
m_sup=$(inbound 9 quarantined "" "" "" "$sup" no_token)
m_ghost=$(inbound 10 quarantined "" "" "" "ghost.$run@patients.test" no_token)
m_late=$(inbound 11 held pending "$lee" riverside "$spouse" sender_not_patient)
m_retry=$(inbound 12 held pending "$rae" riverside "$spouse" sender_not_patient)
psql_db "UPDATE inbound_mail SET created_at = now() - interval '25 hours' WHERE id = $m_late" >/dev/null
check "inbound rows are in place" test -n "$m_ann" -a -n "$m_retry"
# uma's urgent reply (the ingester made it a message) and ole's
msg_in() {  # msg_in EMAIL MSGID: an inbound email message; prints its id
	psql_db "INSERT INTO patient_messages (practice_id, patient_id, direction, channel, subject, body, message_id)
		SELECT practice_id, id, 'inbound', 'email', '$secret_subject', 'I have chest pain, $secret_body', '$2'
		FROM patients WHERE email = '$1' RETURNING id" | head -1
}
pm_uma=$(msg_in "$uma" "urg.$run@patients.test")
pm_ole=$(msg_in "$ole" "ole.$run@patients.test")

# --- jobs, with the ingester's payloads and keys -----------------------------
j_ann=$(job_id "$(enqueue confirm_sender "{\"inbound_mail_id\": $m_ann}")")
j_bea=$(job_id "$(enqueue confirm_sender "{\"inbound_mail_id\": $m_bea}")")
j_done=$(job_id "$(enqueue confirm_sender "{\"inbound_mail_id\": $m_done}")")
j_late=$(job_id "$(enqueue confirm_sender "{\"inbound_mail_id\": $m_late}")")
rej() {  # rej INBOUND EMAIL REASON: posternctl's line
	enqueue rejection_notice "{\"inbound_mail_id\": $1, \"email\": \"$2\", \"reason\": \"$3\"}" \
		"rejection_notice:$2:$3:$day"
}
j_old=$(job_id "$(rej "$m_old" "$ron" token_expired)")
j_not=$(job_id "$(rej "$m_not" "${ron^^}" no_token)")
j_big=$(job_id "$(rej "$m_big" "$ron" too_large)")
j_mime=$(job_id "$(rej "$m_mime" "$ron" not_readable)")
out=$(rej "$m_old" "$ron" token_expired)
contains "rejection_notice: a second one for the same address, reason and day is not enqueued" \
	"$out" "not enqueued: job $j_old already holds the key"
j_sup=$(job_id "$(rej "$m_sup" "$sup" no_token)")
j_ghost=$(job_id "$(rej "$m_ghost" "ghost.$run@patients.test" no_token)")
j_bad=$(job_id "$(enqueue rejection_notice "{\"inbound_mail_id\": $m_not, \"email\": \"$ron\", \"reason\": \"because\"}")")
pid_uma=$(pid_of "$uma")
pid_ole=$(pid_of "$ole")
j_uma=$(job_id "$(enqueue urgent_ack "{\"patient_id\": $pid_uma, \"patient_message_id\": $pm_uma}" "urgent_ack:$pid_uma:$day")")
out=$(enqueue urgent_ack "{\"patient_id\": $pid_uma, \"patient_message_id\": $pm_uma}" "urgent_ack:$pid_uma:$day")
contains "urgent_ack: a second one for the patient the same day is not enqueued" "$out" "not enqueued"
j_ole=$(job_id "$(enqueue urgent_ack "{\"patient_id\": $pid_ole, \"patient_message_id\": $pm_ole}" "urgent_ack:$pid_ole:$day")")
j_wrong=$(job_id "$(enqueue urgent_ack "{\"patient_id\": $pid_ole, \"patient_message_id\": $pm_uma}")")
all="$j_ann,$j_bea,$j_done,$j_late,$j_old,$j_not,$j_big,$j_mime,$j_sup,$j_ghost,$j_bad,$j_uma,$j_ole,$j_wrong"
check "14 jobs enqueued" bash -c '[[ "$1" =~ ^([0-9]+,){13}[0-9]+$ ]]' _ "$all"
check "confirm_sender and urgent_ack run ahead of notify (priority -5)" \
	sql_is "SELECT string_agg(DISTINCT priority::text, ',') FROM jobs WHERE id IN ($j_ann, $j_uma)" -5

# --- the worker sends --------------------------------------------------------
"$worker" -c "$conf" >"$logs/worker.log" 2>&1 &
wpid=$!
pids+=("$wpid")
check "the worker starts" wait_for 20 grep -q "event=worker_started" "$logs/worker.log"
check "every job finishes within 30 s" wait_sql 30 \
	"SELECT count(*) FROM jobs WHERE id IN ($all) AND state IN ('queued', 'running')" 0
for a in "$ann:1" "$bea:1" "$ron:4" "$uma:1"; do
	wait_for 20 count_is_at_least "${a%:*}" "${a#*:}" || not_ok "mail arrives for ${a%:*}"
done
stop_and_wait "$wpid" 10; rc=$?
check "the worker stops cleanly (rc=$rc)" test "$rc" = 0
for j in $j_ann $j_bea $j_done $j_old $j_not $j_big $j_mime $j_sup $j_ghost $j_uma $j_ole; do
	grep -q "event=job_dead.*job=$j\b" "$logs/worker.log" &&
		not_ok "job $j died" "$(grep "job=$j\b" "$logs/worker.log")"
done

# --- confirm_sender: the mail --------------------------------------------------
f=$logs/ann.eml
fetch "$ann" 1 "$f"
text=$(mail_py text "$f")
html=$(mail_py html "$f")
check "confirm_sender: delivery row kind confirm_sender, sent, to the patient" \
	sql_is "SELECT kind || ' ' || state || ' ' || recipient FROM deliveries WHERE job_id = $j_ann" \
	"confirm_sender sent $ann"
mid=$(psql_db "SELECT message_id FROM deliveries WHERE job_id = $j_ann")
check "confirm_sender: Message-ID is the delivery's" test "$(mail_py header "$f" Message-ID)" = "<$mid>"
contains "confirm_sender: To is the patient's stored address" "$(mail_py header "$f" To)" "$ann"
contains "confirm_sender: From is the practice" "$(mail_py header "$f" From)" "frontdesk@practice.test"
check "confirm_sender: no Reply-To token" test -z "$(mail_py header "$f" Reply-To)"
check "confirm_sender: Auto-Submitted: auto-generated" \
	test "$(mail_py header "$f" Auto-Submitted)" = auto-generated
contains "confirm_sender: names the practice and the sender" "$text" \
	"Riverside Clinic received a reply that says it is from you, sent from $spouse."
contains "confirm_sender: says how long the link works" "$text" "works for 7 days"
contains "confirm_sender: the HTML has the sender too (escaped path)" "$html" "$spouse"
check "confirm_sender: no PHI (held subject, text, patient name)" \
	no_phi "$f"
check "confirm_sender: nothing was mailed to the sender" test "$(imap_count "$spouse")" = 0
tok=$(grep -o 'https://portal.test/confirm?t=[A-Za-z0-9_-]*' <<<"$text" | head -1 | sed 's/.*t=//')
check "confirm_sender: a link with a 256-bit token (43 base64url chars)" test "${#tok}" = 43
want=$(psql_db "SELECT encode(token_hash, 'hex') FROM login_tokens WHERE inbound_mail_id = $m_ann")
check "confirm_sender: the token's keyed hash (SUBKEY_LOGIN_TOKEN) is the stored row" \
	test "$(mail_py hash "$server_key" 1 "$tok")" = "$want"
check "confirm_sender: token row: purpose, patient, 7 days, unused" \
	sql_is "SELECT purpose, patient_id = $(pid_of "$ann"), expires_at - created_at = interval '7 days', used_at IS NULL
		FROM login_tokens WHERE inbound_mail_id = $m_ann" "confirm_sender|t|t|t"
check "confirm_sender: the token itself is stored nowhere" \
	sql_is "SELECT count(*) FROM jobs WHERE payload::text LIKE '%$tok%'" 0
fetch "$bea" 1 "$logs/bea.eml"
tok_bea=$(mail_py text "$logs/bea.eml" | grep -o 'confirm?t=[A-Za-z0-9_-]*' | head -1 | sed 's/.*t=//')
check "confirm_sender: bea's mail has her own token" test "${#tok_bea}" = 43 -a "$tok_bea" != "$tok"
check "confirm_sender for a mail no longer held: job done, no delivery, no token" \
	sql_is "SELECT (SELECT count(*) FROM deliveries WHERE job_id = $j_done),
		(SELECT count(*) FROM login_tokens WHERE inbound_mail_id = $m_done),
		(SELECT count(*) FROM jobs WHERE id = $j_done)" "0|0|0"
check "confirm_sender over 24 h after the held mail came: job dead" test "$(jstate "$j_late")" = dead
contains "  ... delivery failed with the reason" \
	"$(psql_db "SELECT state || ' ' || bounce_reason FROM deliveries WHERE job_id = $j_late")" \
	"failed confirm_sender: gave up: not sent within 24 h"
check "  ... no mail" test "$(imap_count "$lee")" = 0

# --- confirm_sender retried: SMTP down, then back -----------------------------
j_retry=$(job_id "$(enqueue confirm_sender "{\"inbound_mail_id\": $m_retry}")")
"$worker" -c "$down_conf" >"$logs/worker-down.log" 2>&1 &
wpid=$!
pids+=("$wpid")
check "SMTP unreachable: the delivery is deferred and the job retried" \
	wait_sql 20 "SELECT d.state || ' ' || (j.attempts >= 2) FROM deliveries d JOIN jobs j ON j.id = d.job_id
		WHERE d.job_id = $j_retry" "deferred true"
stop_and_wait "$wpid" 10; rc=$?
check "the worker (SMTP down) stops cleanly (rc=$rc)" test "$rc" = 0
mid_retry=$(psql_db "SELECT message_id FROM deliveries WHERE job_id = $j_retry")
check "  ... every attempt made its own token (hash only), none used" \
	sql_is "SELECT count(*) >= 2, bool_and(used_at IS NULL) FROM login_tokens WHERE inbound_mail_id = $m_retry" "t|t"
"$worker" -c "$conf" >>"$logs/worker.log" 2>&1 &
wpid=$!
pids+=("$wpid")
check "SMTP back: the question is sent" wait_sql 20 "SELECT state FROM deliveries WHERE job_id = $j_retry" sent
check "  ... and arrives" wait_for 20 count_is_at_least "$rae" 1
stop_and_wait "$wpid" 10; rc=$?
check "the worker stops cleanly again (rc=$rc)" test "$rc" = 0
fetch "$rae" 1 "$logs/rae.eml"
check "  ... one delivery row, the same Message-ID on every attempt" \
	test "$(mail_py header "$logs/rae.eml" Message-ID)" = "<$mid_retry>"
tok_rae=$(mail_py text "$logs/rae.eml" | grep -o 'confirm?t=[A-Za-z0-9_-]*' | head -1 | sed 's/.*t=//')

# --- rejection_notice ---------------------------------------------------------
check "rejection_notice: four deliveries to ron, all sent" \
	sql_is "SELECT count(*) FROM deliveries WHERE kind = 'rejection_notice' AND recipient = '$ron' AND state = 'sent'" 4
for n in 1 2 3 4; do
	f=$logs/ron-$n.eml
	fetch "$ron" "$n" "$f"
	text=$(mail_py text "$f")
	irt=$(mail_py header "$f" In-Reply-To)
	case $text in
	*"too old to be answered"*) r=token_expired u=5 ;;
	*"not a reply to one of our notifications"*) r=no_token u=6 ;;
	*"larger than we can accept"*) r=too_large u=7 ;;
	*"could not read"*) r=not_readable u=8 ;;
	*) r=unknown u=0 ;;
	esac
	check "rejection_notice ($r): a known explanation" test "$r" != unknown
	check "rejection_notice ($r): Auto-Submitted: auto-replied" \
		test "$(mail_py header "$f" Auto-Submitted)" = auto-replied
	check "rejection_notice ($r): X-Auto-Response-Suppress: All" \
		test "$(mail_py header "$f" X-Auto-Response-Suppress)" = All
	check "rejection_notice ($r): no Reply-To token" test -z "$(mail_py header "$f" Reply-To)"
	check "rejection_notice ($r): In-Reply-To the refused mail" test "$irt" = "<in$u.$run@home.test>"
	contains "rejection_notice ($r): says what to do" "$text" "Please sign in to send your message:"
	contains "rejection_notice ($r): the sign-in link" "$text" "https://portal.test/login"
	check "rejection_notice ($r): no PHI (subject or text of the refused mail)" \
		no_phi "$f"
	from=$(mail_py header "$f" From)
	if [ "$r" = token_expired ]; then
		contains "rejection_notice ($r): from the refused mail's practice (open)" "$from" "open@practice.test"
	else
		contains "rejection_notice ($r): from the patient's lowest-id practice" "$from" "frontdesk@practice.test"
	fi
	[ "$r" = token_expired ] && contains "rejection_notice: subject names the practice" \
		"$(mail_py header "$f" Subject)" "Your message to Open Practice was not delivered"
done
check "rejection_notice: a suppressed address gets a suppressed delivery, no mail" \
	sql_is "SELECT state || ' ' || bounce_reason FROM deliveries WHERE job_id = $j_sup" "suppressed suppressed: manual"
check "  ... and nothing arrived" test "$(imap_count "$sup")" = 0
check "rejection_notice for an address that is no patient: done, no delivery, no mail" \
	sql_is "SELECT (SELECT count(*) FROM deliveries WHERE job_id = $j_ghost), (SELECT state FROM jobs WHERE id = $j_ghost)" "0|done"
check "  ... nothing arrived" test "$(imap_count "ghost.$run@patients.test")" = 0
check "rejection_notice with an unknown reason: job dead" test "$(jstate "$j_bad")" = dead
contains "  ... with a clear error" "$(psql_db "SELECT last_error FROM jobs WHERE id = $j_bad")" "unknown reason"
check "rejection_notice: the once_key job stays (done) so the key holds all day" \
	sql_is "SELECT state FROM jobs WHERE once_key = 'rejection_notice:$ron:token_expired:$day'" done

# --- urgent_ack ---------------------------------------------------------------
f=$logs/uma.eml
fetch "$uma" 1 "$f"
text=$(mail_py text "$f")
check "urgent_ack: delivery kind urgent_ack, sent" \
	sql_is "SELECT kind || ' ' || state FROM deliveries WHERE job_id = $j_uma" "urgent_ack sent"
contains "urgent_ack: the acknowledgement" "$text" "We received your message. If this is an emergency:"
contains "urgent_ack: the practice's emergency text, as written" "$text" "$emergency"
contains "urgent_ack: the HTML has it escaped" "$(mail_py html "$f")" "555-0100 &lt;24h&gt;."
check "urgent_ack: Auto-Submitted: auto-replied" test "$(mail_py header "$f" Auto-Submitted)" = auto-replied
check "urgent_ack: no Reply-To token (a reply lands in quarantine, not a loop)" \
	test -z "$(mail_py header "$f" Reply-To)"
check "urgent_ack: In-Reply-To the patient's mail" \
	test "$(mail_py header "$f" In-Reply-To)" = "<urg.$run@patients.test>"
check "urgent_ack: no PHI (not the message, not its subject)" \
	no_phi "$f"
check "urgent_ack: a practice with auto-acknowledgement off: done, no delivery, no mail" \
	sql_is "SELECT (SELECT count(*) FROM deliveries WHERE job_id = $j_ole), (SELECT state FROM jobs WHERE id = $j_ole)" "0|done"
check "  ... nothing arrived" test "$(imap_count "$ole")" = 0
check "urgent_ack naming another patient's message: done, nothing sent" \
	sql_is "SELECT (SELECT count(*) FROM deliveries WHERE job_id = $j_wrong), (SELECT count(*) FROM jobs WHERE id = $j_wrong)" "0|0"

# --- /confirm -----------------------------------------------------------------
"$httpd" -c "$conf" >"$logs/httpd.log" 2>&1 &
hpid=$!
pids+=("$hpid")
check "postern-httpd starts" wait_for 20 grep -q "event=httpd_started" "$logs/httpd.log"
# a sibling token for ann's mail (as a retried send would leave) and an
# expired one for another held mail
sib=$(b64tok)
psql_db "INSERT INTO login_tokens (token_hash, patient_id, purpose, inbound_mail_id, expires_at)
	VALUES (decode('$(mail_py hash "$server_key" 1 "$sib")', 'hex'), $(pid_of "$ann"), 'confirm_sender', $m_ann,
	now() + interval '1 day')" >/dev/null
old=$(b64tok)
psql_db "INSERT INTO login_tokens (token_hash, patient_id, purpose, inbound_mail_id, created_at, expires_at)
	VALUES (decode('$(mail_py hash "$server_key" 1 "$old")', 'hex'), $(pid_of "$ann"), 'confirm_sender', $m_exp,
	now() - interval '8 days', now() - interval '1 day')" >/dev/null

req get1 "$url/confirm?t=$tok"
check "GET /confirm: 200" test "$st" = 200
contains "GET /confirm: names the sender" "$body" "A message from <strong>$spouse</strong>"
contains "GET /confirm: the date, in the reader's zone" "$body" "received 20 Nov 2026, 14:05 (Europe/Berlin)"
contains "GET /confirm: asks" "$body" "says it is from you. Was it you?"
contains "GET /confirm: a confirm button" "$body" 'name="decision" value="confirm"'
contains "GET /confirm: a decline button" "$body" 'name="decision" value="decline"'
check "GET /confirm: no PHI of the held mail" bash -c '! grep -q "Biopsy\|biopsy\|A1C" "$1"' _ "$logs/get1.b"
req get2 -I "$url/confirm?t=$tok"
check "HEAD /confirm: 200 too" test "$st" = 200
check "GET /confirm spent nothing and queued nothing" \
	sql_is "SELECT (SELECT count(*) FROM login_tokens WHERE inbound_mail_id = $m_ann AND used_at IS NOT NULL),
		(SELECT count(*) FROM jobs WHERE kind = 'release_held')" "0|0"
req bad1 "$url/confirm?t=short"
check "GET /confirm with a malformed token: 400" test "$st" = 400
req bad2 "$url/confirm?t=$(b64tok)"
check "GET /confirm with an unknown token: 410" test "$st" = 410
contains "  ... one clear page" "$body" "This link no longer works"
req bad3 "$url/confirm?t=$old"
check "GET /confirm with an expired token: 410" test "$st" = 410
req bad4 -X POST -H 'Origin: https://evil.test' --data "t=$tok&decision=confirm" "$url/confirm"
check "POST /confirm from another origin: 403" test "$st" = 403
req bad5 --data "t=$tok&decision=maybe" "$url/confirm"
check "POST /confirm with a bad decision: 400" test "$st" = 400
req bad6 --data "t=$tok" "$url/confirm"
check "POST /confirm without a decision: 400" test "$st" = 400
check "  ... none of these spent the token" \
	sql_is "SELECT count(*) FROM login_tokens WHERE inbound_mail_id = $m_ann AND used_at IS NOT NULL" 0

req post1 -H 'Origin: https://portal.test' --data "t=$tok&decision=confirm" "$url/confirm"
check "POST /confirm (confirm): 200" test "$st" = 200
contains "  ... thanks" "$body" "your message has been added to your conversation"
check "  ... the token is used" \
	sql_is "SELECT used_at IS NOT NULL FROM login_tokens WHERE token_hash = decode('$want', 'hex')" t
check "  ... and its sibling for the same mail too" \
	sql_is "SELECT count(*) FROM login_tokens WHERE inbound_mail_id = $m_ann AND used_at IS NULL" 0
check "  ... release_held queued with the payload and unique key" \
	sql_is "SELECT state, payload = '{\"inbound_mail_id\": $m_ann, \"decision\": \"confirm\"}'::jsonb, unique_key
		FROM jobs WHERE kind = 'release_held'" "queued|t|release_held:$m_ann"
req post2 --data "t=$tok&decision=confirm" "$url/confirm"
check "a second POST with the same token: 410" test "$st" = 410
req post3 --data "t=$sib&decision=decline" "$url/confirm"
check "a POST with the spent sibling: 410" test "$st" = 410
check "  ... still one release_held job" sql_is "SELECT count(*) FROM jobs WHERE kind = 'release_held'" 1
req post4 --data "t=$old&decision=confirm" "$url/confirm"
check "POST with an expired token: 410" test "$st" = 410
check "  ... nothing queued" sql_is "SELECT count(*) FROM jobs WHERE kind = 'release_held'" 1
req post5 --data "t=$tok_bea&decision=decline" "$url/confirm"
check "POST /confirm (decline): 200" test "$st" = 200
contains "  ... thanks, not added" "$body" "we will not add it"
check "  ... release_held queued with decision decline" \
	sql_is "SELECT payload = '{\"inbound_mail_id\": $m_bea, \"decision\": \"decline\"}'::jsonb, unique_key
		FROM jobs WHERE kind = 'release_held' AND payload->>'inbound_mail_id' = '$m_bea'" "t|release_held:$m_bea"
psql_db "UPDATE inbound_mail SET outcome = 'quarantined', hold_state = 'expired', hold_decided_at = now() WHERE id = $m_exp" >/dev/null
fresh=$(b64tok)
psql_db "INSERT INTO login_tokens (token_hash, patient_id, purpose, inbound_mail_id, expires_at)
	VALUES (decode('$(mail_py hash "$server_key" 1 "$fresh")', 'hex'), $(pid_of "$ann"), 'confirm_sender', $m_exp,
	now() + interval '1 day')" >/dev/null
req dec1 "$url/confirm?t=$fresh"
check "GET /confirm for a mail no longer held: 410" test "$st" = 410
req dec2 --data "t=$fresh&decision=confirm" "$url/confirm"
check "POST /confirm for a mail no longer held: 410" test "$st" = 410
check "  ... the token stays unspent" \
	sql_is "SELECT used_at IS NULL FROM login_tokens WHERE token_hash = decode('$(mail_py hash "$server_key" 1 "$fresh")', 'hex')" t
head -c 70000 /dev/zero | tr '\0' a >"$logs/big.body"
req big --data-binary @"$logs/big.body" "$url/confirm"
check "POST /confirm over the body limit: 413" test "$st" = 413
req retry --data "t=$tok_rae&decision=confirm" "$url/confirm"
check "the token of the mail that got through works (after retries)" test "$st" = 200
check "  ... and spends the tokens of the attempts that failed" \
	sql_is "SELECT count(*) FROM login_tokens WHERE inbound_mail_id = $m_retry AND used_at IS NULL" 0
check "a confirm_sender token does not sign in at /verify" \
	bash -c 'test "$(curl -s -o /dev/null -w "%{http_code}" --data "t=$1" "$2/verify")" = 410' _ "$fresh" "$url"
check "the token never reaches the httpd log" bash -c '! grep -q "$1" "$2"' _ "$tok" "$logs/httpd.log"
stop_and_wait "$hpid" 10; rc=$?
check "postern-httpd stops cleanly (rc=$rc)" test "$rc" = 0

check "no sanitizer report in the logs" \
	bash -c '! grep -q "Sanitizer\|runtime error" "$@"' _ "$logs"/*.log
finish
