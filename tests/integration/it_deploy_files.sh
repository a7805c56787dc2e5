#!/usr/bin/env bash
# The deployment files, checked with real tools (no Docker engine and no
# Kubernetes cluster run here):
# - docker/compose.yaml loads with compose-go, the loader docker compose
#   uses (schema, interpolation, references), and follows the rules that
#   make the first `up` work: healthchecks on Kafka and Redis, the
#   orchestrator waiting for both to be healthy, restart policies, a stop
#   grace period longer than DRAIN_TIMEOUT;
# - deploy/kubernetes/*.yaml validate strictly against the Kubernetes 1.25
#   and 1.37 schemas (kubernetes-validate) and follow the operating rules:
#   probes on /healthz and /readyz at OPS_ADDR's port, grace period longer
#   than DRAIN_TIMEOUT plus the final flush, a startup probe covering
#   STARTUP_TIMEOUT, a memory request covering the benchmark's peak RSS,
#   replicas <= partitions, a PodDisruptionBudget over the pods, whole
#   ConfigMap folders mounted (no subPath), the image's user, and the
#   sample workflow identical to workflows/noop.yaml;
# - every setting named in either file is one `sio-orchestrator help` knows.
# Each validator is also shown a broken copy, which it must reject.
set -euo pipefail
TOP=${SIO_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BIN=${SIO_BIN:-$TOP/build/src/sio-orchestrator}
RUN=$(mktemp -d /tmp/sio-it.XXXXXX)
trap 'rm -rf "$RUN"' EXIT
PASSED=0
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { PASSED=$((PASSED + 1)); echo "ok - $*"; }

tools=$("$TOP/scripts/deploy-tools")
composecheck=$(sed -n 's/^composecheck=//p' <<<"$tools")
kubevalidate=$(sed -n 's/^kubernetes-validate=//p' <<<"$tools")
python=$(dirname "$kubevalidate")/python
yaml2json() { "$python" -c 'import json, sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])): print(json.dumps(d))' "$1"; }

# Settings the binary knows.
known=$("$BIN" help | sed -n 's/^  \([A-Z][A-Z0-9_]*\) .*/\1/p')
check_settings() { # WHERE NAME...
    local where=$1 n
    shift
    for n in "$@"; do grep -qx "$n" <<<"$known" || fail "$where: $n is not a setting of sio-orchestrator"; done
}
# Duration text ("45s", "1m30s", "500ms") -> milliseconds.
ms() { "$python" -c 'import re, sys
units = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000}
parts = re.findall(r"([0-9.]+)(ms|s|m|h)", sys.argv[1])
assert parts and "".join(a + b for a, b in parts) == sys.argv[1], sys.argv[1]
print(int(sum(float(a) * units[b] for a, b in parts)))' "$1"; }

# --- compose -------------------------------------------------------------
compose="$TOP/docker/compose.yaml"
"$composecheck" "$compose" >"$RUN/compose.json" 2>"$RUN/compose.err" \
    || fail "compose-go rejects docker/compose.yaml: $(cat "$RUN/compose.err")"
sed 's/condition: service_healthy/condition: service_helthy/' "$compose" >"$RUN/bad1.yaml"
sed 's/^  redis:$/  rediss:/' "$compose" >"$RUN/bad2.yaml"
for bad in bad1 bad2; do
    "$composecheck" "$RUN/$bad.yaml" >/dev/null 2>&1 && fail "compose-go accepts a broken copy ($bad)"
done
pass "docker/compose.yaml loads with compose-go (which rejects a bad condition and a missing service)"

c=$(cat "$RUN/compose.json")
app=$(jq -r '.services | to_entries[] | select(.value.build) | .key' <<<"$c")
[ "$(wc -l <<<"$app")" = 1 ] || fail "want one service built from docker/Dockerfile, got: $app"
deps=$(jq -r --arg a "$app" '.services | keys[] | select(. != $a)' <<<"$c")
for d in $deps; do
    jq -e --arg d "$d" '.services[$d].healthcheck.test | length > 0 and .[0] != "NONE"' <<<"$c" >/dev/null \
        || fail "$d has no healthcheck"
    jq -e --arg a "$app" --arg d "$d" '.services[$a].depends_on[$d].condition == "service_healthy"' \
        <<<"$c" >/dev/null || fail "$app does not wait for $d to be healthy"
done
jq -e '[.services[].restart] | all(. == "unless-stopped" or . == "always" or (. // "" | startswith("on-failure")))' \
    <<<"$c" >/dev/null || fail "a service without a restart policy: $(jq -c '[.services[] | .restart]' <<<"$c")"
pass "Kafka and Redis have healthchecks, $app waits for both to be healthy, every service restarts"

env_of() { jq -r --arg a "$app" --arg k "$1" '.services[$a].environment[$k] // empty' <<<"$c"; }
drain=$(env_of DRAIN_TIMEOUT)
grace=$(jq -r --arg a "$app" '.services[$a].stop_grace_period // "10s"' <<<"$c")
[ "$(ms "$grace")" -gt "$(ms "${drain:-30s}")" ] || fail "stop_grace_period $grace is not longer than DRAIN_TIMEOUT ${drain:-30s}"
kafka_host=$(env_of KAFKA_BROKERS | cut -d, -f1 | cut -d: -f1)
redis_host=$(env_of DEDUPE_REDIS_ADDR | cut -d: -f1)
grep -qx "$kafka_host" <<<"$deps" || fail "KAFKA_BROKERS names $kafka_host, not a service"
grep -qx "$redis_host" <<<"$deps" || fail "DEDUPE_REDIS_ADDR names $redis_host, not a service"
jq -e --arg k "$kafka_host" '.services[$k].environment.KAFKA_ADVERTISED_LISTENERS | test("//" + $k + ":")' \
    <<<"$c" >/dev/null || fail "Kafka does not advertise itself as $kafka_host"
pinned=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$TOP/scripts/kafka/pom.xml")
jq -e --arg k "$kafka_host" --arg v "$pinned" '.services[$k].image | endswith(":" + $v)' <<<"$c" >/dev/null \
    || fail "the compose Kafka image is not the broker version tested here ($pinned)"
jq -e --arg a "$app" '.services[$a].build | (.context + "/" + .dockerfile)' <<<"$c" >/dev/null
[ -f "$(jq -r --arg a "$app" '.services[$a].build | .context + "/" + .dockerfile' <<<"$c")" ] \
    || fail "the build's Dockerfile does not exist"
mapfile -t names < <(jq -r --arg a "$app" '.services[$a].environment | keys[]' <<<"$c")
check_settings docker/compose.yaml "${names[@]}"
pass "grace $grace > DRAIN_TIMEOUT ${drain:-30s}; brokers, Redis and Kafka $pinned line up; every variable is a setting"

# --- kubernetes ----------------------------------------------------------
k8s=("$TOP"/deploy/kubernetes/*.yaml)
for v in 1.25.0 1.37.0; do
    "$kubevalidate" --strict --quiet -k "$v" "${k8s[@]}" >"$RUN/kv.out" 2>&1 \
        || fail "deploy/kubernetes against Kubernetes $v: $(cat "$RUN/kv.out")"
done
sed 's/periodSeconds: 5$/periodSeconds: "5"/' "$TOP/deploy/kubernetes/deployment.yaml" >"$RUN/bad1.yaml"
sed 's/readOnlyRootFilesystem:/readOnlyRootFileSystem:/' "$TOP/deploy/kubernetes/deployment.yaml" >"$RUN/bad2.yaml"
for bad in bad1:periodSeconds bad2:readOnlyRootFileSystem; do
    "$kubevalidate" --strict --quiet "$RUN/${bad%%:*}.yaml" >"$RUN/kv.out" 2>&1 && fail "a broken Deployment validates"
    grep -q "${bad#*:}" "$RUN/kv.out" || fail "the broken ${bad#*:} was not reported: $(cat "$RUN/kv.out")"
done
pass "deploy/kubernetes validates strictly against Kubernetes 1.25 and 1.37 (a broken copy does not)"

for f in "${k8s[@]}"; do yaml2json "$f"; done | jq -s . >"$RUN/k8s.json"
k=$(cat "$RUN/k8s.json")
dep=$(jq '.[] | select(.kind == "Deployment")' <<<"$k")
ctr=$(jq '.spec.template.spec.containers[0]' <<<"$dep")
envcm=$(jq -r '.envFrom[] | .configMapRef.name // empty' <<<"$ctr")
cfg=$(jq --arg n "$envcm" '.[] | select(.kind == "ConfigMap" and .metadata.name == $n) | .data' <<<"$k")
ops_port=$(jq -r '.OPS_ADDR' <<<"$cfg" | sed 's/.*://')
port_of() { jq -r --arg p "$1" '.ports[] | select(.name == $p or (.containerPort | tostring) == $p) | .containerPort' <<<"$ctr"; }
for probe in startupProbe:/healthz livenessProbe:/healthz readinessProbe:/readyz; do
    p=${probe%%:*} path=${probe#*:}
    jq -e --arg p "$p" --arg path "$path" '.[$p].httpGet.path == $path' <<<"$ctr" >/dev/null \
        || fail "$p is not GET $path"
    [ "$(port_of "$(jq -r --arg p "$p" '.[$p].httpGet.port' <<<"$ctr")")" = "$ops_port" ] \
        || fail "$p does not probe OPS_ADDR's port $ops_port"
done
pass "startup and liveness probes GET /healthz, readiness GET /readyz, on OPS_ADDR's port $ops_port"

drain_ms=$(ms "$(jq -r '.DRAIN_TIMEOUT // "30s"' <<<"$cfg")")
grace=$(jq '.spec.template.spec.terminationGracePeriodSeconds' <<<"$dep")
[ $((grace * 1000)) -gt $((drain_ms + 10000)) ] \
    || fail "terminationGracePeriodSeconds $grace is not longer than DRAIN_TIMEOUT + the 10 s flush"
startup_ms=$(ms "$(jq -r '.STARTUP_TIMEOUT // "60s"' <<<"$cfg")")
jq -e --argjson t "$startup_ms" '.startupProbe | .periodSeconds * .failureThreshold * 1000 > $t' <<<"$ctr" \
    >/dev/null || fail "the startupProbe gives up before STARTUP_TIMEOUT"
peak=$(sed -n 's/^| 5 peak RSS during (1) | \([0-9.]*\) MB |.*/\1/p' "$TOP/README.md")
[ -n "$peak" ] || fail "README 'Latest numbers' has no '5 peak RSS during (1)' row to size the memory request from"
req=$(jq -r '.resources.requests.memory' <<<"$ctr")
[[ $req =~ ^([0-9]+)Mi$ ]] || fail "memory request $req is not in Mi"
awk -v r="${BASH_REMATCH[1]}" -v p="$peak" 'BEGIN { exit !(r * 1.048576 >= p) }' \
    || fail "memory request $req is below the benchmark's peak RSS of $peak MB"
jq -e '.resources.limits.memory and .resources.requests.cpu' <<<"$ctr" >/dev/null || fail "no memory limit or CPU request"
pass "grace ${grace}s > DRAIN_TIMEOUT + flush; startup probe outlasts STARTUP_TIMEOUT; memory request $req >= peak RSS $peak MB"

replicas=$(jq '.spec.replicas' <<<"$dep")
parts=$(jq -r '.TOPIC_PARTITIONS // "6"' <<<"$cfg")
[ "$replicas" -le "$parts" ] || fail "$replicas replicas for $parts partitions"
labels=$(jq -c '.spec.template.metadata.labels' <<<"$dep")
jq -e --argjson l "$labels" --argjson r "$replicas" '.[] | select(.kind == "PodDisruptionBudget") |
    (.spec.selector.matchLabels | to_entries | all($l[.key] == .value))
    and (.spec.maxUnavailable // 0) < $r' <<<"$k" >/dev/null || fail "no PodDisruptionBudget over the pods"
uid=$(sed -n 's/^USER \([0-9]*\).*/\1/p' "$TOP/docker/Dockerfile")
jq -e --argjson u "$uid" '.spec.template.spec.securityContext | .runAsNonRoot and .runAsUser == $u' <<<"$dep" \
    >/dev/null || fail "pods do not run as the image's user $uid"
pass "$replicas replicas <= $parts partitions; the PDB covers the pods; non-root as uid $uid"

for dir in WORKFLOWS_DIR LUA_DIR; do
    path=$(jq -r --arg d "$dir" '.env[] | select(.name == $d) | .value' <<<"$ctr")
    jq -e --arg p "$path" '.volumeMounts[] | select(.mountPath == $p) | (.subPath | not)' <<<"$ctr" >/dev/null \
        || fail "$dir ($path) is not a whole mounted folder"
done
wf=$(jq -r '.spec.template.spec.volumes[] | select(.name == "workflows") | .configMap.name' <<<"$dep")
jq -j --arg n "$wf" '.[] | select(.kind == "ConfigMap" and .metadata.name == $n) | .data["noop.yaml"]' <<<"$k" \
    | diff - "$TOP/workflows/noop.yaml" >/dev/null || fail "the ConfigMap's noop.yaml differs from workflows/noop.yaml"
mapfile -t names < <(jq -r 'keys[]' <<<"$cfg")
check_settings deploy/kubernetes "${names[@]}" WORKFLOWS_DIR LUA_DIR
pass "ConfigMaps mounted as whole folders at WORKFLOWS_DIR and LUA_DIR; noop.yaml as shipped; every variable is a setting"
echo "$PASSED passed, 0 failed"
