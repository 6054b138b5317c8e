#!/bin/bash
# Run every libFuzzer target for FUZZ_SECONDS (default 60) each, or for FUZZ_RUNS
# executions each when that is set (the figures in test/fuzz/README.md are 10,000,000
# per target), starting from and adding to a scratch copy of its corpus (the committed
# corpora stay as they are; merge new finds by hand with -merge=1, see
# test/fuzz/README.md). FUZZ_TARGETS="acl proto" limits the run to those targets.
# Targets run one after another. Needs clang.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-60}
runs=${FUZZ_RUNS:-}
CC=clang cmake -S . -B build-fuzz -DCABLE_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
cmake --build build-fuzz -j "$(nproc)" > /dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for bin in build-fuzz/test/fuzz/fuzz_*; do
	[[ $bin == *_replay ]] && continue
	[ -x "$bin" ] || continue
	name=$(basename "$bin"); corpus=test/fuzz/corpus/${name#fuzz_}
	if [ -n "${FUZZ_TARGETS:-}" ] && [[ " $FUZZ_TARGETS " != *" ${name#fuzz_} "* ]]; then
		continue
	fi
	mkdir -p "$work/$name"; cp -r "$corpus/." "$work/$name/"
	if [ -n "$runs" ]; then
		echo "== $name: $runs runs"
		limit=(-runs="$runs")
	else
		echo "== $name: $secs s"
		limit=(-max_total_time="$secs")
	fi
	"$bin" "${limit[@]}" -print_final_stats=1 "$work/$name" 2>&1 |
		grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|ERROR|SUMMARY" || true
done
