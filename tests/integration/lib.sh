# lib.sh - sourced by the service integration tests (it_service_*.sh).
#
# Each test gets its own topics, consumer group and dedupe prefix, so tests
# share the dev environment's broker and Redis without seeing each other.
# Services run in the background with logs in $RUN; everything is stopped
# and removed on exit.  Assertions print what they saw when they fail.
set -euo pipefail

TOP=${SIO_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BIN=${SIO_BIN:-$TOP/build/src/sio-orchestrator}
: "${KAFKA_BROKERS:?run under tests/integration/with-devenv}"
: "${DEDUPE_REDIS_ADDR:?run under tests/integration/with-devenv}"
RUN=$(mktemp -d /tmp/sio-it.XXXXXX)
uniq="$(basename "$0" .sh).$$.$RANDOM"
export KAFKA_COMMANDS_TOPIC="it.$uniq.commands"
export KAFKA_RESPONSES_TOPIC="it.$uniq.responses"
export KAFKA_GROUP_ID="it.$uniq"
export DEDUPE_KEY_PREFIX="it:$uniq:"
export WORKFLOWS_DIR="$TOP/tests/integration/workflows"
export LUA_DIR="$TOP/tests/integration/lua"
export TOPIC_PARTITIONS=${TOPIC_PARTITIONS:-3}
export LOG_LEVEL=${LOG_LEVEL:-info}
export DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-20s}
RESPONSES=$KAFKA_RESPONSES_TOPIC
DLQ=$KAFKA_RESPONSES_TOPIC.dlq
PASSED=0

redis() { redis-cli -h "${DEDUPE_REDIS_ADDR%:*}" -p "${DEDUPE_REDIS_ADDR##*:}" "$@"; }

# The key our kv capability uses for a workflow: wf:<intent>:<key>.
kv_get() { redis GET "wf:$1:$2"; }

cleanup() {
    local rc=$?
    for f in "$RUN"/*.pid; do
        [ -e "$f" ] || continue
        kill -9 "$(cat "$f")" 2>/dev/null || true
    done
    if [ $rc -ne 0 ]; then
        for f in "$RUN"/*.err; do
            [ -e "$f" ] || continue
            echo "--- last lines of $f" >&2
            tail -n 30 "$f" >&2
        done
    fi
    rm -rf "$RUN"
    exit $rc
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { PASSED=$((PASSED + 1)); echo "ok - $*"; }
finish() { echo "$PASSED passed, 0 failed"; }

# start_service NAME [VAR=value...]: serve in the background, wait until it
# has its partitions.  $SERVE_ARGS are added to the command line.
start_service() {
    local name=$1
    shift
    # shellcheck disable=SC2086
    env "$@" "$BIN" serve ${SERVE_ARGS:-} >"$RUN/$name.out" 2>"$RUN/$name.err" &
    echo $! >"$RUN/$name.pid"
    for _ in $(seq 1 600); do
        grep -q '"partitions assigned"' "$RUN/$name.err" 2>/dev/null && return 0
        kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null || fail "$name exited at start: $(tail -3 "$RUN/$name.err")"
        sleep 0.1
    done
    fail "$name did not get partitions within 60 s"
}

# stop_service NAME: SIGTERM, then the exit code must be 0.
stop_service() {
    local pid
    pid=$(cat "$RUN/$1.pid")
    kill -TERM "$pid"
    local rc=0
    wait "$pid" || rc=$?
    rm -f "$RUN/$1.pid"
    [ $rc -eq 0 ] || fail "$1 exited with $rc after SIGTERM"
}

kill9_service() {
    kill -9 "$(cat "$RUN/$1.pid")"
    wait "$(cat "$RUN/$1.pid")" 2>/dev/null || true
    rm -f "$RUN/$1.pid"
}

# send CID WORKFLOW ATTRS [extra send flags...]: publish one command, wait.
send() {
    local cid=$1 wf=$2 attrs=$3
    shift 3
    "$BIN" send "$wf" --correlation-id "$cid" --attrs "$attrs" --wait 60s "$@"
}

# messages TOPIC [IDLE]: every message of TOPIC (JSON lines), once it has
# been quiet for IDLE (default 3s).
messages() { "$BIN" tail --from-beginning --idle "${2:-3s}" "$1"; }

# wait_count TOPIC N JQFILTER: until N messages of TOPIC match the filter.
wait_count() {
    local topic=$1 want=$2 filter=$3 got=0
    for _ in $(seq 1 200); do
        got=$(messages "$topic" 300ms | jq -c "select($filter)" | wc -l)
        [ "$got" -ge "$want" ] && return 0
    done
    fail "$topic: $got messages match $filter, want $want"
}

# committed_lag: the group's total lag on the commands topic.
committed_lag() { "$BIN" offsets | tail -n 1 | jq '.lag'; }

wait_committed() {
    for _ in $(seq 1 100); do
        [ "$(committed_lag)" = 0 ] && return 0
        sleep 0.3
    done
    fail "offsets not committed: $("$BIN" offsets | tr '\n' ' ')"
}

# port_open PORT: does anything listen on 127.0.0.1:PORT?
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# free_port: a 127.0.0.1 port nobody listens on (for a server of the test's own).
free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 20000))
        port_open "$p" || { echo "$p"; return; }
    done
    fail "no free port"
}
