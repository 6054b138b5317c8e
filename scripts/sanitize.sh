#!/bin/bash
# The sanitizer runs that `make test` includes (fast) and `make check-deep` extends.
#   AddressSanitizer + UndefinedBehaviorSanitizer: every unit test and every fuzz corpus,
#   then the whole plugin (adapter and gateway, plugin/*.c) inside the real broker for a
#   representative part of the integration suite (CABLE_ASAN_INTEGRATION, a ctest regex).
#   The broker gets the ASan runtime as LD_PRELOAD; the sanitizer build's own dlopen()
#   lets RTLD_DEEPBIND past ASan (test/host/asan_dlopen.c, test/integration/README.md).
#   Any ASan, LeakSanitizer or UBSan report in the broker's output fails the test.
#   ThreadSanitizer: the cross-thread queue stress test (test_queue), with both threads
#   instrumented; then the whole plugin inside the real broker with two gateway shards
#   (the broker gets the TSan runtime as LD_PRELOAD) for the parts of the integration
#   suite where threads meet (CABLE_TSAN_INTEGRATION, a ctest regex).
# The plugin also runs under valgrind (test/deep/valgrind.sh, in the ctest suite).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

echo "== ASan + UBSan: unit tests and fuzz corpora"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCABLE_SANITIZE='address;undefined' \
	${CABLE_WERROR:+-DCABLE_WERROR=ON} > /dev/null
cmake --build build-asan -j "$jobs" > /dev/null
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --test-dir build-asan --output-on-failure -L 'unit|fuzz'

# Handshake, subscribe, device to browser, speak, shutdown, limits and malformed input,
# slow consumers, ACL, wildcard parameters, documented edges, reload, full queues,
# presence and whisper. With one gateway thread: the rest of the suite runs with two.
echo "== ASan + UBSan: the plugin inside the real broker (part of the integration suite), one shard"
integration=${CABLE_ASAN_INTEGRATION:-'^integration\.(01|03|04|05|08|20|24|30|31|75|76|77|78|110|111|135)-'}
CABLE_TEST_THREADS=1 CABLE_BROKER_PRELOAD=$("${CC:-cc}" -print-file-name=libasan.so) \
	ctest --test-dir build-asan --output-on-failure -R "$integration"

echo "== TSan: the cross-thread queue"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DCABLE_SANITIZE=thread \
	${CABLE_WERROR:+-DCABLE_WERROR=ON} > /dev/null
cmake --build build-tsan -j "$jobs" --target test_queue > /dev/null
TSAN_OPTIONS=halt_on_error=1 ctest --test-dir build-tsan --output-on-failure -R 'unit.test_queue$'

# Device to browser and back, answers, shutdown, reload, limits, full queues, slow
# consumers, metrics, last values, the extended protocol, presence and whisper.
echo "== TSan: the plugin inside the real broker, two gateway shards"
cmake --build build-tsan -j "$jobs" --target mosquitto_cable mosquitto_cable_gateway > /dev/null
integration=${CABLE_TSAN_INTEGRATION:-'^integration\.(04|05|08|24|30|31|40|78|120|125|130|135)-'}
CABLE_TEST_THREADS=2 CABLE_BROKER_PRELOAD=$("${CC:-cc}" -print-file-name=libtsan.so) \
	ctest --test-dir build-tsan --output-on-failure -R "$integration"
