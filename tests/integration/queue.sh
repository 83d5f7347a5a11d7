#!/usr/bin/env bash
# tests/integration/queue.sh: the job queue against real PostgreSQL and real
# postern-worker processes: idempotent enqueue under 50 concurrent callers,
# keys after completion, --drain, /metrics, unknown kinds, retries with
# backoff and spread, database restarts (idle and busy), SIGTERM with jobs
# running, expired leases (back-dated as a crashed worker leaves them), a
# stalled worker whose completion must be refused, and the per-kind
# concurrency cap (maintenance: one at a time).
#
# Work is done by `probe` jobs: each run is a row in job_probe_runs (job,
# attempt, lease token, worker "host:pid"), so runs can be counted. Every
# wait has a timeout; every process started here is killed on exit.
. "$(dirname "$0")/lib.bash"
cd "$top" || exit 1

suite_start queue
t_start=$(date +%s.%N)


# mkconf NAME KEY=VALUE...: $logs/NAME.conf, the database config plus a
# [worker] section; prints the path.
mkconf() {
	local f=$logs/$1.conf kv; shift
	(umask 077
	 { cat "$CONF"; echo "[worker]"
	   for kv in "$@"; do echo "${kv%%=*} = ${kv#*=}"; done; } >"$f")
	echo "$f"
}
# start_worker NAME CONF: a worker logging to $logs/NAME.log; sets wpid.
start_worker() {
	"$worker" -c "$2" >>"$logs/$1.log" 2>&1 &
	wpid=$!
	pids+=("$wpid")
	wait_for 20 grep -q "event=worker_started" "$logs/$1.log"
}
enqueue() {  # enqueue ARGS...: posternctl jobs enqueue; prints the new job's id
	"$ctl" -c "$CONF" jobs enqueue "$@" | sed -n 's/^enqueued job \([0-9]*\) .*/\1/p'
}
runs() {  # runs JOB: rows in job_probe_runs for JOB
	psql_db "SELECT count(*) FROM job_probe_runs WHERE job_id = $1"
}
metric() {  # metric PORT NAME{LABELS}: one value from /metrics (empty if absent)
	curl -s --max-time 5 "http://127.0.0.1:$1/metrics" |
		awk -v m="$2" '$1 == m { print $2; exit }'
}

