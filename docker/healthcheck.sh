#!/usr/bin/env bash
# Container health probe shared by every spamflow image. The image HEALTHCHECK (which Compose
# uses) and the ECS task definitions run `spamflow-healthcheck KIND [PATH]`:
#
#   grpc        gRPC health protocol (grpc.health.v1.Health/Check) on SPAMFLOW_LISTEN_ADDR
#   http [PATH] HTTP GET of PATH (default /healthz) on SPAMFLOW_HTTP_ADDR; healthy on 2xx
#   tcp         TCP connect to SPAMFLOW_LISTEN_ADDR
#
# The probe always dials 127.0.0.1 on the configured port, because a service bound to
# 0.0.0.0 or [::] is reachable there. Exit status 0 means healthy, 1 unhealthy.
# NOTE: the grpc probe speaks plaintext, so a service with gRPC TLS enabled needs the probe's
# -tls flags added here.
set -euo pipefail

readonly PROBE_TIMEOUT_SECONDS=3

fail() {
    echo "unhealthy: $*" >&2
    exit 1
}

# Prints the port of an address such as 0.0.0.0:50051, [::]:50051 or host:9402.
port_of() {
    local address="$1"
    local port="${address##*:}"
    if [[ ! "$port" =~ ^[0-9]+$ ]]; then
        fail "cannot read a port from address '$address'"
    fi
    echo "$port"
}

probe_grpc() {
    local port
    port="$(port_of "${SPAMFLOW_LISTEN_ADDR:?SPAMFLOW_LISTEN_ADDR is not set}")"
    grpc-health-probe -addr="127.0.0.1:$port" \
        -connect-timeout="${PROBE_TIMEOUT_SECONDS}s" -rpc-timeout="${PROBE_TIMEOUT_SECONDS}s" \
        >/dev/null || fail "gRPC health check on port $port did not return SERVING"
}

probe_http() {
    local path="${1:-/healthz}"
    local port status_line
    port="$(port_of "${SPAMFLOW_HTTP_ADDR:?SPAMFLOW_HTTP_ADDR is not set}")"

    # Bash's /dev/tcp keeps curl and its libraries out of the runtime image.
    exec 3<>"/dev/tcp/127.0.0.1/$port" || fail "cannot connect to 127.0.0.1:$port"
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$path" >&3
    IFS= read -r -t "$PROBE_TIMEOUT_SECONDS" status_line <&3 ||
        fail "no HTTP response from 127.0.0.1:$port$path within ${PROBE_TIMEOUT_SECONDS}s"
    exec 3<&-

    case "$status_line" in
        "HTTP/1."?" 2"*) ;;
        *) fail "GET $path on port $port returned '${status_line%$'\r'}'" ;;
    esac
}

probe_tcp() {
    local port
    port="$(port_of "${SPAMFLOW_LISTEN_ADDR:?SPAMFLOW_LISTEN_ADDR is not set}")"
    exec 3<>"/dev/tcp/127.0.0.1/$port" || fail "cannot connect to 127.0.0.1:$port"
    exec 3<&-
}

case "${1:-}" in
    grpc) probe_grpc ;;
    http) probe_http "${2:-}" ;;
    tcp) probe_tcp ;;
    *)
        echo "usage: spamflow-healthcheck grpc | http [PATH] | tcp" >&2
        exit 64
        ;;
esac
