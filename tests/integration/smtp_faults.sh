#!/usr/bin/env bash
# tests/integration/smtp_faults.sh: the SMTP outcome truth table, against a
# scripted peer (tests/integration/smtp_peer.py, Debian's python3-aiosmtpd)
# for faults a real server will not produce on demand: 421/450/451/452 at
# RCPT, 550 at RCPT, 552/554 after the final dot, a drop after 354, a drop
# after the final dot, a stall. Each case is one `notify` job run once
# (retries are pushed far out); job state and delivery state must match:
#   4xx, drop, stall   job queued again (retry), delivery deferred
#   550 at RCPT        job dead, delivery bounced
#   552/554 after dot  job dead, delivery failed
#   250                job done, delivery sent
# plus: a 4xx on the job's last attempt is dead (delivery failed), ten
# sends that succeed reuse one connection per runner thread, and a job the
# lease reaper makes dead (its worker stalled mid-send) ends its delivery
# failed in the same transaction.
. "$(dirname "$0")/lib.bash"
cd "$top" || exit 1

suite_start smtp_faults

# the bearer token the peer accepts for AUTH XOAUTH2 (smtp_peer.py)
export SMTP_PEER_TOKEN="ya29.t$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
start_smtp_peer "$logs"
port=$peer_port
conf=$logs/worker.conf
(umask 077
 { cat "$CONF"
   printf '[worker]\nthreads = 2\npoll_ms = 100\nretry_base_ms = 600000\nretry_max_s = 3600\ngrace_s = 5\n'
   printf '[smtp]\nurl = smtp://127.0.0.1:%s\ntls = none\ntimeout_s = 2\n' "$port"
   printf '[mail]\nreply_domain = practice.test\nbounce_domain = practice.test\n'
 } >"$conf")

"$ctl" -q -c "$CONF" practice add --name "Peer Clinic" --slug peer \
	--from-address desk@practice.test --reply-domain practice.test >/dev/null
"$ctl" -q -c "$CONF" staff add --practice peer --email s@practice.test --name "Sam" >/dev/null
cases="ok okquote okonce r421 r450 r451 r452 r550 d552 d554 drop354 dropdot stall last451"
for c in $cases ok1 ok2 ok3 ok4 ok5 ok6 ok7 ok8 ok9 ok10; do
	a=$c; [ "$c" = last451 ] && a=r451x
	"$ctl" -q -c "$CONF" patient add --practice peer --email "$a@peer.test" --name "P $c" >/dev/null
done
msg() {
	psql_db "INSERT INTO patient_messages (practice_id, patient_id, direction, channel, body)
		SELECT practice_id, id, 'outbound', 'web', 'hello' FROM patients WHERE email = '$1' RETURNING id" | head -1
}
enqueue() {
	"$ctl" -c "$CONF" jobs enqueue notify "{\"message_id\":$(msg "$1")}" "${@:2}" |
		sed -n 's/^enqueued job \([0-9]*\) .*/\1/p'
}

# --- one connection per runner thread ----------------------------------------
ids=()
for i in 1 2 3 4 5 6 7 8 9 10; do ids+=("$(enqueue "ok$i@peer.test")"); done
before=$(grep -c '^connect' "$logs/peer.log")
"$worker" -c "$conf" >"$logs/w1.log" 2>&1 &
w=$!; pids+=("$w")
check "ten notify mails are sent" wait_sql 30 \
	"SELECT count(*) FROM deliveries WHERE state = 'sent'" 10
conns=$(( $(grep -c '^connect' "$logs/peer.log") - before ))
echo "# measured: $conns SMTP connections for 10 mails with 2 runner threads"
check "connections are reused: at most one per runner thread ($conns)" test "$conns" -le 2
kill -TERM "$w"; wait "$w"; rc=$?
check "the worker stops cleanly and QUITs its sessions (rc=$rc)" test "$rc" = 0

# --- the truth table -----------------------------------------------------------
declare -A job
for c in $cases; do
	case $c in
	ok) job[$c]=$(enqueue "ok@peer.test") ;;
	last451) job[$c]=$(enqueue "r451x@peer.test" --max-attempts 1) ;;
	okonce) job[$c]=$(enqueue "okonce@peer.test" --once-key "okonce-$$") ;;
	*) job[$c]=$(enqueue "$c@peer.test") ;;
	esac
