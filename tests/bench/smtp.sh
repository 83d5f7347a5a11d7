#!/usr/bin/env bash
# tests/bench/smtp.sh: `make bench-smtp`. Outgoing mail throughput:
# N ~3 KB full-text `notify` mails enqueued in bulk and drained by
# postern-worker --drain (composed, sent through a private Postfix, recorded
# in deliveries) against Postfix's own smtp-source sending the same message
# size to the same Postfix with the same number of reused sessions, in the
# same run; then enqueue -> SMTP 250 latency under light load, and what a
# new envelope sender per mail (our VERP address) costs Postfix itself.
# What each figure means: tests/bench/README.md.
#
#   bash tests/bench/smtp.sh [BUILD]        (BUILD: default build)
#
# Environment (all optional):
#   BENCH_SMTP_MAILS=2000         mails per run (postern and smtp-source)
#   BENCH_SMTP_SESSIONS="1 8"     worker threads = smtp-source sessions
#   BENCH_SMTP_REPEAT=1           alternating rounds per setting (medians)
#   BENCH_SMTP_PATIENTS=5         patients the mails are spread over
#   BENCH_SMTP_BODY=100           characters of message text per mail (the
#                                 templates alone make ~3 KB: 100 gives 3.2 KB)
#   BENCH_SMTP_LAT_JOBS=300 BENCH_SMTP_LAT_GAP_MS=20   latency probe
set -euo pipefail
shopt -s inherit_errexit    # a failure inside $(...) fails the caller too

