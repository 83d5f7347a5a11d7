#!/usr/bin/env bash
# tests/run.sh: postern's test runner (called by `make test`).
#
#   tests/run.sh [--unit-only] BUILD [ASAN_BUILD [FUZZ_BUILD]]
#
# 1. unit tests (cmocka binaries from tests/unit) of BUILD;
# 2. a throw-away PostgreSQL and Postfix+Dovecot stack in a temp dir, then
#    every integration test: cmocka binaries from tests/integration and the
#    scripts tests/integration/*.sh (TAP lines "ok N - …" / "not ok N - …");
# 3. the unit and integration tests again with ASAN_BUILD's binaries (built
#    with -fsanitize=address,undefined), against the same stack.
# 4. a short run of every libFuzzer target of FUZZ_BUILD (FUZZ_SECONDS each,
#    default 10).
# TESTS="name …" (environment) runs only the suites whose names contain one
# of the words, e.g. TESTS="mail_out test_trim" (for development; make test
# runs everything).
# Everything started is stopped on exit, pass or fail. The last line is
# "N passed, N failed". Logs of failed suites are printed; all logs stay in
# the temp dir when anything failed (its path is printed).
set -uo pipefail

unit_only=
if [ "${1:-}" = --unit-only ]; then unit_only=1; shift; fi
build=${1:?usage: tests/run.sh [--unit-only] BUILD [ASAN_BUILD]}
asan=${2:-}
fuzz=${3:-}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

passed=0 failed=0
failures=()
tmp=$(mktemp -d /tmp/postern-test.XXXXXX)
chmod 755 "$tmp"
mkdir -p "$tmp/logs"

cleanup() {
	[ -n "$unit_only" ] || {
		bash tests/harness/mailstack.sh stop "$tmp/mail" >/dev/null 2>&1
		bash tests/harness/pg.sh stop "$tmp/db" >/dev/null 2>&1
	}
	if [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; then
		rm -rf "$tmp"
	else
		echo "test logs kept in $tmp/logs"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }

# Counts one suite's results from its log; $1 name, $2 exit code, $3 log.
count() {
	local name=$1 rc=$2 log=$3 p=0 f=0 n
	# cmocka summaries ("[  PASSED  ] 3 test(s)." / "[  FAILED  ] 1 test(s), listed below:")
	while read -r n; do p=$((p + n)); done < <(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\..*/\1/p' "$log")
	while read -r n; do f=$((f + n)); done < <(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed below.*/\1/p' "$log")
	# TAP lines from scripts
	p=$((p + $(grep -c '^ok [0-9]' "$log")))
	f=$((f + $(grep -c '^not ok [0-9]' "$log")))
	# A suite that crashed, timed out or failed without saying what failed
	# counts as one failure.
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then f=1; echo "(no test results in output)" >>"$log"; fi
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" -gt 0 ]; then
		failures+=("$name")
		printf 'FAIL %-40s %d passed, %d failed (exit %d)\n' "$name" "$p" "$f" "$rc"
		echo "---- $name (last 40 lines of $log)"
		tail -40 "$log"
		echo "----"
	else
		printf 'ok   %-40s %d passed  %ss\n' "$name" "$p" "$4"
	fi
}

selected() {   # name: is it among $TESTS (or is $TESTS empty)?
	local w
	[ -z "${TESTS:-}" ] && return 0
	for w in $TESTS; do
		case $1 in *"$w"*) return 0 ;; esac
	done
	return 1
}

run_suite() {   # name timeout_s command...
	local name=$1 limit=$2; shift 2
	local log="$tmp/logs/${name//\//_}.log" t0 rc
	selected "$name" || return 0
	t0=$(now)
	timeout -k 5 "$limit" "$@" >"$log" 2>&1 </dev/null
	rc=$?
	[ $rc -eq 124 ] && echo "(timed out after ${limit}s)" >>"$log"
	count "$name" "$rc" "$log" "$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.1f", b - a}')"
}

unit_tests() {   # build dir, label prefix
	local b=$1 pre=$2 t
	for src in tests/unit/test_*.c; do
		[ -e "$src" ] || continue
		t=$(basename "$src" .c)
		run_suite "${pre}unit/$t" 120 "$b/tests/$t"
	done
}

c_integration_tests() {   # build dir, label prefix
	local b=$1 pre=$2 t
	for src in tests/integration/test_*.c; do
		[ -e "$src" ] || continue
		t=$(basename "$src" .c)
		run_suite "${pre}integration/$t" 600 "$b/tests/$t"
	done
}

echo "== unit tests ($build)"
unit_tests "$build" ""

if [ -z "$unit_only" ]; then
	echo "== starting PostgreSQL and the mail stack in $tmp"
	if ! bash tests/harness/pg.sh start "$tmp/db" --fast >"$tmp/logs/pg-start.log" 2>&1; then
		cat "$tmp/logs/pg-start.log"; failed=$((failed + 1)); failures+=("pg-start")
	elif ! bash tests/harness/mailstack.sh start "$tmp/mail" >"$tmp/logs/mail-start.log" 2>&1; then
		cat "$tmp/logs/mail-start.log"; failed=$((failed + 1)); failures+=("mailstack-start")
	else
		cat "$tmp/logs/pg-start.log" "$tmp/logs/mail-start.log"
		set -a
		eval "$(bash tests/harness/pg.sh env "$tmp/db")"
		eval "$(bash tests/harness/mailstack.sh env "$tmp/mail")"
		PG_TEST_DIR=$tmp/db
		POSTERN_BUILD=$top/$build
		POSTERN_TEST_TMP=$tmp
		set +a
		echo "== integration tests ($build)"
		c_integration_tests "$build" ""
		for s in tests/integration/*.sh; do
			[ -e "$s" ] || continue
			run_suite "integration/$(basename "$s" .sh)" 900 bash "$s"
		done
		if [ -n "$asan" ]; then
			echo "== sanitizer pass ($asan: -fsanitize=address,undefined)"
			export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
			export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
			unit_tests "$asan" asan/
			c_integration_tests "$asan" asan/
			# The CLI and daemon scripts again, driving the sanitized binaries.
			for s in tests/integration/*.sh; do
				[ -e "$s" ] || continue
				POSTERN_BUILD=$top/$asan run_suite "asan/integration/$(basename "$s" .sh)" 900 bash "$s"
			done
		fi
	fi
elif [ -n "$asan" ]; then
	echo "== sanitizer pass ($asan)"
	unit_tests "$asan" asan/
fi

if [ -n "$fuzz" ]; then
	echo "== fuzzing ($fuzz, ${FUZZ_SECONDS:-10}s per target)"
	run_suite fuzz 600 bash tests/fuzz/run.sh "$fuzz" "${FUZZ_SECONDS:-10}"
fi

echo
if [ ${#failures[@]} -gt 0 ]; then
	echo "failed suites: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
