#!/usr/bin/env python3
"""Example TOKEN-batch child of grove's subprocess bridge (protocol v1, README "Bridge protocol").

Needs only a stock python3 (json, struct, sys). It recomputes grove's built-in `sudoku` reward
(ALGORITHMS.md §10, rewards/builtin.c) for the masked-diffusion Sudoku trainer: per sample, the
fraction of the puzzle's blanks whose digit equals the reference's (the solution), + 1 when the
grid is a valid solution that keeps every given. Range [0, 2]. Grids come from the request's
`tokens` (the completion), `prompt_tokens` (the puzzle: `mask_id` at every blank) and
`reference_tokens`; token id d-1 is digit d, anything outside 0..S-1 is a blank. The arithmetic is
float32's, as in grove (so the scores equal the built-in's bit for bit): the fraction is rounded
to float32 before the +1, and the sum again.

    rewards: [{plugin: <build>/plugins/bridge.so,
               config: {command: "python3 rewards/plugins/bridge/sudoku_reward.py"}}]

As in the built-in, a sample whose reference is not a solved grid FAILS (status 1, masked), and a
batch that is not 4x4 / 9x9 grids with mask_id = S, or has no reference, fails as a whole
({"error": ...}). Deliberately not here: images (the hello says "kinds": ["tokens"], so grove
refuses to send it an image batch) and a solver (the reference is given).
"""
import json
import struct
import sys


def f32(x):
    """x rounded to the nearest float32 (what a C float holds)."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def grid(row, S):
    """Token ids -> digits 1..S, 0 for a blank (anything outside 0..S-1)."""
    return [t + 1 if 0 <= t < S else 0 for t in row]


def is_solved(g, S):
    """Every row, column and box holds 1..S exactly once."""
    if any(d < 1 or d > S for d in g):
        return False
    B = 2 if S == 4 else 3
    units = [[r * S + c for c in range(S)] for r in range(S)]
    units += [[r * S + c for r in range(S)] for c in range(S)]
    units += [[(br + r) * S + bc + c for r in range(B) for c in range(B)]
              for br in range(0, S, B) for bc in range(0, S, B)]
    return all(len({g[i] for i in u}) == S for u in units)


def sudoku_score(puzzle, solution, filled, S):
    """grove's gv_sudoku_score (data/sudoku.c) in float32 arithmetic."""
    blanks = correct = 0
    givens_kept = True
    for p, s, f in zip(puzzle, solution, filled):
        if p == 0:
            blanks += 1
            correct += f == s
        elif f != p:
            givens_kept = False
    frac = f32(correct / blanks) if blanks else 1.0  # float division of two exact ints, rounded once
    bonus = 1.0 if givens_kept and is_solved(filled, S) else 0.0
    return f32(frac + bonus)  # exact in double, then rounded: float32's sum


def score_batch(req):
    """(scores, status) for a token request, or raise ValueError to fail the batch."""
    if req.get("kind") != "tokens":
        raise ValueError("sudoku_reward scores token batches only (got kind %r)" % req.get("kind"))
    if "prompt_tokens" not in req:
        raise ValueError("no prompt_tokens: this grove's batches predate reward ABI v1 revision 2")
    n, length, mask_id = req["n"], req["length"], req["mask_id"]
    S = {16: 4, 81: 9}.get(length, 0)
    if not S or mask_id != S or req["reference_tokens"] is None:
        raise ValueError("needs 4x4 or 9x9 grids with prompt_tokens and reference_tokens, "
                         "[MASK] = S (got length %d, mask_id %d, reference %s)"
                         % (length, mask_id, "null" if req["reference_tokens"] is None else "given"))
    scores, status = [], []
    for i in range(n):
        puzzle = grid(req["prompt_tokens"][i], S)
        solution = grid(req["reference_tokens"][i], S)
        filled = grid(req["tokens"][i], S)
        ok = is_solved(solution, S)  # a broken reference fails its sample, as in the built-in
        scores.append(sudoku_score(puzzle, solution, filled, S) if ok else 0.0)
        status.append(0 if ok else 1)
    return scores, status


def main():
    out = sys.stdout
    out.write(json.dumps({"bridge": 1, "name": "sudoku_py", "kinds": ["tokens"],
                          "pairwise": False}) + "\n")
    out.flush()
    for raw in sys.stdin.buffer:  # bytes: a non-UTF-8 byte in a text must not end the child
        try:
            request = json.loads(raw.decode("utf-8", "replace"))
        except ValueError as e:  # no id to answer: grove fails the batch on the mismatched id
            out.write(json.dumps({"id": None, "error": "bad request line: %s" % e}) + "\n")
            out.flush()
            continue
        try:
            scores, status = score_batch(request)
            answer = {"id": request["id"], "scores": scores, "status": status}
        except (ValueError, KeyError, TypeError, IndexError) as e:  # the batch fails, grove masks it
            answer = {"id": request["id"], "error": "%s: %s" % (type(e).__name__, e)}
        out.write(json.dumps(answer) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
