#!/bin/bash
# The sanitizer runs that `make test` includes (fast) and `make check-deep` extends.
#   AddressSanitizer + UndefinedBehaviorSanitizer: every unit test and every fuzz corpus.
#   ThreadSanitizer: the cross-thread queue stress test (test_queue), with both threads
#   instrumented.
# The plugin itself runs under valgrind in `make check-deep` (scripts/valgrind.sh): its
# RTLD_DEEPBIND gateway does not mix with a preloaded ASan runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

echo "== ASan + UBSan: unit tests and fuzz corpora"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCABLE_SANITIZE='address;undefined' \
	${CABLE_WERROR:+-DCABLE_WERROR=ON} > /dev/null
cmake --build build-asan -j "$jobs" > /dev/null
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --test-dir build-asan --output-on-failure -L 'unit|fuzz'

echo "== TSan: the cross-thread queue"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DCABLE_SANITIZE=thread \
	${CABLE_WERROR:+-DCABLE_WERROR=ON} > /dev/null
cmake --build build-tsan -j "$jobs" --target test_queue > /dev/null
TSAN_OPTIONS=halt_on_error=1 ctest --test-dir build-tsan --output-on-failure -R 'unit.test_queue$'