top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-${POSTERN_BUILD:-build}}
case $BUILD in /*) ;; *) BUILD=$top/$BUILD ;; esac
N=${BENCH_SMTP_MAILS:-2000}
SESSIONS=${BENCH_SMTP_SESSIONS:-1 8}
REPEAT=${BENCH_SMTP_REPEAT:-1}
PATIENTS=${BENCH_SMTP_PATIENTS:-5}
BODY=${BENCH_SMTP_BODY:-100}
LAT_JOBS=${BENCH_SMTP_LAT_JOBS:-300}
LAT_GAP_MS=${BENCH_SMTP_LAT_GAP_MS:-20}
PGSH=$top/tests/harness/pg.sh
MSSH=$top/tests/harness/mailstack.sh
WORKER=$BUILD/postern-worker
CTL=$BUILD/posternctl
SOURCE=/usr/sbin/smtp-source
T_STEP=180          # seconds any one step (fill, drain, smtp-source…) may take
T_QUEUE=180         # seconds Postfix may take to empty its queue into Dovecot

die() { echo "bench-smtp: $*" >&2; exit 1; }
say() { printf '%s\n' "$*"; }

# --- preconditions: clear errors before anything starts --------------------
[ -x "$WORKER" ] || die "$WORKER is missing: run make first"
[ -x "$CTL" ] || die "$CTL is missing: run make first"
[ -x "$SOURCE" ] || die "$SOURCE not found (apt-get install postfix; make deps)"
for t in psql curl timeout awk; do
	command -v "$t" >/dev/null || die "$t not found (make deps installs what is needed)"
done
bash "$MSSH" install-check >/dev/null 2>&1 || { bash "$MSSH" install-check || true; die "the mail stack is not installed (make deps)"; }
[[ $N =~ ^[0-9]+$ ]] && [ "$N" -ge 100 ] || die "BENCH_SMTP_MAILS must be a number >= 100"
[[ $PATIENTS =~ ^[0-9]+$ ]] && [ "$PATIENTS" -ge 1 ] || die "BENCH_SMTP_PATIENTS must be a number >= 1"
[[ $BODY =~ ^[0-9]+$ ]] && [ "$BODY" -ge 10 ] || die "BENCH_SMTP_BODY must be a number >= 10"
[[ $REPEAT =~ ^[0-9]+$ ]] && [ "$REPEAT" -ge 1 ] || die "BENCH_SMTP_REPEAT must be a number >= 1"
[[ $LAT_JOBS =~ ^[0-9]+$ ]] && [ "$LAT_JOBS" -ge 10 ] || die "BENCH_SMTP_LAT_JOBS must be a number >= 10"
[[ $LAT_GAP_MS =~ ^[0-9]+$ ]] || die "BENCH_SMTP_LAT_GAP_MS must be a number"
for s in $SESSIONS; do
	[[ $s =~ ^[0-9]+$ ]] && [ "$s" -ge 1 ] && [ "$s" -le 64 ] || die "BENCH_SMTP_SESSIONS: 1..64 each (worker threads)"
done

# --- Ctrl-C and SIGTERM --------------------------------------------------
# As in queue.sh: the bench runs as a child and this process only waits
# (`wait` returns at once on a trapped signal), then kills the child's
# tree; the child's EXIT trap stops both servers and removes the files.
kill_tree() {  # kill_tree PID: SIGTERM to PID, then to its descendants
	local c kids
	kids=$(pgrep -P "$1" || true)
	kill -TERM "$1" 2>/dev/null || true
	for c in $kids; do kill_tree "$c"; done
}
if [ -z "${BENCH_SMTP_CHILD:-}" ]; then
	BENCH_SMTP_CHILD=1 bash "$0" "$@" &
	child=$!
	trap 'echo "bench-smtp: interrupted, cleaning up" >&2; kill_tree "$child"; wait "$child"; exit 130' INT TERM
	rc=0
	wait "$child" || rc=$?
	exit "$rc"
fi

# --- scratch directory, servers, cleanup on any exit ------------------------
tmp=$(mktemp -d /tmp/postern-bench-smtp.XXXXXX)
chmod 755 "$tmp"    # Postfix, Dovecot and mail must reach DIR/mail (mailstack note 8)
bg_pid=
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$bg_pid" ] && kill -0 "$bg_pid" 2>/dev/null; then
		kill -TERM "$bg_pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$bg_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$bg_pid" 2>/dev/null || true
		wait "$bg_pid" 2>/dev/null || true
	fi
	timeout -k 5 60 bash "$MSSH" stop "$tmp/mail" >/dev/null 2>&1 || echo "bench-smtp: could not stop the mail stack in $tmp/mail" >&2
	timeout -k 5 60 bash "$PGSH" stop "$tmp" >/dev/null 2>&1 || echo "bench-smtp: could not stop the cluster in $tmp" >&2
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM

# step SECONDS COMMAND...: run with a time limit (foreground, so Ctrl-C
# reaches the command as well).
step() {
	local s=$1; shift
	timeout --foreground -k 5 "$s" "$@"
}

# Durable on purpose (no --fast), as in bench-queue: every delivery row
# commit is an fsync, as in production.
step 120 bash "$PGSH" start "$tmp" >"$tmp/pg-start.log" 2>&1 || { cat "$tmp/pg-start.log" >&2; die "PostgreSQL did not start"; }
eval "$(bash "$PGSH" env "$tmp")"
step 60 bash "$MSSH" start "$tmp/mail" >"$tmp/mail-start.log" 2>&1 || { cat "$tmp/mail-start.log" >&2; die "the mail stack did not start"; }
eval "$(bash "$MSSH" env "$tmp/mail")"
PF_LOG=$MAILSTACK_DIR/log/postfix.log
PF_MASTER=$(cat "$(readlink -f "$MAILSTACK_DIR/run")/postfix/pid/master.pid" 2>/dev/null | tr -d ' ') ||
	die "no Postfix master.pid under $MAILSTACK_DIR/run"
DC_MASTER=$(cat "$(readlink -f "$MAILSTACK_DIR/run")/dovecot/master.pid" 2>/dev/null | tr -d ' ') ||
	die "no Dovecot master.pid under $MAILSTACK_DIR/run"
PG_MASTER=$(head -1 "$PG_DIR/data/postmaster.pid" 2>/dev/null) || die "no postmaster.pid in $PG_DIR/data"
PF_QUEUE=$(readlink -f "$MAILSTACK_DIR/run")/postfix

psql_q() {  # psql_q URL SQL...: each SQL in turn, unaligned tuples only
	local url=$1; shift
	local args=()
	for s in "$@"; do args+=(-c "$s"); done
	PGOPTIONS="-c client_min_messages=warning" step "$T_STEP" \
		psql -X -q -tA -v ON_ERROR_STOP=1 "$url" "${args[@]}"
}

server_key=$(head -c32 /dev/urandom | base64)
# conf FILE URL THREADS TLS [KEEP_DONE_S]: a worker config, 0600. tls
# required = STARTTLS checked against the stack's certificate (the
# default); none = plaintext, like smtp-source.
conf() {
	(umask 077
	 { printf '[database]\nurl = %s\n[security]\nserver_key = %s\n[log]\nlevel = info\n' "$2" "$server_key"
	   printf '[worker]\nthreads = %s\nbatch = 32\npoll_ms = 1000\nkeep_done_s = %s\n' "$3" "${5:-0}"
	   printf '[smtp]\nurl = smtp://%s:%s\ntls = %s\nca_file = %s\ntimeout_s = 30\n' \
		"$MAILSTACK_HOST" "$MAILSTACK_SMTP_PORT" "$4" "$MAILSTACK_CA"
	   printf '[mail]\nfrom_address = postern@practice.test\nreply_domain = practice.test\nbounce_domain = practice.test\n'
	   printf '[httpd]\nbase_url = https://portal.test\n'
	 } >"$1")
}

# ~BODY characters of plain message text, in lines of ~70 (a lab result
# letter; the same text for every mail).
body_text() {
	awk -v n="$BODY" 'BEGIN {
		w = "your results from the visit on Tuesday are in and look good overall the blood count and the kidney values are within range please keep taking the medication as before and book a follow up in three months"
		k = split(w, a, " "); out = "Dear patient,"; line = 0; i = 0
		while (length(out) < n) {
			i++; word = a[(i - 1) % k + 1]
			if (line + length(word) > 68) { out = out "\n"; line = 0 } else { out = out " "; line++ }
			out = out word; line += length(word)
		}
		print substr(out, 1, n)
	}'
}

# ours_db NAME: a fresh database with our schema, one practice that allows
# the full text in mail, PATIENTS consenting patients; prints its URL.
ours_db() {
	local url i
	url=$(step 60 bash "$PGSH" createdb "$tmp" "$1")
	conf "$tmp/ctl.conf" "$url" 1 none
	step 60 "$CTL" -q -c "$tmp/ctl.conf" migrate >/dev/null 2>"$tmp/migrate.log" ||
		{ cat "$tmp/migrate.log" >&2; die "posternctl migrate failed"; }
	{
		step 30 "$CTL" -q -c "$tmp/ctl.conf" practice add --name "Bench Clinic" --slug bench \
			--from-address frontdesk@practice.test --reply-domain practice.test
		step 30 "$CTL" -q -c "$tmp/ctl.conf" staff add --practice bench --email dana.bench@practice.test \
			--name "Dana Whitfield" --role owner
		for i in $(seq "$PATIENTS"); do
			step 30 "$CTL" -q -c "$tmp/ctl.conf" patient add --practice bench \
				--email "bench$i@patients.test" --name "Patient Number$i"
		done
	} >/dev/null 2>"$tmp/people.log" || { cat "$tmp/people.log" >&2; die "posternctl practice/staff/patient add failed"; }
	psql_q "$url" "UPDATE practices SET phi_in_email = true WHERE slug = 'bench'" \
		"UPDATE patients SET email_text_consent = true, email_text_consent_at = now()" >/dev/null
	echo "$url"
}

# messages URL COUNT: COUNT outbound staff messages (the ~BODY text),
# round robin over the patients, one transaction; prints nothing.
messages() {
	body_text >"$tmp/body.txt"
	PGOPTIONS="-c client_min_messages=warning" step "$T_STEP" psql -X -q -tA -v ON_ERROR_STOP=1 \
		-v count="$2" -v body="$(cat "$tmp/body.txt")" "$1" >/dev/null <<'SQL'
INSERT INTO patient_messages (practice_id, patient_id, staff_user_id, direction, channel, subject, body)
SELECT t.practice_id, t.id, s.id, 'outbound', 'web', 'Your results', :'body'
  FROM generate_series(1, :count) g
  JOIN (SELECT p.*, row_number() OVER (ORDER BY p.id) - 1 AS k,
               count(*) OVER () AS n FROM patients p) t ON t.k = g % t.n
  JOIN staff_users s ON s.practice_id = t.practice_id;
SQL
}

# fill URL: a notify job for every message without one, in bulk (one
# INSERT … SELECT and a NOTIFY in one transaction).
fill() {
	psql_q "$1" "BEGIN; INSERT INTO jobs (kind, payload)
		SELECT 'notify', jsonb_build_object('message_id', id) FROM patient_messages ORDER BY id;
		NOTIFY postern_jobs; COMMIT" >/dev/null
}

# Postfix's queue (hold, incoming, active, deferred, maildrop): files left.
mailq_len() {
	find "$PF_QUEUE/hold" "$PF_QUEUE/incoming" "$PF_QUEUE/active" "$PF_QUEUE/deferred" "$PF_QUEUE/maildrop" \
		-type f 2>/dev/null | wc -l
}
# Both sides start with an empty Postfix queue: the previous run's mails
# are delivered into Dovecot (LMTP) before the next run starts.
wait_mailq_empty() {
	local t0=$SECONDS
	while [ "$(mailq_len)" != 0 ]; do
		[ $((SECONDS - t0)) -lt "$T_QUEUE" ] || die "Postfix still has $(mailq_len) queued mails after $T_QUEUE s"
		sleep 0.2
	done
	[ "$(find "$PF_QUEUE/deferred" -type f | wc -l)" = 0 ] || die "Postfix deferred mail (see $PF_LOG)"
}

# cpu_ticks PID...: clock ticks (user + system) of each PID with its
# reaped children (cutime + cstime) and of its live direct children, one
# "pid ticks" a line. Postfix's and Dovecot's services are children of their
# master, PostgreSQL's backends of the postmaster; a child that exits in
# between is counted through the master's cutime/cstime.
cpu_ticks() {
	local p q
	for p in "$@"; do
		awk -v p="$p" '{ sub(/^.*\) /, ""); print p, $12 + $13 + $14 + $15 }' "/proc/$p/stat" 2>/dev/null || true
		for q in $(pgrep -P "$p" || true); do
			awk -v p="$q" '{ sub(/^.*\) /, ""); print p, $12 + $13 }' "/proc/$q/stat" 2>/dev/null || true
		done
	done
}
# cpu_delta BEFORE AFTER: seconds of CPU between two cpu_ticks lists: the
# sums' difference (a child that exits moves from its own line into the
# master's cutime/cstime; one that starts counts from 0).
cpu_delta() {
	awk -v hz="$(getconf CLK_TCK)" 'NR == FNR { s -= $2; next } { s += $2 } END { printf "%.2f", s / hz }' "$1" "$2"
}
snap() {  # snap NAME: CPU of the three servers and WAL / commit counters
	cpu_ticks "$PF_MASTER" >"$tmp/$1.pf"
	cpu_ticks "$DC_MASTER" >"$tmp/$1.dc"
	cpu_ticks "$PG_MASTER" >"$tmp/$1.pg"
	# the whole machine (every process, other sessions' too), and steal
	awk '$1 == "cpu" { print "all", $2 + $3 + $4 + $7 + $8 }' /proc/stat >"$tmp/$1.all"
	awk '$1 == "cpu" { print "steal", $9 }' /proc/stat >"$tmp/$1.steal"
}
pf_sizes() {  # pf_sizes FROM_PATTERN FROM_LINE: mean size= of accepted mails (qmgr)
	tail -n +"$2" "$PF_LOG" | awk -v pat="$1" '/qmgr.*from=</ && $0 ~ pat && /size=/ {
		match($0, /size=[0-9]+/); s += substr($0, RSTART + 5, RLENGTH - 5); n++ }
		END { if (n) printf "%.0f %d\n", s / n, n; else print "0 0" }'
}

# pf_cmds FROM_LINE: SMTP commands per mail over the sessions that ended
# since FROM_LINE (smtpd's "disconnect from … mail=N … commands=N" lines):
# "COMMANDS_PER_MAIL SESSIONS RSETS".
pf_cmds() {
	tail -n +"$1" "$PF_LOG" | awk '/smtpd.*disconnect from/ {
		for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "mail") m += kv[2];
			if (kv[1] == "commands") c += kv[2]; if (kv[1] == "rset") r += kv[2] }
		n++ }
		END { printf "%.2f %d %d\n", (m ? c / m : 0), n, r }'
}

# ours THREADS TLS [async]: fresh database, N messages and jobs, VACUUM ANALYZE,
# CHECKPOINT, empty Postfix queue, postern-worker --drain. "async": the
# database gets synchronous_commit = off (a diagnosis, not durable). Prints
# "MSGS_PER_S SECONDS WORKER_CPU_S PF_CPU_S DC_CPU_S PG_CPU_S COMMITS_PER_MSG
# WAL_SYNCS_PER_MSG MEAN_SIZE SMTP_COMMANDS_PER_MSG SESSIONS RSETS
# MACHINE_BUSY_CPU_S STEAL_S MS_PER_MAIL_PER_SESSION MS_INSERT_TO_250".
ours() {
	local th=$1 tls=$2 url log rc=0 line secs sent other cpu mark c0 c1 w0 w1 sz per
	url=$(ours_db "ours_${th}_$tls${3:+_$3}")
	[ "${3:-}" = async ] && psql_q "$url" "ALTER DATABASE ours_${th}_${tls}_async SET synchronous_commit = off" >/dev/null
	messages "$url" "$N"
	fill "$url"
	psql_q "$url" "VACUUM ANALYZE" "CHECKPOINT" >/dev/null
	wait_mailq_empty
	conf "$tmp/drain.conf" "$url" "$th" "$tls"
	log=$tmp/drain-$th-$tls.log
	mark=$(($(wc -l <"$PF_LOG") + 1))
	read -r c0 w0 < <(psql_q "$url" "SELECT sum(xact_commit), (SELECT wal_sync FROM pg_stat_wal) FROM pg_stat_database" | tr '|' ' ')
	snap before
	TIMEFORMAT='%U %S'
	{ time timeout --foreground -k 5 "$T_STEP" "$WORKER" -c "$tmp/drain.conf" --drain >"$log" 2>&1; } 2>"$tmp/time" || rc=$?
	snap after
	sleep 0.3   # the runners' backends have exited and flushed their statistics
	read -r c1 w1 < <(psql_q "$url" "SELECT sum(xact_commit), (SELECT wal_sync FROM pg_stat_wal) FROM pg_stat_database" | tr '|' ' ')
	line=$(grep 'event=drained' "$log" | tail -1 || true)
	if [ "$rc" != 0 ] || [ -z "$line" ]; then
		tail -5 "$log" >&2
		die "postern-worker --drain failed (exit $rc, threads=$th tls=$tls)"
	fi
	if awk '$2 == "error" || $2 == "warn"' "$log" | grep -q .; then
		awk '$2 == "error" || $2 == "warn"' "$log" | head -3 >&2
		die "postern-worker logged errors or warnings (threads=$th tls=$tls)"
	fi
	secs=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$line")
	read -r sent other < <(psql_q "$url" "SELECT count(*) FILTER (WHERE state = 'sent'), count(*) FILTER (WHERE state <> 'sent') FROM deliveries" | tr '|' ' ')
	[ "$sent" = "$N" ] && [ "$other" = 0 ] ||
		die "threads=$th tls=$tls: $sent of $N deliveries sent, $other in another state"
	[ "$(psql_q "$url" "SELECT count(*) FROM jobs WHERE kind = 'notify'")" = 0 ] ||
		die "threads=$th tls=$tls: notify jobs left after the drain"
	cpu=$(tail -1 "$tmp/time" | awk '{ printf "%.2f", $1 + $2 }')
	# per session: ms from one 250 to the next (threads x the span between
	# the first and last sent_at / (N - 1)), and the mean time from the
	# delivery row's INSERT to its sent_at. Both are coarse since sent_at
	# is the now() of the transaction that completes the job (written
	# with the batched completion, <= 20 ms after the 250) and a claimed
	# batch's rows are all inserted before its first send.
	per=$(psql_q "$url" "SELECT to_char($th * extract(epoch FROM max(sent_at) - min(sent_at)) * 1000 / (count(*) - 1), 'FM990.00')
		|| ' ' || to_char(avg(extract(epoch FROM sent_at - created_at)) * 1000, 'FM990.00') FROM deliveries")
	wait_mailq_empty   # the queue's size= lines are all logged by now
	snap delivered
	sz=$(pf_sizes 'from=<bounce[+]' "$mark")
	awk -v n="$sent" -v s="$secs" -v cpu="$cpu" -v pf="$(cpu_delta "$tmp/before.pf" "$tmp/after.pf")" \
		-v dc="$(cpu_delta "$tmp/before.dc" "$tmp/after.dc")" -v pg="$(cpu_delta "$tmp/before.pg" "$tmp/after.pg")" \
		-v c="$((c1 - c0))" -v w="$((w1 - w0))" -v sz="${sz%% *}" -v cmds="$(pf_cmds "$mark")" \
		-v all="$(cpu_delta "$tmp/before.all" "$tmp/after.all")" -v st="$(cpu_delta "$tmp/before.steal" "$tmp/after.steal")" \
		-v per="$per" -v pft="$(cpu_delta "$tmp/before.pf" "$tmp/delivered.pf")" -v dct="$(cpu_delta "$tmp/before.dc" "$tmp/delivered.dc")" \
		'BEGIN { printf "%.0f %.2f %s %s %s %s %.1f %.1f %s %s %s %s %s %s %s\n", n / s, s, cpu, pf, dc, pg, c / n, w / n, sz, cmds, all, st, per, pft, dct }'
}

# The reference's message: one of ours as Dovecot stored it, without the
# headers Postfix and Dovecot added (Return-Path, Delivered-To, Received),
# in LF lines (smtp-source -F appends CRLF to each line).
ref_message() {
	curl -sS --max-time 20 --cacert "$MAILSTACK_CA" --user "bench1@patients.test:$MAILSTACK_PASSWORD" \
		"imaps://localhost:$MAILSTACK_IMAPS_PORT/INBOX;MAILINDEX=1" | tr -d '\r' |
		awk 'hdr == 0 && /^$/ { hdr = 1 }
		     hdr == 0 && /^[^ \t]/ { skip = ($0 ~ /^(Return-Path|Delivered-To|Received):/) }
		     hdr == 1 || !skip' >"$tmp/ref.eml"
	[ "$(wc -c <"$tmp/ref.eml")" -gt 500 ] && grep -q '^Message-ID:' "$tmp/ref.eml" ||
		die "could not fetch one of the benchmark mails back over IMAPS for the reference"
}

# ref SESSIONS: smtp-source -s SESSIONS -d (each session sends its share
# over one connection) -m N -F ref.eml to the same Postfix, plaintext (it
# has no STARTTLS). msgs/s = N / wall time from start to exit (its last
# 250 and QUIT). Prints "MSGS_PER_S SECONDS SOURCE_CPU_S PF_CPU_S DC_CPU_S MEAN_SIZE".
ref() {
	local s=$1 t0 t1 rc=0 mark cpu sz n
	wait_mailq_empty
	mark=$(($(wc -l <"$PF_LOG") + 1))
	snap before
	t0=$(date +%s.%N)
	TIMEFORMAT='%U %S'
	{ time timeout --foreground -k 5 "$T_STEP" "$SOURCE" -4 -d -s "$s" -m "$N" -F "$tmp/ref.eml" \
		-f bench-ref@practice.test -t bench1@patients.test -M bench.practice.test \
		"$MAILSTACK_HOST:$MAILSTACK_SMTP_PORT" >"$tmp/source.log" 2>&1; } 2>"$tmp/time" || rc=$?
	t1=$(date +%s.%N)
	snap after
	[ "$rc" = 0 ] || { tail -5 "$tmp/source.log" >&2; die "smtp-source failed (exit $rc, -s $s)"; }
	cpu=$(tail -1 "$tmp/time" | awk '{ printf "%.2f", $1 + $2 }')
	wait_mailq_empty
	snap delivered
	read -r sz n < <(pf_sizes 'from=<bench-ref@' "$mark")
	[ "$n" = "$N" ] || die "smtp-source -s $s: Postfix logged $n of $N mails from it"
	awk -v n="$N" -v a="$t0" -v b="$t1" -v cpu="$cpu" -v pf="$(cpu_delta "$tmp/before.pf" "$tmp/after.pf")" \
		-v dc="$(cpu_delta "$tmp/before.dc" "$tmp/after.dc")" -v sz="$sz" -v cmds="$(pf_cmds "$mark")" \
		-v all="$(cpu_delta "$tmp/before.all" "$tmp/after.all")" -v st="$(cpu_delta "$tmp/before.steal" "$tmp/after.steal")" \
		-v pft="$(cpu_delta "$tmp/before.pf" "$tmp/delivered.pf")" -v dct="$(cpu_delta "$tmp/before.dc" "$tmp/delivered.dc")" \
		'BEGIN { printf "%.0f %.2f %s %s %s %s %s %s %s %s %s\n", n / (b - a), b - a, cpu, pf, dc, sz, cmds, all, st, pft, dct }'
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
fmt0() { awk -v x="$1" 'BEGIN { printf "%.0f", x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

start_s=$SECONDS
load0=$(cut -d' ' -f1-3 /proc/loadavg)
say "bench-smtp: Postfix $(postconf -d -h mail_version 2>/dev/null) on $MAILSTACK_HOST:$MAILSTACK_SMTP_PORT (STARTTLS offered)" \
	"-> LMTP -> Dovecot $(dovecot --version 2>/dev/null | cut -d' ' -f1);" \
	"PostgreSQL $(psql_q "$PG_URL" "SHOW server_version" | cut -d' ' -f1) (durable); $(nproc) cores; $N mails per run"
say "  postern: fresh database, $N full-text notify jobs (practice phi_in_email + patient consent,"
say "  $BODY characters of message text, $PATIENTS patients @patients.test) enqueued in one INSERT … SELECT,"
say "  postern-worker --drain; msgs/s = sent deliveries / the drain's seconds (event=drained:"
say "  process start to last job, so runner and SMTP connection setup included). Sessions = [worker]"
say "  threads: one SMTP connection per runner thread, opened on its first mail and reused."
say "  reference: smtp-source -d -s SESSIONS -m $N -F <one of our mails> (plaintext: no STARTTLS in"
say "  smtp-source); msgs/s = $N / wall time from start to exit (last 250 + QUIT)."
say "  Postfix's queue is empty (delivered into Dovecot) before every run."
say ""

# --- warm-up: one small run fills the caches and gives the reference its
# message (one of ours, fetched back over IMAPS) ------------------------------
url=$(ours_db warmup)
messages "$url" "$PATIENTS"
fill "$url"
conf "$tmp/warm.conf" "$url" 1 required
step "$T_STEP" "$WORKER" -c "$tmp/warm.conf" --drain >"$tmp/warm.log" 2>&1 || { tail -5 "$tmp/warm.log" >&2; die "warm-up drain failed"; }
[ "$(psql_q "$url" "SELECT count(*) FROM deliveries WHERE state = 'sent'")" = "$PATIENTS" ] ||
	{ tail -5 "$tmp/warm.log" >&2; die "warm-up: not every delivery was sent"; }
wait_mailq_empty
ref_message
say "message: $(wc -c <"$tmp/ref.eml") bytes as composed (multipart/alternative, text + HTML, quoted-printable);"
say "  worker log: $(grep -o 'bytes=[0-9]*' "$tmp/warm.log" | head -1)"
say ""

# --- 1./2. head to head per session count, alternating --------------------
declare -A O_REQ O_NONE R_RUNS DETAIL
say "1. msgs/s per run (postern tls=required = STARTTLS, tls=none = plaintext; reference plaintext):"
for s in $SESSIONS; do
	for i in $(seq "$REPEAT"); do
		out=$(ours "$s" required)
		read -r -a a <<<"$out"
		O_REQ[$s]="${O_REQ[$s]:-} ${a[0]}"
		DETAIL[$s,required]="${a[*]}"
		out=$(ours "$s" none)
		read -r -a b <<<"$out"
		O_NONE[$s]="${O_NONE[$s]:-} ${b[0]}"
		DETAIL[$s,none]="${b[*]}"
		out=$(ref "$s")
		read -r -a r <<<"$out"
		R_RUNS[$s]="${R_RUNS[$s]:-} ${r[0]}"
		DETAIL[$s,ref]="${r[*]}"
		say "   sessions=$s round $i: postern tls=required ${a[0]} (${a[1]} s)  tls=none ${b[0]} (${b[1]} s)  smtp-source ${r[0]} (${r[1]} s)"
	done
done
say ""

say "2. medians and ratios (goal: postern >= 0.80 x smtp-source; the notes saw smtp-source at 360-400"
say "   msgs/s with one reused session and 660-710 with eight, 2 KiB, on this machine kind):"
declare -A MED_REQ MED_NONE MED_REF
for s in $SESSIONS; do
	MED_REQ[$s]=$(fmt0 "$(median <<<"${O_REQ[$s]}")")
	MED_NONE[$s]=$(fmt0 "$(median <<<"${O_NONE[$s]}")")
	MED_REF[$s]=$(fmt0 "$(median <<<"${R_RUNS[$s]}")")
	say "   sessions=$s: postern tls=none ${MED_NONE[$s]}, tls=required ${MED_REQ[$s]}, smtp-source ${MED_REF[$s]} msgs/s;" \
		"ratio tls=none $(ratio "${MED_NONE[$s]}" "${MED_REF[$s]}"), tls=required $(ratio "${MED_REQ[$s]}" "${MED_REF[$s]}")"
done
say ""

say "3. where the time goes (last round of each; CPU seconds during the run, 2 cores = 2 CPU-s per s of wall;"
say "   machine = every process on the VM, steal = time the hypervisor gave to others):"
for s in $SESSIONS; do
	for t in none required; do
		read -r -a d <<<"${DETAIL[$s,$t]}"
		say "   postern sessions=$s tls=$t: wall ${d[1]} s; CPU: worker ${d[2]}, Postfix ${d[3]}, Dovecot ${d[4]}, PostgreSQL ${d[5]}" \
			"(machine ${d[12]}, steal ${d[13]}); per mail: ${d[6]} commits, ${d[7]} WAL fsyncs, ${d[9]} SMTP commands;"
		say "      ${d[14]} ms from one 250 to the next per session, ${d[15]} ms from the delivery INSERT to sent_at;" \
			"${d[10]} SMTP session(s), rset=${d[11]}; Postfix size= ${d[8]} bytes"
		say "      until every mail is in Dovecot: Postfix ${d[16]}, Dovecot ${d[17]} CPU-s"
	done
	read -r -a d <<<"${DETAIL[$s,ref]}"
	say "   smtp-source sessions=$s: wall ${d[1]} s; CPU: smtp-source ${d[2]}, Postfix ${d[3]}, Dovecot ${d[4]}" \
		"(machine ${d[9]}, steal ${d[10]}); per mail: ${d[6]} SMTP commands;"
	say "      $(awk -v s="$s" -v w="${d[1]}" -v n="$N" 'BEGIN { printf "%.2f", s * w * 1000 / n }') ms per mail per session;" \
		"${d[7]} SMTP session(s), rset=${d[8]}; Postfix size= ${d[5]} bytes"
	say "      until every mail is in Dovecot: Postfix ${d[11]}, Dovecot ${d[12]} CPU-s"
done
say ""

# --- diagnosis: the same drain without waiting for WAL fsyncs ------------
say "   diagnosis, not durable: postern tls=none with synchronous_commit = off on its database"
say "   (commits no longer wait for the WAL fsync; everything else the same):"
declare -A ASYNC
for s in $SESSIONS; do
	out=$(ours "$s" none async)
	read -r -a d <<<"$out"
	ASYNC[$s]=${d[0]}
	say "   sessions=$s: ${d[0]} msgs/s (durable: ${MED_NONE[$s]}); wall ${d[1]} s; CPU worker ${d[2]} s," \
		"Postfix ${d[3]} s, PostgreSQL ${d[5]} s; ${d[7]} WAL fsyncs per mail"
done
say ""

# --- 4. latency: a normally running worker, single jobs, light pace --------
LAT_T=2
say "4. enqueue -> SMTP 250 latency: postern-worker (not --drain, default threads=$LAT_T, tls=required,"
say "   keep_done_s=3600 so the jobs' created_at stays), $LAT_JOBS single notify jobs, each its own"
say "   transaction (BEGIN; INSERT; NOTIFY; COMMIT) from one connection, ${LAT_GAP_MS} ms apart;"
say "   latency = deliveries.sent_at (now() of the transaction that completes the job, right after the 250"
say "   for a job claimed alone) - jobs.created_at (the enqueue's now())."
LAT_URL=$(ours_db latency)
messages "$LAT_URL" "$((LAT_JOBS + LAT_T))"
psql_q "$LAT_URL" "VACUUM ANALYZE" "CHECKPOINT" >/dev/null
wait_mailq_empty
conf "$tmp/lat.conf" "$LAT_URL" "$LAT_T" required 3600
"$WORKER" -c "$tmp/lat.conf" >"$tmp/lat.log" 2>&1 &
bg_pid=$!
for _ in $(seq 200); do grep -q 'event=worker_started' "$tmp/lat.log" && break; sleep 0.1; done
grep -q 'event=worker_started' "$tmp/lat.log" || { tail -5 "$tmp/lat.log" >&2; die "postern-worker did not start within 20 s"; }
# One warm-up mail per runner first, so the SMTP connections are open (an
# installation's worker has been running for a while); not measured.
first=$(psql_q "$LAT_URL" "SELECT min(id) FROM patient_messages")
psql_q "$LAT_URL" "BEGIN; INSERT INTO jobs (kind, payload) SELECT 'notify', jsonb_build_object('message_id', id)
	FROM patient_messages WHERE id < $first + $LAT_T; NOTIFY postern_jobs; COMMIT" >/dev/null
for _ in $(seq 200); do
	[ "$(psql_q "$LAT_URL" "SELECT count(*) FROM deliveries WHERE state = 'sent'")" = "$LAT_T" ] && break
	sleep 0.1
done
[ "$(psql_q "$LAT_URL" "SELECT count(*) FROM deliveries WHERE state = 'sent'")" = "$LAT_T" ] ||
	{ tail -5 "$tmp/lat.log" >&2; die "latency warm-up mails not sent within 20 s"; }
warm_max=$(psql_q "$LAT_URL" "SELECT max(id) FROM jobs WHERE kind = 'notify'")
sleep 0.5
awk -v first="$first" -v t="$LAT_T" -v n="$LAT_JOBS" -v gap="$LAT_GAP_MS" -v q="'" 'BEGIN {
	for (i = first + t; i < first + t + n; i++) {
		printf "BEGIN; INSERT INTO jobs (kind, payload) VALUES (%snotify%s, %s{\"message_id\": %d}%s); NOTIFY postern_jobs; COMMIT;\n", q, q, q, i, q
		printf "SELECT pg_sleep(%.3f);\n", gap / 1000
	}
}' >"$tmp/lat.sql"
PGOPTIONS="-c client_min_messages=warning" step "$T_STEP" psql -X -q -tA -v ON_ERROR_STOP=1 \
	-f "$tmp/lat.sql" "$LAT_URL" >/dev/null 2>"$tmp/lat-psql.log" || { cat "$tmp/lat-psql.log" >&2; die "the latency enqueue failed"; }
total=$(psql_q "$LAT_URL" "SELECT count(*) FROM jobs WHERE kind = 'notify'")
for _ in $(seq 300); do
	done_n=$(psql_q "$LAT_URL" "SELECT count(*) FROM deliveries WHERE state = 'sent'")
	[ "$done_n" -ge "$total" ] && break
	sleep 0.1
done
[ "$done_n" -ge "$total" ] || die "only $done_n of $total latency mails sent after 30 s"
kill -TERM "$bg_pid"
for _ in $(seq 250); do kill -0 "$bg_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$bg_pid" 2>/dev/null && die "postern-worker did not stop within 25 s of SIGTERM"
wait "$bg_pid" || die "postern-worker exited non-zero after SIGTERM"
bg_pid=
read -r P50 P90 P99 PMAX PMIN LN < <(psql_q "$LAT_URL" "
	SELECT to_char(percentile_disc(0.5) WITHIN GROUP (ORDER BY l), 'FM9990.00'),
	       to_char(percentile_disc(0.9) WITHIN GROUP (ORDER BY l), 'FM9990.00'),
	       to_char(percentile_disc(0.99) WITHIN GROUP (ORDER BY l), 'FM9990.00'),
	       to_char(max(l), 'FM99990.00'), to_char(min(l), 'FM9990.00'), count(*)
	  FROM (SELECT extract(epoch FROM d.sent_at - j.created_at) * 1000 AS l
	          FROM jobs j JOIN deliveries d ON d.job_id = j.id
	         WHERE j.kind = 'notify' AND d.state = 'sent' AND j.id > $warm_max) AS t" | tr '|' ' ')
say "   $LN mails; ms: min=$PMIN p50=$P50 p90=$P90 p99=$P99 max=$PMAX"
say ""

# --- 5. the envelope sender: what a new one per mail costs Postfix --------
# No postern here: sender_probe.py sends our message over one session the
# way smtp-source does, once with a fixed sender and once with a new
# bounce+<40 characters> sender per mail (the shape of our VERP address).
# Postfix's queue is on hold meanwhile (smtpd_data_restrictions HOLD), so
# only what accepting the mail costs is measured, not delivery into Dovecot;
# held mail is released and delivered between runs.
PF_CONF=$MAILSTACK_DIR/etc/postfix
say "5. what a new envelope sender per mail costs Postfix (no postern: tests/bench/smtp/sender_probe.py,"
say "   one session, $N mails of the message above, no PIPELINING as smtp-source; Postfix's queue on"
say "   hold, so delivery into Dovecot does not run during these runs):"
wait_mailq_empty
postconf -c "$PF_CONF" -e 'smtpd_data_restrictions = check_client_access static:HOLD'
postfix -c "$PF_CONF" reload 2>/dev/null
sleep 1
declare -A PROBE_RATE PROBE_CPU
for i in $(seq "$REPEAT"); do
	for m in fixed new; do
		snap before
		read -r pn psecs < <(step "$T_STEP" /usr/bin/python3 "$top/tests/bench/smtp/sender_probe.py" "$m" "$N" \
			"$MAILSTACK_HOST" "$MAILSTACK_SMTP_PORT" "$tmp/ref.eml" bench1@patients.test) ||
			die "sender_probe.py $m failed"
		sleep 0.5   # the cleanup of the last mail is done
		snap after
		[ "$pn" = "$N" ] || die "sender_probe.py $m: $pn of $N mails"
		PROBE_RATE[$m]="${PROBE_RATE[$m]:-} $(awk -v n="$N" -v s="$psecs" 'BEGIN { printf "%.0f", n / s }')"
		PROBE_CPU[$m]="${PROBE_CPU[$m]:-} $(awk -v c="$(cpu_delta "$tmp/before.pf" "$tmp/after.pf")" -v n="$N" 'BEGIN { printf "%.3f", c * 1000 / n }')"
		postsuper -c "$PF_CONF" -H ALL 2>/dev/null
		wait_mailq_empty
	done
done
postconf -c "$PF_CONF" -e 'smtpd_data_restrictions ='
postfix -c "$PF_CONF" reload 2>/dev/null
PR_FIXED=$(fmt0 "$(median <<<"${PROBE_RATE[fixed]}")") PR_NEW=$(fmt0 "$(median <<<"${PROBE_RATE[new]}")")
PC_FIXED=$(median <<<"${PROBE_CPU[fixed]}") PC_NEW=$(median <<<"${PROBE_CPU[new]}")
say "   fixed sender:        $PR_FIXED msgs/s, Postfix CPU $PC_FIXED ms per mail (runs:${PROBE_RATE[fixed]} msgs/s)"
say "   new sender per mail: $PR_NEW msgs/s, Postfix CPU $PC_NEW ms per mail (runs:${PROBE_RATE[new]} msgs/s)"
say "   the same client, only the sender changed: ratio $(ratio "$PR_NEW" "$PR_FIXED");" \
	"Postfix spends $(awk -v a="$PC_NEW" -v b="$PC_FIXED" 'BEGIN { printf "%.2f", a - b }') ms more per mail"
say "   (a new sender misses smtpd's one-entry rewrite and resolve caches: 5 more trivial-rewrite requests"
say "   per mail; smtp-source's own -N option exists to avoid that 'artificial 100% hit rate')."
say ""

# --- headline: the largest session count, like for like (plaintext) --------
S_HEAD=$(tr ' ' '\n' <<<"$SESSIONS" | grep . | sort -n | tail -1)
OURS=${MED_NONE[$S_HEAD]} REFV=${MED_REF[$S_HEAD]}
extra=""
for s in $SESSIONS; do
	extra="$extra s${s}_postern=${MED_NONE[$s]} s${s}_reference=${MED_REF[$s]} s${s}_ratio=$(ratio "${MED_NONE[$s]}" "${MED_REF[$s]}") s${s}_starttls=${MED_REQ[$s]} s${s}_ratio_starttls=$(ratio "${MED_REQ[$s]}" "${MED_REF[$s]}") s${s}_async=${ASYNC[$s]}"
done
say "bench-smtp: done in $((SECONDS - start_s)) s (server start excluded); load average" \
	"at start $load0, at end $(cut -d' ' -f1-3 /proc/loadavg) (2 cores: above ~1 others share the machine)."
say "bench smtp: postern=$OURS msgs/s reference=$REFV msgs/s ratio=$(ratio "$OURS" "$REFV") p50_ms=$P50 p99_ms=$P99 max_ms=$PMAX sender_probe=$(ratio "$PR_NEW" "$PR_FIXED") tls=none sessions=$S_HEAD mails=$N size=$(cut -d' ' -f9 <<<"${DETAIL[$S_HEAD,none]}")$extra"
