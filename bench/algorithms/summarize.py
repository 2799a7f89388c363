#!/usr/bin/env python3
"""bench/algorithms/summarize.py OUT PRESET...: the comparison table of bench/algorithms/run.sh.

Reads OUT/runs/<preset>/metrics.jsonl (per iteration: reward_mean, nfe_rollout, nfe_train,
nfe_completion, wall_s; DenseGRPO's calibration rounds: calibration.nfe), OUT/runs/<preset>.wall.json
(run.sh: the process's CPU seconds and the wall seconds) and OUT/eval/{base,<preset>}.json (grove
eval: gold-judge accuracy, mean gold probability and FCD on the same n fixed-seed held-out samples),
and writes OUT/results.csv, OUT/results.md and OUT/results.svg (train reward vs iteration and vs
cumulative NFE, one line per preset; gold accuracy gain over the base with its 95 % interval).
results.md also compares the presets at EQUAL ITERATIONS from the training curves: at K = the
fewest iterations any preset completed, each preset's train-reward gain (mean of iterations
K-4..K minus mean of iterations 1..5, each preset's reward on its own rollouts; absolute train
rewards are not comparable across noise schedules, their gains from the preset's own start are
less so biased).
The interval is the unpaired normal one for a difference of two binomial proportions: the samples
share seeds, so the paired interval would be narrower; this one is conservative. Standard library
only (the SVG is written by hand)."""
import json
import math
import os
import sys


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def metrics(path):
    """(iteration records, total calibration NFE)"""
    rows, cal = [], 0
    try:
        with open(path) as f:
            for line in f:
                d = json.loads(line)
                if "reward_mean" in d:
                    rows.append(d)
                elif "calibration" in d:
                    cal += d["calibration"].get("nfe", 0)
    except OSError:
        pass
    return rows, cal


def window_mean(v, lo, hi):
    """mean of v[lo:hi] (0-based, clipped), NaN when empty"""
    w = v[max(lo, 0):min(hi, len(v))]
    return sum(w) / len(w) if w else float("nan")


