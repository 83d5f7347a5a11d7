#!/usr/bin/env bash
# tests/bench/queue.sh: `make bench-queue`. The job queue (postern-worker
# --drain over no-op jobs) against a pgbench reference (claim 50 + DELETE,
# ../shared/notes/bench-reference/) on the same private, durable PostgreSQL,
# in the same run; then enqueue→start latency under light load and
# throughput over several rounds without manual VACUUM (bloat).
# What each figure means: tests/bench/README.md.
#
#   bash tests/bench/queue.sh [BUILD]        (BUILD: default build)
#
# Environment (all optional):
#   BENCH_QUEUE_JOBS=50000        jobs per drain / pgbench fill
#   BENCH_QUEUE_THREADS="1 2 4"   worker threads (and pgbench clients) to try
#   BENCH_QUEUE_BATCHES="50 100 200"  worker batch sizes to try
#   BENCH_QUEUE_SWEEP=2           runs per setting in the sweep (best mean wins)
#   BENCH_QUEUE_REPEAT=3          head-to-head rounds (medians are reported)
#   BENCH_QUEUE_ROUNDS=6          bloat rounds on one table
#   BENCH_QUEUE_LAT_JOBS=1000 BENCH_QUEUE_LAT_GAP_US=3000   latency probe
#   BENCH_QUEUE_PROFILE=1         also: server-side time per queue statement
#   BENCH_QUEUE_REF_DIR=DIR       the reference SQL (default
#                                 ../shared/notes/bench-reference from the repo)
set -euo pipefail
shopt -s inherit_errexit    # a failure inside $(...) fails the caller too

