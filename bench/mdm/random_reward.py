#!/usr/bin/env python3
"""A noise control for bench/mdm (stock python3): a bridge child (rewards/plugins/bridge, protocol
in README "Bridge protocol (v1)") that gives every sample of a token batch a reward drawn uniformly
from [0, 2] (the `sudoku` reward's range), from Python's random seeded by the request id, so a run
is reproducible. Training on it is an update of the same size as GRPO's with no signal at all: how
much does that alone cost the held-out solve rate? Deliberately not here: anything about Sudoku."""
import json
import random
import sys


def main():
    out = sys.stdout
    out.write(json.dumps({"bridge": 1, "name": "random_reward", "kinds": ["tokens"],
                          "pairwise": False}) + "\n")
    out.flush()
    for raw in sys.stdin.buffer:
        request = json.loads(raw.decode("utf-8", "replace"))
        rng = random.Random(request["id"])
        out.write(json.dumps({"id": request["id"],
                              "scores": [2.0 * rng.random() for _ in range(request["n"])]}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
