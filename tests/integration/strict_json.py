#!/usr/bin/env python3
"""Reads `sio-orchestrator tail --base64` lines on stdin and checks that every
message value is valid UTF-8 holding exactly one strict JSON value: no
duplicate object keys, no NaN/Infinity, no number that overflows a double,
no lone surrogate escape (\\ud800), nothing after the value.  Keys must be
valid UTF-8 too.  Prints "N messages" and exits 1 naming each bad one."""
import base64
import json
import math
import sys


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate object key")
    return dict(pairs)


def no_constant(name):
    raise ValueError("non-standard number " + name)


def finite(text):
    f = float(text)
    if not math.isfinite(f):
        raise ValueError("number out of range " + text)
    return f


def walk(v):
    if isinstance(v, str):
        v.encode("utf-8")  # a lone surrogate from an escape fails here
    elif isinstance(v, dict):
        for k, x in v.items():
            walk(k)
            walk(x)
    elif isinstance(v, list):
        for x in v:
            walk(x)


n = bad = 0
for line in sys.stdin:
    m = json.loads(line)
    n += 1
    raw = base64.b64decode(m["value_base64"] or "")
    try:
        if m["key_base64"] is not None:
            base64.b64decode(m["key_base64"]).decode("utf-8")
        v = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates,
                       parse_constant=no_constant, parse_float=finite)
        walk(v)
    except (ValueError, UnicodeError) as e:
        bad += 1
        print("%s@%d:%d: %s: %r" % (m["topic"], m["partition"], m["offset"], e, raw[:200]),
              file=sys.stderr)
print("%d messages" % n)
sys.exit(1 if bad or n == 0 else 0)
