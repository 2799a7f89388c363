"""PyTorch twin of grove's unet-s (models/unet/unet.h) for a side-by-side GPU benchmark.

The same architecture, shapes and FLOPs as gv_unet_config_s(V=12, L=4): it prints its parameter
count next to grove's (498,721 for V = 12; a mismatch means the twin drifted) and measures, like
bench/bench_unet.c, the median forward time and the median training step (forward + backward +
AdamW) at one batch size, in fp32 with TF32 off (grove's CUDA backend is fp32 without TF32).

    python3 bench/gpu/torch_unet_s.py [batch (256)] [repetitions (10)] [device (cuda)]

Prints one line per figure; never fails on time. Deliberately not here: grove's weights (speed
does not depend on them), the sampler, CFG.
"""
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

FLOP_PER_IMAGE = 183.27e6  # gv_unet_flops for unet-s (multiply-add = 2 FLOP)


class Res(nn.Module):
    def __init__(self, cin, cout, emb, groups=8):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=1e-5)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb, cout)
        self.norm2 = nn.GroupNorm(groups, cout, eps=1e-5)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, e):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(e)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (self.skip(x) if self.skip is not None else x)


class UNetS(nn.Module):
    def __init__(self, vocab=12, ch=(32, 64), emb=128, tdim=64, mid=2):
        super().__init__()
        self.tdim = tdim
        self.lin1, self.lin2 = nn.Linear(tdim, emb), nn.Linear(emb, emb)
        self.prompt = nn.EmbeddingBag(vocab, emb, mode="mean")
        self.inc = nn.Conv2d(1, ch[0], 3, padding=1)
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        c = ch[0]
        for co in ch:
            self.down.append(Res(c, co, emb))
            self.downsample.append(nn.Conv2d(co, co, 3, stride=2, padding=1))
            c = co
        self.mid = nn.ModuleList([Res(c, c, emb) for _ in range(mid)])
        self.up = nn.ModuleList()
        for co in reversed(ch):
            self.up.append(Res(c + co, co, emb))
            c = co
        self.out_norm = nn.GroupNorm(8, c, eps=1e-5)
        self.out_conv = nn.Conv2d(c, 1, 3, padding=1)

    def forward(self, x, sigma, ids, offsets):
        half = self.tdim // 2
        freqs = torch.exp(-torch.log(torch.tensor(10000.0)) *
                          torch.arange(half, device=x.device) / half)
        a = 1000.0 * sigma[:, None] * freqs[None]
        t = torch.cat([torch.sin(a), torch.cos(a)], 1)
        e = self.lin2(F.silu(self.lin1(t))) + self.prompt(ids, offsets)
        h, skips = self.inc(x), []
        for res, ds in zip(self.down, self.downsample):
            h = res(h, e)
            skips.append(h)
            h = ds(h)
        for res in self.mid:
            h = res(h, e)
        for res in self.up:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            h = res(torch.cat([h, skips.pop()], 1), e)
        return self.out_conv(F.silu(self.out_norm(h)))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    dev = sys.argv[3] if len(sys.argv) > 3 else "cuda"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    if dev == "cpu":
        torch.set_num_threads(2)
    m = UNetS().to(dev)
    params = sum(p.numel() for p in m.parameters())
    x = torch.randn(n, 1, 28, 28, device=dev)
    sigma = torch.rand(n, device=dev)
    ids = torch.tensor([i % 11 for i in range(2 * n)], device=dev)
    offsets = torch.arange(0, 2 * n, 2, device=dev)
    target = torch.randn_like(x)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    fwd, step = [], []
    for r in range(reps + 2):  # two warm-up rounds (cudnn.benchmark picks algorithms)
        sync()
        t0 = time.perf_counter()
        with torch.no_grad():
            m(x, sigma, ids, offsets)
        sync()
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.mse_loss(m(x, sigma, ids, offsets), target).backward()
        opt.step()
        sync()
        t2 = time.perf_counter()
        if r >= 2:
            fwd.append(t1 - t0)
            step.append(t2 - t1)
    f, s = sorted(fwd)[reps // 2], sorted(step)[reps // 2]
    name = torch.cuda.get_device_name() if dev == "cuda" else "cpu"
    print(f"torch_unet_s: {params} parameters (grove unet-s V=12: 498721), batch {n}, "
          f"torch {torch.__version__}, {name}, fp32 (TF32 off)")
    print(f"  forward                 {f * 1e3:8.2f} ms  {n / f:8.1f} images/s  "
          f"{FLOP_PER_IMAGE * n / f * 1e-12:6.2f} TFLOP/s")
    print(f"  train step (fwd+bwd+adam) {s * 1e3:6.2f} ms  {n / s:8.1f} samples/s "
          f"{3 * FLOP_PER_IMAGE * n / s * 1e-12:6.2f} TFLOP/s (3x forward)")


if __name__ == "__main__":
    main()
