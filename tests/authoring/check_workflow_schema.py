#!/usr/bin/python3
"""Keeps schema/workflow.schema.json true.

1. The schema is a valid draft-07 schema.
2. Every workflow file the project ships or tests with (workflows/,
   tests/integration/workflows/, bench/workflows/, spec/workflows/; YAML
   read with a real YAML parser, and JSON) is valid against it, and every
   shipped YAML file points editors at it with a `yaml-language-server`
   comment that resolves to the schema.
3. The schema rejects what the loader rejects.  Hundreds of variants of a
   valid workflow (each field of the workflow and of its steps set to values
   of every type, plus hand-written cases) are loaded by the real loader
   (`sio-orchestrator validate`) and checked against the schema.  Where they
   disagree the disagreement must be one of two documented kinds:
   - the loader rejects something the schema cannot express (an unknown
     step id in depends_on, a cycle, duplicate step ids, an unknown tool, a
     guard or run code that does not compile, a missing run module, a bad
     template): its message must be one of SEMANTIC below;
   - the schema is stricter on purpose: unknown keys (typos such as
     `publish_results`), and the type of the fields written only for people
     (description, keywords, text).
   Anything else fails, naming the variant and both verdicts.

Run by ctest (spec tier) with SIO_SOURCE_DIR and SIO_BIN set; by hand:
  /usr/bin/python3 tests/authoring/check_workflow_schema.py [SIO_BIN]
Needs Debian's python3-jsonschema and python3-yaml (scripts/setup).
"""
import copy
import json
import os
import re
import subprocess
import sys
import tempfile

import jsonschema
import yaml

TOP = os.environ.get("SIO_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = (os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None) or os.environ.get("SIO_BIN") \
    or os.path.join(TOP, "build", "src", "sio-orchestrator")
SCHEMA_PATH = os.path.join(TOP, "schema", "workflow.schema.json")
FOLDERS = ["workflows", "tests/integration/workflows", "bench/workflows", "spec/workflows"]
SHIPPED = ["workflows"]

# Loader messages for errors a JSON Schema cannot express.
SEMANTIC = [
    r"unknown tool '",
    r"depends_on unknown step '",
    r"a step cannot depend on itself",
    r"dependency cycle: ",
    r"duplicate step id '",
    r"run module '.*'",
    r"run code does not compile",
    r"invalid guard: ",
    r"(args|output): .*(\$\{|filter)",  # a template that does not parse
    r"is not listed under `(config|secrets):`",  # ${secret.x} the workflow does not list
]
# Where the schema is stricter than the loader on purpose: the fields written
# only for people, whose type the loader does not check, and unknown keys
# (the loader ignores them; an editor should flag a typo).
STRICTER = {"description", "keywords", "text", "intnet", "publish_results", "tool.arg"}
# Also stricter: an empty mapping where a list belongs (Lua cannot tell {}
# from []), and `args` on a step whose tool has args of its own (the loader
# ignores the step's).

failures = []


def fail(msg):
    failures.append(msg)


def load_yaml_or_json(path):
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    if path.endswith(".json"):
        return json.loads(text), text
    return yaml.safe_load(text), text


def schema_errors(validator, doc):
    return sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))


def describe(err):
    where = "/".join(str(p) for p in err.absolute_path) or "(top)"
    return "%s: %s" % (where, err.message)