# --- unique keys: 50 concurrent enqueues, one job ---------------------------
# A session holds SHARE on jobs, so every enqueuer's INSERT queues behind it;
# it lets go once all 50 wait (pg_locks), and they race for the key.
race() {  # race NAME KEY-OPTION KEY: 50 parallel posternctl enqueues
	local name=$1 opt=$2 key=$3 i rc bad=0 waiting
	local holder
	psql -X -q -tA -v ON_ERROR_STOP=1 "$DB_URL" >"$logs/$name.barrier" 2>&1 <<'SQL' &
BEGIN;
LOCK TABLE jobs IN SHARE MODE;
DO $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
	WHILE (SELECT count(*) FROM pg_locks
	       WHERE relation = 'jobs'::regclass AND NOT granted) < 50
	      AND clock_timestamp() < t0 + interval '30 seconds' LOOP
		PERFORM pg_sleep(0.02);
	END LOOP;
END $$;
SELECT count(*) FROM pg_locks WHERE relation = 'jobs'::regclass AND NOT granted;
COMMIT;
SQL
	holder=$!
	pids+=("$holder")
	wait_sql 10 "SELECT count(*) FROM pg_locks WHERE relation = 'jobs'::regclass
		AND mode = 'ShareLock' AND granted" 1 ||
		{ not_ok "$name: barrier session holds the table"; return; }
	local cpids=()
	for i in $(seq 1 50); do
		"$ctl" -c "$CONF" jobs enqueue probe "{\"tag\":\"$name\"}" "$opt" "$key" \
			>"$logs/$name.$i" 2>&1 &
		cpids+=($!)
	done
	for i in "${cpids[@]}"; do wait "$i" || bad=$((bad + 1)); done
	wait "$holder"
	waiting=$(tr -d ' \n' <"$logs/$name.barrier")
	echo "# measured: $name: $waiting enqueuers were waiting at the barrier when it opened"
	check "$name: all 50 enqueuers were blocked together at the barrier" test "$waiting" = 50
	check "$name: all 50 posternctl runs exit 0 ($bad failed)" test "$bad" = 0
	local ins notins id ids
	ins=$(cat "$logs/$name".[0-9]* | grep -c '^enqueued job')
	notins=$(cat "$logs/$name".[0-9]* | grep -c '^not enqueued: job [0-9]* already holds the key')
	check "$name: exactly one enqueue inserted ($ins), 49 report the holder ($notins)" \
		test "$ins/$notins" = 1/49
	id=$(cat "$logs/$name".[0-9]* | sed -n 's/^enqueued job \([0-9]*\) .*/\1/p')
	ids=$(cat "$logs/$name".[0-9]* | sed -n 's/^not enqueued: job \([0-9]*\) .*/\1/p' | sort -u)
	check "$name: the 49 others name the inserted job ($id; they said: $(echo $ids))" \
		test -n "$id" -a "$ids" = "$id"
	check "$name: one row holds the key" \
		sql_is "SELECT count(*) FROM jobs WHERE $(echo "${opt#--}" | tr - _) = '$key'" 1
}
race uk_race --unique-key uk-race
race once_race --once-key once-race

# --- keys after completion, --drain, keep_done_s = 0 ------------------------
uk_job=$(psql_db "SELECT id FROM jobs WHERE unique_key = 'uk-race'")
once_job=$(psql_db "SELECT id FROM jobs WHERE once_key = 'once-race'")
plain=$(enqueue probe '{"tag":"plain"}')
drain_conf=$(mkconf drain threads=2 poll_ms=100 keep_done_s=0)
t0=$(now_s)
timeout 60 "$worker" -c "$drain_conf" --drain >"$logs/drain.log" 2>&1
rc=$?
check "--drain runs what is due and exits 0 (rc=$rc, $(elapsed "$t0") s)" test "$rc" = 0
check "--drain logs event=drained" grep -q "event=drained" "$logs/drain.log"
check "the unique-key, once-key and plain jobs each ran once" \
	sql_is "SELECT count(*) FROM job_probe_runs WHERE job_id IN ($uk_job, $once_job, $plain)
		GROUP BY job_id HAVING count(*) = 1" "$(printf '1\n1\n1')"
check "keep_done_s = 0: done jobs without once_key are deleted" \
	sql_is "SELECT count(*) FROM jobs WHERE id IN ($uk_job, $plain)" 0
check "a done once_key job is kept (state done)" \
	sql_is "SELECT state FROM jobs WHERE id = $once_job" "done"
out=$("$ctl" -c "$CONF" jobs enqueue probe '{"tag":"once2"}' --once-key once-race 2>&1)
contains "a second enqueue with a done job's once_key is refused" "$out" \
	"not enqueued: job $once_job already holds the key"
check "no second once-key row" sql_is "SELECT count(*) FROM jobs WHERE once_key = 'once-race'" 1
out=$("$ctl" -c "$CONF" jobs enqueue probe '{"tag":"uk2"}' --unique-key uk-race 2>&1)
contains "once the unique-key job is done, the key takes a new job" "$out" "enqueued job"
uk2=$(echo "$out" | sed -n 's/^enqueued job \([0-9]*\) .*/\1/p')
out=$("$ctl" -c "$CONF" jobs enqueue probe '{"tag":"uk3"}' --unique-key uk-race 2>&1)
contains "while that one is queued, the key refuses another" "$out" "not enqueued: job $uk2"

# --- one worker for metrics, unknown kinds, retries, database loss ----------
mport=$(free_port 19190)
w1_conf=$(mkconf w1 threads=2 batch=32 poll_ms=100 lease_s=3 maintenance_s=1 \
	keep_done_s=3600 grace_s=5 retry_base_ms=400 retry_max_s=10 metrics_port="$mport")
start_worker w1 "$w1_conf" || not_ok "worker w1 starts" "$(tail -5 "$logs/w1.log")"
w1=$wpid
check "the key's second job runs on w1" wait_sql 15 "SELECT state FROM jobs WHERE id = $uk2" "done"

# /metrics: counters move, queue depth is there.
check "/metrics answers" wait_for 10 curl -sf --max-time 5 "http://127.0.0.1:$mport/metrics"
before=$(metric "$mport" 'postern_jobs_done_total{kind="noop"}')
"$ctl" -q -c "$CONF" jobs enqueue noop '{}' --count 20 >/dev/null
delayed=$(enqueue noop '{}' --delay-ms 3600000)
check "20 noop jobs run" wait_sql 15 "SELECT count(*) FROM jobs WHERE kind = 'noop' AND state = 'done'" 20
after=$(metric "$mport" 'postern_jobs_done_total{kind="noop"}')
echo "# measured: postern_jobs_done_total{kind=\"noop\"} $before -> $after"
check "postern_jobs_done_total{kind=noop} moved by 20 ($before -> $after)" \
	test "$((${after:-0} - ${before:-0}))" = 20
claimed=$(metric "$mport" 'postern_jobs_claimed_total{kind="noop"}')
check "postern_jobs_claimed_total{kind=noop} counts them ($claimed)" test "${claimed:-0}" -ge 20
m=$(curl -s --max-time 5 "http://127.0.0.1:$mport/metrics")
contains "queue depth: the delayed noop is queued" "$m" 'postern_queue_jobs{kind="noop",state="queued"} 1'
contains "queue depth: done noops" "$m" 'postern_queue_jobs{kind="noop",state="done"} 20'
contains "oldest due age per kind is exported" "$m" 'postern_queue_oldest_due_seconds{kind="noop"}'
contains "the depth query worked" "$m" "postern_queue_scrape_ok 1"
contains "latency histogram for noop" "$m" 'postern_job_duration_seconds_count{kind="noop"}'
psql_db "DELETE FROM jobs WHERE id = $delayed" >/dev/null

# Unknown kind: dead with a clear error, the daemon keeps going.
out=$("$ctl" -c "$CONF" jobs enqueue nosuchkind '{}' 2>&1)
contains "posternctl warns about a kind no worker handles" "$out" "no worker handles kind"
unk=$(echo "$out" | sed -n 's/^enqueued job \([0-9]*\) .*/\1/p')
check "an unknown kind goes dead" wait_sql 15 "SELECT state FROM jobs WHERE id = ${unk:-0}" dead
check "... with a 'no handler' error after one attempt" \
	sql_is "SELECT attempts || ' ' || last_error FROM jobs WHERE id = ${unk:-0}" \
	'1 no handler for job kind "nosuchkind"'
check "the worker logs event=job_dead for it" grep -q "event=job_dead job=$unk kind=nosuchkind" "$logs/w1.log"
check "the worker is still running" kill -0 "$w1"
after_unk=$(enqueue probe '{"tag":"after-unknown"}')
check "and still runs jobs" wait_sql 15 "SELECT state FROM jobs WHERE id = $after_unk" "done"

# Retries: an always-failing probe is dead after exactly max_attempts,
# retried with growing delays; 1,000 jobs failing together get spread
# retry times. retry_base_ms = 400: delays in [200,400], [400,800], [800,1600] ms.
# (meanwhile a probe of 4.5 s outlives w1's 3 s lease: heartbeats keep it)
jhb=$(enqueue probe '{"tag":"heartbeat","sleep_ms":4500}')
j4=$(enqueue probe '{"tag":"fail4","fail":"temp"}' --max-attempts 4)
jperm=$(enqueue probe '{"tag":"perm","fail":"perm"}' --max-attempts 4)
jtwice=$(enqueue probe '{"tag":"twice","fail":"temp","fail_times":2}' --max-attempts 4)
check "always-failing job goes dead" wait_sql 30 "SELECT state FROM jobs WHERE id = $j4" dead
check "... after exactly 4 attempts, 4 runs, 4 errors kept" \
	sql_is "SELECT attempts || ' ' || (SELECT count(*) FROM job_probe_runs WHERE job_id = $j4)
		|| ' ' || jsonb_array_length(errors) FROM jobs WHERE id = $j4" "4 4 4"
check "... errors numbered 1..4, the last one kept as last_error" \
	sql_is "SELECT string_agg(e->>'attempt', ',' ORDER BY n) || ' ' || j.last_error
		FROM jobs j, jsonb_array_elements(j.errors) WITH ORDINALITY AS x(e, n)
		WHERE j.id = $j4 GROUP BY j.last_error" \
	"1,2,3,4 probe: asked to fail (temp) on attempt 4"
gaps=$(psql_db "SELECT string_agg(round(extract(epoch FROM g)::numeric, 2)::text, ' ' ORDER BY attempt)
	FROM (SELECT attempt, ran_at - lag(ran_at) OVER (ORDER BY attempt) AS g
	      FROM job_probe_runs WHERE job_id = $j4) s WHERE g IS NOT NULL")
echo "# measured: gaps between the 4 attempts (s): $gaps (jitter ranges 0.2-0.4, 0.4-0.8, 0.8-1.6)"
check "the gaps grow exponentially: >= 0.2, 0.4, 0.8 s and < 1.4, 1.8, 2.6 s ($gaps)" \
	awk -v g="$gaps" 'BEGIN { n = split(g, a, " "); exit !(n == 3 &&
		a[1] >= 0.19 && a[1] < 1.4 && a[2] >= 0.39 && a[2] < 1.8 && a[3] >= 0.79 && a[3] < 2.6) }'