def main():
    out, presets = sys.argv[1], sys.argv[2:]
    base = load_json(os.path.join(out, "eval", "base.json"))
    n = base.get("n", 0)
    pb = base.get("classifier_accuracy", float("nan"))
    table, curves = [], {}
    for p in presets:
        m, cal_nfe = metrics(os.path.join(out, "runs", p, "metrics.jsonl"))
        ev = load_json(os.path.join(out, "eval", p + ".json"))
        wj = load_json(os.path.join(out, "runs", p + ".wall.json"))
        wall, cpu = wj.get("wall_s", float("nan")), wj.get("cpu_s", float("nan"))
        iters = len(m)
        nfe = [r.get("nfe_rollout", 0) + r.get("nfe_train", 0) + r.get("nfe_completion", 0) for r in m]
        t_train = m[-1]["wall_s"] if m else float("nan")
        pa = ev.get("classifier_accuracy", float("nan"))
        gain = pa - pb
        se = math.sqrt(max(pa * (1 - pa), 0) / n + max(pb * (1 - pb), 0) / n) if n else float("nan")
        lo, hi = gain - 1.96 * se, gain + 1.96 * se
        table.append({
            "preset": p, "iterations": iters,
            "s_per_iteration": t_train / iters if iters else float("nan"),
            "nfe_per_iteration": sum(nfe) / iters if iters else float("nan"),
            "cpu_s": float(cpu), "cpu_s_per_iteration": cpu / iters if iters else float("nan"),
            "calibration_nfe": cal_nfe,
            "wall_s": float(wall), "gold_accuracy": pa, "gold_prob": ev.get("gold_prob", float("nan")),
            "fcd": ev.get("fcd", float("nan")),
            "gain": gain, "ci_low": lo, "ci_high": hi,
            "excludes_0": (lo > 0 or hi < 0) if n else False,
        })
        cum, s = [], cal_nfe  # the NFE axis starts after DenseGRPO's calibration phase
        for v in nfe:
            s += v
            cum.append(s)
        curves[p] = ([r["reward_mean"] for r in m], cum)
    ran = [len(curves[p][0]) for p in presets if len(curves[p][0]) >= 5]
    K = min(ran) if ran else 0
    for r in table:
        v = curves[r["preset"]][0]
        r["k_equal"] = K
        r["train_gain_at_k"] = (window_mean(v, K - 5, K) - window_mean(v, 0, 5)) if K else float("nan")
    keys = list(table[0].keys()) if table else []
    with open(os.path.join(out, "results.csv"), "w") as f:
        f.write(",".join(["base_accuracy", "n"] + keys) + "\n")
        for r in table:
            f.write(",".join([f"{pb:.4f}", str(n)] + [
                f"{r[k]:.4f}" if isinstance(r[k], float) else str(r[k]) for k in keys]) + "\n")
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(f"Base model: gold accuracy {pb:.4f}, gold probability {base.get('gold_prob', float('nan')):.3f}, "
                f"FCD {base.get('fcd', float('nan')):.1f} on n = {n} held-out fixed-seed samples.\n\n")
        f.write("At equal budget (CPU s: the grove process's user + sys; wall s under the shared "
                "machine's load; s/iter: wall per iteration as the run logged it; CPU s/iter includes "
                "start-up and DenseGRPO's calibration; NFE/iter excludes the calibration NFE):\n\n")
        f.write("| preset | iterations | CPU s | wall s | CPU s/iter | s/iter | NFE/iter | calibration NFE | "
                "gold accuracy | gain | 95 % interval | excludes 0 | gold prob | FCD |\n")
        f.write("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
        for r in table:
            f.write(f"| {r['preset']} | {r['iterations']} | {r['cpu_s']:.0f} | {r['wall_s']:.0f} | "
                    f"{r['cpu_s_per_iteration']:.1f} | {r['s_per_iteration']:.1f} | "
                    f"{r['nfe_per_iteration']:.0f} | {r['calibration_nfe']} | {r['gold_accuracy']:.4f} | "
                    f"{r['gain']:+.4f} | [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}] | "
                    f"{'yes' if r['excludes_0'] else 'no'} | {r['gold_prob']:.3f} | {r['fcd']:.1f} |\n")
        f.write(f"\nAt equal iterations (K = {K}, the fewest any preset completed): train-reward gain "
                f"= mean reward of iterations {K - 4}..{K} minus that of iterations 1..5, each on the "
                "preset's own rollouts.\n\n| preset | reward 1..5 | reward K-4..K | gain at K |\n|---|---|---|---|\n")
        for r in table:
            v = curves[r["preset"]][0]
            f.write(f"| {r['preset']} | {window_mean(v, 0, 5):.4f} | {window_mean(v, K - 5, K):.4f} | "
                    f"{r['train_gain_at_k']:+.4f} |\n")
    write_svg(os.path.join(out, "results.svg"), curves, table)
    print(open(os.path.join(out, "results.md")).read())


COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def panel(parts, x0, title, series, xlabel):
    w, h, pad = 300, 200, 30
    xs = [x for (_, (ys, xv)) in series for x in xv] or [0, 1]
    ys = [y for (_, (yv, _)) in series for y in yv] or [0, 1]
    xmin, xmax, ymin, ymax = min(xs), max(xs), min(ys), max(ys)
    xmax = xmax if xmax > xmin else xmin + 1
    ymax = ymax if ymax > ymin else ymin + 1
    parts.append(f'<text x="{x0 + pad}" y="15" font-size="12">{title}</text>')
    parts.append(f'<rect x="{x0 + pad}" y="{pad}" width="{w}" height="{h}" fill="none" stroke="#999"/>')
    parts.append(f'<text x="{x0 + pad}" y="{pad + h + 15}" font-size="10">{xlabel}: {xmin:g} .. {xmax:g}; '
                 f'reward {ymin:.3f} .. {ymax:.3f}</text>')
    for k, (name, (yv, xv)) in enumerate(series):
        pts = " ".join(f"{x0 + pad + (x - xmin) / (xmax - xmin) * w:.1f},"
                       f"{pad + h - (y - ymin) / (ymax - ymin) * h:.1f}" for x, y in zip(xv, yv))
        if pts:
            parts.append(f'<polyline points="{pts}" fill="none" stroke="{COLORS[k % 8]}"/>')


def write_svg(path, curves, table):
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="1060" height="300" font-family="sans-serif">']
    names = list(curves)
    panel(parts, 0, "train reward vs iteration", [(p, (curves[p][0], list(range(1, len(curves[p][0]) + 1)))) for p in names], "iteration")
    panel(parts, 340, "train reward vs NFE", [(p, curves[p]) for p in names], "NFE")
    x0, pad = 690, 30
    parts.append(f'<text x="{x0}" y="15" font-size="12">gold accuracy gain, 95 % interval</text>')
    finite = [v for r in table for v in (r["ci_low"], r["ci_high"]) if math.isfinite(v)] or [-0.01, 0.01]
    lo, hi = min(finite + [0]), max(finite + [0])
    hi = hi if hi > lo else lo + 1
    sx = lambda v: x0 + 100 + (v - lo) / (hi - lo) * 250
    parts.append(f'<line x1="{sx(0):.1f}" y1="{pad}" x2="{sx(0):.1f}" y2="{pad + 22 * len(table)}" stroke="#999"/>')
    for k, r in enumerate(table):
        y = pad + 10 + 22 * k
        parts.append(f'<text x="{x0}" y="{y + 4}" font-size="10" fill="{COLORS[k % 8]}">{r["preset"]}</text>')
        if math.isfinite(r["ci_low"]):
            parts.append(f'<line x1="{sx(r["ci_low"]):.1f}" y1="{y}" x2="{sx(r["ci_high"]):.1f}" y2="{y}" stroke="{COLORS[k % 8]}" stroke-width="2"/>')
            parts.append(f'<circle cx="{sx(r["gain"]):.1f}" cy="{y}" r="3" fill="{COLORS[k % 8]}"/>')
    parts.append(f'<text x="{x0 + 100}" y="{pad + 22 * len(table) + 12}" font-size="10">{lo:+.3f} .. {hi:+.3f}</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
