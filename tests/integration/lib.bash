# tests/integration/lib.bash: shared helpers for the shell integration tests.
# Source it; it gives TAP output ("ok N - …" / "not ok N - …"), a fresh
# database and a config file per script, and `finish` for the exit status.
# Needs the runner's environment: PG_TEST_DIR, POSTERN_BUILD, POSTERN_TEST_TMP.

set -uo pipefail
: "${PG_TEST_DIR:?run through tests/run.sh (PG_TEST_DIR unset)}"
: "${POSTERN_BUILD:?run through tests/run.sh (POSTERN_BUILD unset)}"
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ctl=$POSTERN_BUILD/posternctl
tap_n=0
tap_failed=0

ok() {      # ok DESCRIPTION: a check that passed
	tap_n=$((tap_n + 1)); echo "ok $tap_n - $1"
}
not_ok() {  # not_ok DESCRIPTION [DETAIL]
	tap_n=$((tap_n + 1)); tap_failed=$((tap_failed + 1))
	echo "not ok $tap_n - $1"
	[ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/#   /'
	return 0
}
check() {   # check DESCRIPTION COMMAND...: passes when COMMAND exits 0
	local d=$1; shift
	local out
	if out=$("$@" 2>&1); then ok "$d"; else not_ok "$d" "$out"; fi
}
expect_exit() {  # expect_exit CODE DESCRIPTION COMMAND...: exact exit code
	local want=$1 d=$2; shift 2
	local out rc
	out=$("$@" 2>&1); rc=$?
	if [ "$rc" -eq "$want" ]; then ok "$d"; else not_ok "$d" "exit $rc, want $want: $out"; fi
	last_out=$out
}
contains() {  # contains DESCRIPTION HAYSTACK NEEDLE
	case $2 in
	*"$3"*) ok "$1" ;;
	*) not_ok "$1" "output lacks [$3]: $2" ;;
	esac
}
finish() {
	echo "# $tap_n checks, $tap_failed failed"
	[ "$tap_failed" -eq 0 ]
	exit $?
}

# fresh_db NAME: a new empty database; sets DB_URL and writes CONF (0600).
fresh_db() {
	DB_URL=$(bash "$top/tests/harness/pg.sh" createdb "$PG_TEST_DIR" "$1") ||
		{ echo "cannot create database $1"; exit 1; }
	CONF=$POSTERN_TEST_TMP/$1.conf
	(umask 077; printf '[database]\nurl = %s\n[security]\nserver_key = %s\n' \
		"$DB_URL" "$(head -c32 /dev/urandom | base64)" >"$CONF")
}

# suite_start NAME: what most suites begin with: a fresh database NAME_t
# with the schema (DB_URL, CONF), $worker, a clean $logs directory
# ($POSTERN_TEST_TMP/NAME), and $pids, whose processes are killed (after a
# SIGCONT, in case one was stopped) when the script exits. A suite with
# more to undo sets its own EXIT trap after this and calls kill_pids.
suite_start() {
	fresh_db "$1_t"
	"$ctl" -q -c "$CONF" migrate >/dev/null || { not_ok "migrate"; finish; }
	worker=$POSTERN_BUILD/postern-worker
	logs=$POSTERN_TEST_TMP/$1
	rm -rf "$logs"
	mkdir -p "$logs"
	pids=()
	trap kill_pids EXIT
}
kill_pids() {
	local p
	for p in "${pids[@]}"; do
		kill -CONT "$p" 2>/dev/null
		kill -9 "$p" 2>/dev/null
	done
	wait 2>/dev/null
}

# psql_db SQL: run SQL in the current database, unaligned tuples only.
psql_db() {
	psql -X -q -tA -v ON_ERROR_STOP=1 "$DB_URL" -c "$1"
}

# --- waiting and processes ------------------------------------------------

now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }'; }

wait_for() {  # wait_for SECONDS COMMAND...: poll until COMMAND succeeds
	local until=$(($(date +%s) + $1)); shift
	while ! "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -ge "$until" ] && return 1
		sleep 0.1
	done
}
sql_is() {  # sql_is SQL WANT: the query's output is exactly WANT
	[ "$(psql_db "$1" 2>&1)" = "$2" ]
}
wait_sql() {  # wait_sql SECONDS SQL WANT
	wait_for "$1" sql_is "$2" "$3"
}
# stop_and_wait PID SECONDS: SIGTERM (after SIGCONT, in case it is
# stopped), then its exit code, or 124 after SIGKILL when it did not stop.
stop_and_wait() {
	kill -CONT "$1" 2>/dev/null
	kill -TERM "$1" 2>/dev/null
	local until=$(($(date +%s) + $2))
	while kill -0 "$1" 2>/dev/null; do
		[ "$(date +%s)" -ge "$until" ] && { kill -9 "$1"; wait "$1"; return 124; }
		sleep 0.05
	done
	wait "$1"
}
free_port() {  # free_port FROM: the first port from FROM nobody listens on
	local p=$1
	while { exec 3<>"/dev/tcp/127.0.0.1/$p"; } 2>/dev/null; do exec 3>&-; p=$((p + 1)); done
	echo "$p"
}

# start_smtp_peer DIR: the scripted SMTP peer (tests/integration/smtp_peer.py,
# on Debian's python3-aiosmtpd) on a free port, its files in DIR; sets
# peer_port and appends its pid to the caller's pids array. When it cannot
# start, that is a failed check and the script ends.
start_smtp_peer() {
	local py=/usr/bin/python3
	"$py" -c 'import aiosmtpd' 2>/dev/null ||
		{ not_ok "python3-aiosmtpd is installed (make deps)"; finish; }
	"$py" "$top/tests/integration/smtp_peer.py" "$1/port" "$1/peer.log" 2>"$1/peer.err" &
	pids+=($!)
	wait_for 15 test -s "$1/port" ||
		{ not_ok "the scripted peer starts" "$(cat "$1/peer.err")"; finish; }
	peer_port=$(cat "$1/port")
}
