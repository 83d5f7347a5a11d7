#!/usr/bin/env bash
# tests/fuzz/run.sh FUZZ_BUILD SECONDS: runs every libFuzzer target for
# SECONDS each, starting from tests/fuzz/corpus/<name>/ (copied, so the
# checked-in corpus only changes by hand). Prints TAP lines; a crash, leak,
# timeout or out-of-memory is a "not ok" with the reproducer's path.
set -uo pipefail
b=${1:?usage: run.sh FUZZ_BUILD SECONDS}
secs=${2:-10}
top=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/postern-fuzz.XXXXXX)
n=0 bad=0
for f in "$b"/fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	name=$(basename "$f"); short=${name#fuzz_}
	n=$((n + 1))
	mkdir -p "$work/$short/corpus" "$work/$short/artifacts"
	cp "$top/tests/fuzz/corpus/$short"/* "$work/$short/corpus/" 2>/dev/null
	if "$f" -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 -max_len=65536 \
		-print_final_stats=1 -artifact_prefix="$work/$short/artifacts/" \
		"$work/$short/corpus" >"$work/$short/log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$short/log")
		echo "ok $n - $name: ${runs:-?} inputs in ${secs}s, no crash"
	else
		bad=$((bad + 1))
		echo "not ok $n - $name: see $work/$short/log; reproducer in $work/$short/artifacts/"
		grep -m5 -E 'ERROR|SUMMARY|==' "$work/$short/log" | sed 's/^/#   /'
	fi
done
[ "$n" -gt 0 ] || { echo "not ok 1 - no fuzz targets in $b/fuzz"; exit 1; }
[ "$bad" -eq 0 ] && rm -rf "$work"
exit $(( bad > 0 ))