done
"$worker" -c "$conf" >"$logs/w2.log" 2>&1 &
w=$!; pids+=("$w")
list=$(IFS=,; echo "${job[*]}")
check "every case ran once within 30 s" wait_sql 30 \
	"SELECT count(*) FROM deliveries WHERE job_id IN ($list) AND state <> 'queued'" 14
kill -TERM "$w"; wait "$w"
row() {  # row CASE: "job-state delivery-state code"
	psql_db "SELECT coalesce(j.state, 'done') || ' ' || d.state || ' ' || coalesce(d.smtp_code::text, '-')
		FROM deliveries d LEFT JOIN jobs j ON j.id = d.job_id WHERE d.job_id = ${job[$1]}"
}
expect() {  # expect CASE WANT WHY
	local got; got=$(row "$1")
	if [ "$got" = "$2" ]; then ok "$1: $3 ($got)"; else not_ok "$1: $3" "got [$got], want [$2]"; fi
}
expect ok      "done sent 250"          "250 → sent, job done"
expect okquote "done sent 250"          "250 with quotes and braces in its text → sent"
check "the 250's text is stored as it came (quotes, backslash, braces, comma, NULL)" \
	sql_is "SELECT smtp_reply FROM deliveries WHERE job_id = ${job[okquote]}" \
	'250 2.0.0 Ok "queued" as {A,B} back\slash NULL'
expect okonce  "done sent 250"          "a job with a once_key: sent, job done"
check "  ... and its row is kept as done (the once_key outlives it)" \
	sql_is "SELECT state FROM jobs WHERE id = ${job[okonce]}" done
expect r421    "queued deferred 421"    "421 at RCPT → retry"
expect r450    "queued deferred 450"    "450 at RCPT → retry"
expect r451    "queued deferred 451"    "451 at RCPT → retry"
expect r452    "queued deferred 452"    "452 at RCPT → retry"
expect r550    "dead bounced 550"       "550 at RCPT → dead, bounced"
expect d552    "dead failed 552"        "552 after the dot → dead, failed"
expect d554    "dead failed 554"        "554 after the dot → dead, failed"
expect drop354 "queued deferred -"      "drop after 354 → retry"
expect dropdot "queued deferred -"      "drop after the final dot → retry"
expect stall   "queued deferred -"      "stall → timeout → retry"
expect last451 "dead failed 451"        "451 on the last attempt → dead, failed"
check "a drop records what happened" \
	sql_is "SELECT smtp_reply LIKE '%the peer%' FROM deliveries WHERE job_id = ${job[drop354]}" t
check "a stall records the timeout" \
	sql_is "SELECT smtp_reply LIKE '%imeout%' FROM deliveries WHERE job_id = ${job[stall]}" t
check "the 550 reply and its enhanced status are kept" \
	sql_is "SELECT enhanced_status || ' ' || smtp_reply FROM deliveries WHERE job_id = ${job[r550]}" \
	"5.0.0 550 5.0.0 scripted reply to RCPT"
check "a retried job keeps its error" \
	sql_is "SELECT last_error LIKE '%451%' FROM jobs WHERE id = ${job[r451]}" t
out=$("$ctl" -c "$CONF" jobs cancel "${job[r451]}" 2>&1)
contains "jobs cancel: a mail job waiting for its retry" "$out" "cancelled (now dead); its delivery is failed"
check "... its deferred delivery ends failed in the same transaction" \
	sql_is "SELECT state || ': ' || bounce_reason FROM deliveries WHERE job_id = ${job[r451]}" "failed: job cancelled by operator"
# --- AUTH XOAUTH2 with the token from smtp.password_file ------------------------
# xo NAME USER TOKEN: a worker config that authenticates with XOAUTH2 as
# USER, the token in a file of its own; then one notify job to NAME@peer.test
# run by that worker until its delivery leaves state queued.
xo() {
	local f=$logs/token.$1 c=$logs/xo-$1.conf
	(umask 077
	 printf '%s\n' "$3" >"$f"
	 { cat "$CONF"
	   printf '[worker]\nthreads = 1\npoll_ms = 100\nretry_base_ms = 600000\nretry_max_s = 3600\ngrace_s = 5\n'
	   printf '[smtp]\nurl = smtp://127.0.0.1:%s\ntls = none\ntimeout_s = 5\n' "$port"
	   printf 'auth = xoauth2\nusername = %s\npassword_file = %s\n' "$2" "$f"
	   printf '[mail]\nreply_domain = practice.test\nbounce_domain = practice.test\n'
	 } >"$c")
	"$ctl" -q -c "$CONF" patient add --practice peer --email "$1@peer.test" --name "P $1" >/dev/null
	job[$1]=$(enqueue "$1@peer.test")
	"$worker" -c "$c" >"$logs/w-$1.log" 2>&1 &
	local p=$!; pids+=("$p")
	wait_sql 20 "SELECT count(*) FROM deliveries WHERE job_id = ${job[$1]} AND state <> 'queued'" 1
	kill -TERM "$p"; wait "$p"
}
xo xogood oauth@practice.test "$SMTP_PEER_TOKEN"
expect xogood "done sent 250" "XOAUTH2 with the right token → sent"
check "the peer saw AUTH XOAUTH2 with the user and the right token" \
	grep -q "^auth xoauth2 ok oauth@practice.test$" "$logs/peer.log"
