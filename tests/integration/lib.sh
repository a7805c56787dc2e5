# lib.sh - sourced by the service integration tests (it_service_*.sh).
#
# Each test gets its own topics, consumer group and dedupe prefix, so tests
# share the dev environment's broker and Redis without seeing each other.
# Services run in the background with logs in $RUN; everything is stopped
# and removed on exit.  Assertions print what they saw when they fail.
#
# Nothing here depends on how fast the machine is: work that must be in
# flight is held at the gate (gate_start; a workflow step calls the test
# HTTP server, which holds the request until the test releases it), and
# every wait is for an observed event - a log line, a message, a count at
# the gate - with a generous bound that only a broken test reaches.
set -euo pipefail
export LC_ALL=C # sort, join and comm agree on one order

TOP=${SIO_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BIN=${SIO_BIN:-$TOP/build/src/sio-orchestrator}
HTTPD=${SIO_TEST_HTTPD:-$TOP/build/tests/sio_test_httpd}
TOOLS=${SIO_TEST_TOOLS:-$TOP/build/tests/sio_test_tools}
: "${KAFKA_BROKERS:?run under tests/integration/with-devenv}"
: "${DEDUPE_REDIS_ADDR:?run under tests/integration/with-devenv}"
RUN=$(mktemp -d /tmp/sio-it.XXXXXX)
uniq="$(basename "$0" .sh).$$.$RANDOM"
export KAFKA_COMMANDS_TOPIC="it.$uniq.commands"
export KAFKA_RESPONSES_TOPIC="it.$uniq.responses"
export KAFKA_GROUP_ID="it.$uniq"
export DEDUPE_KEY_PREFIX="it:$uniq:"
export REPLAY_KEY_PREFIX="it:$uniq:replay:"
export WORKFLOWS_DIR="$TOP/tests/integration/workflows"
export LUA_DIR="$TOP/tests/integration/lua"
export TOPIC_PARTITIONS=${TOPIC_PARTITIONS:-3}
export LOG_LEVEL=${LOG_LEVEL:-info}
# SIGTERM must find the drain done on a slow machine too (it ends as soon
# as the work in flight has; it_service_drain sets its own).
export DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-5m}
# A loaded test machine can stall a worker or Redis for seconds; that must
# not read as a dead Redis (REDIS_TIMEOUT) in tests that count executions.
export REDIS_TIMEOUT=${REDIS_TIMEOUT:-60s}
# Each service's operations listener on a free port: tests (and other
# checkouts on this machine) run several services at once.
export OPS_ADDR=${OPS_ADDR:-127.0.0.1:0}
RESPONSES=$KAFKA_RESPONSES_TOPIC
DLQ=$KAFKA_RESPONSES_TOPIC.dlq
PASSED=0

redis() { redis-cli -h "${DEDUPE_REDIS_ADDR%:*}" -p "${DEDUPE_REDIS_ADDR##*:}" "$@"; }

# The key our kv capability uses for a workflow: wf:<intent>:<key>.
kv_get() { redis GET "wf:$1:$2"; }

# Commands run first on exit (a test's own servers); cleanup keeps the
# test's exit status whatever they return.
EXIT_HOOKS=()

