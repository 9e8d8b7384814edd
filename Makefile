# Faultline: one command to set up and test (`make test`), one to see it work (`sudo make demo`).
SHELL := /bin/bash
APT_PACKAGES := libcap-dev libcap2-bin iproute2 iptables util-linux mount e2fsprogs procps python3 python3-venv curl gzip iputils-ping \
                buildah debootstrap zsh fish mandoc groff-base
SWIFT ?= swift

.PHONY: deps build test api-check shipping-check demo install image clean
PREFIX ?= /usr/local

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
# then the agent's API against docs/openapi.yaml (schemathesis, installed into .build-tools/venv), then what ships
# besides the binary: Dockerfile (hadolint), completions and man page, systemd unit, the image (buildah smoke test).
test: deps
	$(SWIFT) test --no-parallel
	FAULTLINE_LEAK_CHECK=1 $(SWIFT) test --skip-build --filter LeakCheckTests
	scripts/api-conformance.sh
	scripts/check-shipping.sh

# The agent's API against docs/openapi.yaml, alone.
api-check: build
	scripts/api-conformance.sh

# Dockerfile, completions, man page, systemd unit and the image smoke test, alone.
shipping-check: build
	scripts/check-shipping.sh

# A game day in a sandbox (needs root): two namespaces, a web service, scenarios/demo.yaml with the live view,
# the abort and the revert, reports in out/demo/; removes the sandbox afterwards.
demo:
	@if [ "$$(id -u)" -ne 0 ]; then scripts/demo; fi
	@$(MAKE) --no-print-directory build
	scripts/demo .build/debug/faultline

# A release build with its completions and man page under $(PREFIX) (default /usr/local).
install: deps
	$(SWIFT) build -c release --product faultline
	install -D -m 0755 "$$($(SWIFT) build -c release --show-bin-path)/faultline" "$(DESTDIR)$(PREFIX)/bin/faultline"
	python3 scripts/generate-shell-files.py "$(DESTDIR)$(PREFIX)/bin/faultline" "$(DESTDIR)$(PREFIX)"

# The runtime image without a Docker engine (buildah, needs root); with Docker: docker build -t faultline .
image: build
	scripts/build-image

clean:
	rm -rf .build