check "the token appears in no worker log" bash -c '! grep -qF "$1" "$2"' _ "$SMTP_PEER_TOKEN" "$logs/w-xogood.log"
# A refused token is our configuration's fault, not the mail's, but it stays
# refused until someone changes the token: permanent, like any 5xx (the job
# is dead with a clear error; posternctl jobs retry after fixing the token
# sends the mail, below).
xo xobad oauth@practice.test "ya29.expired"
expect xobad "dead failed -" "XOAUTH2 token refused with the 334 error challenge → dead, failed"
check "the peer saw the wrong token and sent the XOAUTH2 error challenge" \
	grep -q "^auth xoauth2 bad-token oauth@practice.test$" "$logs/peer.log"
check "the job's error says AUTH XOAUTH2 was refused, names smtp.password_file and keeps the challenge" \
	sql_is "SELECT last_error LIKE '%AUTH XOAUTH2 refused%smtp.password_file%: 334 eyJ%' FROM jobs WHERE id = ${job[xobad]}" t
check "the delivery keeps the server's challenge as its reply" \
	sql_is "SELECT smtp_reply LIKE '%334 eyJ%' FROM deliveries WHERE job_id = ${job[xobad]}" t
# Once the token is fixed, an operator's retry sends the same mail (same
# delivery row, same Message-ID).
mid_before=$(psql_db "SELECT id || ' ' || message_id FROM deliveries WHERE job_id = ${job[xobad]}")
printf '%s\n' "$SMTP_PEER_TOKEN" >"$logs/token.xobad"
out=$("$ctl" -c "$CONF" jobs retry "${job[xobad]}" 2>&1)
contains "jobs retry of the dead job: its failed delivery will be sent again" "$out" "its failed delivery will be sent again"
"$worker" -c "$logs/xo-xobad.conf" >"$logs/w-xobad2.log" 2>&1 &
wx=$!; pids+=("$wx")
check "with the fixed token the retried job sends its mail" wait_sql 20 \
	"SELECT state || ' ' || coalesce(bounce_reason, '-') FROM deliveries WHERE job_id = ${job[xobad]}" "sent -"
kill -TERM "$wx"; wait "$wx"
check "... with the same delivery row and Message-ID" \
	sql_is "SELECT id || ' ' || message_id FROM deliveries WHERE job_id = ${job[xobad]}" "$mid_before"
check "... which the peer accepted" grep -q "^accepted xobad@peer.test <${mid_before#* }>" "$logs/peer.log"
xo xodirect direct@practice.test "ya29.expired"
expect xodirect "dead failed 535" "XOAUTH2 token refused with 535 5.7.8 → dead, failed"
check "its error says AUTH XOAUTH2 was refused, with the 535 reply" \
	sql_is "SELECT last_error LIKE '%AUTH XOAUTH2 refused%535 5.7.8%' FROM jobs WHERE id = ${job[xodirect]}" t
xo xotmp tmpfail@practice.test "$SMTP_PEER_TOKEN"
expect xotmp "queued deferred 454" "XOAUTH2 temporary failure (454 4.7.0) → retry"
check "the job's error says the AUTH failure is temporary" \
	sql_is "SELECT last_error LIKE '%AUTH XOAUTH2%temporar%454%' FROM jobs WHERE id = ${job[xotmp]}" t