check "a permanent failure is dead after one attempt" wait_sql 10 \
	"SELECT state || ' ' || attempts || ' ' || jsonb_array_length(errors) FROM jobs WHERE id = $jperm" "dead 1 1"
check "a job failing twice succeeds on attempt 3" wait_sql 15 \
	"SELECT state || ' ' || attempts FROM jobs WHERE id = $jtwice" "done 3"
t0=$(now_s)
"$ctl" -q -c "$CONF" jobs enqueue probe '{"tag":"spread","fail":"temp","fail_times":1}' \
	--count 1000 --max-attempts 4 >/dev/null
check "1,000 jobs failing once are all done on attempt 2" wait_sql 40 \
	"SELECT count(*) FROM jobs WHERE payload->>'tag' = 'spread' AND state = 'done' AND attempts = 2" 1000
echo "# measured: 1,000 fail-once jobs done in $(elapsed "$t0") s"
# run_at was set by the failure (done keeps it): delay = run_at - failure time.
spread=$(psql_db "SELECT round(min(d), 3) || ' ' || round(max(d), 3) || ' ' || round(stddev(d), 3)
	|| ' ' || count(DISTINCT round(d, 3)) || ' ' || count(DISTINCT run_at)
	|| ' ' || round(extract(epoch FROM max(f) - min(f))::numeric, 2)
	FROM (SELECT run_at, (errors->0->>'at')::timestamptz AS f,
	      extract(epoch FROM run_at - (errors->0->>'at')::timestamptz)::numeric AS d
	      FROM jobs WHERE payload->>'tag' = 'spread') s")
read -r dmin dmax dsd ddist rdist fwin <<<"$spread"
echo "# measured: retry delays of 1,000 jobs after failure 1: min $dmin s, max $dmax s, stddev $dsd s, $ddist distinct ms values, $rdist distinct run_at; the failures came within $fwin s"
check "retry delays stay within the jitter range 0.2..0.4 s ($dmin..$dmax)" \
	awk -v a="$dmin" -v b="$dmax" 'BEGIN { exit !(a >= 0.199 && b <= 0.401) }'
check "retry delays are spread, not identical (stddev $dsd s, $ddist distinct)" \
	awk -v s="$dsd" -v n="$ddist" 'BEGIN { exit !(s >= 0.03 && n >= 150) }'
check "every job got its own run_at ($rdist distinct of 1000)" test "$rdist" -ge 990

check "a job longer than the lease runs once: heartbeats renew the lease" wait_sql 15 \
	"SELECT state || ' ' || attempts || ' ' || (SELECT count(*) FROM job_probe_runs WHERE job_id = $jhb)
	FROM jobs WHERE id = $jhb" "done 1 1"

# Database loss: restart while idle, then while busy.
lost0=$(grep -c "event=db_lost" "$logs/w1.log")
bash tests/harness/pg.sh restart "$PG_TEST_DIR" >/dev/null
check "idle worker notices the restart" wait_for 15 \
	bash -c "[ \$(grep -c event=db_lost '$logs/w1.log') -gt $lost0 ]"
check "idle worker logs event=db_reconnected" wait_for 30 grep -q "event=db_reconnected" "$logs/w1.log"
j=$(enqueue probe '{"tag":"after-restart"}')
check "a job enqueued after the restart runs" wait_sql 15 "SELECT state FROM jobs WHERE id = ${j:-0}" "done"
"$ctl" -q -c "$CONF" jobs enqueue probe '{"tag":"busy","sleep_ms":20}' --count 300 >/dev/null
wait_sql 20 "SELECT count(*) >= 60 FROM job_probe_runs WHERE tag = 'busy'" t
busy_before=$(psql_db "SELECT count(*) FROM job_probe_runs WHERE tag = 'busy'")
t0=$(now_s)
recon0=$(grep -c "event=db_reconnected" "$logs/w1.log")
bash tests/harness/pg.sh restart "$PG_TEST_DIR" >/dev/null
check "busy worker reconnects after a restart ($busy_before of 300 had run)" wait_for 30 \
	bash -c "[ \$(grep -c event=db_reconnected '$logs/w1.log') -gt $recon0 ]"
check "all 300 jobs of the busy run are done" wait_sql 45 \
	"SELECT count(*) FROM jobs WHERE payload->>'tag' = 'busy' AND state = 'done'" 300
busy_runs=$(psql_db "SELECT count(*) || ' ' || count(DISTINCT job_id) FROM job_probe_runs WHERE tag = 'busy'")
echo "# measured: busy restart: runs/jobs $busy_runs, finished $(elapsed "$t0") s after the restart"
check "none lost: 300 distinct jobs ran" test "${busy_runs#* }" = 300
recon=$(metric "$mport" postern_worker_db_reconnects_total)
check "postern_worker_db_reconnects_total counts reconnects ($recon)" test "${recon:-0}" -ge 1
check "nothing of w1's is left running or queued" \
	sql_is "SELECT count(*) FROM jobs WHERE state IN ('queued','running') AND kind <> 'maintenance'" 0
stop_and_wait "$w1" 15; rc=$?
check "w1 exits 0 on SIGTERM (rc=$rc)" test "$rc" = 0

# --- SIGTERM with jobs running ----------------------------------------------
# 12 probes of 2 s; two threads each claim 4; SIGTERM when both are running:
# the running two finish (the probe stops sleeping at stop), the other 6
# claimed are given back with their attempt not counted, nothing is lost.
psql_db "DELETE FROM jobs WHERE kind = 'maintenance'" >/dev/null
"$ctl" -q -c "$CONF" jobs enqueue probe '{"tag":"term","sleep_ms":2000}' --count 12 >/dev/null
term_conf=$(mkconf term threads=2 batch=4 poll_ms=100 lease_s=30 grace_s=5 keep_done_s=3600)
start_worker term "$term_conf"
tpid=$wpid
wait_sql 20 "SELECT count(*) FROM job_probe_runs WHERE tag = 'term'" 2 ||
	not_ok "both threads started a 2 s probe"
t0=$(now_s)
stop_and_wait "$tpid" 15; rc=$?
took=$(elapsed "$t0")
echo "# measured: SIGTERM with 2 jobs running (grace_s 5): exit after $took s"
check "SIGTERM with jobs running: exit 0 (rc=$rc)" test "$rc" = 0
check "... within grace + 5 s ($took s)" awk -v t="$took" 'BEGIN { exit !(t <= 10) }'
check "nothing left running" sql_is "SELECT count(*) FROM jobs WHERE payload->>'tag' = 'term' AND state = 'running'" 0
check "every job is done or queued: 2 done, 10 queued" \
	sql_is "SELECT string_agg(state || '=' || n, ' ' ORDER BY state) FROM (SELECT state, count(*) n
		FROM jobs WHERE payload->>'tag' = 'term' GROUP BY state) s" "done=2 queued=10"
