#!/usr/bin/env bash
# tests/integration/imap_xoauth2.sh: the IMAP side of XOAUTH2 end to end.
# The test Dovecot has no OAuth2 passdb, so a scripted IMAP peer
# (tests/integration/imap_peer.py, plaintext on loopback) accepts one
# bearer token. A real postern-worker with [imap] auth = xoauth2 and the
# token in [imap] password_file: the watcher and the imap_sync job log in
# with the right SASL string, select, search and IDLE; then with a wrong
# token the watcher logs a clear error and the job waits for a retry with
# the reason (never dead). The watcher re-issues IDLE when its wait ends.
. "$(dirname "$0")/lib.bash"
cd "$top" || exit 1

suite_start imap_xoauth2
token=ya29.test-$(date +%s%N | tail -c 9)

/usr/bin/python3 "$top/tests/integration/imap_peer.py" "$logs/port" "$logs/peer.log" "$token" 2>"$logs/peer.err" &
pids+=($!)
wait_for 15 test -s "$logs/port" || { not_ok "the scripted IMAP peer starts" "$(cat "$logs/peer.err")"; finish; }
port=$(cat "$logs/port")

(umask 077; echo "$token" >"$logs/token")
conf=$logs/w.conf
(umask 077; { cat "$CONF"
  printf '[worker]\nthreads = 1\npoll_ms = 100\nretry_base_ms = 200\nretry_max_s = 1\n'
  printf '[imap]\nhost = 127.0.0.1\nport = %s\ntls = none\nusername = clinic@mail.test\n' "$port"
  printf 'auth = xoauth2\npassword_file = %s\npoll_s = 5\n' "$logs/token"
} >"$conf")

"$worker" -c "$conf" >"$logs/w1.log" 2>&1 &
wpid=$!
pids+=("$wpid")
auth_line="AUTHENTICATE XOAUTH2 user=clinic@mail.test^Aauth=Bearer $token^A^A"
two_logins() { [ "$(grep -cF "$auth_line" "$logs/peer.log")" -ge 2 ]; }
check "the watcher and the imap_sync job both log in with XOAUTH2 (user, Bearer token from password_file)" \
	wait_for 20 two_logins
check "the job selects the mailbox and searches for new UIDs" \
	wait_for 20 grep -q "UID SEARCH" "$logs/peer.log"
check "the watcher waits in IDLE" wait_for 20 grep -q " IDLE" "$logs/peer.log"
# When its wait ends (poll_s 5 here; at most 25 minutes, under RFC 2177's
# 29) the watcher ends IDLE with DONE and starts it again on the same
# connection: two IDLEs in one session, which logged in once.
idle_renewed() {
	local s
	s=$(grep " IDLE " "$logs/peer.log" | sed -n 's/.*\[\(s[0-9]*\)\]$/\1/p' | sort -u)
	[ "$(wc -w <<<"$s")" = 1 ] &&
		[ "$(grep -c " IDLE \[$s\]$" "$logs/peer.log")" -ge 2 ] &&
		[ "$(grep -c "^AUTHENTICATE .*\[$s\]$" "$logs/peer.log")" = 1 ]
}
check "the watcher re-issues IDLE on the same connection when its wait ends" wait_for 20 idle_renewed
check "the imap_sync job ends done (nothing queued or running)" \
	wait_sql 20 "SELECT count(*) FROM jobs WHERE kind = 'imap_sync' AND state IN ('queued', 'running', 'dead')" 0
check "no password-style LOGIN was tried" bash -c "! grep -q '^LOGIN' '$logs/peer.log'"
check "the worker logged no IMAP error" bash -c "! grep -q 'imap_watch_error' '$logs/w1.log'"
stop_and_wait "$wpid" 15; check "worker stops" test $? -eq 0

# a token the server refuses
echo "wrong-$token" >"$logs/token"
"$worker" -c "$conf" >"$logs/w2.log" 2>&1 &
wpid=$!
pids+=("$wpid")
check "a refused token is logged clearly by the watcher" \
	wait_for 20 grep -q "event=imap_watch_error.*AUTHENTICATE XOAUTH2 refused" "$logs/w2.log"
check "… and the imap_sync job waits for a retry with the reason, not dead" \
	wait_sql 20 "SELECT state || ' ' || (last_error LIKE '%XOAUTH2 refused%')::text FROM jobs WHERE kind = 'imap_sync'" "queued true"
check "the refused string carried the wrong token (the file is read at each connection)" \
	grep -qF "auth=Bearer wrong-$token^A^A" "$logs/peer.log"
stop_and_wait "$wpid" 15; check "worker stops" test $? -eq 0
finish
