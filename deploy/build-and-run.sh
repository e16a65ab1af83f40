#!/usr/bin/env bash
# The steps of deploy/Dockerfile, run on this machine instead of in a
# container, so they are proven where no image can be built:
#   build stage:   cargo build --release --locked -p qchat-service
#                  -> STAGE/usr/local/bin/qchatd
#   runtime stage: data volume STAGE/data, `qchatd serve --data-dir ... --listen ...`
#   HEALTHCHECK:   qchatd healthcheck --server ADDR --data-dir ...
#   docker stop:   SIGTERM, then wait for exit 0
#
# Usage: deploy/build-and-run.sh [--wait] [STAGE_DIR]
#   --wait         after the health check, keep serving until stdin closes
#                  (tests connect a client meanwhile), then stop.
#   STAGE_DIR      staging root (default: a new temporary directory).
# Environment:
#   QCHATD_BIN     use this binary instead of a release build (the test suite
#                  passes the debug binary: release builds do not belong there).
#   LISTEN         address to serve on (default 127.0.0.1:4433; the image
#                  uses 0.0.0.0:4433). Port 0 picks a free port.
set -euo pipefail

wait_stdin=0
if [ "${1:-}" = "--wait" ]; then wait_stdin=1; shift; fi
root=$(cd "$(dirname "$0")/.." && pwd)
stage=${1:-$(mktemp -d -t qchat-stage.XXXXXX)}
listen=${LISTEN:-127.0.0.1:4433}
bin="$stage/usr/local/bin/qchatd"

step() { echo "== $*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }

step "build"
if [ -n "${QCHATD_BIN:-}" ]; then
    echo "using prebuilt $QCHATD_BIN"
    install -D -m 0755 "$QCHATD_BIN" "$bin"
else
    start=$(date +%s)
    (cd "$root" && cargo build --release --locked -p qchat-service)
    install -D -m 0755 "$root/target/release/qchatd" "$bin"
    echo "release build took $(( $(date +%s) - start ))s"
fi
"$bin" --version

step "data volume"
mkdir -p "$stage/data"
chmod 0700 "$stage/data"

step "serve"
"$bin" serve --data-dir "$stage/data" --listen "$listen" \
    >"$stage/serve.out" 2>"$stage/serve.log" &
pid=$!
stop() {
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        rc=0
        wait "$pid" || rc=$?
        echo "stopped (exit $rc)"
        return "$rc"
    fi
}
trap 'kill -TERM "$pid" 2>/dev/null || true' EXIT
# Wait (bounded: 10 s) for the two contract lines.
for _ in $(seq 1 100); do
    grep -q '^certificate sha256 ' "$stage/serve.out" && break
    kill -0 "$pid" 2>/dev/null || fail "qchatd exited: $(cat "$stage/serve.log")"
    sleep 0.1
done
grep -q '^certificate sha256 ' "$stage/serve.out" || fail "qchatd did not start in 10s"
cat "$stage/serve.out"
addr=$(sed -n 's/^listening on //p' "$stage/serve.out")

step "healthcheck"
"$bin" healthcheck --server "$addr" --data-dir "$stage/data" || fail "unhealthy"

if [ "$wait_stdin" = 1 ]; then
    step "serving until stdin closes"
    cat >/dev/null
fi

step "stop"
stop || fail "qchatd exited non-zero"
trap - EXIT
echo "stage: $stage"
