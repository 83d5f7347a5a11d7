#!/usr/bin/env bash
# tests/bench/ingest.sh: `make bench-ingest`. Inbound mail throughput:
# N ~3 KB patient replies (valid reply token, one thread, distinct
# Message-IDs) in a Dovecot folder of a private mail stack, ingested by
# postern (one imap_sync job run by postern-worker --drain over IMAPS:
# fetch, parse, trim, classify, token check, and the durable inserts of
# inbound_mail, patient_messages, notification, task and audit rows) next
# to isync's mbsync pulling the same folder over IMAPS into an empty local
# Maildir with its default fsync, in the same run; mbsync with `FSync no`
# is printed too. PostgreSQL is durable (fsync on), as in production.
#
#   bash tests/bench/ingest.sh [BUILD]          (BUILD: default build)
#
# Environment: BENCH_INGEST_MAILS=10000, BENCH_INGEST_SIZE=3000 (bytes),
# BENCH_INGEST_BATCH=100 ([imap] batch: messages per transaction).
# Last line: bench ingest: postern=N msgs/s reference=N msgs/s ratio=R …
set -euo pipefail
shopt -s inherit_errexit

top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-${POSTERN_BUILD:-build}}
case $BUILD in /*) ;; *) BUILD=$top/$BUILD ;; esac
N=${BENCH_INGEST_MAILS:-10000}
SIZE=${BENCH_INGEST_SIZE:-3000}
BATCH=${BENCH_INGEST_BATCH:-100}
PGSH=$top/tests/harness/pg.sh
MSSH=$top/tests/harness/mailstack.sh
WORKER=$BUILD/postern-worker
CTL=$BUILD/posternctl
PY=/usr/bin/python3
INB=$top/tests/integration/inbound.py

die() { echo "bench-ingest: $*" >&2; exit 1; }
say() { printf '%s\n' "$*"; }

[ -x "$WORKER" ] || die "$WORKER is missing: run make first"
[ -x "$CTL" ] || die "$CTL is missing: run make first"
command -v mbsync >/dev/null || die "mbsync not found (apt-get install isync; make deps)"
for t in psql timeout awk; do
	command -v "$t" >/dev/null || die "$t not found (make deps installs what is needed)"
done
bash "$MSSH" install-check >/dev/null 2>&1 || die "the mail stack is not installed (make deps)"
[[ $N =~ ^[0-9]+$ ]] && [ "$N" -ge 100 ] || die "BENCH_INGEST_MAILS must be a number >= 100"
[[ $SIZE =~ ^[0-9]+$ ]] && [ "$SIZE" -ge 600 ] || die "BENCH_INGEST_SIZE must be a number >= 600"
[[ $BATCH =~ ^[0-9]+$ ]] && [ "$BATCH" -ge 1 ] && [ "$BATCH" -le 500 ] || die "BENCH_INGEST_BATCH: 1..500"

# As in the other benches: run as a child so Ctrl-C cleans everything up.
kill_tree() {
	local c kids
	kids=$(pgrep -P "$1" || true)
	kill -TERM "$1" 2>/dev/null || true
	for c in $kids; do kill_tree "$c"; done
}
if [ -z "${BENCH_INGEST_CHILD:-}" ]; then
	BENCH_INGEST_CHILD=1 bash "$0" "$@" &
	child=$!
	trap 'echo "bench-ingest: interrupted, cleaning up" >&2; kill_tree "$child"; wait "$child"; exit 130' INT TERM
	rc=0
	wait "$child" || rc=$?
	exit "$rc"
fi

tmp=$(mktemp -d /tmp/postern-bench-ingest.XXXXXX)
chmod 755 "$tmp"
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	timeout -k 5 60 bash "$MSSH" stop "$tmp/mail" >/dev/null 2>&1 || echo "bench-ingest: could not stop the mail stack" >&2
	timeout -k 5 60 bash "$PGSH" stop "$tmp" >/dev/null 2>&1 || echo "bench-ingest: could not stop the cluster" >&2
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
step() { local s=$1; shift; timeout --foreground -k 5 "$s" "$@"; }
now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f", n / (b - a) }'; }

step 120 bash "$PGSH" start "$tmp" >"$tmp/pg-start.log" 2>&1 || { cat "$tmp/pg-start.log" >&2; die "PostgreSQL did not start"; }
eval "$(bash "$PGSH" env "$tmp")"
step 60 bash "$MSSH" start "$tmp/mail" >"$tmp/mail-start.log" 2>&1 || { cat "$tmp/mail-start.log" >&2; die "the mail stack did not start"; }
eval "$(bash "$MSSH" env "$tmp/mail")"

url=$(step 60 bash "$PGSH" createdb "$tmp" ingest_bench)
key=$(head -c32 /dev/urandom | base64)
box=reply@practice.test
folder=bench
conf=$tmp/postern.conf
(umask 077; {
	printf '[database]\nurl = %s\n[security]\nserver_key = %s\n[log]\nlevel = info\n' "$url" "$key"
	printf '[worker]\nthreads = 1\npoll_ms = 100\n'
	printf '[mail]\nfrom_address = postern@practice.test\nreply_domain = practice.test\nbounce_domain = practice.test\n'
	printf '[imap]\nhost = localhost\nport = %s\ntls = implicit\nca_file = %s\n' "$MAILSTACK_IMAPS_PORT" "$MAILSTACK_CA"
	printf 'username = %s\npassword = %s\nmailbox = %s\nbatch = %s\n' "$box" "$MAILSTACK_PASSWORD" "$folder" "$BATCH"
} >"$conf")
step 60 "$CTL" -q -c "$conf" migrate >/dev/null
step 60 "$CTL" -q -c "$conf" practice add --name "Bench Clinic" --slug bench \
	--from-address frontdesk@practice.test --reply-domain practice.test >/dev/null
step 60 "$CTL" -q -c "$conf" staff add --practice bench --email coach@practice.test --name "Casey Coach" --role owner >/dev/null
step 60 "$CTL" -q -c "$conf" patient add --practice bench --email pat@patients.test --name "Pat Bench" >/dev/null
thread=$(psql -X -qtA "$url" -c "INSERT INTO patient_messages (practice_id, patient_id, direction, channel, body)
	SELECT practice_id, id, 'outbound', 'web', 'hello' FROM patients RETURNING id" | head -1)
tok=$("$PY" "$INB" token "$key" 1 "$thread" 30)

say "bench-ingest: appending $N replies of ~$SIZE bytes to $folder (one IMAP session)"
t0=$(now)
step 900 "$PY" "$INB" bulk "$MAILSTACK_IMAPS_PORT" "$MAILSTACK_CA" "$box" "$MAILSTACK_PASSWORD" "$folder" "$N" \
	"reply+$tok@practice.test" pat@patients.test "$SIZE"
say "  appended in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s"

mbsync_run() {  # mbsync_run NAME FSYNC(yes|no): prints msgs/s
	local d=$tmp/$1 c=$tmp/$1.rc t1 t2 got
	mkdir -p "$d/md"
	{ [ "$2" = no ] && printf 'FSync no\n\n'
	  printf 'IMAPAccount acc\nHost localhost\nPort %s\nUser %s\nPass %s\nSSLType IMAPS\nCertificateFile %s\n\n' \
		"$MAILSTACK_IMAPS_PORT" "$box" "$MAILSTACK_PASSWORD" "$MAILSTACK_CA"
	  printf 'IMAPStore far\nAccount acc\n\nMaildirStore near\nPath %s/md/\nInbox %s/md/INBOX\n\n' "$d" "$d"
	  printf 'Channel ch\nFar :far:%s\nNear :near:%s\nSync Pull\nCreate Near\nSyncState *\n' "$folder" "$folder"
	} >"$c"
	t1=$(now)
	step 900 mbsync -q -c "$c" ch >"$d.log" 2>&1 || { cat "$d.log" >&2; die "mbsync failed"; }
	t2=$(now)
	got=$(find "$d/md/$folder" -type f -path '*/new/*' -o -type f -path '*/cur/*' | wc -l)
	[ "$got" -eq "$N" ] || die "mbsync pulled $got of $N"
	rate "$N" "$t1" "$t2"
}

say "bench-ingest: mbsync (default fsync) pulling $N mails over IMAPS"
ref=$(mbsync_run mbsync_fsync yes)
say "  $ref msgs/s"

say "bench-ingest: postern imap_sync ingesting $N mails over IMAPS (durable PostgreSQL)"
step 60 "$CTL" -q -c "$conf" jobs enqueue imap_sync '{}' >/dev/null
t1=$(now)
step 900 "$WORKER" -c "$conf" --drain >"$tmp/worker.log" 2>&1 || { tail -20 "$tmp/worker.log" >&2; die "the worker failed"; }
t2=$(now)
got=$(psql -X -qtA "$url" -c "SELECT count(*) FROM patient_messages WHERE direction = 'inbound'")
[ "$got" -eq "$N" ] || { grep -v job_done "$tmp/worker.log" | tail -20 >&2; die "postern made $got of $N messages"; }
ours=$(rate "$N" "$t1" "$t2")
say "  $ours msgs/s (worker start to exit, $N messages, notifications, tasks, audit rows)"

say "bench-ingest: mbsync with FSync no"
nofsync=$(mbsync_run mbsync_nofsync no)
say "  $nofsync msgs/s"

ratio=$(awk -v a="$ours" -v b="$ref" 'BEGIN { printf "%.2f", a / b }')
say "bench ingest: postern=$ours msgs/s reference=$ref msgs/s ratio=$ratio mbsync_nofsync=$nofsync msgs/s mails=$N size=$SIZE batch=$BATCH"