def check_files(validator):
    n = 0
    for folder in FOLDERS:
        d = os.path.join(TOP, folder)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if not re.search(r"\.(ya?ml|json)$", name):
                continue
            path = os.path.join(d, name)
            rel = os.path.join(folder, name)
            n += 1
            doc, text = load_yaml_or_json(path)
            for e in schema_errors(validator, doc):
                fail("%s: not valid against the schema: %s" % (rel, describe(e)))
            if folder in SHIPPED and not name.endswith(".json"):
                m = re.search(r"^# yaml-language-server: \$schema=(\S+)\s*$", text, re.M)
                if not m:
                    fail("%s: no '# yaml-language-server: $schema=...' comment" % rel)
                elif not os.path.samefile(os.path.join(d, m.group(1)), SCHEMA_PATH):
                    fail("%s: $schema=%s does not point at schema/workflow.schema.json" % (rel, m.group(1)))
    # what `sio-orchestrator new greet` writes
    with open(os.path.join(TOP, "scaffold", "workflow.yaml")) as f:
        text = f.read().replace("{{name}}", "greet")
    n += 1
    for e in schema_errors(validator, yaml.safe_load(text)):
        fail("scaffold/workflow.yaml: not valid against the schema: %s" % describe(e))
    if "# yaml-language-server: $schema=../.sio/workflow.schema.json\n" not in text:
        fail("scaffold/workflow.yaml does not point at .sio/workflow.schema.json")
    if n == 1:
        fail("no workflow files found under %s" % ", ".join(FOLDERS))
    return n


# --- variants -------------------------------------------------------------

BASE = {
    "intent": "base",
    "steps": [
        {"id": "a", "tool": {"name": "echo", "args": {"q": "${A.query}"}}},
        {"id": "b", "run": "return {n = 1}", "depends_on": ["a"]},
    ],
}

VALUES = [
    "", "x", "a", "b", "mod", "echo", "http", "30s", "0s", "1m30s", "-1s", "5", "2.5s", "abc",
    "A.x ==", "return 1", "${A.query}", "${A.", "${A.x | nosuch}", "${A.x | upper}",
    0, 1, -1, 2.5, 30, True, False,
    [], ["a"], ["b"], ["x"], [1], ["a", "b"], {}, {"name": "echo"}, {"name": 1},
    {"name": "echo", "args": {"k": "v"}}, {"name": "echo", "args": "s"}, {"k": "v"},
]

TOP_FIELDS = ["intent", "description", "keywords", "max_concurrency", "fail_fast",
              "strict_templates", "config", "secrets", "steps", "output", "result", "x-owner",
              "intnet"]
STEP_FIELDS = ["id", "text", "guard", "tool", "run", "args", "publish_result", "depends_on",
               "continue_on_error", "strict_templates", "timeout", "retries", "x-note",
               "publish_results"]