check "the two that ran are the two done" \
	sql_is "SELECT count(*) FROM jobs j JOIN job_probe_runs r ON r.job_id = j.id
		WHERE j.payload->>'tag' = 'term' AND j.state = 'done'" 2
check "the given-back jobs have their attempt not counted" \
	sql_is "SELECT count(*) FROM jobs WHERE payload->>'tag' = 'term' AND state = 'queued' AND attempts = 0" 10
rel=$(sed -n 's/.*event=jobs_released count=\([0-9]*\).*/\1/p' "$logs/term.log" | awk '{ s += $1 } END { print s + 0 }')
# Claimed but never started = queued again with locked_by still set. (A
# batch may also hold the maintenance job the worker schedules at start, so
# the count is read from the table, not assumed to be 2 x (batch - 1).)
claimed_back=$(psql_db "SELECT count(*) FROM jobs WHERE (payload->>'tag' = 'term'
	OR kind = 'maintenance') AND state = 'queued' AND locked_by IS NOT NULL")
check "the unstarted part of both batches was given back (released $rel, claimed and queued again $claimed_back)" \
	test "${rel:-0}" = "$claimed_back" -a "${rel:-0}" -ge 4

# grace_s = 0: no time to finish; whatever is in flight is given back.
psql_db "DELETE FROM jobs WHERE payload->>'tag' = 'term' OR kind = 'maintenance'" >/dev/null
"$ctl" -q -c "$CONF" jobs enqueue probe '{"tag":"term0","sleep_ms":3000}' --count 4 >/dev/null
term0_conf=$(mkconf term0 threads=2 batch=2 poll_ms=100 lease_s=30 grace_s=0 keep_done_s=3600)
start_worker term0 "$term0_conf"
wait_sql 20 "SELECT count(*) FROM job_probe_runs WHERE tag = 'term0'" 2
t0=$(now_s)
stop_and_wait "$wpid" 10; rc=$?
check "grace_s 0: exit 0 at once (rc=$rc, $(elapsed "$t0") s)" test "$rc" = 0
check "grace_s 0: nothing left running, all 4 done or queued" \
	sql_is "SELECT count(*) FROM jobs WHERE payload->>'tag' = 'term0' AND state IN ('done', 'queued')" 4