cleanup() {
    local rc=$? hook
    for hook in "${EXIT_HOOKS[@]}"; do "$hook" || true; done
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
# has its partitions.  $SERVE_ARGS are added to the command line; $SERVE_BIN
# replaces the binary (the test build with native tools: $TOOLS).
start_service() {
    local name=$1
    shift
    # shellcheck disable=SC2086
    env "$@" "${SERVE_BIN:-$BIN}" serve ${SERVE_ARGS:-} >"$RUN/$name.out" 2>"$RUN/$name.err" &
    echo $! >"$RUN/$name.pid"
    for _ in $(seq 1 3000); do
        grep -q '"partitions assigned"' "$RUN/$name.err" 2>/dev/null && return 0
        kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null || fail "$name exited at start: $(tail -3 "$RUN/$name.err")"
        sleep 0.1
    done
    fail "$name did not get partitions within 300 s"
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

# messages TOPIC: every message in TOPIC now (JSON lines, as tail prints
# them): tail -e reads each partition to its end, however long that takes.
messages() { "$BIN" tail --from-beginning -e "$1"; }

# follow: a background `tail` of $RESPONSES and $DLQ from the beginning
# into $RUN/seen.jsonl, started once (a service must have created the
# topics first), so waiting for messages reads a file instead of the topic.
follow() {
    [ -e "$RUN/follow.pid" ] && return 0
    : >"$RUN/seen.jsonl" # exists before the background job opens it
    "$BIN" tail --from-beginning "$RESPONSES" "$DLQ" >>"$RUN/seen.jsonl" 2>"$RUN/follow.err" &
    echo $! >"$RUN/follow.pid"
}

# seen TOPIC: the messages of TOPIC ($RESPONSES or $DLQ) the follower has
# written so far; whole lines only.
seen() {
    [ "$1" = "$RESPONSES" ] || [ "$1" = "$DLQ" ] || fail "seen: only $RESPONSES and $DLQ are followed, not $1"
    follow
    local n
    n=$(wc -l <"$RUN/seen.jsonl")
    head -n "$n" "$RUN/seen.jsonl" | jq -c --arg t "$1" 'select(.topic == $t)'
}

# wait_count TOPIC N JQFILTER: until N messages of TOPIC match the filter.
wait_count() {
    local topic=$1 want=$2 filter=$3 got=0
    for _ in $(seq 1 1500); do
        got=$(seen "$topic" | jq -c "select($filter)" | wc -l)
        [ "$got" -ge "$want" ] && return 0
        sleep 0.2
    done
    fail "$topic: $got messages match $filter, want $want (waited 300 s)"
}

# wait_log NAME PATTERN [N]: until NAME's log has N (default 1) lines
# matching the grep pattern.
wait_log() {
    local name=$1 pattern=$2 want=${3:-1} got=0
    for _ in $(seq 1 1500); do
        got=$(grep -c -- "$pattern" "$RUN/$name.err" 2>/dev/null || true)
        [ "${got:-0}" -ge "$want" ] && return 0
        sleep 0.2
    done
    fail "$name logged $pattern $got times, want $want (waited 300 s)"
}

# gate_start: the test HTTP server (tests/support/httpd.h) with its gate
# closed.  Sets GATE (its URL, for a workflow's attrs), allows services to
# call it (SIO_HTTP_ALLOW) and lets their requests wait there as long as
# the test needs (HTTP_TIMEOUT: how long that is depends on the machine).
gate_start() {
    "$HTTPD" --hold >"$RUN/gate.out" 2>"$RUN/gate.err" &
    echo $! >"$RUN/gate.pid"
    for _ in $(seq 1 300); do
        [ -s "$RUN/gate.out" ] && break
        sleep 0.1
    done
    local port
    port=$(head -n 1 "$RUN/gate.out")
    [ -n "$port" ] || fail "the gate server did not start: $(cat "$RUN/gate.err")"
    GATE=http://127.0.0.1:$port
    export SIO_HTTP_ALLOW=127.0.0.1:$port HTTP_TIMEOUT=${HTTP_TIMEOUT:-1h}
}

# gate REQUEST: one control request (hold, open, release?n=K, stats,
# wait?held=N, wait?received=N, wait?answered=N); prints the gate's
# counts as JSON.  A wait gives up after 300 s.
gate() {
    timeout 300 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
        printf "GET /_gate/%s HTTP/1.1\r\nHost: gate\r\nConnection: close\r\n\r\n" "$1" >&3
        cat <&3' "${GATE##*:}" "$1" | tail -n 1 || fail "gate $1: no answer"
}

# gate_wait WHAT N: until the gate counts N requests WHAT (held, received
# or answered).
gate_wait() {
    local got
    got=$(gate "wait?$1=$2" | jq ".$1") || true
    [ "${got:-0}" -ge "$2" ] || fail "gate: ${got:-no answer} requests $1, want $2 (waited 300 s)"
}

# committed_lag: the group's total lag on the commands topic.
committed_lag() { "$BIN" offsets | tail -n 1 | jq '.lag'; }

wait_committed() {
    for _ in $(seq 1 1000); do
        [ "$(committed_lag)" = 0 ] && return 0
        sleep 0.3
    done
    fail "offsets not committed: $("$BIN" offsets | tr '\n' ' ')"
}

# port_open PORT: does anything listen on 127.0.0.1:PORT?
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# free_port: a 127.0.0.1 port nobody listens on (for a server of the test's
# own), below the ephemeral range (32768-), where a client socket can take
# a port we picked.
free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 12000))
        port_open "$p" || { echo "$p"; return; }
    done
    fail "no free port"
}

