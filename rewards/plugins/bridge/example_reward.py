#!/usr/bin/env python3
"""Example child of grove's subprocess bridge (protocol v1, README "Bridge protocol").

Needs only a stock python3 (json, base64, zlib, struct, sys): it decodes the PNGs itself.
Reward: -|mean(p) - target| per image (the same reward as rewards/plugins/minimal/ink_target.c), and
as a pairwise judge P(a better than b) = sigmoid((f(a) - f(b)) / 0.01) with f = that reward.

    rewards: [{plugin: <build>/plugins/bridge.so,
               config: {command: "python3 rewards/plugins/bridge/example_reward.py --target 0.2"}}]

As a judge (it says "pairwise": true, so it also answers compare) the same config goes under
plugin: <build>/plugins/bridge_judge.so with algorithm: {preset: pref_grpo}.

Anything printed to stderr appears in grove's log prefixed "[bridge ink_target_py]"; stdout is the
protocol channel, so never print() to it.
"""
import base64
import json
import math
import struct
import sys
import zlib


def decode_png(data):
    """8-bit gray / RGB / RGBA PNG -> (channels, height, width, values in [0, 1] as rows)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, width, height, channels = 8, b"", 0, 0, 1
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            if depth != 8 or color not in (0, 2, 6):
                raise ValueError("only 8-bit gray, RGB or RGBA PNGs")
            channels = {0: 1, 2: 3, 6: 4}[color]
        elif kind == b"IDAT":
            idat += body
    raw, stride = zlib.decompress(idat), width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        filt, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):  # PNG filters 0-4
            a = line[x - channels] if x >= channels else 0
            b, c = prev[x], prev[x - channels] if x >= channels else 0
            if filt == 1:
                line[x] = (line[x] + a) & 255
            elif filt == 2:
                line[x] = (line[x] + b) & 255
            elif filt == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif filt == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return channels, height, width, [[v / 255.0 for v in row] for row in rows]


def reward(png_b64, target):
    _, _, _, rows = decode_png(base64.b64decode(png_b64))
    values = [v for row in rows for v in row]
    return -abs(sum(values) / len(values) - target)


def serve(hello, answer):
    """The protocol loop: the hello line, then one answer line per request line. answer(request)
    returns the reply's fields; an exception fails that batch with its message (grove masks it)."""
    out = sys.stdout
    out.write(json.dumps(hello) + "\n")
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = {"id": request["id"], **answer(request)}
        except Exception as e:
            reply = {"id": request["id"], "error": "%s: %s" % (type(e).__name__, e)}
        out.write(json.dumps(reply) + "\n")
        out.flush()


def main():
    target = 0.2
    args = sys.argv[1:]
    if "--target" in args:
        target = float(args[args.index("--target") + 1])
    print("ready, target %g" % target, file=sys.stderr, flush=True)

    def answer(request):
        if request.get("op") == "compare":
            fa = [reward(x, target) for x in request["a"]["images"]]
            fb = [reward(x, target) for x in request["b"]["images"]]
            p = [1.0 / (1.0 + math.exp(-(a - b) / 0.01)) for a, b in zip(fa, fb)]
            return {"p_first": p, "status": [0] * len(p)}
        scores = [reward(x, target) for x in request["images"]]
        return {"scores": scores, "status": [0] * len(scores)}

    serve({"bridge": 1, "name": "ink_target_py", "kinds": ["image"], "pairwise": True}, answer)


if __name__ == "__main__":
    main()
