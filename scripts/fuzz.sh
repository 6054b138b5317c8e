#!/bin/bash
# Run every libFuzzer target for FUZZ_SECONDS (default 60) each, starting from and
# adding to a scratch copy of its corpus (the committed corpora stay as they are;
# merge new finds by hand with -merge=1, see test/fuzz/README.md). Needs clang.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-60}
CC=clang cmake -S . -B build-fuzz -DCABLE_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
cmake --build build-fuzz -j "$(nproc)" > /dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for bin in build-fuzz/test/fuzz/fuzz_*; do
	[[ $bin == *_replay ]] && continue
	[ -x "$bin" ] || continue
	name=$(basename "$bin"); corpus=test/fuzz/corpus/${name#fuzz_}
	mkdir -p "$work/$name"; cp -r "$corpus/." "$work/$name/"
	echo "== $name: $secs s"
	"$bin" -max_total_time="$secs" -print_final_stats=1 "$work/$name" 2>&1 |
		grep -E "stat::number_of_executed_units|ERROR|SUMMARY" || true
done
