# Faultline: one command to set up and test (`make test`), one to see it work (`make demo`).
SHELL := /bin/bash
APT_PACKAGES := libcap-dev libcap2-bin iproute2 iptables util-linux mount e2fsprogs procps python3 python3-venv curl gzip iputils-ping
SWIFT ?= swift

.PHONY: deps build test api-check demo clean

# Installs the Debian/Ubuntu packages the build and tests need, when any is missing.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build

# Every test, then a check that they left nothing behind (namespaces, rules, qdiscs, mounts, processes, files),
# then the agent's API against docs/openapi.yaml (schemathesis, installed into .build-tools/venv).
test: deps
	$(SWIFT) test --no-parallel
	FAULTLINE_LEAK_CHECK=1 $(SWIFT) test --skip-build --filter LeakCheckTests
	scripts/api-conformance.sh

# The agent's API against docs/openapi.yaml, alone.
api-check: build
	scripts/api-conformance.sh

# Validates and plans the example scenarios: shows what a game day would do, runs nothing.
demo: build
	.build/debug/faultline validate scenarios/*.yaml
	.build/debug/faultline plan scenarios/checkout-db-latency.yaml

clean:
	rm -rf .build