psql_db "DELETE FROM jobs WHERE payload->>'tag' = 'term0' OR kind = 'maintenance'" >/dev/null

# --- expired leases -----------------------------------------------------------
# A worker dies (kill -9) in the middle of a probe; its lease is back-dated
# as if it had run out; the reaper of another worker gives the job back and
# it runs again.
jl=$(enqueue probe '{"tag":"lease","sleep_ms":1500}')
l_conf=$(mkconf lease threads=1 batch=1 poll_ms=100 lease_s=60 maintenance_s=1 keep_done_s=3600)
start_worker lease "$l_conf"
wait_sql 20 "SELECT count(*) FROM job_probe_runs WHERE job_id = $jl" 1
kill -9 "$wpid"; wait "$wpid" 2>/dev/null
check "the killed worker left its job running (attempt 1)" \
	sql_is "SELECT state || ' ' || attempts FROM jobs WHERE id = $jl" "running 1"
psql_db "UPDATE jobs SET lease_until = now() - interval '1 second' WHERE id = $jl" >/dev/null
# An exhausted job left by a crashed worker: attempts = max_attempts.
jx=$(enqueue probe '{"tag":"exhausted"}' --max-attempts 1 --delay-ms 3600000)
psql_db "UPDATE jobs SET state = 'running', attempts = 1, started_at = now(),
	lease_token = nextval('jobs_lease_token_seq'), locked_by = 'crashed:1:0',
	lease_until = now() - interval '1 second' WHERE id = $jx" >/dev/null
