#!/usr/bin/env bash
# The README's first command: scripts/run sets up, builds and serves on the
# embedded broker, and the seed's sample flow round-trips through it.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
export SIO_RUN_ONCE=1 SIO_BUILD_DIR=${SIO_BINARY_DIR:-$top/build}/readme-run
unset KAFKA_BROKERS
out=$("$top/scripts/run" 2>&1)
echo "$out" | grep '^{' | jq -e -s 'length == 2
    and .[0].value.status == "step_result" and .[0].value.result.query == "hello"
    and .[1].value.status == "success" and .[1].value.correlation_id == "abc"' >/dev/null \
    || { echo "FAIL: scripts/run printed: $out" >&2; exit 1; }
echo "ok - scripts/run serves on the embedded broker; noop/hello round-trips"

# The build scripts/run made (it builds only the binary's target) runs an
# author's specs: `sio-orchestrator test` in a project folder elsewhere.
proj=$(mktemp -d /tmp/sio-readme.XXXXXX)
trap 'rm -rf "$proj"' EXIT
bin=$SIO_BUILD_DIR/src/sio-orchestrator
out=$(cd "$proj" && env -u SIO_BINARY_DIR -u SIO_SOURCE_DIR "$bin" new greet >/dev/null \
      && env -u SIO_BINARY_DIR -u SIO_SOURCE_DIR "$bin" test 2>&1) \
    || { echo "FAIL: sio-orchestrator test from scripts/run's build: $out" >&2; exit 1; }
echo "ok - sio-orchestrator test runs a project's specs from the build scripts/run made"
echo "2 passed, 0 failed"