def variants():
    """(label, document, field) for every variant."""
    out = []
    for f in TOP_FIELDS:
        for v in VALUES:
            doc = copy.deepcopy(BASE)
            doc[f] = copy.deepcopy(v)
            out.append(("top %s = %s" % (f, json.dumps(v)), doc, f))
    for i in (0, 1):
        for f in STEP_FIELDS:
            for v in VALUES:
                doc = copy.deepcopy(BASE)
                doc["steps"][i][f] = copy.deepcopy(v)
                out.append(("step %s %s = %s" % (doc["steps"][i]["id"] if f != "id" else "#%d" % (i + 1),
                                                 f, json.dumps(v)), doc, f))
    for i in (0, 1):
        for f in ("tool", "run", "depends_on", "id"):
            doc = copy.deepcopy(BASE)
            doc["steps"][i].pop(f, None)
            out.append(("step #%d without %s" % (i + 1, f), doc, f))
    hand = [
        ("no intent", {"steps": BASE["steps"]}, "intent"),
        ("no steps", {"intent": "x"}, "steps"),
        ("a list", [BASE], None),
        ("a string", "intent: x", None),
        ("tool and run", {"intent": "x", "steps": [{"id": "a", "tool": "echo", "run": "return 1"}]}, None),
        ("neither tool nor run", {"intent": "x", "steps": [{"id": "a"}]}, None),
        ("duplicate ids", {"intent": "x", "steps": [{"id": "a", "tool": "echo"}, {"id": "a", "tool": "echo"}]}, None),
        ("a cycle", {"intent": "x", "steps": [{"id": "a", "tool": "echo", "depends_on": ["b"]},
                                            {"id": "b", "tool": "echo", "depends_on": ["a"]}]}, None),
        ("a step that is a string", {"intent": "x", "steps": ["a"]}, None),
        ("steps an object", {"intent": "x", "steps": {"a": {"id": "a", "tool": "echo"}}}, "steps"),
        ("tool without name", {"intent": "x", "steps": [{"id": "a", "tool": {"args": {}}}]}, None),
        ("tool with an unknown key", {"intent": "x", "steps": [{"id": "a", "tool": {"name": "echo", "arg": {}}}]}, "tool.arg"),
        ("http args", {"intent": "x", "steps": [{"id": "a", "tool": {"name": "http", "args": {
            "url": "https://h.example/x", "method": "POST", "headers": {"Accept": "application/json"},
            "body": {"k": 1}, "timeout": "2s", "on_4xx": "ok"}}}]}, None),
        ("http args on the step", {"intent": "x", "steps": [{"id": "a", "tool": "http", "args": {
            "url": "https://h.example/x", "timeout": 500}}]}, None),
        ("kv args", {"intent": "x", "steps": [{"id": "a", "tool": {"name": "kv", "args": {
            "op": "set", "key": "k", "value": {"a": 1}, "ttl": 60}}}]}, None),
        ("kafka args", {"intent": "x", "steps": [{"id": "a", "tool": {"name": "kafka", "args": {
            "topic": "t", "key": "${A.id}", "value": {"a": 1}}}}]}, None),
        ("step id query", {"intent": "x", "steps": [{"id": "query", "tool": "echo"}]}, None),
        ("step id utter", {"intent": "x", "steps": [{"id": "utter", "tool": "echo"}]}, None),
        ("timeout with spaces", {"intent": "x", "steps": [{"id": "a", "tool": "echo", "timeout": " 1m 30s "}]}, None),
        ("timeout 1.", {"intent": "x", "steps": [{"id": "a", "tool": "echo", "timeout": "1.s"}]}, None),
        ("timeout 0.5s", {"intent": "x", "steps": [{"id": "a", "tool": "echo", "timeout": "0.5s"}]}, None),
        ("timeout 0ms0s", {"intent": "x", "steps": [{"id": "a", "tool": "echo", "timeout": "0ms0s"}]}, None),
        ("timeout 30S", {"intent": "x", "steps": [{"id": "a", "tool": "echo", "timeout": "30S"}]}, None),
        ("timeout 1.5ms", {"intent": "x", "steps": [{"id": "a", "tool": "echo", "timeout": "1.5ms"}]}, None),
        ("timeout 1h30m", {"intent": "x", "steps": [{"id": "a", "tool": "echo", "timeout": "1h30m"}]}, None),
        ("retries 2.0", {"intent": "x", "steps": [{"id": "a", "tool": "echo", "retries": 2.0}]}, None),
        ("depends_on a string", {"intent": "x", "steps": [{"id": "a", "tool": "echo"},
                                                        {"id": "b", "tool": "echo", "depends_on": "a"}]}, None),
        ("config and secrets in templates", {"intent": "x", "config": ["users_url"], "secrets": ["users_token"],
            "steps": [{"id": "a", "tool": {"name": "http", "args": {"url": "${config.users_url}/x",
                "headers": {"Authorization": "Bearer ${secret.users_token}"}}}}],
            "output": {"u": "${config.users_url}"}}, None),
        ("a secret not listed in a template", {"intent": "x", "steps": [{"id": "a", "tool": {"name": "echo",
            "args": {"h": "${secret.users_token}"}}}]}, None),
        ("a bad secret name", {"intent": "x", "secrets": ["has space"], "steps": [{"id": "a", "tool": "echo"}]}, None),
    ]
    out.extend(hand)
    return out


