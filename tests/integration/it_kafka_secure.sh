#!/usr/bin/env bash
# Secured Kafka: the contract (the sample flow, a DLQ entry, a duplicate
# answered from the store, offsets committed) over SASL_SSL and over TLS
# with client certificates (the dev broker's MTLS listener), with every
# client of the test - serve, send, tail, offsets - configured by the
# --config files scripts/devenv writes (the README's worked example) and
# KAFKA_BROKERS in the environment pointing nowhere, so nothing can go
# through the plaintext listener.  Then what an operator gets wrong: a
# wrong password, a client certificate the broker does not trust and a
# broker certificate the service does not trust each end serve at once
# with exit 1 and a message saying so, instead of a wait of
# STARTUP_TIMEOUT.  SCRAM-SHA-512 runs the contract when this librdkafka
# can do SCRAM with Kafka 4 (2.6.1 or later); with an older one the
# refusal must say why.
source "$(dirname "$0")/lib.sh"
: "${SIO_DEVENV_TLS:?the dev environment has no secured listeners (it predates them): scripts/devenv down, then up}"
T=$SIO_DEVENV_TLS
command -v openssl >/dev/null || fail "openssl missing: run scripts/setup"
export KAFKA_BROKERS=127.0.0.1:1 # only a --config file's brokers can work
export STARTUP_TIMEOUT=2m

# lib.sh's helpers, each with the listener's config file (wait_committed
# uses this committed_lag).
messages() { "$BIN" tail --config "$CONF" --from-beginning -e "$1"; }
committed_lag() { "$BIN" offsets --config "$CONF" | tail -n 1 | jq '.lag'; }

# contract NAME: the service and every client on $CONF.
contract() {
    local name=$1 out
    SERVE_ARGS="--config $CONF" start_service "$name"
    out=$(send "$name-$$" noop '{"query":"hello"}' --config "$CONF") || fail "$name: sample flow: $out"
    jq -e -s 'length == 2 and .[0].value.status == "step_result" and .[0].value.result.query == "hello"
        and .[1].value.status == "success" and all(.topic == env.KAFKA_RESPONSES_TOPIC)' <<<"$out" >/dev/null \
        || fail "$name: sample flow: $out"
    [[ "$(redis GET "${DEDUPE_KEY_PREFIX}$name-$$")" == done:* ]] || fail "$name: no stored response"

    out=$(send "$name-nope-$$" nope '{}' --config "$CONF") && fail "$name: an unknown workflow succeeded: $out"
    jq -e -s '.[-1].topic == env.KAFKA_RESPONSES_TOPIC + ".dlq" and (.[-1].value.error | startswith("unknown workflow '"'nope'"'"))
        and .[-1].value.error_class == "permanent" and .[-1].value.command.workflow == "nope"' <<<"$out" >/dev/null \
        || fail "$name: DLQ entry: $out"

    send "$name-dup-$$" counted '{"id":"'"$name-dup-$$"'"}' --config "$CONF" >/dev/null || fail "$name: counted failed"
    out=$(send "$name-dup-$$" counted '{"id":"'"$name-dup-$$"'"}' --config "$CONF") || fail "$name: duplicate: $out"
    jq -e -s 'length == 1 and .[0].value.status == "success"' <<<"$out" >/dev/null || fail "$name: duplicate: $out"
    [ "$(kv_get counted "runs:$name-dup-$$")" = 1 ] || fail "$name: the duplicate ran the workflow again"

    messages "$DLQ" | jq -e -s 'any(.key == "'"$name-nope-$$"'")' >/dev/null || fail "$name: tail did not read the DLQ"
    wait_committed
    stop_service "$name"
    pass "$name: sample flow, DLQ entry and a duplicate answered from the store; offsets committed; SIGTERM exits 0"
}

# refused NAME CONF PATTERN: serve with CONF must end with exit 1 and a
# last line that says the brokers refused, matching PATTERN.
refused() {
    local name=$1 conf=$2 pattern=$3 rc=0
    "$BIN" serve --config "$conf" >"$RUN/$name.out" 2>"$RUN/$name.err" || rc=$?
    local last
    last=$(grep -v '^{' "$RUN/$name.err" | tail -1)
    [ $rc = 1 ] || fail "$name: exit code $rc, want 1: $last"
    [[ $last == *"refused the connection"* && $last =~ $pattern ]] || fail "$name: message: $last"
    pass "$name: exit 1 at once: $last"
}

CONF=$T/sasl_plain.conf contract sasl_ssl
CONF=$T/mtls.conf contract mtls

# SCRAM-SHA-512: the contract when this librdkafka can, else the reason.
CONF=$T/sasl_scram.conf
"$BIN" serve --config "$CONF" >"$RUN/scram.out" 2>"$RUN/scram.err" &
echo $! >"$RUN/scram.pid"
for _ in $(seq 1 3000); do
    grep -q '"partitions assigned"' "$RUN/scram.err" && break
    kill -0 "$(cat "$RUN/scram.pid")" 2>/dev/null || break
    sleep 0.1
done
if grep -q '"partitions assigned"' "$RUN/scram.err"; then
    stop_service scram
    contract scram
else
    rc=0
    wait "$(cat "$RUN/scram.pid")" || rc=$?
    rm -f "$RUN/scram.pid"
    last=$(grep -v '^{' "$RUN/scram.err" | tail -1)
    [[ $rc = 1 && $last == *"refused the connection"* && $last == *"cannot authenticate with SCRAM to Kafka 4.0"* ]] \
        || fail "SCRAM: exit $rc: $last"
    pass "SCRAM-SHA-512 with this librdkafka: refused, and the message says why: $last"
fi

# What goes wrong in practice.
sed 's/^kafka.sasl.password=.*/kafka.sasl.password=not-the-password/' "$T/sasl_plain.conf" >"$RUN/wrong.conf"
refused wrong_password "$RUN/wrong.conf" 'SASL authentication error.*check sasl.mechanisms, sasl.username and sasl.password'

rogue=$RUN/rogue
mkdir -p "$rogue"
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$rogue/ca.key" \
    -out "$rogue/ca.pem" -days 1 -subj "/CN=not the dev CA" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$rogue/client.key" \
    -out "$rogue/client.csr" -subj "/CN=sio-orchestrator" 2>/dev/null
openssl x509 -req -in "$rogue/client.csr" -CA "$rogue/ca.pem" -CAkey "$rogue/ca.key" -CAcreateserial \
    -days 1 -out "$rogue/client.pem" 2>/dev/null
sed -e "s#^kafka.ssl.certificate.location=.*#kafka.ssl.certificate.location=$rogue/client.pem#" \
    -e "s#^kafka.ssl.key.location=.*#kafka.ssl.key.location=$rogue/client.key#" "$T/mtls.conf" >"$RUN/rogue_client.conf"
refused untrusted_client_certificate "$RUN/rogue_client.conf" 'SSL alert.*check ssl.ca.location'

sed "s#^kafka.ssl.ca.location=.*#kafka.ssl.ca.location=$rogue/ca.pem#" "$T/sasl_plain.conf" >"$RUN/rogue_ca.conf"
refused untrusted_broker_certificate "$RUN/rogue_ca.conf" 'certificate verify failed.*check ssl.ca.location'
finish