m_conf=$(mkconf reaper threads=1 batch=1 poll_ms=100 lease_s=60 maintenance_s=1 keep_done_s=3600)
start_worker reaper "$m_conf"
mpid=$wpid
check "the reaper gives the job back and it runs again" wait_sql 20 \
	"SELECT state || ' ' || attempts FROM jobs WHERE id = $jl" "done 2"
check "job_probe_runs has 2 runs of it, attempts 1 and 2, two lease tokens" \
	sql_is "SELECT string_agg(attempt::text, ',' ORDER BY attempt) || ' ' || count(DISTINCT lease_token)
		FROM job_probe_runs WHERE job_id = $jl" "1,2 2"
check "the expired lease is recorded as the error of attempt 1" \
	sql_is "SELECT (errors->0->>'attempt') || ' ' || (errors->0->>'error' LIKE 'lease expired: worker %died or stalled')
		FROM jobs WHERE id = $jl" "1 true"
check "the reaper logs event=leases_expired" grep -q "event=leases_expired" "$logs/reaper.log"
check "an exhausted expired job goes dead with the lease error" wait_sql 10 \
	"SELECT state || ' ' || attempts || ' ' || last_error FROM jobs WHERE id = $jx" \
	"dead 1 lease expired: worker crashed:1:0 died or stalled"
check "... and never ran" sql_is "SELECT count(*) FROM job_probe_runs WHERE job_id = $jx" 0

# Under a backlog: one runner, 300 due probes of 20 ms (about 7 s of work),
# and a job whose lease ran out. maintenance_s is 1: the reaper should get
# it back within a few seconds, not after the backlog.
"$ctl" -q -c "$CONF" jobs enqueue probe '{"tag":"backlog","sleep_ms":20}' --count 300 >/dev/null
wait_sql 10 "SELECT count(*) >= 10 FROM job_probe_runs WHERE tag = 'backlog'" t
jb=$(enqueue probe '{"tag":"expired-in-backlog"}' --delay-ms 3600000)
psql_db "UPDATE jobs SET state = 'running', attempts = 1, started_at = now(),
	lease_token = nextval('jobs_lease_token_seq'), locked_by = 'crashed:3:0',
	lease_until = now() - interval '1 second' WHERE id = $jb" >/dev/null
t0=$(now_s)
wait_sql 20 "SELECT state <> 'running' FROM jobs WHERE id = $jb" t
reaped_after=$(elapsed "$t0")
left=$(psql_db "SELECT count(*) FROM jobs WHERE payload->>'tag' = 'backlog' AND state = 'queued'")
echo "# measured: an expired lease behind a backlog was given back after $reaped_after s (maintenance_s 1); $left of 300 backlog jobs were still queued then"
check "an expired lease is reaped while the backlog is still queued, not after it ($left of 300 left)" \
	test "$left" -gt 0
