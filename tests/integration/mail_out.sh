#!/usr/bin/env bash
# tests/integration/mail_out.sh: outgoing mail end to end: magic_link and
# notify jobs run by a real postern-worker, sent through the test stack's
# Postfix (STARTTLS required, certificate checked against MAILSTACK_CA) into
# Dovecot, read back over IMAPS and checked: headers (From, Reply-To token,
# Message-ID = the deliveries row, Auto-Submitted), no PHI in the default
# notification, the full text with policy + consent, the login link's token
# and code against the stored keyed hashes, suppression, a 550 recipient
# (bounced, job dead), give-up deadlines, temporary failures (retry), and
# header injection (refused at the database or the job is dead with a clear
# error; nothing extra arrives).
#
# Needs the runner's MAILSTACK_* environment (fails, never skips, without).
# Addresses carry a per-run tag: the stack's mailboxes outlive one run.
. "$(dirname "$0")/lib.bash"
cd "$top" || exit 1
for v in MAILSTACK_HOST MAILSTACK_SMTP_PORT MAILSTACK_IMAPS_PORT MAILSTACK_PASSWORD MAILSTACK_CA; do
	[ -n "${!v:-}" ] || { not_ok "$v is set (run through tests/run.sh)"; finish; }
done

suite_start mail_out
run=$(date +%s%N | tail -c 9)

# mkconf NAME SMTP_URL: the database config plus worker, smtp, mail, httpd
mkconf() {
	local f=$logs/$1.conf
	(umask 077
	 { cat "$CONF"
	   printf '[worker]\nthreads = 2\npoll_ms = 100\nretry_base_ms = 200\nretry_max_s = 1\ngrace_s = 2\n'
	   printf '[smtp]\nurl = %s\ntls = required\nca_file = %s\ntimeout_s = 10\n' "$2" "$MAILSTACK_CA"
	   printf '[mail]\nfrom_address = postern@practice.test\nreply_domain = practice.test\nbounce_domain = practice.test\n'
	   printf '[httpd]\nbase_url = https://portal.test\n'
	 } >"$f")
	echo "$f"
}
start_worker() {  # start_worker NAME CONF; sets wpid
	"$worker" -c "$2" >>"$logs/$1.log" 2>&1 &
	wpid=$!
	pids+=("$wpid")
	wait_for 20 grep -q "event=worker_started" "$logs/$1.log"
}
stop_worker() { stop_and_wait "$1" 10; }  # stop_worker PID: exit code
enqueue() {  # enqueue KIND PAYLOAD: prints the job id
	"$ctl" -c "$CONF" jobs enqueue "$1" "$2" | sed -n 's/^enqueued job \([0-9]*\) .*/\1/p'
}
imap_count() {  # imap_count ADDR: messages in ADDR's INBOX
	curl -sS --max-time 10 --cacert "$MAILSTACK_CA" --user "$1:$MAILSTACK_PASSWORD" \
		"imaps://localhost:$MAILSTACK_IMAPS_PORT/INBOX" -X 'EXAMINE INBOX' 2>/dev/null |
		sed -n 's/^\* \([0-9]*\) EXISTS.*/\1/p' | tr -d '\r'
}
has_mail() { [ "$(imap_count "$1")" -ge 1 ] 2>/dev/null; }
fetch() {  # fetch ADDR FILE: the first message of ADDR's INBOX, raw
	curl -sS --max-time 10 --cacert "$MAILSTACK_CA" --user "$1:$MAILSTACK_PASSWORD" \
		"imaps://localhost:$MAILSTACK_IMAPS_PORT/INBOX;MAILINDEX=1" >"$2"
}
# A small reader: headers and the decoded text part of a raw message.
cat >"$logs/mail.py" <<'PY'
import base64, email, email.policy, hashlib, re, struct, sys
from email.header import decode_header, make_header
cmd = sys.argv[1]
if cmd == "hash":      # hash B64_SERVER_KEY SUBKEY_ID TEXT: keyed hash, hex
    key = base64.b64decode(sys.argv[2])
    salt = struct.pack("<Q", int(sys.argv[3])) + bytes(8)
    sub = hashlib.blake2b(b"", digest_size=32, key=key, salt=salt,
                          person=b"postern1" + bytes(8)).digest()
    print(hashlib.blake2b(sys.argv[4].encode(), digest_size=32, key=sub).hexdigest())
    sys.exit(0)
