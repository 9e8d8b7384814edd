# syntax=docker/dockerfile:1
# Faultline's image: the agent (`faultline agent`) with only what the faults need.
#   docker build -t faultline:0.1.0 .
#   docker run --rm --cap-add NET_ADMIN -e FAULTLINE_TOKEN=... -v "$PWD/tls:/etc/faultline/tls:ro" -p 7465:7465 faultline:0.1.0
#   (tls/ holds tls.crt and tls.key, readable by uid 65532: off loopback the agent serves HTTPS only)
# Without a Docker engine, scripts/build-image builds the same runtime image with buildah from a binary built
# on the host, or (--dockerfile) this file with buildah and a local Swift builder image.
# Deployment examples: deploy/ (Kubernetes sidecar and DaemonSet, systemd).

ARG SWIFT_IMAGE=swift:6.3.1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- build: a static-stdlib release binary (stripped: no debug info in the image), its completions and man page ----
FROM ${SWIFT_IMAGE} AS build
# Versions come from the pinned base image's Debian release; exact package pins would break with each security update.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libcap-dev libsqlite3-dev python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so a source change does not fetch them again.
COPY Package.swift ./
RUN swift package resolve
COPY Sources ./Sources
COPY Tests ./Tests
COPY scripts/generate-shell-files.py ./scripts/
RUN swift build -c release --static-swift-stdlib --product faultline \
 && install -s -D -m 0755 "$(swift build -c release --show-bin-path)/faultline" /out/bin/faultline \
 && python3 scripts/generate-shell-files.py /out/bin/faultline /out

# ---- ctr: the containerd CLI (only that binary of Debian's containerd package), with which container and pod
# targets are found on containerd nodes ----
FROM ${RUNTIME_IMAGE} AS ctr
WORKDIR /tmp/containerd
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get download containerd \
 && dpkg-deb -x containerd_*.deb . \
 && install -D -m 0755 usr/bin/ctr /out/ctr \
 && rm -rf /var/lib/apt/lists/*

# ---- rootfs: the runtime packages installed in Debian slim, then only what Faultline runs copied out of it
# (scripts/image-rootfs: tc, ip, ss, nsenter, iptables and ip6tables on nf_tables, their libraries, CA certificates,
# the faultline user), so the image carries no shell and no package manager ----
FROM ${RUNTIME_IMAGE} AS rootfs
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      iproute2 iptables libcap2 libcap2-bin libsqlite3-0 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/bin/faultline /usr/local/bin/faultline
COPY --from=ctr /out/ctr /usr/local/bin/ctr
COPY scripts/image-rootfs /usr/local/sbin/image-rootfs
# setcap is carried too: the runtime stage sets the file capabilities itself (not every builder's COPY keeps them).
RUN image-rootfs /rootfs /usr/local/bin/faultline /usr/local/bin/ctr /usr/sbin/setcap
COPY --from=build /out/share/ /rootfs/usr/local/share/

# ---- runtime: that tree alone ----
FROM scratch AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="faultline" \
      org.opencontainers.image.description="Chaos and game-day agent for Linux: declarative faults, SLO probes, reliable revert" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/faultline/faultline" \
      org.opencontainers.image.documentation="https://github.com/faultline/faultline#readme"
COPY --from=rootfs /rootfs/ /
RUN ["/usr/sbin/setcap", "cap_net_admin,cap_net_raw=ip", "/usr/local/bin/faultline"]
ENV FAULTLINE_STATE_DIR=/var/lib/faultline
# Non-root by default: the binary's file capabilities (permitted, not effective) give it NET_ADMIN and NET_RAW
# where the container's bounding set has them (--cap-add NET_ADMIN; Kubernetes capabilities.add), and it hands
# them to the tc and iptables it runs. Host faults (other namespaces, other users' processes) need --user 0.
USER 65532:65532
WORKDIR /var/lib/faultline
EXPOSE 7465
# The health check sends no secret and does not check the agent's certificate. scripts/build-image sets the same
# exec form (it checks that they agree).
HEALTHCHECK --interval=15s --timeout=5s --start-period=5s --retries=3 CMD ["faultline", "health", "--url", "https://127.0.0.1:7465"]
ENTRYPOINT ["faultline", "agent"]
# A non-loopback address needs a token (-e FAULTLINE_TOKEN=... or --token-file, mode 0600) and HTTPS: mount the
# certificate and key (a Kubernetes TLS secret has these names) at /etc/faultline/tls.
CMD ["--listen", "0.0.0.0:7465", "--tls-cert", "/etc/faultline/tls/tls.crt", "--tls-key", "/etc/faultline/tls/tls.key"]
