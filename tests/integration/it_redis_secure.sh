#!/usr/bin/env bash
# Redis with least privilege, over TLS.  A Redis of the test's own listens
# with TLS only (port 0, tls-port, client certificates required); the
# service reaches it through stunnel (hiredis 0.14 has no TLS) configured
# from deploy/redis/stunnel.conf, as the ACL user of
# deploy/redis/sio-orchestrator.acl (with this test's key prefixes, the
# replay marks' outside the dedupe keys' so that each pattern is needed).
# The contract runs at least once (sample flow, a lease renewed, a DLQ
# entry releasing its claim, a duplicate from the store, every sio.kv
# operation), through a reconnection after Redis closed the service's
# connections and through reconnections refused AUTH while the password
# was changed, then `replay` (a failed delivery, a replay, a skip), then
# exactly once (a command and its duplicate); after all of it Redis's ACL
# LOG must be empty (nothing sent was refused) and every command of the
# ACL must have been used.  Then the same credentials are refused a
# command and keys outside the list, wrong credentials end serve and
# replay at once with exit 1, and a tunnel that does not trust the
# server's certificate passes nothing.
source "$(dirname "$0")/lib.sh"
command -v stunnel4 >/dev/null || fail "stunnel4 missing: run scripts/setup"
command -v openssl >/dev/null || fail "openssl missing: run scripts/setup"

# Certificates: a CA, Redis's (for 127.0.0.1), the tunnel's client one,
# and a second CA that signed nothing of ours.
t=$RUN/tls
mkdir -p "$t"
ca() { openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$t/$1.key" \
    -out "$t/$1.pem" -days 1 -subj "/CN=$1" 2>/dev/null; }
cert() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$t/$1.key" \
        -out "$t/$1.csr" -subj "/CN=$1" 2>/dev/null
    printf '%b\n' "$2" >"$t/$1.ext"
    openssl x509 -req -in "$t/$1.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial -days 1 \
        -out "$t/$1.pem" -extfile "$t/$1.ext" 2>/dev/null
}
ca ca
ca rogue
cert server "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"
cert client "extendedKeyUsage=clientAuth"

# Redis: TLS only, client certificates required, an admin password for the
# test's own redis-cli.
rdir=$RUN/redis
mkdir -p "$rdir"
tport=$(free_port)
admin=admin-$$-$RANDOM
redis-server --bind 127.0.0.1 --port 0 --tls-port "$tport" --tls-cert-file "$t/server.pem" \
    --tls-key-file "$t/server.key" --tls-ca-cert-file "$t/ca.pem" --tls-auth-clients yes \
    --requirepass "$admin" --save "" --appendonly no --dir "$rdir" --daemonize yes \
    --pidfile "$rdir/pid" --logfile "$rdir/log" >/dev/null
trap 'st=$?; [ -f "$rdir/pid" ] && kill "$(cat "$rdir/pid")" 2>/dev/null; (exit $st); cleanup' EXIT
tls_cli() { redis-cli --tls --cacert "$t/ca.pem" --cert "$t/client.pem" --key "$t/client.key" -p "$tport" "$@"; }
admin_cli() { tls_cli --no-auth-warning -a "$admin" "$@"; }
for _ in $(seq 1 3000); do
    [ "$(admin_cli PING 2>/dev/null)" = PONG ] && break
    sleep 0.1
done
[ "$(admin_cli PING)" = PONG ] || fail "TLS redis did not start: $(tail -3 "$rdir/log")"
[ "$(redis-cli -p "$tport" PING 2>&1)" != PONG ] || fail "redis answered without TLS"

# The service's ACL user: deploy/redis/sio-orchestrator.acl with this
# test's key prefixes and a password of its own.  (lib.sh puts the replay
# marks under the dedupe prefix; here they get one of their own.)
export REPLAY_KEY_PREFIX="itr:${DEDUPE_KEY_PREFIX#it:}"
pw=pw-$$-$RANDOM
rule=$(grep '^user ' "$TOP/deploy/redis/sio-orchestrator.acl")
[[ $rule == *'~sio:dedupe:*'* && $rule == *'~sio:replay:*'* && $rule == *'>CHANGE-ME'* ]] \
    || fail "unexpected ACL line: $rule"
