# Coffre — the two commands a newcomer runs: `make run` and `make test`.
# Both install the Debian packages they need when missing (apt-get update first), then build.

SWIFT        ?= swift
DEV_STATE    ?= $(CURDIR)/.coffre
# systemd: systemd-analyze (verify, security) and systemd-socket-activate, for the systemd tests.
DEB_PACKAGES := libsodium-dev libsqlite3-dev libsystemd-dev libssl-dev pkg-config util-linux systemd
PY_MODULES   := yaml jsonschema cryptography
PY_PACKAGES  := pyyaml jsonschema cryptography
# The drills (drills/): socat bridges TCP to the socket for schemathesis, gcc builds the fault
# injection library, util-linux gives prlimit and setpriv, mount a tmpfs for the full disk.
DRILL_DEB_PACKAGES := socat gcc libc6-dev util-linux mount

.PHONY: deps build run test unit-tests openapi-check lint drills drill-deps drills-fast fuzz fuzz-fast fuzz-corpus asan tsan bench bench-quick bench-scale bench-profile bench-deps bench-tools bench-rotation clean

## Install what building and testing need, only what is missing.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "==> installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build

## Start coffred in development mode in the foreground, with its state in .coffre/.
run: build
	@scripts/dev-banner.sh "$$($(SWIFT) build --show-bin-path)" "$(DEV_STATE)"
	exec "$$($(SWIFT) build --show-bin-path)/coffred" --dev --state-dir "$(DEV_STATE)"

## Build and run every test: format check, unit and end-to-end tests, the API against its spec,
## and the short versions of the reliability and security drills (docs/reliability.md).
test: build lint unit-tests openapi-check drills-fast fuzz-fast

unit-tests: build
	COFFRE_BIN_DIR="$$($(SWIFT) build --show-bin-path)" $(SWIFT) test

openapi-check: build
	@python3 -c "import $(shell echo $(PY_MODULES) | tr ' ' ',')" 2>/dev/null || \
	  python3 -m pip install -q $(PY_PACKAGES) || \
	  apt-get install -y -qq python3-yaml python3-jsonschema python3-cryptography
	python3 scripts/openapi_check.py "$$($(SWIFT) build --show-bin-path)"

lint:
	@scripts/lint.sh