wait_sql 30 "SELECT count(*) FROM jobs WHERE payload->>'tag' IN ('backlog', 'expired-in-backlog') AND state <> 'done'" 0 ||
	not_ok "the backlog finishes"

# A worker that died while running the maintenance job itself (or holding
# it unstarted in a claimed batch). The reaper is that job, and its unique
# key ("maintenance") stays held by the running row, so no housekeeper can
# schedule another: nothing would ever be reaped again. Reported to the
# lead; these two checks fail until it is fixed.
stop_and_wait "$mpid" 10 >/dev/null
psql_db "DELETE FROM jobs WHERE kind = 'maintenance'" >/dev/null
psql_db "INSERT INTO jobs (kind, priority, max_attempts, unique_key, state, attempts,
	lease_token, lease_until, locked_by, started_at)
	VALUES ('maintenance', 20, 3, 'maintenance', 'running', 1,
	nextval('jobs_lease_token_seq'), now() - interval '1 second', 'crashed:2:0', now())" >/dev/null
jm=$(enqueue probe '{"tag":"behind-maint"}' --delay-ms 3600000)
psql_db "UPDATE jobs SET state = 'running', attempts = 1, started_at = now(),
	lease_token = nextval('jobs_lease_token_seq'), locked_by = 'crashed:2:0',
	lease_until = now() - interval '1 second' WHERE id = $jm" >/dev/null
start_worker reaper "$m_conf"
mpid=$wpid
check "a maintenance job left running by a dead worker is reaped (maintenance_s 1, 6 s)" \
	wait_sql 6 "SELECT count(*) FROM jobs WHERE kind = 'maintenance' AND state = 'running'
		AND lease_until < now()" 0
check "... and so is the job behind it: it runs again" \
	wait_sql 3 "SELECT state FROM jobs WHERE id = $jm" "done"
echo "# measured: 9 s later: $(psql_db "SELECT string_agg(kind || ' ' || state || ' lease_until-now=' ||
	coalesce(round(extract(epoch FROM lease_until - now()))::text, '-'), '; ')
	FROM jobs WHERE id = $jm OR kind = 'maintenance'")"
stop_and_wait "$mpid" 10 >/dev/null
# Unstick it by hand for what follows.
psql_db "DELETE FROM jobs WHERE kind = 'maintenance' OR id = $jm" >/dev/null

# --- a stalled worker's completion is refused ----------------------------------
# A (lease 2 s) starts a 3.5 s probe and is stopped; B reclaims and finishes
# it; A resumes, finishes its run and must be refused.
js=$(enqueue probe '{"tag":"stale","sleep_ms":3500}')
a_conf=$(mkconf stale_a threads=1 batch=1 poll_ms=100 lease_s=2 maintenance_s=1 keep_done_s=3600)
b_conf=$(mkconf stale_b threads=1 batch=1 poll_ms=100 lease_s=10 maintenance_s=1 keep_done_s=3600)
start_worker stale_a "$a_conf"
apid=$wpid
wait_sql 20 "SELECT count(*) FROM job_probe_runs WHERE job_id = $js" 1 || not_ok "A starts the probe"
kill -STOP "$apid"
t0=$(now_s)
start_worker stale_b "$b_conf"
bpid=$wpid
check "B reclaims the job once A's lease ran out" wait_sql 20 \
	"SELECT count(*) FROM job_probe_runs WHERE job_id = $js" 2
check "B finishes it" wait_sql 20 "SELECT state FROM jobs WHERE id = $js" "done"
echo "# measured: stalled worker: B finished the job $(elapsed "$t0") s after A was stopped"
fin=$(psql_db "SELECT finished_at FROM jobs WHERE id = $js")
kill -CONT "$apid"
check "A's completion is refused (event=job_completion_refused)" wait_for 15 \
	grep -q "event=job_completion_refused job=$js " "$logs/stale_a.log"
check "the job's final record is B's run: done, attempt 2, B's lease token" \
	sql_is "SELECT j.state || ' ' || j.attempts || ' ' || (j.lease_token = r.lease_token)
		|| ' ' || (r.worker LIKE '%:$bpid')
		FROM jobs j JOIN job_probe_runs r ON r.job_id = j.id AND r.attempt = 2 WHERE j.id = $js" \
	"done 2 true true"
check "job_probe_runs: two runs, A then B, two lease tokens" \
	sql_is "SELECT string_agg(CASE WHEN worker LIKE '%:$apid' THEN 'A' WHEN worker LIKE '%:$bpid' THEN 'B'
		ELSE worker END, ',' ORDER BY attempt) || ' ' || count(DISTINCT lease_token)
		FROM job_probe_runs WHERE job_id = $js" "A,B 2"
