#!/usr/bin/env bash
# tests/integration/mail_in_chaos.sh: the ingester's crash test. 2,000
# replies (~3 KB, one thread, distinct Message-IDs) wait in a Dovecot
# folder; a postern-worker ingests them while it is killed with SIGKILL at
# least KILLS times (50; 15 with the sanitizer build, which is ~5x slower
# per cycle) at random points inside the ingest (a kill lands after 1-40
# more messages were committed since the worker started; 5 per
# transaction), then restarted.
# At the end: exactly 2,000 messages, no Message-ID twice, one inbound_mail
# row per UID, mailbox_state at the last UID, and every mail flagged \Seen
# (marks lost to a kill between commit and flag are caught up on the next
# run). Each cycle waits out the killed job's lease (lease_s 2).
. "$(dirname "$0")/lib.bash"
cd "$top" || exit 1
for v in MAILSTACK_IMAPS_PORT MAILSTACK_PASSWORD MAILSTACK_CA; do
	[ -n "${!v:-}" ] || { not_ok "$v is set (run through tests/run.sh)"; finish; }
done

suite_start mail_in_chaos
run=$(date +%s%N | tail -c 9)
py() { /usr/bin/python3 "$top/tests/integration/inbound.py" "$@"; }
key=$(sed -n 's/^server_key = //p' "$CONF")
box=reply@practice.test
folder=chaos$run
n=2000
kills_wanted=50
case $POSTERN_BUILD in *asan*) kills_wanted=15 ;; esac
wpid=0
cleanup() { [ "$wpid" -gt 0 ] && kill -9 "$wpid" 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT
q() { psql_db "$1"; }

"$ctl" -q -c "$CONF" practice add --name "Chaos Clinic" --slug chaos \
	--from-address frontdesk@practice.test --reply-domain practice.test >/dev/null
"$ctl" -q -c "$CONF" staff add --practice chaos --email "s.$run@practice.test" --name "Sam Staff" --role owner >/dev/null
pat=pat.$run@patients.test
"$ctl" -q -c "$CONF" patient add --practice chaos --email "$pat" --name "Pat Chaos" >/dev/null
t=$(q "INSERT INTO patient_messages (practice_id, patient_id, direction, channel, body)
	SELECT practice_id, id, 'outbound', 'web', 'hello' FROM patients WHERE email = '$pat' RETURNING id" | head -1)
tok=$(py token "$key" 1 "$t" 30)
t0=$(now_s)
py bulk "$MAILSTACK_IMAPS_PORT" "$MAILSTACK_CA" "$box" "$MAILSTACK_PASSWORD" "$folder" "$n" \
	"reply+$tok@practice.test" "$pat" 3000 || { not_ok "2,000 replies appended"; finish; }
echo "# measured: APPEND of $n replies took $(elapsed "$t0") s"
check "2,000 replies wait in $folder" \
	test "$(py status "$MAILSTACK_IMAPS_PORT" "$MAILSTACK_CA" "$box" "$MAILSTACK_PASSWORD" "$folder" | cut -d' ' -f1)" = "$n"

conf=$logs/w.conf
(umask 077; { cat "$CONF"
  printf '[worker]\nthreads = 1\npoll_ms = 100\nlease_s = 2\nmaintenance_s = 1\ngrace_s = 2\nretry_base_ms = 100\nretry_max_s = 1\n'
  printf '[mail]\nfrom_address = postern@practice.test\nreply_domain = practice.test\nbounce_domain = practice.test\n'
  printf '[imap]\nhost = localhost\nport = %s\ntls = implicit\nca_file = %s\n' "$MAILSTACK_IMAPS_PORT" "$MAILSTACK_CA"
  printf 'username = %s\npassword = %s\nmailbox = %s\npoll_s = 5\nbatch = 2\n' "$box" "$MAILSTACK_PASSWORD" "$folder"
} >"$conf")

count() { q "SELECT count(*) FROM inbound_mail WHERE mailbox = '$folder'"; }
kills=0 live=0
t0=$(now_s)
while [ "$kills" -lt "$kills_wanted" ]; do
	[ "$(count)" -ge "$n" ] && break
	log=$logs/w.$kills.log
	"$worker" -c "$conf" >"$log" 2>&1 &
	wpid=$!
	# kill once `step` more chunks (of 2 messages) are committed, or after
	# 20 s; the worker's own log says when (cheaper to watch than psql)
	step=$((1 + RANDOM % 8))
	until=$(($(date +%s) + 20))
	while [ "$(grep -c "event=ingested" "$log")" -lt "$step" ] &&
	    [ "$(date +%s)" -lt "$until" ]; do
		sleep 0.01
	done
	kill -9 "$wpid" 2>/dev/null
	wait "$wpid" 2>/dev/null
	wpid=0
	kills=$((kills + 1))
	[ "$(count)" -lt "$n" ] && live=$((live + 1))
	cat "$log" >>"$logs/w.log"
done
echo "# measured: $kills kills ($live while mail was left) in $(elapsed "$t0") s; $(count) of $n ingested by then"
check "at least $kills_wanted kills landed while mail was left to ingest" test "$live" -ge "$kills_wanted"

"$worker" -c "$conf" >>"$logs/w.log" 2>&1 &
wpid=$!
check "after the last restart every reply is ingested" \
	wait_sql 120 "SELECT count(*) FROM inbound_mail WHERE mailbox = '$folder'" "$n"
check "exactly 2,000 messages in the thread" \
	sql_is "SELECT count(*) FROM patient_messages WHERE thread_id = $t AND direction = 'inbound'" "$n"
check "no Message-ID twice" \
	sql_is "SELECT count(DISTINCT message_id) FROM patient_messages WHERE thread_id = $t AND direction = 'inbound'" "$n"
check "every inbound_mail row is a message (no duplicate, no rejection)" \
	sql_is "SELECT string_agg(DISTINCT outcome, ',') FROM inbound_mail WHERE mailbox = '$folder'" message
check "one row per UID, UIDs 1..2000" \
	sql_is "SELECT count(DISTINCT uid) || ' ' || min(uid) || ' ' || max(uid) FROM inbound_mail WHERE mailbox = '$folder'" "$n 1 $n"
check "mailbox_state is at UID 2000" \
	sql_is "SELECT last_uid FROM mailbox_state WHERE mailbox = '$folder'" "$n"
check "one audit row per message, the chain linked" \
	sql_is "SELECT count(*) = $n AND NOT EXISTS (SELECT 1 FROM audit_log a JOIN audit_log b ON b.id = a.id - 1 WHERE a.prev_hash IS DISTINCT FROM b.hash) FROM audit_log WHERE action = 'message.received'" t
seen() { py status "$MAILSTACK_IMAPS_PORT" "$MAILSTACK_CA" "$box" "$MAILSTACK_PASSWORD" "$folder" | cut -d' ' -f2; }
# marks lost to a kill are caught up when the next run starts (poll_s 5)
all_seen() { [ "$(seen)" = "$n" ]; }
check "every mail is flagged \\Seen in the end" wait_for 30 all_seen
stop_and_wait "$wpid" 15
check "the worker stops cleanly" test $? -eq 0
wpid=0
finish
