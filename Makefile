# mosquitto-cable: the two commands.
#   make run    install what is missing (Debian 12), build, start mosquitto with the plugin
#   make test   install what is missing, build, run every test
# Everything else is CMake underneath: cmake -S . -B build && cmake --build build.
# node_modules comes before the build, so CMake finds the test clients already there.

BUILD ?= build
CMAKE_FLAGS ?=
ifdef CI
CMAKE_FLAGS += -DCABLE_WERROR=ON
endif
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all build run test unit bench soak check-deep check-format format clean

all: build

build:
	scripts/deps.sh build
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

run:
	scripts/deps.sh run
	$(MAKE) --no-print-directory node_modules/.package-lock.json build
	BUILD=$(BUILD) scripts/run.sh

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

test:
	scripts/deps.sh test
	$(MAKE) --no-print-directory node_modules/.package-lock.json build
	$(MAKE) --no-print-directory check-format
	CABLE_WERROR=$(CI) scripts/sanitize.sh
	ctest --test-dir $(BUILD) --output-on-failure -j 1

# Longer checks: the sanitizer runs, then every libFuzzer target for FUZZ_SECONDS each.
check-deep: test
	scripts/fuzz.sh

# The benchmark suite (minutes; not part of make test). Writes docs/benchmarks.md.
bench:
	scripts/deps.sh test
	$(MAKE) --no-print-directory build
	bench/deps.sh
	BUILD=$(BUILD) bench/run.sh

# The soak test (about 6 minutes; docs/soak.md). SOAK_SECONDS, SOAK_CLIENTS, ... tune it.
# Then the extended protocol's (about 3 minutes): SOAK_EXT_SECONDS, SOAK_EXT_CLIENTS, ...
soak:
	scripts/deps.sh test
	$(MAKE) --no-print-directory build
	bench/soak.sh $(BUILD)
	CABLE_BUILD_DIR=$(abspath $(BUILD)) node bench/soak-ext.mjs

unit: build
	ctest --test-dir $(BUILD) --output-on-failure -L unit

C_SOURCES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)

check-format:
	clang-format --dry-run -Werror $(C_SOURCES)

format:
	clang-format -i $(C_SOURCES)

clean:
	rm -rf $(BUILD)
