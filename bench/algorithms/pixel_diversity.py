#!/usr/bin/env python3
"""Bridge child (protocol v1, README "Bridge protocol") for the #4 screen's diversity reward.

Score of image i = the mean, over the other members of its group (same `groups` id), of the RMS
pixel distance between the two images, values in [0, 1]. Meant beside the classifier reward, so a
group whose members are all right still has something to rank: how different they are. Measured
(README "Aligning", bench/algorithms/default_search.csv rows div1 / div3): no help — FCD rose.

    rewards: [{builtin: classifier, weight: 1.0},
              {plugin: <build>/plugins/bridge.so, weight: 1.0,
               config: {command: "python3 bench/algorithms/pixel_diversity.py"}}]

Standard library only (PNG decoding and the protocol loop from
rewards/plugins/bridge/example_reward.py).
"""
import base64
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "rewards",
                                "plugins", "bridge"))
from example_reward import decode_png, serve  # noqa: E402


def scores(request):
    images = []
    for png in request["images"]:
        _, _, _, rows = decode_png(base64.b64decode(png))
        images.append([v for row in rows for v in row])
    groups, n = request["groups"], len(images)
    out = []
    for i in range(n):
        d = [math.sqrt(sum((a - b) ** 2 for a, b in zip(images[i], images[j])) / len(images[i]))
             for j in range(n) if j != i and groups[j] == groups[i]]
        out.append(sum(d) / len(d) if d else 0.0)
    return out


def main():
    def answer(request):
        s = scores(request)
        return {"scores": s, "status": [0] * len(s)}

    serve({"bridge": 1, "name": "pixel_diversity", "kinds": ["image"]}, answer)


if __name__ == "__main__":
    main()
