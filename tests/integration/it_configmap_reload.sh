#!/usr/bin/env bash
# Hot reload from a Kubernetes ConfigMap volume.  The kubelet never writes
# a mounted ConfigMap's files in place: the volume holds `..data`, a
# symlink to a timestamped folder (`..2026_12_01_17_00_00.123`) with the
# files, and one symlink per key (`cm.yaml -> ..data/cm.yaml`).  An update
# writes a new timestamped folder, points a new symlink `..data_tmp` at it,
# renames that over `..data` (the atomic swap), adds or removes the
# per-key symlinks, and deletes the old folder (atomic_writer.go in the
# kubelet).  This test plays the kubelet exactly so against WORKFLOWS_DIR
# of a running serve: a changed key, a new key, an invalid update (rejected
# with file and line; the previous version keeps serving) and a removed key
# all reach the workers, and the hidden version folders are never loaded
# as workflows of their own.
source "$(dirname "$0")/lib.sh"
export WORKER_COUNT=2
cm="$RUN/configmap"
mkdir -p "$cm"

# publish DIR: the kubelet's atomic update of the volume to DIR's files.
publish() {
    local src=$1 ts old f
    ts="..$(date -u +%Y_%m_%d_%H_%M_%S).$RANDOM$RANDOM"
    old=$(readlink "$cm/..data" || true)
    mkdir "$cm/$ts"
    cp "$src"/* "$cm/$ts/"
    chmod 644 "$cm/$ts"/*
    ln -s "$ts" "$cm/..data_tmp"
    mv -T "$cm/..data_tmp" "$cm/..data"
    for f in "$src"/*; do
        f=$(basename "$f")
        [ -L "$cm/$f" ] || ln -s "..data/$f" "$cm/$f"
    done
    for f in "$cm"/*; do
        [ -e "$src/$(basename "$f")" ] || rm -f "$f"
    done
    [ -z "$old" ] || rm -rf "${cm:?}/$old"
}
# payload NAME VERSION [FILES...]: a folder with cm.yaml echoing VERSION.
payload() {
    local d="$RUN/$1"
    mkdir -p "$d"
    cat >"$d/cm.yaml" <<YAML
intent: cm
steps:
  - id: s1
    tool: {name: echo, args: {query: "$2 \${A.query}"}}
    publish_result: true
YAML
    echo "$d"
}
reloads() { grep -c "\"msg\":\"$1\"" "$RUN/a.err" || true; }
# wait_reloads MSG N: until a line MSG more than before (one per reload,
# logged when every worker has reloaded).
wait_reloads() {
    local want=$(( $2 + 1 ))
    for _ in $(seq 1 600); do
        [ "$(reloads "$1")" -ge "$want" ] && return 0
        sleep 0.1
    done
    fail "no '$1' from every worker within 60 s: $(tail -3 "$RUN/a.err")"
}
echo_of() { # CID WORKFLOW: the step_result payload's query
    send "$1" "$2" '{"query":"hi"}' | jq -r 'select(.value.status == "step_result") | .value.result.payload'
}
# serves WORKFLOW JQ: until a command to WORKFLOW ends with an outcome that
# matches JQ.  The kubelet's steps after the ..data swap (per-key symlinks,
# removing the old folder) may land in a later debounce burst than the swap
# on a busy machine; the state the test waits for is the one after the last.
serves() {
    local i out
    for i in $(seq 1 100); do
        out=$(send "$1-$$-$i" "$1" '{"query":"hi"}' || true)
        jq -e -s "$2" <<<"$out" >/dev/null && return 0
        sleep 0.2
    done
    fail "$1 never answered as expected ($2): $out"
}

publish "$(payload v1 v1)"
[ "$(readlink "$cm/cm.yaml")" = ..data/cm.yaml ] || fail "volume layout"
start_service a WORKFLOWS_DIR="$cm"
[ "$(echo_of "v1-$$" cm)" = '{"query":"v1 hi"}' ] || fail "version 1 is not serving"

# A changed key and a new one.
v2=$(payload v2 v2)
printf 'intent: cm_new\nsteps:\n  - id: n1\n    tool: {name: echo, args: {query: "new"}}\n' >"$v2/cm_new.yaml"
before=$(reloads "workflows reloaded")
publish "$v2"
wait_reloads "workflows reloaded" "$before"
serves cm '.[0].value.result.payload == "{\"query\":\"v2 hi\"}"'
serves cm_new '.[-1].value.status == "success"'
grep '"reload rejected"' "$RUN/a.err" && fail "a reload was rejected (a version folder loaded twice?)"
grep '"workflows reloaded"' "$RUN/a.err" | tail -1 | jq -e --arg cm "$cm" --argjson n "$WORKER_COUNT" \
    '.workers == $n and (.files | length > 0) and all(.files[]; startswith($cm + "/"))' >/dev/null \
    || fail "the reload's line does not say every worker and the changed files: $(grep '"workflows reloaded"' "$RUN/a.err" | tail -1)"
pass "a ConfigMap update (..data swapped, a key changed, a key added) is reloaded by every worker, logged once with the files"

# An invalid update: rejected naming the file and line; v2 keeps serving.
v3=$(payload v3 v3)
cp "$v2/cm_new.yaml" "$v3/"
printf 'intent: cm\nsteps:\n  - id: s1\n    guard: "A.x =="\n    tool: {name: echo}\n' >"$v3/cm.yaml"
before=$(reloads "reload rejected")
publish "$v3"
wait_reloads "reload rejected" "$before"
grep '"reload rejected"' "$RUN/a.err" | tail -1 | jq -e '.errors | test("cm.yaml:[0-9]+")' >/dev/null \
    || fail "the rejection does not name cm.yaml and a line: $(grep '"reload rejected"' "$RUN/a.err" | tail -1)"
[ "$(echo_of "v3-$$" cm)" = '{"query":"v2 hi"}' ] || fail "the previous version does not keep serving"
pass "an invalid ConfigMap update is rejected naming cm.yaml and its line; the previous version serves"

# A removed key: its workflow goes away.
before=$(reloads "workflows reloaded")
publish "$(payload v4 v4)"
wait_reloads "workflows reloaded" "$before"
serves cm '.[0].value.result.payload == "{\"query\":\"v4 hi\"}"'
serves cm_new '.[-1].value.status == "error" and (.[-1].value.error | test("unknown workflow"))'
pass "a key removed from the ConfigMap: its workflow is unknown after the reload"
stop_service a
finish
