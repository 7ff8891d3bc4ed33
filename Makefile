# fleetwave: `make demo` and `make test` each do their own set-up.
SHELL := /bin/bash
NODE_BIN := node_modules/.bin

.PHONY: setup build proto proto-check test faults demo lint bench bench-scale bench-console dist clean

# npm dependencies (kept between runs while package-lock.json is unchanged), and nats-server, haproxy (the
# router's load balancer) and chromium (the console's browser tests, driven by playwright-core) from Debian's
# packages when they are not there.
setup: node_modules/.stamp
	@command -v nats-server >/dev/null || { echo "installing nats-server (Debian package)"; \
	  (apt-get install -y -qq nats-server >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq nats-server >/dev/null)); }
	@test -x /usr/sbin/haproxy || command -v haproxy >/dev/null || { echo "installing haproxy (Debian package)"; \
	  (apt-get install -y -qq haproxy >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq haproxy >/dev/null)); }
	@test -x /usr/bin/chromium || { echo "installing chromium (Debian package, for the console's browser tests)"; \
	  (apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)); }

node_modules/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

proto: node_modules/.stamp
	$(NODE_BIN)/buf generate
	@echo "generated proto/gen"

# tsc, then the web console (controller/console/, its own tsconfig with the DOM lib) bundled into dist/console/ with its sizes.
build: setup
	$(NODE_BIN)/tsc -p tsconfig.json
	$(NODE_BIN)/tsc -p controller/console/tsconfig.json
	node dist/deploy/console/build.js

lint: setup
	$(NODE_BIN)/tsc -p tsconfig.json --noEmit
	$(NODE_BIN)/tsc -p tsconfig.test.json --noEmit
	$(NODE_BIN)/tsc -p controller/console/tsconfig.json

test: build
	@node test/run-tests.mjs

# The fault suites alone (controller/agent kills, NATS outage, stream cut, reboot, full disk), ending with their table.
faults: build
	@node test/faults/run.mjs

# `make demo --keep` (or KEEP=1): after the release the fleet stays up, with the console's URL, until Ctrl-C. GNU make
# reads --keep as --keep-going, which puts `k` in MAKEFLAGS's first word.
DEMO_KEEP := $(if $(or $(KEEP),$(findstring k,$(firstword -$(MAKEFLAGS)))),--keep)
demo: build
	node dist/examples/demo/run.js $(DEMO_KEEP)

bench: build
	node dist/test/bench/rollout.js

# One controller against 1,000, 3,000 and 10,000 simulated agents (README, "Scale benchmark"); flags: ARGS="--agents 1000 --idle-s 10".
bench-scale: build
	node dist/test/bench/scale-bench.js $(ARGS)

# The web console in headless Chromium against N simulated agents (default 10,000): paint, views ready, bytes, refetches and heap during a release; flags: ARGS="--agents 1000".
bench-console: build
	node dist/test/bench/console-bench.js $(ARGS)

# The agent bundle, its single executable, the CLI bundle and the two .deb files in dist/pkg/, with their sizes and the agent's start times.
dist: build
	node dist/deploy/dist/build.js

clean:
	rm -rf dist .demo