top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-${POSTERN_BUILD:-build}}
case $BUILD in /*) ;; *) BUILD=$top/$BUILD ;; esac
N=${BENCH_QUEUE_JOBS:-50000}
THREADS=${BENCH_QUEUE_THREADS:-1 2 4}
BATCHES=${BENCH_QUEUE_BATCHES:-50 100 200}
REPEAT=${BENCH_QUEUE_REPEAT:-3}
SWEEP=${BENCH_QUEUE_SWEEP:-2}
ROUNDS=${BENCH_QUEUE_ROUNDS:-6}
LAT_JOBS=${BENCH_QUEUE_LAT_JOBS:-1000}
LAT_GAP_US=${BENCH_QUEUE_LAT_GAP_US:-3000}
PROFILE=${BENCH_QUEUE_PROFILE:-0}
REF=${BENCH_QUEUE_REF_DIR:-$top/../shared/notes/bench-reference}
PGSH=$top/tests/harness/pg.sh
WORKER=$BUILD/postern-worker
CTL=$BUILD/posternctl
T_STEP=120          # seconds any one step (fill, drain, pgbench…) may take

die() { echo "bench-queue: $*" >&2; exit 1; }
say() { printf '%s\n' "$*"; }

# --- preconditions: clear errors before anything starts --------------------
[ -x "$WORKER" ] || die "$WORKER is missing: run make first"
[ -x "$CTL" ] || die "$CTL is missing: run make first"
for f in queue-schema.sql queue-fill.sql queue-claim50-delete.sql; do
	[ -r "$REF/$f" ] || die "reference script $REF/$f not found (set BENCH_QUEUE_REF_DIR)"
done
for t in psql pgbench cc pkg-config timeout; do
	command -v "$t" >/dev/null || die "$t not found (make deps installs what is needed)"
done
pkg-config --exists libpq || die "libpq not found by pkg-config (apt-get install libpq-dev)"
[[ $N =~ ^[0-9]+$ ]] && [ "$N" -ge 1000 ] || die "BENCH_QUEUE_JOBS must be a number >= 1000"

# --- Ctrl-C and SIGTERM --------------------------------------------------
# bash runs an INT trap only after a foreground command ends, and not at
# all when that command handles SIGINT itself (psql cancels, postern-worker
# stops cleanly, and the script would go on). So the bench runs as a child
# and this process only waits: `wait` returns at once on a trapped signal.
# The child's EXIT trap stops the cluster and removes its files.
kill_tree() {  # kill_tree PID: SIGTERM to PID, then to its descendants
	local c kids
	kids=$(pgrep -P "$1" || true)
	kill -TERM "$1" 2>/dev/null || true
	for c in $kids; do kill_tree "$c"; done
}
if [ -z "${BENCH_QUEUE_CHILD:-}" ]; then
	BENCH_QUEUE_CHILD=1 bash "$0" "$@" &
	child=$!
	trap 'echo "bench-queue: interrupted, cleaning up" >&2; kill_tree "$child"; wait "$child"; exit 130' INT TERM
	rc=0
	wait "$child" || rc=$?
	exit "$rc"
fi

# --- scratch directory, cluster, cleanup on any exit ------------------------
tmp=$(mktemp -d /tmp/postern-bench-queue.XXXXXX)
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
	bash "$PGSH" stop "$tmp" >/dev/null 2>&1 || echo "bench-queue: could not stop the cluster in $tmp" >&2
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

# Durable on purpose (no --fast): fsync and synchronous_commit on, as the
# anchors in perf-anchors.md were measured.
bash "$PGSH" start "$tmp" >"$tmp/pg-start.log" 2>&1 || { cat "$tmp/pg-start.log" >&2; die "PostgreSQL did not start"; }
eval "$(bash "$PGSH" env "$tmp")"
SERVER_LOG=$PG_DIR/server.log

psql_q() {  # psql_q URL SQL...: each SQL in turn, unaligned tuples only
	local url=$1; shift
	local args=()
	for s in "$@"; do args+=(-c "$s"); done
	PGOPTIONS="-c client_min_messages=warning" step "$T_STEP" \
		psql -X -q -tA -v ON_ERROR_STOP=1 "$url" "${args[@]}"
}
newdb() {   # newdb NAME: a fresh empty database; prints its URL
	step 60 bash "$PGSH" createdb "$tmp" "$1"
}

# --- probe: built from tests/bench/queue/latency.c --------------------------
step 60 cc -std=c11 -D_DEFAULT_SOURCE -O2 -Wall -Wextra $(pkg-config --cflags libpq) \
	-o "$tmp/latency" "$top/tests/bench/queue/latency.c" $(pkg-config --libs libpq) ||
	die "cannot build tests/bench/queue/latency.c"

server_key=$(head -c32 /dev/urandom | base64)
# conf FILE URL THREADS BATCH [KEEP_DONE_S [STATEMENT_TIMEOUT_MS]]: a
# worker config, 0600.
conf() {
	(umask 077; printf '[database]\nurl = %s\nstatement_timeout_ms = %s\n[security]\nserver_key = %s\n[log]\nlevel = info\n[worker]\nthreads = %s\nbatch = %s\nkeep_done_s = %s\n' \
		"$2" "${6:-30000}" "$server_key" "$3" "$4" "${5:-0}" >"$1")
}

# The bulk enqueue: `posternctl jobs enqueue noop '{}' --count N` (one
# INSERT … SELECT generate_series and a NOTIFY) when this posternctl has
# it, else the same statement through psql.
if "$CTL" jobs --help 2>/dev/null | grep -q -- '--count'; then
	ENQUEUE_HOW="posternctl jobs enqueue noop '{}' --count N"
else
	ENQUEUE_HOW="one INSERT … SELECT generate_series + NOTIFY (psql)"
fi
enqueue_bulk() {  # enqueue_bulk URL N
	case $ENQUEUE_HOW in
	posternctl*)
		conf "$tmp/enqueue.conf" "$1" 1 1
		step "$T_STEP" "$CTL" -c "$tmp/enqueue.conf" jobs enqueue noop '{}' --count "$2" >/dev/null ;;
	*)
		psql_q "$1" "BEGIN; INSERT INTO jobs (kind, payload, priority) SELECT 'noop', '{}', 0 FROM generate_series(1, $2); NOTIFY postern_jobs; COMMIT" ;;
	esac
}

# ours_db NAME: a fresh database with our schema; prints its URL.
ours_db() {
	local url
	url=$(newdb "$1")
	conf "$tmp/migrate.conf" "$url" 1 1
	step 60 "$CTL" -q -c "$tmp/migrate.conf" migrate >/dev/null 2>"$tmp/migrate.log" ||
		{ cat "$tmp/migrate.log" >&2; die "posternctl migrate failed"; }
	echo "$url"
}

# drain_try URL THREADS BATCH LOG LIMIT_S [STATEMENT_TIMEOUT_MS]:
# postern-worker --drain for at most LIMIT_S seconds. Prints
# "JOBS_PER_S DONE ERRORS STATUS": STATUS drained, or stalled when the
# limit ran out (JOBS_PER_S is then the noop jobs done / LIMIT_S). ERRORS
# counts the worker's error lines (e.g. claims cancelled by the statement
# timeout).
drain_try() {
	local url=$1 th=$2 b=$3 log=$4 limit=$5 rc=0 line before left errs
	before=$(psql_q "$url" "SELECT count(*) FROM jobs WHERE kind = 'noop' AND state IN ('queued', 'running')")
	conf "$tmp/drain.conf" "$url" "$th" "$b" 0 "${6:-30000}"
	timeout --foreground -k 5 "$limit" "$WORKER" -c "$tmp/drain.conf" --drain >"$log" 2>&1 || rc=$?
	errs=$(awk '$2 == "error"' "$log" | wc -l)
	left=$(psql_q "$url" "SELECT count(*) FROM jobs WHERE kind = 'noop' AND state IN ('queued', 'running')")
	line=$(grep 'event=drained' "$log" | tail -1 || true)
	if [ "$rc" = 0 ] && [ -n "$line" ] && [ "$left" = 0 ]; then
		echo "$(sed -n 's/.*jobs_per_s=\([0-9.]*\).*/\1/p' <<<"$line") $before $errs drained"
	elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		echo "$(awk -v d=$((before - left)) -v s="$limit" 'BEGIN { printf "%.0f", d / s }') $((before - left)) $errs stalled"
	else
		tail -5 "$log" >&2
		die "postern-worker --drain failed (exit $rc, threads=$th batch=$b, $left jobs left)"
	fi
}