## What the drills need beyond the build: Debian packages and Python modules, only if missing.
drill-deps:
	@missing=""; for p in $(DRILL_DEB_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "==> installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@python3 -c "import $(shell echo $(PY_MODULES) | tr ' ' ',')" 2>/dev/null || \
	  python3 -m pip install -q $(PY_PACKAGES) || \
	  apt-get install -y -qq python3-yaml python3-jsonschema python3-cryptography
	@python3 -c "import schemathesis" 2>/dev/null || python3 -m pip install -q schemathesis

## The drills' short versions (part of `make test`, about 3 minutes): crash, crash during key
## rotations and purges, corruption, attacks, load, faults, API fuzz. Each prints its figures.
drills-fast: build drill-deps
	drills/run.sh fast "$$($(SWIFT) build --show-bin-path)"

## Long versions of the drills (not part of `make test`): a 1 GiB document through the daemon
## in bounded memory, 10,000 expired dossiers purged in one retention run, then the full
## reliability and security drills (200 kills, 100 more during key rotations and purges, 20 rounds
## of corruption, the attack table with 512 slow clients, 5 minutes of load, 10 rounds of faults,
## a long API fuzz run; docs/reliability.md).
drills: build drill-deps
	COFFRE_BIN_DIR="$$($(SWIFT) build --show-bin-path)" COFFRE_LARGE_DOCUMENT_MIB=1024 COFFRE_RETENTION_DOSSIERS=10000 \
	  $(SWIFT) test --filter "aLargeDocumentStreamsInBoundedMemory|manyExpiredDossiersArePurgedInOneRun"
	drills/run.sh full "$$($(SWIFT) build --show-bin-path)"
	$(MAKE) fuzz FUZZ_SECONDS=300

## libFuzzer over every parser that sees client bytes (see fuzz/README.md); FUZZ_SECONDS each.
FUZZ_SECONDS ?= 60
FUZZ_BUILD   := $(SWIFT) build -c release --product coffre-fuzz --scratch-path .build-fuzz \
                  -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -DFUZZING
fuzz: deps
	$(FUZZ_BUILD)
	scripts/fuzz.sh .build-fuzz/release/coffre-fuzz $(FUZZ_SECONDS)

## The fuzzers' short run, part of `make test`: ten seconds per parser.
fuzz-fast: deps
	$(FUZZ_BUILD)
	scripts/fuzz.sh .build-fuzz/release/coffre-fuzz 10

fuzz-corpus: build
	"$$($(SWIFT) build --show-bin-path)/coffre-fuzz" corpus fuzz/corpus

## The unit and end-to-end tests under AddressSanitizer or ThreadSanitizer (not part of `make
## test`; docs/reliability.md#sanitizers). Tests, daemon and client are all built with the
## sanitizer (.build-asan, .build-tsan), so the daemons the tests start run under it too. Every
## process writes its reports to $(SANITIZER_LOG)/asan|tsan/report.PID (world-writable: some
## tests run the client as another uid); the target fails if there is one, or if a test fails
## (a few time and memory bounds do not hold under a sanitizer's cost; see the doc).
SANITIZER_LOG ?= /tmp/coffre-sanitizers
SANITIZER_REPORTS = grep -lE '^(WARNING|ERROR): (Address|Thread)Sanitizer' $(1)/report.* 2>/dev/null | wc -l
asan: deps
	$(SWIFT) build --build-tests --sanitize=address --scratch-path .build-asan
	@rm -rf $(SANITIZER_LOG)/asan && mkdir -p $(SANITIZER_LOG) && mkdir -m 1777 $(SANITIZER_LOG)/asan
	@status=0; COFFRE_BIN_DIR=$(CURDIR)/.build-asan/debug \
	  ASAN_OPTIONS="detect_leaks=0 log_path=$(SANITIZER_LOG)/asan/report" \
	  $(SWIFT) test --skip-build --sanitize=address --scratch-path .build-asan || status=$$?; \
	reports=$$($(call SANITIZER_REPORTS,$(SANITIZER_LOG)/asan)); \
	echo "asan: $$reports process(es) with a report in $(SANITIZER_LOG)/asan; swift test exit status $$status"; \
	[ "$$reports" -eq 0 ] && [ "$$status" -eq 0 ]

tsan: deps
	$(SWIFT) build --build-tests --sanitize=thread --scratch-path .build-tsan
	@rm -rf $(SANITIZER_LOG)/tsan && mkdir -p $(SANITIZER_LOG) && mkdir -m 1777 $(SANITIZER_LOG)/tsan
	@status=0; COFFRE_BIN_DIR=$(CURDIR)/.build-tsan/debug \
	  TSAN_OPTIONS="log_path=$(SANITIZER_LOG)/tsan/report halt_on_error=0 second_deadlock_stack=1 suppressions=$(CURDIR)/scripts/tsan.supp" \
	  $(SWIFT) test --skip-build --sanitize=thread --scratch-path .build-tsan || status=$$?; \
	reports=$$($(call SANITIZER_REPORTS,$(SANITIZER_LOG)/tsan)); \
	echo "tsan: $$reports process(es) with a report in $(SANITIZER_LOG)/tsan; swift test exit status $$status"; \
	[ "$$reports" -eq 0 ] && [ "$$status" -eq 0 ]

## Master key rotation of ROTATION_DOSSIERS dossier keys against batched SQLite updates of the
## same rows, in one run (release build; figures in docs/benchmarks.md).
ROTATION_DOSSIERS ?= 1000000
bench-rotation: deps
	$(SWIFT) build -c release --product coffre-bench
	"$$($(SWIFT) build -c release --show-bin-path)/coffre-bench" rotation --dossiers $(ROTATION_DOSSIERS)

## Benchmarks (never part of `make test`): Coffre against the physical limit (bench/limit.c) and
## against age, restic and PostgreSQL + pgcrypto, in one run, as one table of ratios; the table
## also goes to docs/benchmarks.md. `bench-quick` takes under five minutes; `bench` seeds a
## million documents and takes hours. See docs/benchmarks.md.
BENCH_PACKAGES := age restic postgresql postgresql-contrib libpq-dev libsodium-dev gcc pkg-config util-linux
BENCH_OUT      := bench/out
# e.g. BENCH_SWIFT_FLAGS="--scratch-path .build-release" to keep the release build apart.
BENCH_SWIFT_FLAGS ?=

bench-deps:
	@missing=""; for p in $(BENCH_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "==> installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

bench-tools: bench-deps
	@mkdir -p $(BENCH_OUT)
	cc -O2 -Wall -o $(BENCH_OUT)/limit bench/limit.c $$(pkg-config --cflags --libs libsodium) -lpthread
	cc -O2 -Wall -o $(BENCH_OUT)/loadgen bench/loadgen.c $$(pkg-config --cflags --libs libsodium) -lpthread
	cc -O2 -Wall -o $(BENCH_OUT)/primitives bench/primitives.c $$(pkg-config --cflags --libs libsodium)
	cc -O2 -Wall -o $(BENCH_OUT)/pgload bench/pgload.c -I$$(pg_config --includedir) -lpq -lpthread

bench: deps bench-tools
	$(SWIFT) build -c release $(BENCH_SWIFT_FLAGS)
	python3 bench/run.py --bin-dir "$$($(SWIFT) build -c release $(BENCH_SWIFT_FLAGS) --show-bin-path)" --tools $(BENCH_OUT) \
	  --write-doc docs/benchmarks.md

bench-quick: deps bench-tools
	$(SWIFT) build -c release $(BENCH_SWIFT_FLAGS)
	python3 bench/run.py --quick --bin-dir "$$($(SWIFT) build -c release $(BENCH_SWIFT_FLAGS) --show-bin-path)" --tools $(BENCH_OUT) \
	  --write-doc docs/benchmarks.md

## The scale goals alone (list, fetch and start to READY at 10,000 and 1,000,000 documents):
## most of a full run's time is seeding the million documents, so this runs them by themselves.
bench-scale: deps bench-tools
	$(SWIFT) build -c release $(BENCH_SWIFT_FLAGS)
	python3 bench/run.py --scale-only --bin-dir "$$($(SWIFT) build -c release $(BENCH_SWIFT_FLAGS) --show-bin-path)" --tools $(BENCH_OUT)

## Where the daemon spends its CPU (perf samples of a release coffred; see bench/profile.py).
bench-profile: deps bench-tools
	@dpkg -s linux-perf >/dev/null 2>&1 || { SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq linux-perf; }
	$(SWIFT) build -c release $(BENCH_SWIFT_FLAGS)
	python3 bench/profile.py --bin-dir "$$($(SWIFT) build -c release $(BENCH_SWIFT_FLAGS) --show-bin-path)" --tools $(BENCH_OUT)

clean:
	rm -rf .build .coffre
