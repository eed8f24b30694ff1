# Coffre — the two commands a newcomer runs: `make run` and `make test`.
# Both install the Debian packages they need when missing (apt-get update first), then build.

SWIFT        ?= swift
BUILD_FLAGS  ?= -Xswiftc -warnings-as-errors
BIN          := $(shell $(SWIFT) build --show-bin-path 2>/dev/null)
DEV_STATE    ?= $(CURDIR)/.coffre
DEB_PACKAGES := libsodium-dev libsqlite3-dev libsystemd-dev pkg-config util-linux

.PHONY: deps build run test lint clean

## Install the Debian packages Coffre builds and tests against, only if one is missing.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "==> installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build $(BUILD_FLAGS)

## Start coffred in development mode in the foreground, with its state in .coffre/.
run: build
	@scripts/dev-banner.sh "$(BIN)" "$(DEV_STATE)"
	exec "$(BIN)/coffred" --dev --state-dir "$(DEV_STATE)"

## Build and run every test: unit tests, and end-to-end tests against a real coffred.
test: build lint
	COFFRE_BIN_DIR="$(BIN)" $(SWIFT) test $(BUILD_FLAGS)

lint:
	@scripts/lint.sh

clean:
	rm -rf .build