raw = open(sys.argv[2], "rb").read()
m = email.message_from_bytes(raw, policy=email.policy.compat32)
if cmd == "header":    # header FILE NAME: every value, decoded, one a line
    for v in m.get_all(sys.argv[3]) or []:
        print(str(make_header(decode_header(v))))
elif cmd == "names":   # names FILE: header field names, one a line
    for k in m.keys():
        print(k)
elif cmd == "text":    # text FILE: the text/plain part, decoded
    for part in m.walk():
        if part.get_content_type() == "text/plain":
            sys.stdout.write(part.get_payload(decode=True).decode("utf-8"))
elif cmd == "html":
    for part in m.walk():
        if part.get_content_type() == "text/html":
            sys.stdout.write(part.get_payload(decode=True).decode("utf-8"))
PY
mail_py() { python3 "$logs/mail.py" "$@"; }
server_key=$(sed -n 's/^server_key = //p' "$CONF")

# --- people ---------------------------------------------------------------
"$ctl" -q -c "$CONF" practice add --name "Riverside Clinic" --slug riverside \
	--from-address frontdesk@practice.test --reply-domain practice.test >/dev/null ||
	{ not_ok "practice add"; finish; }
"$ctl" -q -c "$CONF" practice add --name "Open Practice" --slug open \
	--from-address open@practice.test --reply-domain practice.test >/dev/null ||
	{ not_ok "practice add open"; finish; }
psql_db "UPDATE practices SET phi_in_email = true WHERE slug = 'open'" >/dev/null
staff=dana.$run@practice.test
ann=ann.$run@patients.test         # default: PHI-free
bob=bob.$run@patients.test         # policy + consent: full text
cyd=cyd.$run@patients.test         # policy, no consent: PHI-free
sup=sup.$run@patients.test         # suppressed
bad=unknown1@patients.test         # 550 at RCPT
late=late.$run@patients.test       # notify given up after 24 h
pat=pat.$run@patients.test         # a patient's login mail
"$ctl" -q -c "$CONF" staff add --practice riverside --email "$staff" --name "Dana Whitfield" --role owner >/dev/null
"$ctl" -q -c "$CONF" staff add --practice open --email "o$staff" --name "Olga Staff" >/dev/null
"$ctl" -q -c "$CONF" patient add --practice riverside --email "$ann" --name "Ann Lee" >/dev/null
"$ctl" -q -c "$CONF" patient add --practice open --email "$bob" --name "Bób Ráy-Ñúñez" >/dev/null
"$ctl" -q -c "$CONF" patient add --practice open --email "$cyd" --name "Cyd Moe" >/dev/null
"$ctl" -q -c "$CONF" patient add --practice riverside --email "$sup" --name "Sue Pressed" >/dev/null
"$ctl" -q -c "$CONF" patient add --practice riverside --email "$bad" --name "Nobody Here" >/dev/null
"$ctl" -q -c "$CONF" patient add --practice riverside --email "$late" --name "Lee Late" >/dev/null
"$ctl" -q -c "$CONF" patient add --practice riverside --email "$pat" --name "Pat Secretname" >/dev/null
psql_db "UPDATE patients SET email_text_consent = true, email_text_consent_at = now() WHERE email = '$bob'" >/dev/null
psql_db "INSERT INTO suppressions (email, practice_id, reason, source)
	SELECT '$sup', id, 'manual', 'mail_out.sh' FROM practices WHERE slug = 'riverside'" >/dev/null
check "people and a suppression are in place" \
	sql_is "SELECT count(*) FROM patients" 7

