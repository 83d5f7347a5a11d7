#!/usr/bin/env bash
# tests/integration/mail_chaos.sh: kill -9 the worker again and again while
# it sends 2,000 notify mails to the scripted peer (smtp_peer.py): no mail
# may be lost (every job's Message-ID reaches the peer and its delivery row
# ends sent), and a mail sent twice (killed after the peer took it, before
# the row said sent) carries the same Message-ID both times.
. "$(dirname "$0")/lib.bash"
cd "$top" || exit 1
N=${MAIL_CHAOS_N:-2000}

suite_start mail_chaos

start_smtp_peer "$logs"
conf=$logs/worker.conf
(umask 077
 { cat "$CONF"
   printf '[worker]\nthreads = 4\nbatch = 8\npoll_ms = 100\nlease_s = 2\nmaintenance_s = 1\nretry_base_ms = 50\nretry_max_s = 1\ngrace_s = 1\n'
   printf '[smtp]\nurl = smtp://127.0.0.1:%s\ntls = none\ntimeout_s = 5\n' "$peer_port"
   printf '[mail]\nreply_domain = practice.test\nbounce_domain = practice.test\n'
 } >"$conf")
"$ctl" -q -c "$CONF" practice add --name "Chaos Clinic" --slug chaos \
	--from-address desk@practice.test --reply-domain practice.test >/dev/null
psql_db "INSERT INTO patients (practice_id, email, first_name)
	SELECT p.id, 'ok' || g || '@peer.test', 'P' || g FROM practices p, generate_series(1, $N) g;
	INSERT INTO patient_messages (practice_id, patient_id, direction, channel, body)
	SELECT practice_id, id, 'outbound', 'web', 'hello ' || id FROM patients;
	INSERT INTO jobs (kind, payload, max_attempts)
	SELECT 'notify', jsonb_build_object('message_id', id), 100 FROM patient_messages" >/dev/null
check "$N notify jobs queued" test "$(psql_db "SELECT count(*) FROM jobs WHERE kind = 'notify'")" = "$N"

left() { psql_db "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')"; }
kills=0
none_left() { [ "$(left)" = 0 ]; }   # re-evaluated at every poll
t0=$(date +%s)
while [ "$(left)" != 0 ] && [ $(($(date +%s) - t0)) -lt 240 ]; do
	"$worker" -c "$conf" >>"$logs/worker.log" 2>&1 &
	w=$!; pids+=("$w")
	if [ "$kills" -lt 15 ]; then
		sleep "0.$((RANDOM % 6 + 3))"
		kill -9 "$w" 2>/dev/null && kills=$((kills + 1))
		wait "$w" 2>/dev/null
	else
		wait_for 120 none_left
		kill -TERM "$w"; wait "$w"
	fi
done
echo "# measured: $kills kill -9 during $N sends, $(($(date +%s) - t0)) s"
check "every job finished ($kills kill -9s)" test "$(left)" = 0
check "no job died" test "$(psql_db "SELECT count(*) FROM jobs WHERE state = 'dead'")" = 0
check "one delivery row per job, all sent" \
	test "$(psql_db "SELECT count(*) || ' ' || count(*) FILTER (WHERE state = 'sent') || ' ' || count(DISTINCT job_id) FROM deliveries")" = "$N $N $N"
grep '^accepted ' "$logs/peer.log" | awk '{ print $3 }' | tr -d '<>' | sort >"$logs/got"
psql_db "SELECT message_id FROM deliveries" | sort >"$logs/want"
uniq "$logs/got" >"$logs/got.uniq"
dups=$(( $(wc -l <"$logs/got") - $(wc -l <"$logs/got.uniq") ))
echo "# measured: $(wc -l <"$logs/got") mails accepted by the peer, $dups duplicates"
check "none lost: every delivery's Message-ID reached the peer" \
	test "$(comm -23 "$logs/want" "$logs/got.uniq" | wc -l)" = 0
check "nothing unknown: every mail the peer took is a delivery's Message-ID" \
	test "$(comm -13 "$logs/want" "$logs/got.uniq" | wc -l)" = 0
check "a duplicate carries the same Message-ID (distinct ids = $N)" \
	test "$(wc -l <"$logs/got.uniq")" = "$N"
check "no sanitizer report in the worker log" \
	bash -c '! grep -q "Sanitizer\|runtime error" "$1"' _ "$logs/worker.log"
finish