# DLQ assertions (the poison tests).  They read TOPIC's snapshot when
# `snapshot TOPIC` took one (once every offset is committed, one read
# serves every check), else the topic itself.
snapshot() { messages "$1" >"$RUN/snap.$1"; }
dlq_messages() { if [ -f "$RUN/snap.$1" ]; then cat "$RUN/snap.$1"; else messages "$1"; fi; }
# entries CID [TOPIC]: the entries of TOPIC (default $DLQ) whose
# correlation_id, or whose command's, is CID.
entries() { dlq_messages "${2:-$DLQ}" | jq -c "select(.value.correlation_id == \"$1\" or (try .value.command.correlation_id catch null) == \"$1\")"; }
# expect CID JQ WHAT [TOPIC]: CID has exactly one entry and it satisfies JQ.
expect() {
    local got
    got=$(entries "$1" "${4:-$DLQ}")
    [ -n "$got" ] || fail "$3: no DLQ entry for $1"
    echo "$got" | jq -e -s "length == 1 and (.[0].value | $2)" >/dev/null \
        || fail "$3: $(echo "$got" | jq -c '.value | del(.command, .command_base64)')"
}
# expect_raw TEXT JQ WHAT: exactly one entry's command_base64 is TEXT's
# bytes, and it satisfies JQ.
expect_raw() {
    local b64
    b64=$(printf '%s' "$1" | base64 -w0)
    expect_b64 "$b64" "$2" "$3"
}
# expect_b64 BASE64 JQ WHAT: likewise for bytes given as base64.
expect_b64() {
    printf '%s' "$1" >"$RUN/expect.b64" # a file: an argument holds 128 KB at most
    dlq_messages "$DLQ" | jq -e -s --rawfile b "$RUN/expect.b64" "[.[] | select(.value.command_base64 == \$b)] | length == 1 and (.[0].value | $2)" >/dev/null \
        || fail "$3: $(dlq_messages "$DLQ" | jq -c '.value | {error, command_base64: (.command_base64 // "" | .[0:40])}')"
}
# expect_where SELECT JQ WHAT: exactly one entry of $DLQ satisfies the jq
# filter SELECT (on the value; an entry it cannot apply to, e.g. attrs
# that are a string, does not), and it satisfies JQ.
expect_where() {
    dlq_messages "$DLQ" | jq -e -s "[.[] | .value | select(try ($1) catch false)] | length == 1 and (.[0] | $2)" >/dev/null \
        || fail "$3: $(dlq_messages "$DLQ" | jq -c ".value | select(try ($1) catch false) | del(.command, .command_base64)")"
}

# strict_json TOPIC...: every message on the topics is valid UTF-8 holding
# one strict JSON value, read from the raw bytes by Python's parser
# (tests/integration/strict_json.py), not ours.
strict_json() {
    local out
    out=$("$BIN" tail --from-beginning --idle 3s --base64 "$@" | python3 "$TOP/tests/integration/strict_json.py" 2>&1) \
        || fail "not strict UTF-8 JSON on $*: $out"
    echo "$out"
}