rule=${rule//'~sio:dedupe:*'/"~${DEDUPE_KEY_PREFIX}*"}
rule=${rule//'~sio:replay:*'/"~${REPLAY_KEY_PREFIX}*"}
rule=${rule//'>CHANGE-ME'/">$pw"}
read -r -a words <<<"${rule#user }"
[ "$(admin_cli ACL SETUSER "${words[@]}")" = OK ] || fail "ACL SETUSER ${words[*]}"
admin_cli ACL LOG RESET >/dev/null
admin_cli CONFIG RESETSTAT >/dev/null

# stunnel: deploy/redis/stunnel.conf with this test's ports and files.
tunnel() { # tunnel NAME CAFILE -> the local port
    local name=$1 lport
    lport=$(free_port)
    sed -e "s#^accept = .*#accept = 127.0.0.1:$lport#" -e "s#^connect = .*#connect = 127.0.0.1:$tport#" \
        -e "s#^CAfile = .*#CAfile = $2#" -e "s#^checkHost = .*#checkIP = 127.0.0.1#" \
        -e "s#^cert = .*#cert = $t/client.pem#" -e "s#^key = .*#key = $t/client.key#" \
        "$TOP/deploy/redis/stunnel.conf" >"$RUN/$name.conf"
    sed -i "s#^pid =\$#pid =\noutput = $RUN/$name.log#" "$RUN/$name.conf"
    stunnel4 "$RUN/$name.conf" >/dev/null 2>&1 &
    echo $! >"$RUN/$name.pid"
    for _ in $(seq 1 3000); do
        port_open "$lport" && { echo "$lport"; return; }
        sleep 0.1
    done
    fail "stunnel $name did not listen: $(cat "$RUN/$name.log")"
}
lport=$(tunnel tunnel "$t/ca.pem")
export DEDUPE_REDIS_ADDR=127.0.0.1:$lport REDIS_USERNAME=sio-orchestrator REDIS_PASSWORD=$pw
export DEDUPE_LEASE=600ms # renewed every 200 ms while a command runs
redis() { admin_cli "$@"; }

# 1. The contract through the tunnel, as the ACL user.
gate_start # holds a command while its lease is renewed
start_service a
out=$(send "tls-$$" noop '{"query":"hello"}') || fail "sample flow: $out"
jq -e -s '.[0].value.status == "step_result" and .[-1].value.status == "success"' <<<"$out" >/dev/null \
    || fail "sample flow: $out"
[[ "$(redis GET "${DEDUPE_KEY_PREFIX}tls-$$")" == done:* ]] || fail "no stored response in the TLS Redis"
# A command held at the gate until Redis has seen its lease renewed.
send "lease-$$" counted '{"id":"lease-'$$'","gate":"'"$GATE"'"}' >"$RUN/lease.out" 2>&1 &
lease_pid=$!
gate_wait held 1
renewed() { redis INFO commandstats | grep -q '^cmdstat_pexpire:calls=[1-9]'; }
for _ in $(seq 1 1500); do
    renewed && break
    sleep 0.2
done
renewed || fail "no lease renewal (PEXPIRE) while the command was held (waited 300 s)"
gate open >/dev/null
wait "$lease_pid" || fail "long command: $(cat "$RUN/lease.out")"
jq -e -s '.[-1].value.status == "success"' "$RUN/lease.out" >/dev/null || fail "long command: $(cat "$RUN/lease.out")"
out=$(send "lease-$$" counted '{"id":"lease-'$$'"}') || fail "duplicate: $out"
jq -e -s 'length == 1 and .[0].value.status == "success"' <<<"$out" >/dev/null || fail "duplicate: $out"
[ "$(redis GET "wf:counted:runs:lease-$$")" = 1 ] || fail "the duplicate ran again"
out=$(send "kv-$$" kvops '{"id":"'$$'"}') || fail "kv operations: $out"
jq -e -s '.[-1].value.result.outputs.ops | fromjson | .got == "v" and .n == 1 and .gone' <<<"$out" >/dev/null \
    || fail "kv operations: $out"
out=$(send "broken-$$" broken '{"query":"x"}') && fail "a script error succeeded: $out"
jq -e -s '.[-1].topic == env.KAFKA_RESPONSES_TOPIC + ".dlq"' <<<"$out" >/dev/null || fail "DLQ entry: $out"
[ -z "$(redis GET "${DEDUPE_KEY_PREFIX}broken-$$")" ] || fail "the dead-lettered command kept its claim"
pass "through stunnel as the ACL user: sample flow, a renewed lease, a duplicate from the store, kv, a DLQ entry releasing its claim"

# 1b. Redis closes every connection of the ACL user (a restart, a
# failover): the service reconnects, authenticates again, and goes on.
killed=$(redis CLIENT KILL USER sio-orchestrator)
[ "${killed:-0}" -ge 1 ] || fail "CLIENT KILL USER: $killed"
wait_log a '"redis unavailable: reconnecting"'
wait_log a '"redis connection restored"'
out=$(send "again-$$" noop '{"query":"again"}') || fail "after the reconnection: $out"
jq -e -s '.[-1].value.status == "success"' <<<"$out" >/dev/null || fail "after the reconnection: $out"
[[ "$(redis GET "${DEDUPE_KEY_PREFIX}again-$$")" == done:* ]] || fail "no stored response after the reconnection"
pass "Redis closed the ACL user's $killed connections: the service reconnected as that user and the next command succeeded"

# 1c. The user's password changes under a running service and its
# connections are closed: each reconnection is refused AUTH, logged once,
# and tried again until the password is back (not a connection left
# answering NOAUTH to every command).
acl_log_empty() { # nothing the service or replay sent was refused
    local log
    log=$(redis ACL LOG)
    [ -z "$log" ] || fail "Redis refused the service: $log"
}
acl_log_empty # (the refused AUTHs below are logged there)
[ "$(redis ACL SETUSER sio-orchestrator resetpass ">other-$pw")" = OK ] || fail "ACL SETUSER resetpass"
redis CLIENT KILL USER sio-orchestrator >/dev/null
wait_log a '"redis refused AUTH: reconnecting"'
grep '"redis refused AUTH: reconnecting"' "$RUN/a.err" | jq -e '.error | startswith("WRONGPASS")' >/dev/null \
    || fail "AUTH refusal: $(grep '"redis refused AUTH' "$RUN/a.err")"
! grep -q -- "$pw" "$RUN/a.err" || fail "the password is in the log"
restored=$(grep -c '"redis connection restored"' "$RUN/a.err")
[ "$(redis ACL SETUSER sio-orchestrator resetpass ">$pw")" = OK ] || fail "ACL SETUSER resetpass back"
wait_log a '"redis connection restored"' $((restored + 1))
redis ACL LOG RESET >/dev/null
out=$(send "back-$$" noop '{"query":"back"}') || fail "after the password came back: $out"
jq -e -s '.[-1].value.status == "success"' <<<"$out" >/dev/null || fail "after the password came back: $out"
[ "$(grep -c '"redis refused AUTH: reconnecting"' "$RUN/a.err")" = 1 ] \
    || fail "AUTH refusals logged more than once: $(grep -c '"redis refused AUTH' "$RUN/a.err")"
wait_committed
stop_service a
pass "a changed password: reconnections refused AUTH (logged once, no password in the log) and retried; once it was back the service went on"

# 1d. replay, with the same credentials: a delivery that fails (its claim
# dropped), a replay (claimed, then marked replayed), a second replay that
# finds the mark.
out=$("$BIN" replay --workflow broken --target 'not a topic!') && fail "replay to an invalid topic exited 0: $out"
jq -e -s '.[0].result == "failed" and (.[0].reason | test("not delivered")) and .[-1].summary.failed == 1' \
    <<<"$out" >/dev/null || fail "failed delivery: $out"
[ -z "$(redis --scan --pattern "${REPLAY_KEY_PREFIX}*")" ] || fail "a failed delivery left a mark"
out=$("$BIN" replay --workflow broken) || fail "replay exited $?: $out"
jq -e -s '.[0].result == "replayed" and .[-1].summary.replayed == 1' <<<"$out" >/dev/null || fail "replay: $out"
mark=$(redis --scan --pattern "${REPLAY_KEY_PREFIX}*")
[ "$(wc -l <<<"$mark")" = 1 ] && redis GET "$mark" | jq -e '.state == "replayed"' >/dev/null \
    || fail "replay's mark: '$mark'"
out=$("$BIN" replay --workflow broken) || fail "second replay exited $?: $out"
jq -e -s '.[0].result == "already_replayed" and .[-1].summary.replayed == 0' <<<"$out" >/dev/null \
    || fail "second replay: $out"
pass "replay as the ACL user: a failed delivery leaves no mark, a replay marks its entry under REPLAY_KEY_PREFIX, a second one skips it"

# 1e. Exactly once through the same tunnel and user (it also runs the
# command replay just sent back: dead-lettered again).
start_service b PROCESSING_GUARANTEE=exactly_once
out=$(send "eos-$$" counted '{"id":"eos-'$$'"}') || fail "exactly once: $out"
jq -e -s '.[-1].value.status == "success"' <<<"$out" >/dev/null || fail "exactly once: $out"
out=$(send "eos-$$" counted '{"id":"eos-'$$'"}') || fail "exactly once, duplicate: $out"
jq -e -s 'length == 1 and .[0].value.status == "success"' <<<"$out" >/dev/null || fail "exactly once, duplicate: $out"
[ "$(redis GET "wf:counted:runs:eos-$$")" = 1 ] || fail "exactly once: the duplicate ran again"
[ -n "$(redis GET "${DEDUPE_KEY_PREFIX}eos-$$")" ] || fail "exactly once: no record in Redis"
wait_committed
stop_service b
pass "exactly once as the ACL user: a command, its duplicate answered from the record"

# 2. Nothing the service or replay sent was refused, and between them they
# used every command the ACL allows (so the list is no longer than it
# needs).
acl_log_empty
stats=$(redis INFO commandstats)
for c in get set del pexpire incr ping auth; do
    grep -q "^cmdstat_$c:calls=[1-9]" <<<"$stats" || fail "the service never sent $c: $stats"
done
for c in $(tr ' ' '\n' <<<"$rule" | sed -n 's/^+//p'); do
    grep -q "^cmdstat_$c:calls=[1-9]" <<<"$stats" || fail "the ACL allows $c, which the service never sent"
done
pass "ACL LOG empty after the contract; every command of the ACL was used: $(tr ' ' '\n' <<<"$rule" | grep '^+' | tr '\n' ' ')"

# 3. The same credentials, anything else: refused.
svc() { redis-cli -p "$lport" --user sio-orchestrator --pass "$pw" --no-auth-warning "$@" 2>&1; }
[ "$(svc GET "${DEDUPE_KEY_PREFIX}tls-$$" | cut -c1-5)" = "done:" ] || fail "the ACL user cannot read its own keys"
set -f # the words below are Redis arguments, not file patterns
for cmd in "KEYS *" "FLUSHALL" "CONFIG GET maxmemory" "GET other:key" "SET wfx:1 1" "EVAL return(1) 0" "SUBSCRIBE x"; do
    # shellcheck disable=SC2086
    reply=$(timeout 300 redis-cli -p "$lport" --user sio-orchestrator --pass "$pw" --no-auth-warning $cmd 2>&1 || true)
    [[ $reply == *NOPERM* ]] || fail "'$cmd' was not refused: $reply"
done
set +f
pass "as the ACL user KEYS, FLUSHALL, CONFIG, EVAL, SUBSCRIBE and keys outside the prefixes are refused (NOPERM)"

# 4. Wrong credentials: exit 1 at once, with Redis's answer (serve and
# replay open their connections the same way).
rc=0
REDIS_PASSWORD=wrong-$$ STARTUP_TIMEOUT=2m "$BIN" serve >"$RUN/w.out" 2>"$RUN/w.err" || rc=$?
last=$(grep -v '^{' "$RUN/w.err" | tail -1)
[[ $rc = 1 && $last == *"redis at 127.0.0.1:$lport refused AUTH: WRONGPASS"* ]] || fail "wrong password: exit $rc: $last"
pass "wrong password: serve exits 1 at once: $last"
rc=0
REDIS_PASSWORD=wrong-$$ "$BIN" replay --workflow broken >"$RUN/wr.out" 2>"$RUN/wr.err" || rc=$?
last=$(grep -v '^{' "$RUN/wr.err" | tail -1)
[[ $rc = 1 && $last == *"redis at 127.0.0.1:$lport refused AUTH: WRONGPASS"* ]] \
    || fail "wrong password, replay: exit $rc: $last $(cat "$RUN/wr.out")"
pass "wrong password: replay exits 1: $last"

# 5. A tunnel that does not trust the server's certificate passes nothing.
bad=$(tunnel rogue "$t/rogue.pem")
reply=$(timeout 300 redis-cli -p "$bad" --user sio-orchestrator --pass "$pw" --no-auth-warning PING 2>&1 || true)
[ "$reply" != PONG ] || fail "a tunnel with the wrong CA reached Redis"
for _ in $(seq 1 3000); do
    grep -q "certificate verify failed" "$RUN/rogue.log" && break
    sleep 0.1
done
grep -q "certificate verify failed" "$RUN/rogue.log" || fail "rogue tunnel: $(tail -5 "$RUN/rogue.log")"
pass "a tunnel whose CA did not sign Redis's certificate refuses it (certificate verify failed)"
finish