check "no second done: finished_at unchanged after A's attempt" \
	sql_is "SELECT finished_at FROM jobs WHERE id = $js" "$fin"
check "B refused nothing" bash -c "! grep -q event=job_completion_refused '$logs/stale_b.log'"
stop_and_wait "$apid" 10; rc=$?
check "A still stops cleanly (rc=$rc)" test "$rc" = 0
stop_and_wait "$bpid" 10 >/dev/null

# --- per-kind concurrency cap: one maintenance job at a time per worker -------
# The first maintenance job blocks on a lock the test holds (its probe-run
# pruning waits for job_probe_runs); the worker's second runner is idle and
# must leave the second maintenance job queued while taking other work.
psql_db "DELETE FROM jobs WHERE kind = 'maintenance'" >/dev/null
psql -X -q -tA "$DB_URL" -c "BEGIN" -c "LOCK TABLE job_probe_runs IN ACCESS EXCLUSIVE MODE" \
	-c "SELECT pg_sleep(8)" -c "COMMIT" >/dev/null 2>"$logs/cap-lock.err" &
lock_pid=$!
pids+=("$lock_pid")
check "cap: the test holds job_probe_runs locked" \
	wait_sql 10 "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
		WHERE c.relname = 'job_probe_runs' AND l.mode = 'AccessExclusiveLock' AND l.granted" 1
c_conf=$(mkconf cap threads=2 batch=1 poll_ms=100 maintenance_s=3600 keep_done_s=3600)
start_worker cap "$c_conf" || not_ok "worker cap starts" "$(tail -5 "$logs/cap.log")"
cpid=$wpid
check "cap: the maintenance job the worker schedules at start runs (and waits on the lock)" \
	wait_sql 10 "SELECT count(*) FROM jobs WHERE kind = 'maintenance' AND state = 'running'" 1
m2=$(enqueue maintenance '{}')
n2=$(enqueue noop '{}')
check "cap: the idle runner takes other work meanwhile (a noop job is done)" \
	wait_sql 10 "SELECT state FROM jobs WHERE id = $n2" done
check "cap: … but not the second maintenance job: one running, one queued" \
	sql_is "SELECT string_agg(state, ',' ORDER BY state) FROM jobs WHERE kind = 'maintenance'" "queued,running"
check "cap: the second one was never claimed" sql_is "SELECT attempts || ' ' || (locked_by IS NULL) FROM jobs WHERE id = $m2" "0 true"
wait "$lock_pid"
check "cap: once the lock is gone both maintenance jobs are done, one after the other" \
	wait_sql 20 "SELECT string_agg(state, ',') FROM jobs WHERE kind = 'maintenance'" "done,done"
check "cap: the second started after the first finished" \
	sql_is "SELECT (SELECT started_at FROM jobs WHERE id = $m2) >= (SELECT finished_at FROM jobs WHERE kind = 'maintenance' AND id <> $m2)" t
stop_and_wait "$cpid" 10; rc=$?
check "cap: the worker stops cleanly (rc=$rc)" test "$rc" = 0

# --- sanitizers and crashes ---------------------------------------------------
# --- posternctl jobs retry / cancel ------------------------------------------
later=$(enqueue noop --delay-ms 3600000)
expect_exit 0 "jobs cancel: a queued job" "$ctl" -c "$CONF" jobs cancel "$later"
check "... is dead, cancelled by operator" sql_is "SELECT state || ':' || last_error FROM jobs WHERE id = $later" "dead:cancelled by operator"
expect_exit 1 "jobs cancel: not twice" "$ctl" -c "$CONF" jobs cancel "$later"
expect_exit 0 "jobs retry: a dead job" "$ctl" -c "$CONF" jobs retry "$later"
check "... is queued, due now, attempts reset" sql_is "SELECT state || ':' || attempts || ':' || (run_at <= now()) FROM jobs WHERE id = $later" "queued:0:true"
expect_exit 1 "jobs retry: no such job" "$ctl" -c "$CONF" jobs retry 999999999
expect_exit 2 "jobs retry: a bad id is a usage error" "$ctl" -c "$CONF" jobs retry abc

san=$(grep -l -E "AddressSanitizer|LeakSanitizer|runtime error:" "$logs"/*.log 2>/dev/null |
	xargs -r -n 1 basename | tr '\n' ' ')
check "no sanitizer report in any worker log${san:+ (in $san)}" test -z "$san"
echo "# measured: queue.sh ran $(elapsed "$t_start") s"
finish
