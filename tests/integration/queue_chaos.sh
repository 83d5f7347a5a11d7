#!/usr/bin/env bash
# tests/integration/queue_chaos.sh: the queue's crash test, short version.
# Two postern-worker processes work through 2,000 probe jobs while one of
# them, picked at random, is killed with SIGKILL at random moments (at least
# 20 times) and started again; a third round also restarts PostgreSQL. At
# the end every job must be done, none lost, and no completion accepted from
# a lease that was not the job's last.
#
#   round "kill"    default threads (2) and batch (32), done rows kept:
#                   duplicates <= kills x threads x 4. A killed thread
#                   repeats the job in hand plus the quick jobs whose
#                   completions were waiting (under 2 ms each, written at
#                   most 20 ms later: worker/runner.c); probes here sleep
#                   0-5 ms, so that is about one or two a thread.
#   round "kill1"   threads 1, batch 1, done rows deleted (keep_done_s 0):
#                   the issue's bound, duplicates <= kills.
#   round "restart" as "kill", plus pg.sh restart 4 times during the run.
#
# A duplicate is a run recorded in job_probe_runs beyond the first for a
# job. Figures are printed as "# measured:" lines.
. "$(dirname "$0")/lib.bash"
cd "$top" || exit 1

rand_sleep() {  # rand_sleep MIN MAX (seconds)
	sleep "$(awk -v r="$RANDOM" -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a + r / 32767 * (b - a) }')"
}

suite_start queue_chaos
t_start=$(date +%s.%N)

wpid=(0 0)
cleanup() {
	local p
	for p in "${wpid[@]}"; do [ "$p" -gt 0 ] && kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
}
trap cleanup EXIT