def loader_verdicts(docs, tmp):
    """{index: [error lines]} for docs[index] loaded by `sio-orchestrator validate`."""
    luadir = os.path.join(tmp, "lua")
    os.makedirs(luadir)
    with open(os.path.join(luadir, "mod.lua"), "w") as f:
        f.write("return function(A, args, ctx) return 'ok' end\n")
    paths = []
    for i, doc in enumerate(docs):
        # intents differ, so no file duplicates another's (validate loads
        # the files as one set); a variant of `intent` itself keeps its value
        if isinstance(doc, dict) and doc.get("intent") in ("base", "x"):
            doc = dict(doc, intent="v%d" % i)
        p = os.path.join(tmp, "v%d.yaml" % i)
        with open(p, "w") as f:
            f.write(yaml.safe_dump(doc, sort_keys=False) if not isinstance(doc, str) else doc + "\n")
        paths.append(p)
    proc = subprocess.run([BIN, "validate", "--lua", luadir] + paths, cwd=tmp,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    # validate prints "ok: intent (file)" per loaded file and "file:line:
    # message" per error, on stdout when all loaded and on stderr otherwise
    errs, oks = {}, set()
    out = proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")
    for line in out.splitlines():
        m = re.search(r"\bv(\d+)\.yaml\b", line)
        if line.startswith("ok: ") and m:
            oks.add(int(m.group(1)))
        elif m:
            errs.setdefault(int(m.group(1)), []).append(line)
        elif line.strip():
            fail("validate printed a line naming no variant: %r" % line)
    for i in range(len(docs)):
        if (i in oks) == (i in errs):
            fail("variant %d: validate said neither ok nor an error (or both)" % i)
    return errs


def doc_value(variant):
    """The value a generated variant set, or None."""
    label = variant[0]
    m = re.match(r"^(?:top|step \S+) \S+ = (.*)$", label)
    return json.loads(m.group(1)) if m else None


def check_variants(validator):
    vs = variants()
    with tempfile.TemporaryDirectory(prefix="sio-schema-") as tmp:
        docs = [yaml.safe_load(yaml.safe_dump(d)) if not isinstance(d, str) else d for _, d, _ in vs]
        errs = loader_verdicts([d for _, d, _ in vs], tmp)
    counts = {"agree": 0, "semantic": 0, "stricter": 0}
    for i, (label, _, field) in enumerate(vs):
        doc = docs[i]
        if isinstance(doc, str):
            doc = yaml.safe_load(doc)
        serrs = schema_errors(validator, doc)
        loader_ok = i not in errs
        if loader_ok == (not serrs):
            counts["agree"] += 1
        elif not loader_ok:
            msgs = errs[i]
            if all(any(re.search(p, m) for p in SEMANTIC) for m in msgs):
                counts["semantic"] += 1
                if os.environ.get("VERBOSE"):
                    print("semantic: %s: %s" % (label, " | ".join(msgs)))
            else:
                fail("%s: the loader rejects it (%s) but the schema accepts it"
                     % (label, " | ".join(msgs)))
        elif field in STRICTER or (doc_value(vs[i]) == {} and field in ("steps", "depends_on", "config", "secrets")) \
                or (field == "args" and label.startswith("step a ")):
            counts["stricter"] += 1
        else:
            fail("%s: the loader accepts it but the schema rejects it: %s"
                 % (label, "; ".join(describe(e) for e in serrs)))
    return len(vs), counts


def main():
    with open(SCHEMA_PATH) as f:
        schema = json.load(f)
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    nfiles = check_files(validator)
    nvar, counts = check_variants(validator)
    print("%d workflow files valid; %d variants: %d agree with the loader, %d rejected by the "
          "loader for reasons no schema can express, %d rejected by the stricter schema"
          % (nfiles, nvar, counts["agree"], counts["semantic"], counts["stricter"]))
    for m in failures:
        print("FAIL: " + m)
    print("%d passed, %d failed" % (1 if not failures else 0, 1 if failures else 0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
