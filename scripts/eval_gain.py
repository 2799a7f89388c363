#!/usr/bin/env python3
"""95 % interval of a run's held-out eval gain, first eval (iteration 0: the base model) -> last.

    scripts/eval_gain.py runs/<name>/metrics.jsonl KEY [KEY ...]

KEY is an eval reward's metrics key (a plugin's table name, "classifier", ...). Every eval record
of `grove train` carries each eval reward's mean and sample std over its n unmasked samples
(fixed eval noise: eval.seeds seeds per eval prompt); the interval is Welch's normal
approximation, mean_last - mean_first +- 1.96 sqrt(s0^2/n0 + s1^2/n1). Both evals use the same
initial noise, so this ignores their positive correlation: it is conservative. Stock python3 only.
"""
import json
import math
import sys


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    with open(sys.argv[1]) as f:
        evals = [r for r in map(json.loads, f) if "eval" in r]
    if len(evals) < 2:
        sys.exit("%s: fewer than two eval records" % sys.argv[1])
    a, b = evals[0]["eval"], evals[-1]["eval"]
    for key in sys.argv[2:]:
        if key not in a or key + "_std" not in a:
            sys.exit("%s: no eval reward '%s' (keys: %s)" % (sys.argv[1], key, ", ".join(
                k for k in a if not k.endswith("_std") and k not in ("weights", "n", "nfe"))))
        gain = b[key] - a[key]
        se = math.sqrt(a[key + "_std"] ** 2 / a["n"] + b[key + "_std"] ** 2 / b["n"])
        print("%s: iteration %d %.4f -> iteration %d %.4f, gain %+.4f, 95%% CI [%+.4f, %+.4f] "
              "(n %d + %d)" % (key, evals[0]["iteration"], a[key], evals[-1]["iteration"], b[key],
                               gain, gain - 1.96 * se, gain + 1.96 * se, a["n"], b["n"]))


if __name__ == "__main__":
    main()