# chaos ROUND KILLS RESTARTS THREADS BATCH KEEP_DONE_S SLEEP_MAX_MS
# (probes sleep 0..SLEEP_MAX_MS: enough work for the kills to land in)
chaos() {
	local round=$1 want_kills=$2 want_restarts=$3 threads=$4 batch=$5 keep=$6 sleep_max=$7
	local tag="chaos-$round" n=2000 conf=$logs/$round.conf i
	local kills=0 live_kills=0 restarts=0 left t0 took

	(umask 077; { cat "$CONF"; printf '[worker]\nthreads = %s\nbatch = %s\n' "$threads" "$batch"
	  printf 'poll_ms = 100\nlease_s = 3\nmaintenance_s = 1\ngrace_s = 5\n'
	  printf 'keep_done_s = %s\n' "$keep"; } >"$conf")
	psql_db "INSERT INTO jobs (kind, payload, max_attempts)
		SELECT 'probe', jsonb_build_object('tag', '$tag', 'sleep_ms', (random() * $sleep_max)::int), 10
		FROM generate_series(1, $n); NOTIFY postern_jobs" >/dev/null
	t0=$(now_s)
	for i in 0 1; do
		"$worker" -c "$conf" >>"$logs/$round-w$i.log" 2>&1 &
		wpid[$i]=$!
	done
	# Kill (and now and then restart the database) at random moments while
	# work remains.
	while :; do
		left=$(psql_db "SELECT count(*) FROM jobs WHERE payload->>'tag' = '$tag'
			AND state IN ('queued', 'running')" 2>/dev/null)
		[ "$left" = 0 ] && break
		[ "$kills" -ge "$want_kills" ] && [ "$restarts" -ge "$want_restarts" ] && break
		[ "$(elapsed "$t0" | cut -d. -f1)" -ge 100 ] && break
		rand_sleep 0.05 0.25
		# a database restart after every 4th kill, while some are wanted
		if [ "$restarts" -lt "$want_restarts" ] && [ "$kills" -ge $((4 * (restarts + 1))) ]; then
			bash tests/harness/pg.sh restart "$PG_TEST_DIR" >/dev/null
			restarts=$((restarts + 1))
			echo "# $round: database restart $restarts at $(elapsed "$t0") s, $left jobs left"
			continue
		fi
		i=$((RANDOM % 2))
		grep -q "postern-worker\[${wpid[$i]}\] event=worker_started" "$logs/$round-w$i.log" &&
			live_kills=$((live_kills + 1))
		kill -9 "${wpid[$i]}" 2>/dev/null
		wait "${wpid[$i]}" 2>/dev/null
		kills=$((kills + 1))
		"$worker" -c "$conf" >>"$logs/$round-w$i.log" 2>&1 &
		wpid[$i]=$!
	done
	local chaos_s; chaos_s=$(elapsed "$t0")
	echo "# measured: $round: $kills kills ($live_kills of a worker that had started) and $restarts database restarts in $chaos_s s, $left jobs left then"
	check "$round: at least $want_kills kills while work remained ($kills)" test "$kills" -ge "$want_kills"
	[ "$want_restarts" -gt 0 ] &&
		check "$round: $want_restarts database restarts while work remained ($restarts)" \
			test "$restarts" -ge "$want_restarts"

	# Everything must finish now (leases of 3 s, maintenance every 1 s).
	# A maintenance job whose lease ran out more than 5 s ago means no
	# reaper can ever run again (see queue.sh): say so at once.
	local until=$(($(date +%s) + 90)) state=
	while :; do
		state=$(psql_db "SELECT CASE
			WHEN EXISTS (SELECT 1 FROM jobs WHERE kind = 'maintenance' AND state = 'running'
			             AND lease_until < now() - interval '5 seconds') THEN 'stuck'
			WHEN EXISTS (SELECT 1 FROM jobs WHERE payload->>'tag' = '$tag'
			             AND state IN ('queued', 'running')) THEN 'busy'
			ELSE 'finished' END" 2>/dev/null)
		[ "$state" = finished ] || [ "$state" = stuck ] && break
		[ "$(date +%s)" -ge "$until" ] && break
		sleep 0.2
	done
	if [ "$state" = finished ]; then
		ok "$round: every job finishes after the chaos"
	else
		not_ok "$round: every job finishes after the chaos (${state:-no answer}; $(elapsed "$t0") s)" \
			"$(psql_db "SELECT kind || ' ' || state || ' ' || count(*) || ' expired=' || count(*) FILTER (WHERE lease_until < now())
				FROM jobs WHERE payload->>'tag' = '$tag' OR kind = 'maintenance' GROUP BY kind, state")
maintenance rows: $(psql_db "SELECT state || ' lease_until-now=' || coalesce(round(extract(epoch FROM lease_until - now()))::text, '-')
	|| ' locked_by=' || coalesce(locked_by, '-') FROM jobs WHERE kind = 'maintenance'")"
		[ "$state" = stuck ] && echo "# $round: the maintenance job was held by a killed worker: nothing is reaped any more (bug reported)"
	fi
	took=$(elapsed "$t0")
	local runs jobs dups
	read -r runs jobs <<<"$(psql_db "SELECT count(*) || ' ' || count(DISTINCT job_id)
		FROM job_probe_runs WHERE tag = '$tag'")"
	dups=$((runs - jobs))
	echo "# measured: $round: $n jobs, $runs runs, $dups duplicate runs, $kills kills, $restarts restarts, threads $threads, batch $batch; all finished after $took s"
	check "$round: none lost: $n distinct jobs ran ($jobs)" test "$jobs" = "$n"
	check "$round: no probe job left queued, running or dead" \
		sql_is "SELECT count(*) FROM jobs WHERE payload->>'tag' = '$tag' AND state <> 'done'" 0
	if [ "$keep" -gt 0 ]; then
		check "$round: all $n jobs are done (kept rows)" \
			sql_is "SELECT count(*) FROM jobs WHERE payload->>'tag' = '$tag' AND state = 'done'" "$n"
		# The done row keeps the lease token of the last claim. Tokens only
		# grow, so it must be the greatest token of its recorded runs: a
		# smaller one would mean a claim that never ran, a larger recorded
		# one a completion accepted from an older lease.
		check "$round: every done job was completed under its last run's lease" \
			sql_is "SELECT count(*) FROM jobs j WHERE j.payload->>'tag' = '$tag'
				AND j.lease_token IS DISTINCT FROM (SELECT max(lease_token)
				FROM job_probe_runs r WHERE r.job_id = j.id)" 0
	else
		check "$round: done rows were deleted (keep_done_s 0)" \
			sql_is "SELECT count(*) FROM jobs WHERE payload->>'tag' = '$tag'" 0
	fi
	# Every refused completion must come from an older lease: the refusing
	# process must not be the one whose run holds the job's last token
	# (unless it ran the job twice itself).
	local refused bad=0 pid job
	refused=$(cat "$logs/$round"-w*.log | sed -n \
		's/.*postern-worker\[\([0-9]*\)\] event=job_completion_refused job=\([0-9]*\) .*/\1 \2/p')
	while read -r pid job; do
		[ -n "$pid" ] || continue
		[ "$(psql_db "SELECT count(*) FILTER (WHERE worker LIKE '%:$pid') = 1
			AND (SELECT worker FROM job_probe_runs WHERE job_id = $job
			     ORDER BY lease_token DESC LIMIT 1) LIKE '%:$pid'
			FROM job_probe_runs WHERE job_id = $job")" = t ] && bad=$((bad + 1))
	done <<<"$refused"
	echo "# measured: $round: $(printf '%s' "$refused" | grep -c .) completions refused (lease lost), $(cat "$logs/$round"-w*.log | grep -c 'event=leases_expired') reaper runs gave leases back"
	check "$round: no completion refused to a job's last lease holder ($bad)" test "$bad" = 0
	if [ "$batch" = 1 ] && [ "$threads" = 1 ]; then
		check "$round: duplicate runs <= kills ($dups <= $kills)" test "$dups" -le "$kills"
	else
		local bound=$(((kills + restarts * 2) * threads * 4))
		check "$round: duplicate runs <= (kills + 2 x restarts) x threads x 4 ($dups <= $bound)" \
			test "$dups" -le "$bound"
		echo "# measured: $round: the issue's bound (duplicates <= kills = $kills) $([ "$dups" -le "$kills" ] && echo holds || echo 'does not hold') with batch $batch"
	fi
	# When did the reaper first give leases back, against the first pass?
	local first_reap last_first
	first_reap=$(cat "$logs/$round"-w*.log | grep 'event=leases_expired' | cut -d' ' -f1 | sort | head -1)
	last_first=$(psql_db "SELECT to_char(max(ran_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')
		FROM job_probe_runs WHERE tag = '$tag' AND attempt = 1")
	echo "# measured: $round: first lease given back at ${first_reap:-never}; last first attempt started at $last_first"
	for i in 0 1; do
		stop_and_wait "${wpid[$i]}" 15; rc=$?
		wpid[$i]=0
		check "$round: worker $i stops with exit 0 at the end (rc=$rc)" test "$rc" = 0
	done
	# the next round starts clean, whatever happened in this one
	psql_db "DELETE FROM jobs WHERE kind = 'maintenance' OR payload->>'tag' = '$tag'" >/dev/null
}

chaos kill 20 0 2 32 3600 20
chaos kill1 20 0 1 1 0 10
chaos restart 20 4 2 32 3600 25

san=$(grep -l -E "AddressSanitizer|LeakSanitizer|runtime error:" "$logs"/*.log 2>/dev/null |
	xargs -r -n 1 basename | tr '\n' ' ')
check "no sanitizer report in any worker log${san:+ (in $san)}" test -z "$san"
echo "# measured: queue_chaos.sh ran $(elapsed "$t_start") s"
finish