# --- template overrides: read at start, read again at SIGHUP ---------------------
# The running worker mails with the templates of its start, then with those
# of a good SIGHUP; a broken file at SIGHUP keeps the set in use.
tpl=$logs/templates
mkdir -p "$tpl"
printf 'Subject: Tpl one from {{practice_name}}\n\nRead it: {{link}}\n' >"$tpl/notify_phi_free.txt"
(umask 077
 { cat "$conf"; printf 'templates_dir = %s\n' "$tpl"; } >"$logs/tpl.conf")   # [mail] is last
"$worker" -c "$logs/tpl.conf" >"$logs/w-tpl.log" 2>&1 &
wt=$!; pids+=("$wt")
tplmail() {  # tplmail NAME: a notify to NAME@peer.test, waits for the peer's subject line
	"$ctl" -q -c "$CONF" patient add --practice peer --email "$1@peer.test" --name "P $1" >/dev/null
	enqueue "$1@peer.test" >/dev/null
	wait_for 20 grep -q "^subject $1@peer.test " "$logs/peer.log"
	sed -n "s/^subject $1@peer.test //p" "$logs/peer.log" | tail -1
}
got=$(tplmail tpl1)
check "a template override is used from the start ($got)" test "$got" = "Tpl one from Peer Clinic"
printf 'Subject: Tpl two from {{practice_name}}\n\nRead it: {{link}}\n' >"$tpl/notify_phi_free.txt"
kill -HUP "$wt"
wait_for 10 grep -q "event=templates_loaded" "$logs/w-tpl.log"
got=$(tplmail tpl2)
check "after SIGHUP the new template is used ($got)" test "$got" = "Tpl two from Peer Clinic"
printf 'Subject: Tpl three from {{practice_name}}\n\n{{no_such_variable}}\n' >"$tpl/notify_phi_free.txt"
kill -HUP "$wt"
check "a broken template at SIGHUP is logged with file:line" \
	wait_for 10 grep -q "event=templates_reload_failed.*notify_phi_free.txt:3" "$logs/w-tpl.log"
got=$(tplmail tpl3)
check "... and the templates in use stay ($got)" test "$got" = "Tpl two from Peer Clinic"
kill -TERM "$wt"; wait "$wt"

# --- the reaper ends the mail of a job it makes dead ---------------------------
# Worker A stalls on the peer (long timeout) and is stopped (SIGSTOP), so its
# lease runs out on the job's only attempt; worker B's reaper makes the job
# dead, and the delivery row must not stay queued/deferred.
slow=$logs/slow.conf
(umask 077
 { cat "$CONF"
   printf '[worker]\nthreads = 1\npoll_ms = 100\nlease_s = 2\nmaintenance_s = 1\ngrace_s = 1\n'
   printf '[smtp]\nurl = smtp://127.0.0.1:%s\ntls = none\ntimeout_s = 60\n' "$port"
   printf '[mail]\nreply_domain = practice.test\nbounce_domain = practice.test\n'
 } >"$slow")
"$ctl" -q -c "$CONF" patient add --practice peer --email "stall@reap.test" --name "P reap" >/dev/null
reap_job=$(enqueue "stall@reap.test" --max-attempts 1)
"$worker" -c "$slow" >"$logs/w3.log" 2>&1 &
wa=$!; pids+=("$wa")
check "worker A takes the job and stalls in the SMTP dialogue" \
	wait_for 20 grep -q "^rcpt stall@reap.test" "$logs/peer.log"
check "its delivery row was made before the send" wait_sql 10 \
	"SELECT state FROM deliveries WHERE job_id = $reap_job" queued
kill -STOP "$wa"
"$worker" -c "$slow" >"$logs/w4.log" 2>&1 &
wb=$!; pids+=("$wb")
check "worker B's reaper makes the job dead when the lease runs out" wait_sql 20 \
	"SELECT state FROM jobs WHERE id = $reap_job" dead
check "in the same transaction, the delivery ends failed with the reason" \
	sql_is "SELECT state || ' ' || (bounce_reason LIKE 'lease expired%') FROM deliveries WHERE job_id = $reap_job" "failed true"
check "worker B logs the failed delivery" grep -q "deliveries_failed=1" "$logs/w4.log"
kill -9 "$wa"; wait "$wa" 2>/dev/null
kill -TERM "$wb"; wait "$wb"
check "the dead job's delivery is still failed after worker B stops" \
	sql_is "SELECT state FROM deliveries WHERE job_id = $reap_job" failed

check "no sanitizer report in the worker logs" \
	bash -c '! grep -q "Sanitizer\|runtime error" "$@"' _ "$logs"/w*.log
finish
