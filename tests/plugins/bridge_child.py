#!/usr/bin/env python3
"""Misbehaving children of the subprocess bridge for tests/cpu/test_plugins.c (stock python3).

    bridge_child.py MODE [STATE_FILE] [SECONDS]
Scores are the mean pixel value of each decoded PNG (rewards/plugins/bridge/example_reward.py's
decoder). MODE: ok | sleep_once (the first request, while STATE_FILE does not exist, sleeps SECONDS)
| sleep (every request sleeps SECONDS) | crash_once | crash | bad_json | wrong_length | error
| judge (a pairwise judge for bridge_judge.so: p_first = 1 / 0 / 0.5 as mean(a) >, <, = mean(b))
| judge_error (a pairwise judge whose every compare answers {"error": ...})
| echo (announces "kinds": ["image", "tokens"]; writes each request as parsed, re-dumped with
json.dumps, to STATE_FILE and scores sample i as i + 0.5) | no_kinds (its hello lists "kinds":
["images"], a kind grove does not know) | narrows (while STATE_FILE does not exist it announces
"kinds": ["image", "tokens"] and crashes on its first request, creating STATE_FILE; restarted, it
announces ["image"] only) | bad_restart (counts its starts in STATE_FILE: the first announces
"kinds": ["image"] and crashes on its first request, the second sends a hello naming no known kind,
the third and later are `ok`).
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "rewards", "plugins", "bridge"))
from example_reward import decode_png  # noqa: E402
import base64  # noqa: E402


def mean_of(png_b64):
    _, _, _, rows = decode_png(base64.b64decode(png_b64))
    values = [v for row in rows for v in row]
    return sum(values) / len(values)


def first_time(state):
    if os.path.exists(state):
        return False
    open(state, "w").close()
    return True


def main():
    mode = sys.argv[1]
    state = sys.argv[2] if len(sys.argv) > 2 else ""
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    kinds = {"echo": ["image", "tokens"], "no_kinds": ["images"]}.get(mode, ["image"])
    if mode == "narrows" and not os.path.exists(state):
        kinds = ["image", "tokens"]
    start = 0
    if mode == "bad_restart":
        start = int(open(state).read()) + 1 if os.path.exists(state) else 1
        with open(state, "w") as f:
            f.write(str(start))
        if start == 2:
            kinds = ["images"]
    print(json.dumps({"bridge": 1, "name": "child_" + mode, "kinds": kinds,
                      "pairwise": mode.startswith("judge")}), flush=True)
    print("child %d started in mode %s" % (os.getpid(), mode), file=sys.stderr, flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        if mode.startswith("judge"):
            if req.get("op") != "compare" or mode == "judge_error":
                print(json.dumps({"id": req["id"], "error": "judge refuses request %d" % req["id"]}),
                      flush=True)
                continue
            ma = [mean_of(x) for x in req["a"]["images"]]
            mb = [mean_of(x) for x in req["b"]["images"]]
            p = [1.0 if x > y else 0.0 if x < y else 0.5 for x, y in zip(ma, mb)]
            print(json.dumps({"id": req["id"], "p_first": p}), flush=True)
            continue
        n = req["n"]
        if mode == "echo":
            with open(state, "w") as f:
                f.write(json.dumps(req))
            print(json.dumps({"id": req["id"], "scores": [i + 0.5 for i in range(n)]}), flush=True)
            continue
        if mode == "sleep" or (mode == "sleep_once" and first_time(state)):
            time.sleep(seconds)
        if mode == "crash" or (mode in ("crash_once", "narrows") and first_time(state)) or \
                (mode == "bad_restart" and start == 1):
            print("crashing on purpose", file=sys.stderr, flush=True)
            os._exit(3)
        if mode == "bad_json":
            print("this is not json {", flush=True)
            continue
        if mode == "error":
            print(json.dumps({"id": req["id"], "error": "model exploded"}), flush=True)
            continue
        scores = [mean_of(x) for x in req["images"]]
        if mode == "wrong_length":
            scores = scores[:-1]
        print(json.dumps({"id": req["id"], "scores": scores, "status": [0] * len(scores)}),
              flush=True)
        del n


if __name__ == "__main__":
    main()