msg() {  # msg PATIENT_EMAIL STAFF_EMAIL BODY: an outbound message; prints its id
	psql_db "INSERT INTO patient_messages (practice_id, patient_id, staff_user_id, direction, channel, subject, body)
		SELECT t.practice_id, t.id, s.id, 'outbound', 'web', 'Your results', \$b\$$3\$b\$
		FROM patients t JOIN staff_users s ON s.practice_id = t.practice_id AND s.email = '$2'
		WHERE t.email = '$1' RETURNING id" | head -1
}
secret="Your A1C is 6.1 and the biopsy was benign"
m_ann=$(msg "$ann" "$staff" "$secret (ann)")
m_bob=$(msg "$bob" "o$staff" "$secret (bob)")
# cyd's message answers cyd's own mail: a thread with a Message-ID
m_in=$(psql_db "INSERT INTO patient_messages (practice_id, patient_id, direction, channel, body, message_id)
	SELECT practice_id, id, 'inbound', 'email', 'question', 'in1.$run@patients.test'
	FROM patients WHERE email = '$cyd' RETURNING id" | head -1)
m_cyd=$(psql_db "INSERT INTO patient_messages (practice_id, patient_id, staff_user_id, thread_id, direction, channel, body)
	SELECT t.practice_id, t.id, s.id, $m_in, 'outbound', 'web', \$b\$$secret (cyd)\$b\$
	FROM patients t JOIN staff_users s ON s.practice_id = t.practice_id AND s.email = 'o$staff'
	WHERE t.email = '$cyd' RETURNING id" | head -1)
m_sup=$(msg "$sup" "$staff" "$secret (sup)")
m_bad=$(msg "$bad" "$staff" "$secret (bad)")
m_late=$(msg "$late" "$staff" "$secret (late)")
psql_db "UPDATE patient_messages SET created_at = now() - interval '25 hours' WHERE id = $m_late" >/dev/null

# --- header injection: refused before any job can carry it ---------------
out=$(psql_db "UPDATE patients SET first_name = E'Ann\r\nBcc: evil.$run@practice.test' WHERE email = '$ann'" 2>&1)
contains "a CR LF in a patient name is refused by the database" "$out" "violates check constraint"
out=$(psql_db "INSERT INTO patient_messages (practice_id, patient_id, direction, channel, subject, body)
	SELECT practice_id, id, 'outbound', 'web', E'Hi\r\nBcc: evil.$run@practice.test', 'x' FROM patients WHERE email = '$ann'" 2>&1)
contains "a CR LF in a message subject is refused by the database" "$out" "violates check constraint"
out=$(psql_db "UPDATE practices SET name = E'Riverside\nBcc: evil.$run@practice.test' WHERE slug = 'riverside'" 2>&1)
contains "a LF in a practice name is refused by the database" "$out" "violates check constraint"

# --- jobs -------------------------------------------------------------------
j_login=$(enqueue magic_link "{\"email\":\"${staff^^}\",\"requested_ip\":\"192.0.2.7\"}")
j_plogin=$(enqueue magic_link "{\"email\":\"$pat\"}")
j_nologin=$(enqueue magic_link "{\"email\":\"nobody.$run@patients.test\"}")
j_inject=$(enqueue magic_link "{\"email\":\"x.$run@practice.test\\r\\nBcc: evil.$run@practice.test\"}")
j_ann=$(enqueue notify "{\"message_id\":$m_ann}")
j_bob=$(enqueue notify "{\"message_id\":$m_bob}")
j_cyd=$(enqueue notify "{\"message_id\":$m_cyd}")
j_sup=$(enqueue notify "{\"message_id\":$m_sup}")
j_bad=$(enqueue notify "{\"message_id\":$m_bad}")
j_late=$(enqueue notify "{\"message_id\":$m_late}")
j_gone=$(enqueue notify '{"message_id":999999}')
check "11 jobs enqueued" test -n "$j_login" -a -n "$j_gone"
check "magic_link is enqueued ahead of notify (priority -10)" \
	sql_is "SELECT priority FROM jobs WHERE id = $j_login" -10

conf=$(mkconf good "smtp://$MAILSTACK_HOST:$MAILSTACK_SMTP_PORT")
start_worker good "$conf" || not_ok "worker starts" "$(tail -5 "$logs/good.log")"
w=$wpid
all="$j_login,$j_plogin,$j_nologin,$j_inject,$j_ann,$j_bob,$j_cyd,$j_sup,$j_bad,$j_late,$j_gone"
# done jobs are deleted (keep_done_s = 0): finished = gone or dead
check "every job finishes within 30 s" wait_sql 30 \
	"SELECT count(*) FROM jobs WHERE id IN ($all) AND state IN ('queued', 'running')" 0
for a in "$staff" "$pat" "$ann" "$bob" "$cyd"; do
	wait_for 20 has_mail "$a" || not_ok "mail arrives for $a"
done
stop_worker "$w"; rc=$?
check "the worker stops cleanly on SIGTERM (rc=$rc)" test "$rc" = 0
grep -q "event=job_dead.*job=$j_login\b" "$logs/good.log" && not_ok "login job died" "$(grep "job=$j_login" "$logs/good.log")"

dstate() {  # dstate JOB: state of the job's delivery
	psql_db "SELECT state FROM deliveries WHERE job_id = $1"
}
jstate() { psql_db "SELECT coalesce((SELECT state FROM jobs WHERE id = $1), 'deleted(done)')"; }

# --- magic link ---------------------------------------------------------------
f=$logs/login.eml
fetch "$staff" "$f"
check "login mail: one delivery row, state sent, 250 and 2.0.0 recorded" \
	sql_is "SELECT state || ' ' || smtp_code || ' ' || enhanced_status || ' ' || kind
		FROM deliveries WHERE job_id = $j_login" "sent 250 2.0.0 login"
mid=$(psql_db "SELECT message_id FROM deliveries WHERE job_id = $j_login")
check "login mail: Message-ID is the deliveries row's" \
	test "$(mail_py header "$f" Message-ID)" = "<$mid>"
contains "login mail: From is the practice" "$(mail_py header "$f" From)" "frontdesk@practice.test"
contains "login mail: To is the staff user" "$(mail_py header "$f" To)" "$staff"
check "login mail: Auto-Submitted: auto-generated" \
	test "$(mail_py header "$f" Auto-Submitted)" = "auto-generated"
rp=$(mail_py header "$f" Return-Path)
check "login mail: envelope sender is a bounce+TOKEN address ($rp)" \
	grep -Eq '^<bounce\+[a-z2-7]{40}@practice\.test>$' <<<"$rp"
text=$(mail_py text "$f")
tok=$(grep -o 'https://portal.test/verify?t=[A-Za-z0-9_-]*' <<<"$text" | head -1 | sed 's/.*t=//')
code=$(grep -Eo '\b[0-9]{8}\b' <<<"$text" | head -1)
check "login mail: a link with a 256-bit token (43 base64url chars)" test "${#tok}" = 43
check "login mail: an 8-digit code" test "${#code}" = 8
want=$(psql_db "SELECT encode(token_hash, 'hex') FROM login_tokens t JOIN staff_users s ON s.id = t.staff_user_id WHERE s.email = '$staff'")
check "login token: its keyed hash (SUBKEY_LOGIN_TOKEN) is the stored one" \
	test "$(mail_py hash "$server_key" 1 "$tok")" = "$want"
want=$(psql_db "SELECT encode(code_hash, 'hex') FROM login_tokens t JOIN staff_users s ON s.id = t.staff_user_id WHERE s.email = '$staff'")
check "login code: its keyed hash (SUBKEY_LOGIN_CODE) is the stored one" \
	test "$(mail_py hash "$server_key" 6 "$code")" = "$want"
check "login token: expires 15 min after it was made, unused, ip recorded" \
	sql_is "SELECT t.expires_at - t.created_at BETWEEN interval '14 minutes' AND interval '15 minutes',
		used_at IS NULL, host(requested_ip) FROM login_tokens t JOIN staff_users s ON s.id = t.staff_user_id
		WHERE s.email = '$staff'" "t|t|192.0.2.7"
check "login token: the token itself is stored nowhere" \
	sql_is "SELECT count(*) FROM jobs WHERE payload::text LIKE '%$tok%'" 0
check "login mail: no separator line (not a patient thread)" bash -c "! grep -q 'Reply above this line' <<<\"\$1\"" _ "$text"
fetch "$pat" "$logs/plogin.eml"
check "login mail to a patient: sent" test "$(dstate "$j_plogin")" = sent
check "login mail to a patient: no PHI (not even the name)" \
	bash -c '! grep -qi "Secretname" "$1"' _ "$logs/plogin.eml"
check "magic_link for an unknown address: job done, no delivery, no token" \
	sql_is "SELECT (SELECT count(*) FROM deliveries WHERE job_id = $j_nologin), (SELECT count(*) FROM jobs WHERE id = $j_nologin AND state = 'dead')" "0|0"
check "header injection in a magic_link payload: job dead" test "$(jstate "$j_inject")" = dead
contains "  ... with a clear error" "$(psql_db "SELECT last_error FROM jobs WHERE id = $j_inject")" "bad email in payload"
check "  ... and no delivery, no mail for the injected Bcc" \
	bash -c 'test "$(psql -X -tA "$1" -c "SELECT count(*) FROM deliveries WHERE job_id = $2")" = 0' _ "$DB_URL" "$j_inject"

# --- notify: PHI-free (default) -----------------------------------------------
f=$logs/ann.eml
fetch "$ann" "$f"
text=$(mail_py text "$f")
html=$(mail_py html "$f")
check "notify (default): delivery sent" test "$(dstate "$j_ann")" = sent
check "notify (default): no message text in the mail" bash -c '! grep -q "A1C\|biopsy\|Your results" "$1"' _ "$f"
check "notify (default): no patient name in the mail" bash -c '! grep -qi "Ann Lee" "$1"' _ "$f"
contains "notify (default): says who and links" "$text" "Riverside Clinic"
contains "notify (default): the link" "$text" "https://portal.test/messages/$m_ann"
check "notify: the text starts with the separator line" \
	bash -c 'head -1 <<<"$1" | grep -q "Reply above this line"' _ "$text"
contains "notify: the HTML has the separator too" "$html" "Reply above this line"
rt=$(mail_py header "$f" Reply-To)
check "notify: Reply-To is reply+TOKEN@practice.test ($rt)" \
	grep -Eq '<reply\+[a-z2-7]{40}@practice\.test>' <<<"$rt"
mid=$(psql_db "SELECT message_id FROM deliveries WHERE job_id = $j_ann")
check "notify: Message-ID is the deliveries row's" test "$(mail_py header "$f" Message-ID)" = "<$mid>"
check "notify: Auto-Submitted" test "$(mail_py header "$f" Auto-Submitted)" = "auto-generated"
names=$(mail_py names "$f" | tr 'A-Z' 'a-z' | sort | tr '\n' ' ')
check "notify: no Bcc/Cc header arrived" bash -c '! grep -Eq "(^| )(bcc|cc) " <<<"$1"' _ "$names"
f=$logs/cyd.eml
fetch "$cyd" "$f"
check "notify: practice allows PHI but no consent: still PHI-free" bash -c '! grep -q "A1C" "$1"' _ "$f"
check "notify in a thread: In-Reply-To is the patient's mail" \
	test "$(mail_py header "$f" In-Reply-To)" = "<in1.$run@patients.test>"
contains "notify in a thread: References names it" "$(mail_py header "$f" References)" "<in1.$run@patients.test>"
check "notify: the staff message now carries the mail's Message-ID" \
	sql_is "SELECT m.message_id = d.message_id FROM patient_messages m, deliveries d
		WHERE m.id = $m_cyd AND d.job_id = $j_cyd" t

# --- notify: full text with policy + consent ---------------------------------
f=$logs/bob.eml
fetch "$bob" "$f"
text=$(mail_py text "$f")
contains "notify (policy + consent): the message text" "$text" "$secret (bob)"
contains "notify (policy + consent): author and practice" "$text" "Olga Staff (Open Practice)"
contains "notify (policy + consent): greets the patient by name (UTF-8)" "$text" "Hello Bób Ráy-Ñúñez"
contains "notify (policy + consent): To has the name, decoded from RFC 2047" \
	"$(mail_py header "$f" To)" "Bób Ráy-Ñúñez <$bob>"
check "notify: the raw To header is RFC 2047-encoded ASCII" \
	bash -c 'grep -i "^To:" "$1" | grep -q "=?utf-8?"' _ "$f"
check "notify (policy + consent): separator first" \
	bash -c 'head -1 <<<"$1" | grep -q "Reply above this line"' _ "$text"
check "notify (policy + consent): Reply-To token" \
	grep -Eq '<reply\+[a-z2-7]{40}@practice\.test>' <<<"$(mail_py header "$f" Reply-To)"

# --- suppression, bounce, give-up, gone --------------------------------------
check "suppressed address: delivery suppressed with the reason" \
	sql_is "SELECT state || ' ' || bounce_reason FROM deliveries WHERE job_id = $j_sup" "suppressed suppressed: manual"
check "suppressed address: job done (not dead)" test "$(jstate "$j_sup")" = "deleted(done)"
check "suppressed address: no mail arrived" test "$(imap_count "$sup")" = 0
check "550 recipient: delivery bounced, 550 and 5.x.x recorded" \
	sql_is "SELECT state || ' ' || smtp_code || ' ' || (enhanced_status LIKE '5.%') || ' ' || (bounced_at IS NOT NULL)
		FROM deliveries WHERE job_id = $j_bad" "bounced 550 true true"
check "550 recipient: job dead at once (1 attempt)" \
	sql_is "SELECT state || ' ' || attempts FROM jobs WHERE id = $j_bad" "dead 1"
check "550 recipient: the address is suppressed (hard_bounce, every practice, linked)" \
	sql_is "SELECT s.reason || ' ' || s.source || ' ' || (s.practice_id IS NULL) || ' ' || (s.delivery_id = d.id)
		FROM suppressions s JOIN deliveries d ON d.job_id = $j_bad WHERE s.email = '$bad'" "hard_bounce smtp true true"
check "550 recipient: the patient's bounce_state is hard, with the reply" \
	sql_is "SELECT bounce_state || ' ' || (last_bounce_reason LIKE '550 5.1.1%') FROM patients WHERE email = '$bad'" "hard true"
check "notify older than 24 h: job dead" test "$(jstate "$j_late")" = dead
contains "  ... delivery failed with the reason" \
	"$(psql_db "SELECT state || ' ' || bounce_reason FROM deliveries WHERE job_id = $j_late")" "failed notify: gave up"
check "  ... and no mail" test "$(imap_count "$late")" = 0
check "notify for a missing message: job dead" test "$(jstate "$j_gone")" = dead

# --- temporary failures: retry, then the login deadline ----------------------
j_t1=$(enqueue magic_link "{\"email\":\"$staff\"}")
j_t2=$(enqueue notify "{\"message_id\":$m_ann}")
conf=$(mkconf down "smtp://127.0.0.1:1")
start_worker down "$conf" || not_ok "worker (SMTP down) starts"
w=$wpid
check "SMTP unreachable: login delivery deferred, job queued for retry" \
	wait_sql 20 "SELECT d.state || ' ' || j.state FROM deliveries d JOIN jobs j ON j.id = d.job_id
		WHERE d.job_id = $j_t1 AND j.attempts >= 2" "deferred queued"
check "SMTP unreachable: notify deferred too" \
	wait_sql 20 "SELECT state FROM deliveries WHERE job_id = $j_t2" deferred
check "retries reuse the Message-ID: one delivery row per job" \
	sql_is "SELECT count(*) FROM deliveries WHERE job_id IN ($j_t1, $j_t2) GROUP BY job_id" "$(printf '1\n1')"
psql_db "UPDATE deliveries SET created_at = created_at - interval '15 minutes' WHERE job_id = $j_t1" >/dev/null
check "login mail past its token's lifetime: job dead" \
	wait_sql 20 "SELECT state FROM jobs WHERE id = $j_t1" dead
contains "  ... delivery failed with the deadline as reason" \
	"$(psql_db "SELECT state || ' ' || bounce_reason FROM deliveries WHERE job_id = $j_t1")" "failed magic_link: not sent before the link's deadline"
stop_worker "$w"; rc=$?
check "the worker (SMTP down) stops cleanly (rc=$rc)" test "$rc" = 0
before=$(imap_count "$ann")
conf=$(mkconf again "smtp://$MAILSTACK_HOST:$MAILSTACK_SMTP_PORT")
start_worker again "$conf" || not_ok "worker (SMTP back) starts"
w=$wpid
check "SMTP back: the deferred notify is sent on retry" \
	wait_sql 20 "SELECT state FROM deliveries WHERE job_id = $j_t2" sent
more_mail() { [ "$(imap_count "$1")" -gt "$2" ]; }
check "  ... the second mail arrives" wait_for 20 more_mail "$ann" "$before"
stop_worker "$w"; rc=$?
check "the worker stops cleanly again (rc=$rc)" test "$rc" = 0
# --- posternctl mail test -----------------------------------------------------
good=$logs/again.conf
expect_exit 0 "mail test: exit 0 when the server takes it" "$ctl" -q -c "$good" mail test "mt.$run@practice.test"
contains "mail test: prints the outcome" "$last_out" 'result=sent code=250 stage=data reply="250 2.0.0'
check "mail test: the test mail arrives" wait_for 20 has_mail "mt.$run@practice.test"
expect_exit 1 "mail test: exit 1 for a refused recipient" "$ctl" -q -c "$good" mail test unknown2@patients.test
contains "mail test: 550 at RCPT, permanent" "$last_out" "result=permanent code=550 stage=rcpt_to"
expect_exit 1 "mail test: exit 1 when the server is unreachable" "$ctl" -q -c "$logs/down.conf" mail test "mt.$run@practice.test"
contains "mail test: unreachable is temporary" "$last_out" "result=temporary code=0 stage=connect"
expect_exit 2 "mail test: an address with a line break is a usage error" "$ctl" -q -c "$good" mail test "$(printf 'a@b.test\r\nBcc: evil.%s@practice.test' "$run")"
# AUTH with the secret in smtp.password_file, read at each connection
# (Dovecot checks SMTP AUTH for the stack: any user, the shared password).
printf '%s\n' "$MAILSTACK_PASSWORD" >"$logs/smtp.secret"
printf 'not-the-password\n' >"$logs/smtp.wrong"
for f in secret wrong missing; do
	(umask 077; { cat "$good"; printf '[smtp]\nusername = sender@practice.test\npassword_file = %s\n' "$logs/smtp.$f"; } >"$logs/auth-$f.conf")
done
expect_exit 0 "mail test: AUTH with the password from smtp.password_file" "$ctl" -q -c "$logs/auth-secret.conf" mail test "mt2.$run@practice.test"
expect_exit 1 "mail test: a wrong password in the file fails" "$ctl" -q -c "$logs/auth-wrong.conf" mail test "mt2.$run@practice.test"
contains "mail test: ... at the AUTH stage" "$last_out" "stage=auth"
expect_exit 1 "mail test: a missing password file fails" "$ctl" -q -c "$logs/auth-missing.conf" mail test "mt2.$run@practice.test"
contains "mail test: ... naming the file" "$last_out" "smtp.password_file $logs/smtp.missing"

check "nobody got mail for the injected Bcc" test "$(imap_count "evil.$run@practice.test")" = 0
check "no sanitizer report in the worker logs" \
	bash -c '! grep -q "Sanitizer\|runtime error" "$@"' _ "$logs"/*.log
finish