# drain URL THREADS BATCH LOG: a drain that must succeed cleanly; prints jobs/s.
drain() {
	local out r
	out=$(drain_try "$@" "$T_STEP") || exit 1
	read -r -a r <<<"$out"
	[ "${r[3]}" = drained ] || die "postern-worker --drain did not finish within $T_STEP s (threads=$2 batch=$3)"
	if [ "${r[2]}" != 0 ]; then
		awk '$2 == "error"' "$4" | head -3 >&2
		die "postern-worker logged errors (threads=$2 batch=$3)"
	fi
	echo "${r[0]}"
}

# ours_fresh THREADS BATCH: fresh database, 50,000 jobs, VACUUM ANALYZE,
# CHECKPOINT, drain; prints jobs/s.
ours_fresh() {
	local url
	url=$(ours_db ours)
	enqueue_bulk "$url" "$N" >/dev/null
	psql_q "$url" "VACUUM ANALYZE jobs" "CHECKPOINT" >/dev/null
	drain "$url" "$1" "$2" "$tmp/drain-$1-$2.log"
}

REF_URL=$(newdb reference)
psql_q "$REF_URL" "\\i $REF/queue-schema.sql" >/dev/null
# ref CLIENTS: refill (queue-fill.sql: fresh indexes, VACUUM, CHECKPOINT),
# pgbench -M prepared claim-50 + DELETE until all N are claimed; prints
# jobs/s = 50 × tps (pgbench's tps excludes connection time).
ref() {
	local c=$1 t out tps left
	t=$((N / 50 / c))
	PGOPTIONS="-c client_min_messages=warning" step "$T_STEP" psql -X -q -v ON_ERROR_STOP=1 \
		-v n="$N" -f "$REF/queue-fill.sql" "$REF_URL" >/dev/null
	out=$(step "$T_STEP" pgbench -n -M prepared -f "$REF/queue-claim50-delete.sql" \
		-c "$c" -j "$c" -t "$t" "$REF_URL" 2>&1) || { echo "$out" >&2; die "pgbench failed (c=$c)"; }
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' <<<"$out")
	[ -n "$tps" ] || { echo "$out" >&2; die "no tps in pgbench output (c=$c)"; }
	left=$(psql_q "$REF_URL" "SELECT count(*) FROM jobs")
	[ "$left" -le $((N - t * c * 50)) ] || echo "bench-queue: warning: pgbench c=$c left $left jobs unclaimed" >&2
	awk -v t="$tps" 'BEGIN { printf "%.0f\n", 50 * t }'
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
fmt0() { awk -v x="$1" 'BEGIN { printf "%.0f", x }'; }

start_s=$SECONDS
load0=$(cut -d' ' -f1-3 /proc/loadavg)
say "bench-queue: PostgreSQL $(psql_q "$REF_URL" "SHOW server_version") on 127.0.0.1:$PG_PORT," \
	"fsync=$(psql_q "$REF_URL" "SHOW fsync") synchronous_commit=$(psql_q "$REF_URL" "SHOW synchronous_commit")," \
	"$(nproc) cores; $N no-op jobs per run"
say "  postern: fresh database, posternctl migrate, $N noop jobs enqueued in bulk ($ENQUEUE_HOW),"
say "  VACUUM ANALYZE + CHECKPOINT, then postern-worker --drain; jobs/s from its event=drained"
say "  line (wall time from process start, runners' connection setup included)."
say "  reference: queue-schema.sql + queue-fill.sql, pgbench -M prepared -f queue-claim50-delete.sql,"
say "  $N/50/clients transactions per client; jobs/s = 50 x tps (pgbench's tps excludes connection time)."
say ""

# --- 1. sweep: which worker settings drain fastest; 2. the reference ------
say "1. postern-worker --drain, fresh vacuumed table, $SWEEP run(s) per setting (jobs/s):"
best=0 best_t= best_b=
for th in $THREADS; do
	row=""
	for b in $BATCHES; do
		runs=""
		for _ in $(seq "$SWEEP"); do runs="$runs/$(fmt0 "$(ours_fresh "$th" "$b")")"; done
		runs=${runs#/}
		mean=$(tr '/' '\n' <<<"$runs" | awk '{ s += $1 } END { printf "%.0f", s / NR }')
		row="$row  batch=$b: $runs"
		if [ "$mean" -gt "$best" ]; then best=$mean best_t=$th best_b=$b; fi
	done
	say "   threads=$th$row"
done
say "   best (highest mean): threads=$best_t batch=$best_b, used for every figure below"
say ""

say "2. reference: pgbench claim-50 + DELETE, fresh vacuumed table, one run each (jobs/s):"
row="" ref_best=0 ref_best_c=
for c in $THREADS; do
	r=$(ref "$c")
	row="$row  c=$c: $r"
	[ "$r" -gt "$ref_best" ] && ref_best=$r ref_best_c=$c
done
say "  $row"
say "   (best reference: c=$ref_best_c, $ref_best jobs/s)"
say ""

# --- 3. head to head, alternating, medians ---------------------------------
say "3. head to head, fresh vacuumed table, $REPEAT alternating rounds:"
ours_runs="" ref_runs="" b50_runs=""
for i in $(seq "$REPEAT"); do
	o=$(ours_fresh "$best_t" "$best_b")
	ours_runs="$ours_runs $(fmt0 "$o")"
	if [ "$best_b" != 50 ]; then
		o=$(ours_fresh "$best_t" 50)
		b50_runs="$b50_runs $(fmt0 "$o")"
	fi
	r=$(ref "$best_t")
	ref_runs="$ref_runs $r"
done
[ "$best_b" = 50 ] && b50_runs=$ours_runs
OURS=$(fmt0 "$(median <<<"$ours_runs")")
REFV=$(fmt0 "$(median <<<"$ref_runs")")
B50=$(fmt0 "$(median <<<"$b50_runs")")
RATIO=$(awk -v a="$OURS" -v b="$REFV" 'BEGIN { printf "%.2f", a / b }')
RATIO50=$(awk -v a="$B50" -v b="$REFV" 'BEGIN { printf "%.2f", a / b }')
say "   postern threads=$best_t batch=$best_b:$ours_runs  -> median $OURS jobs/s"
say "   pgbench c=$best_t (same concurrency):$ref_runs  -> median $REFV jobs/s"
say "   ratio postern/reference = $RATIO (goal >= 1.0, aim 1.3)"
say "   same batch as the reference (threads=$best_t batch=50):$b50_runs  -> median $B50 jobs/s, ratio $RATIO50"
say ""

# --- 4. latency: a normally running worker, single jobs, light load -------
# The default settings: latency is what an installation sees, and more
# runners than cores only adds wake-ups (every NOTIFY wakes every runner).
LAT_T=2 LAT_B=32
say "4. enqueue -> start latency: postern-worker (not --drain, default threads=$LAT_T batch=$LAT_B,"
say "   keep_done_s=3600 so done rows stay), $LAT_JOBS single noop jobs, each its own"
say "   transaction (BEGIN; INSERT; NOTIFY; COMMIT) from one connection, ${LAT_GAP_US} us apart;"
say "   latency = started_at (the claim's now()) - created_at (the enqueue transaction's now())."
LAT_URL=$(ours_db latency)
conf "$tmp/latency.conf" "$LAT_URL" "$LAT_T" "$LAT_B" 3600
"$WORKER" -c "$tmp/latency.conf" >"$tmp/latency-worker.log" 2>&1 &
bg_pid=$!
# Ready when every runner and the housekeeper are connected and the first
# (maintenance) job has been run.
ready=
for _ in $(seq 100); do
	kill -0 "$bg_pid" 2>/dev/null || { tail -5 "$tmp/latency-worker.log" >&2; die "postern-worker exited early"; }
	conns=$(psql_q "$LAT_URL" "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'postern-worker' AND datname = current_database()")
	busy=$(psql_q "$LAT_URL" "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running') AND run_at <= now()")
	if [ "$conns" -ge $((LAT_T + 1)) ] && [ "$busy" = 0 ]; then ready=1; break; fi
	sleep 0.1
done
[ -n "$ready" ] || die "postern-worker did not become ready within 10 s"
sleep 0.2
probe=$(step "$T_STEP" "$tmp/latency" "$LAT_URL" "$LAT_JOBS" "$LAT_GAP_US") || die "the latency probe failed"
started=0
for _ in $(seq 150); do
	started=$(psql_q "$LAT_URL" "SELECT count(*) FROM jobs WHERE kind = 'noop' AND state = 'done'")
	[ "$started" -ge "$LAT_JOBS" ] && break
	sleep 0.1
done
[ "$started" -ge "$LAT_JOBS" ] || die "only $started of $LAT_JOBS latency jobs done after 15 s"
kill -TERM "$bg_pid"
for _ in $(seq 250); do kill -0 "$bg_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$bg_pid" 2>/dev/null && die "postern-worker did not stop within 25 s of SIGTERM"
wait "$bg_pid" || die "postern-worker exited non-zero after SIGTERM"
bg_pid=
read -r P50 P90 P99 PMAX PMIN < <(psql_q "$LAT_URL" "
	SELECT to_char(percentile_disc(0.5) WITHIN GROUP (ORDER BY l), 'FM990.00'),
	       to_char(percentile_disc(0.9) WITHIN GROUP (ORDER BY l), 'FM990.00'),
	       to_char(percentile_disc(0.99) WITHIN GROUP (ORDER BY l), 'FM990.00'),
	       to_char(max(l), 'FM99990.00'), to_char(min(l), 'FM990.00')
	  FROM (SELECT extract(epoch FROM started_at - created_at) * 1000 AS l
	          FROM jobs WHERE kind = 'noop') AS t" | tr '|' ' ')
say "   probe: $probe; ms: min=$PMIN p50=$P50 p90=$P90 p99=$P99 max=$PMAX (goal p50 <= 1, p99 <= 5)"
say ""

# --- 5. bloat: rounds on one table, no manual VACUUM -----------------------
say "5. steady state: one table, round 0 = the fresh state above (VACUUM ANALYZE + CHECKPOINT),"
say "   then $((ROUNDS - 1)) more rounds of $N jobs (enqueue, drain) with no manual VACUUM,"
say "   ANALYZE or CHECKPOINT; autovacuum as the schema sets it (server naptime: $(psql_q "$REF_URL" "SHOW autovacuum_naptime"))."
ST_URL=$(ours_db steady)
rates="" notes=""
for i in $(seq 0 $((ROUNDS - 1))); do
	enqueue_bulk "$ST_URL" "$N" >/dev/null
	[ "$i" = 0 ] && psql_q "$ST_URL" "VACUUM ANALYZE jobs" "CHECKPOINT" >/dev/null
	out=$(drain_try "$ST_URL" "$best_t" "$best_b" "$tmp/steady-$i.log" 90) || exit 1
	read -r -a r <<<"$out"
	rates="$rates $(fmt0 "${r[0]}")"
	[ "${r[2]}" != 0 ] && notes="$notes round $i: ${r[2]} worker errors ($(awk '$2 == "error"' "$tmp/steady-$i.log" | sed -n 's/.*err="\([^"]*\)".*/\1/p' | sort | uniq -c | sort -rn | head -1 | sed 's/^ *//'));"
	[ "${r[3]}" = stalled ] && notes="$notes round $i: STALLED, ${r[1]} jobs done in 90 s;"
	if [ "${r[3]}" = stalled ]; then break; fi
done
stats=$(psql_q "$ST_URL" "SELECT autovacuum_count || ' autovacuum(s), ' || autoanalyze_count || ' autoanalyze(s), '
	|| n_dead_tup || ' dead rows; heap ' || pg_size_pretty(pg_relation_size('jobs')) || ', fetch index '
	|| pg_size_pretty(pg_relation_size('jobs_fetch_idx')) || ', running index ' || pg_size_pretty(pg_relation_size('jobs_running_idx'))
	FROM pg_stat_user_tables WHERE relname = 'jobs'")
first=${rates# }; first=${first%% *}
STEADY=$(fmt0 "$(tr ' ' '\n' <<<"$rates" | grep . | tail -n 3 | tr '\n' ' ' | median)")
keep=$(awk -v a="$STEADY" -v b="$first" 'BEGIN { printf "%.2f", a / b }')
say "   jobs/s per round:$rates"
say "   after the rounds: $stats"
[ -n "$notes" ] && say "   !$notes"
if awk -v k="$keep" 'BEGIN { exit !(k >= 0.7) }'; then
	verdict="holds (>= 0.7)"
elif awk -v k="$keep" 'BEGIN { exit !(k >= 0.5) }'; then
	verdict="degrades (0.5-0.7), no collapse"
else
	verdict="COLLAPSES (< 0.5)"
fi
say "   steady state (median of the last 3 rounds) = $STEADY jobs/s = $keep x round 0: $verdict"
say "   (the anchors saw 3.9k -> 1.2k jobs/s over three runs without care)"
say ""

# --- 6. planner statistics: a backlog on a never-analyzed table, and a
# burst after the queue sat empty and was analyzed --------------------------
say "6. claim plan vs table statistics (drains of $N jobs, threads=$best_t batch=$best_b):"
C_URL=$(ours_db cold)
psql_q "$C_URL" "ALTER TABLE jobs SET (autovacuum_enabled = false)" >/dev/null
enqueue_bulk "$C_URL" "$N" >/dev/null
out=$(drain_try "$C_URL" "$best_t" "$best_b" "$tmp/cold.log" 60) || exit 1
read -r -a r <<<"$out"
COLD=$(fmt0 "${r[0]}")
say "   a. never analyzed (a new install with a backlog; autovacuum off on jobs): $COLD jobs/s (${r[3]}, ${r[2]} worker errors)"
# A small queue ran dry and was analyzed while empty (autoanalyze does this:
# threshold 50 + 2% of the rows), then a burst arrives. Autovacuum is off
# on this table so the statistics stay as they are for the whole drain
# (with it on, the stall below lasts until autoanalyze runs again).
B_URL=$(ours_db burst)
psql_q "$B_URL" "ALTER TABLE jobs SET (autovacuum_enabled = false)" >/dev/null
enqueue_bulk "$B_URL" 1000 >/dev/null
drain "$B_URL" "$best_t" "$best_b" "$tmp/idle.log" >/dev/null
psql_q "$B_URL" "ANALYZE jobs" >/dev/null
bstats=$(psql_q "$B_URL" "SELECT 'reltuples=' || reltuples || ' relpages=' || relpages FROM pg_class WHERE relname = 'jobs'")
enqueue_bulk "$B_URL" "$N" >/dev/null
out=$(drain_try "$B_URL" "$best_t" "$best_b" "$tmp/burst.log" 15 2000) || exit 1
read -r -a r <<<"$out"
BURST=$(fmt0 "${r[0]}")
say "   b. 1,000 jobs drained, ANALYZE on the empty table ($bstats), then a burst of $N"
say "      (statement_timeout 2 s, 15 s limit): $BURST jobs/s (${r[3]}, ${r[1]} done, ${r[2]} worker errors)"
if [ "${r[3]}" = stalled ]; then
	say "      STALLED: the claim's plan, made for a table the statistics call empty, does not finish;"
	say "      with the default statement_timeout (30 s) every claim fails until autoanalyze runs again."
fi
say ""

# --- 7. optional: where the server spends its time per statement -------------
if [ "$PROFILE" = 1 ]; then
	say "7. profile: server-side duration per statement during one drain (log_min_duration_statement = 0)"
	P_URL=$(ours_db profile)
	enqueue_bulk "$P_URL" "$N" >/dev/null
	psql_q "$P_URL" "VACUUM ANALYZE jobs" "CHECKPOINT" "ALTER DATABASE profile SET log_min_duration_statement = 0" \
		"ALTER SYSTEM SET log_line_prefix = '%m [%p] %d '" "SELECT pg_reload_conf()" >/dev/null
	sleep 0.5
	mark=$(wc -l <"$SERVER_LOG")
	p=$(drain "$P_URL" "$best_t" "$best_b" "$tmp/profile.log")
	say "   (drain with statement logging: $(fmt0 "$p") jobs/s)"
	per_statement() {  # per_statement DBNAME < server log: time per statement
		awk -v jobs="$N" -v db="$1" '
		index($0, "] " db " LOG:  duration: ") {
			for (i = 1; i <= NF; i++) if ($i == "duration:") d = $(i + 1)
			if (match($0, /(parse|bind|execute) [^:]*:/)) {
				what = substr($0, RSTART, RLENGTH - 1)
			} else if (match($0, /statement: [A-Za-z]+/)) {
				what = "simple " substr($0, RSTART + 11, RLENGTH - 11)
			} else next
			n[what]++; s[what] += d
		}
		END { for (w in n) printf "   %-28s %6d calls %9.1f ms total %7.3f ms mean %6.1f us/job\n", w, n[w], s[w], s[w] / n[w], 1000 * s[w] / jobs }' |
			sort -k5 -g -r | head -"$2"
	}
	tail -n +"$((mark + 1))" "$SERVER_LOG" | per_statement profile 4
	psql_q "$REF_URL" "ALTER DATABASE reference SET log_min_duration_statement = 0" >/dev/null
	mark=$(wc -l <"$SERVER_LOG")
	p=$(ref "$best_t")
	say "   pgbench c=$best_t with statement logging: $p jobs/s (P_0 = claim 50, P_1 = DELETE):"
	tail -n +"$((mark + 1))" "$SERVER_LOG" | grep -E '(execute|bind) P_[01]:' | per_statement reference 4
	say ""
fi

say "bench-queue: done in $((SECONDS - start_s)) s (build and cluster start excluded); load average" \
	"at start $load0, at end $(cut -d' ' -f1-3 /proc/loadavg) (2 cores: above ~1 others share the machine)."
say "bench queue: postern=$OURS jobs/s reference=$REFV jobs/s ratio=$RATIO p50_ms=$P50 p99_ms=$P99 max_ms=$PMAX state=fresh threads=$best_t batch=$best_b ratio_batch50=$RATIO50 steady=$STEADY steady_ratio=$keep cold=$COLD burst=$BURST"
