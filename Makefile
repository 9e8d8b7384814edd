# Faultline: one command to set up and test (`make test`), one to see it work (`sudo make demo`).
SHELL := /bin/bash
# What the build, the demo and the tests need; the tests also check what ships (image, completions, man page).
APT_PACKAGES := libcap-dev libcap2-bin iproute2 iptables util-linux mount e2fsprogs procps python3 python3-venv curl gzip iputils-ping
TEST_PACKAGES := buildah debootstrap zsh fish mandoc groff-base prometheus openssl podman runc conmon containerd docker.io dnsmasq-base
SWIFT ?= swift
# The toolchain where it is usually unpacked, also under sudo (whose PATH leaves it out).
export PATH := $(PATH):/opt/swift/usr/bin

.PHONY: deps test-deps build release test api-check shipping-check demo install image bench soak clean
PREFIX ?= /usr/local

# Installs the Debian/Ubuntu packages the build and the demo need, when any is missing.
deps:
	@scripts/apt-install $(APT_PACKAGES)

# The same for the tests.
test-deps: deps
	@scripts/apt-install $(TEST_PACKAGES)

build: deps
	$(SWIFT) build

# The release binary as it ships (the Dockerfile's command): the Swift runtime linked in, and linked with lld as
# Package.swift says for release builds. In .build/release/faultline; stripped when installed or put in the image.
release: deps
	$(SWIFT) build -c release --static-swift-stdlib --product faultline

# The benchmarks in one table, side by side with Chaos Toolkit (docs/benchmarks.md), from the current release build.
# Needs root (scratch namespaces, iptables, tc, a loop mount); the build is a no-op when current.
bench: release
	scripts/bench.py

# Every test, then a check that they left nothing behind (namespaces, rules, qdiscs, mounts, processes, files),
# then the agent's API against docs/openapi.yaml (schemathesis, installed into .build-tools/venv), then what ships
# besides the binary: Dockerfile (hadolint), completions and man page, systemd unit, the image (buildah smoke test).
test: test-deps
	@# The OTLP receivers of the trace tests need opentelemetry-proto and grpcio (pinned, in .build-tools/venv).
	scripts/test-python >/dev/null
	@# Every module imported is a declared dependency (SwiftPM's check covers the package's own targets).
	$(SWIFT) build --build-tests --explicit-target-dependency-import-check error
	$(SWIFT) test --no-parallel
	FAULTLINE_LEAK_CHECK=1 $(SWIFT) test --skip-build --filter LeakCheckTests
	scripts/api-conformance.sh
	@# A long-lived agent, short: 600 runs through one agent with --keep-runs 100; memory, state directory and
	@# latency must not grow (the full soak, 10,000 runs on the release build: make soak).
	scripts/soak.py --binary .build/debug/faultline --runs 600 --keep-runs 100 --every 100 --baseline 200 --check
	scripts/check-shipping.sh

# The soak benchmark (docs/benchmarks.md): 10,000 short runs through one agent with --keep-runs 200, on the release
# build. Needs root; about half an hour.
soak: release
	scripts/soak.py

# The agent's API against docs/openapi.yaml, alone.
api-check: build
	scripts/api-conformance.sh

# Dockerfile, completions, man page, systemd unit and the image smoke test, alone.
shipping-check: build test-deps
	scripts/check-shipping.sh

# A game day in a sandbox (needs root): two namespaces, a web service, scenarios/demo.yaml with the live view,
# the abort and the revert, reports in out/demo/; removes the sandbox afterwards.
demo:
	@# Without root, scripts/demo says what it needs and fails before anything is built.
	@if [ "$$(id -u)" -ne 0 ]; then scripts/demo; fi
	@$(MAKE) --no-print-directory build
	scripts/demo .build/debug/faultline

# A release build with its completions and man page under $(PREFIX) (default /usr/local).
install: release
	install -s -D -m 0755 "$$($(SWIFT) build -c release --show-bin-path)/faultline" "$(DESTDIR)$(PREFIX)/bin/faultline"
	python3 scripts/generate-shell-files.py "$(DESTDIR)$(PREFIX)/bin/faultline" "$(DESTDIR)$(PREFIX)"

# The runtime image without a Docker engine (buildah, needs root); with Docker: docker build -t faultline .
image: build test-deps
	scripts/build-image

clean:
	rm -rf .build
