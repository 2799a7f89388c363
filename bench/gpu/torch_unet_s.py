"""PyTorch twin of grove's unet-s (models/unet/unet.h) for side-by-side GPU figures.

The same architecture, shapes and FLOPs as grove's unet-s with the MNIST vocabulary (18 words of
configs/prompts/mnist-vocab.txt + <null>: V = 19), the model the default Flow-GRPO config aligns.
The script checks its own parameter count against grove's 499,617 (unet.h: 497,185 + 128 V) and
refuses to print figures when they differ (the twin drifted). Three measurements, each the twin of
a grove benchmark, in fp32 with TF32 off (grove's CUDA backend is fp32 without TF32):

 1. pretraining (bench/bench_unet.c): median forward and median training step (forward + backward
    + AdamW) at one batch size; "sampling, 20 Euler steps" = batch / (20 x forward), as bench_unet.
 2. rollout (bench/bench_grpo.c, configs/align/mnist-flowgrpo.yaml): 8 prompts x 8 chains = 64
    samples x 10 steps (shift 3): 9 flow_grpo SDE steps (noise level 0.7, ALGORITHMS.md section 2)
    with their log-probs stored, then the ODE last step; every denoiser call has the fixed
    micro-batch shape 36 (the tail padded), as grove's denoiser. images/s = 64 / rollout seconds.
 3. one Flow-GRPO iteration of that config: the rollout, advantages (per-prompt mean, global std,
    clamp 5), then training every (sample, stochastic step) unit, 64 x 9 = 576: the 64 roots
    shuffled into 8 minibatches of 8 roots (72 units = 2 chunks of 36), per chunk the policy's
    forward + backward of the clipped objective (clip 1e-4) + velocity KL (beta 0.01) against a
    frozen reference model's forward, per minibatch grad-norm clip 1.0 and one AdamW step (lr
    1e-4), EMA every 8 steps. Printed like bench_grpo: seconds per iteration, rollout images/s,
    training units/s.

    python3 bench/gpu/torch_unet_s.py [batch (256)] [repetitions (10)] [device (cuda)]
                                      [Flow-GRPO iterations (3; the first is a warm-up, not timed)]

Prints one line per figure; never fails on time. Without PyTorch it prints "torch missing" and
exits 0 (scripts/gpu-check.sh reports the comparison as skipped). Deliberately not here: grove's
weights (speed does not depend on them), CFG (the config samples without it), the classifier
reward (a stand-in reward on the final images: grove's bench_grpo figures include its classifier
forward, this one's do not), checkpoints and evals (bench_grpo skips them too).
"""
import math
import os
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as err:  # fail soft: the figures are optional, the machine may lack PyTorch
    print(f"torch_unet_s: torch missing ({err}); no PyTorch figures")
    sys.exit(0)

FLOP_PER_IMAGE = 183.27e6  # gv_unet_flops for unet-s (multiply-add = 2 FLOP)
GROVE_UNET_S_PARAMS = 499_617  # grove's unet-s at V = 19 (models/unet/unet.h: 497,185 + 128 V)
VOCAB = 19  # configs/prompts/mnist-vocab.txt's 18 words + the reserved <null> word

# The default Flow-GRPO config (configs/align/mnist-flowgrpo.yaml + configs/algorithms/flow_grpo.yaml)
PROMPTS, GROUP, STEPS, SHIFT, MICRO_BATCH = 8, 8, 10, 3.0, 36
NOISE_LEVEL, CLIP_RANGE, ADV_CLIP, STD_EPS = 0.7, 1e-4, 5.0, 1e-4
KL_BETA, LR, GRAD_CLIP, MINIBATCH_ROOTS, EMA_EVERY, EMA_DECAY = 0.01, 1e-4, 1.0, 8, 8, 0.9


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
    """unet-s: time MLP + prompt bag, in conv, 2 levels (32, 64) of Res + stride-2 conv, 2 mid
    Res, 2 up levels (nearest x2, concat the skip, Res), GN + SiLU + out conv (unet.h)."""

    def __init__(self, vocab=VOCAB, ch=(32, 64), emb=128, tdim=64, mid=2):
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

    def forward(self, x, sigma, ids):
        """x (N, 1, 28, 28), sigma (N), ids (N, 2): the prompt's word ids (a bag of 2 words)."""
        half = self.tdim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=x.device) / half)
        a = 1000.0 * sigma[:, None] * freqs[None]
        t = torch.cat([torch.sin(a), torch.cos(a)], 1)
        e = self.lin2(F.silu(self.lin1(t))) + self.prompt(ids)
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


def vocab_from_repo():
    """V from configs/prompts/mnist-vocab.txt (+1 for <null>) when the repository is here."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "configs",
                        "prompts", "mnist-vocab.txt")
    try:
        with open(path, encoding="utf-8") as f:
            words = [ln for ln in f if ln.strip() and not ln.lstrip().startswith("#")]
        return len(words) + 1
    except OSError:
        return VOCAB


# ---- pretraining (bench_unet's twin) -----------------------------------------------------------

def bench_pretrain(m, n, reps, dev, sync):
    x = torch.randn(n, 1, 28, 28, device=dev)
    sigma = torch.rand(n, device=dev)
    ids = torch.tensor([[i % 11, (i + 1) % 11] for i in range(n)], device=dev)
    target = torch.randn_like(x)
    opt = torch.optim.AdamW(m.parameters(), lr=LR)
    fwd, step = [], []
    for r in range(reps + 2):  # two warm-up rounds (cudnn.benchmark picks algorithms)
        sync()
        t0 = time.perf_counter()
        with torch.no_grad():
            m(x, sigma, ids)
        sync()
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.mse_loss(m(x, sigma, ids), target).backward()
        opt.step()
        sync()
        t2 = time.perf_counter()
        if r >= 2:
            fwd.append(t1 - t0)
            step.append(t2 - t1)
    f, s = sorted(fwd)[reps // 2], sorted(step)[reps // 2]
    print(f"  forward                 {f * 1e3:8.2f} ms  {n / f:8.1f} images/s  "
          f"{FLOP_PER_IMAGE * n / f * 1e-12:6.2f} TFLOP/s")
    print(f"  train step (fwd+bwd+adam) {s * 1e3:6.2f} ms  {n / s:8.1f} samples/s "
          f"{3 * FLOP_PER_IMAGE * n / s * 1e-12:6.2f} TFLOP/s (3x forward)")
    print(f"  sampling, 20 Euler steps            {n / (20.0 * f):8.1f} images/s")


# ---- Flow-GRPO (bench_grpo's twin) ---------------------------------------------------------------

def schedule(steps, shift):
    """sigma_i = S u / (1 + (S - 1) u), u = 1 - i / N, i = 0..N (ALGORITHMS.md section 1)."""
    return [shift * (1 - i / steps) / (1 + (shift - 1) * (1 - i / steps)) for i in range(steps + 1)]


def sde_mean_std(x, v, sig, sig_next, sig1):
    """flow_grpo step (ALGORITHMS.md section 2); sig, sig_next: (N, 1, 1, 1) tensors."""
    d = sig_next - sig
    sig_t = torch.where(sig == 1.0, torch.full_like(sig, sig1), sig)
    s = NOISE_LEVEL * torch.sqrt(sig / (1 - sig_t))
    mu = x * (1 + s * s * d / (2 * sig)) + v * (1 + s * s * (1 - sig) / (2 * sig)) * d
    return mu, s * torch.sqrt(-d)


def log_prob(x_next, mu, std):
    """mean over the image of the Gaussian log-density; (N,)."""
    lp = -(x_next - mu) ** 2 / (2 * std * std) - torch.log(std) - 0.5 * math.log(2 * math.pi)
    return lp.mean(dim=(1, 2, 3))


def check_step_arithmetic():
    """The flow_grpo step against ALGORITHMS.md section 2's worked check (N=10, S=3, a=0.7, i=2,
    x=0.5, v=-0.25, eps=0.3): mu 0.438401, std 0.531688, x' 0.597908, log-prob -0.332240."""
    sig = schedule(10, 3.0)
    t = lambda val: torch.full((1, 1, 1, 1), val, dtype=torch.float64)  # noqa: E731
    mu, std = sde_mean_std(t(0.5), t(-0.25), t(sig[2]), t(sig[3]), sig[1])
    x_next = mu + std * 0.3
    got = (mu.item(), std.item(), x_next.item(), log_prob(x_next, mu, std).item())
    want = (0.438401, 0.531688, 0.597908, -0.332240)
    if any(abs(g - w) > 2e-6 for g, w in zip(got, want)):
        raise SystemExit(f"torch_unet_s: flow_grpo step arithmetic {got} != ALGORITHMS.md {want}")


def velocity(m, x, sig, ids):
    """The denoiser at grove's fixed micro-batch shape: chunks of MICRO_BATCH rows, tail padded."""
    out = []
    for k in range(0, x.shape[0], MICRO_BATCH):
        xs, ss, ii = x[k:k + MICRO_BATCH], sig[k:k + MICRO_BATCH], ids[k:k + MICRO_BATCH]
        r = xs.shape[0]
        if r < MICRO_BATCH:
            pad = MICRO_BATCH - r
            xs = torch.cat([xs, xs.new_zeros(pad, *xs.shape[1:])])
            ss = torch.cat([ss, ss.new_ones(pad)])
            ii = torch.cat([ii, ii[:1].expand(pad, -1)])
        out.append(m(xs, ss, ii)[:r])
    return torch.cat(out)


def rollout(m, sig, dev):
    """64 chains x 10 steps; returns the states (STEPS + 1, S, 1, 28, 28), the stored log-probs of
    the SDE steps (STEPS - 1, S), the advantages (S) and the prompt ids (S, 2)."""
    S = PROMPTS * GROUP
    prompt_of = torch.arange(S, device=dev) // GROUP
    digits = torch.randint(0, 10, (PROMPTS,), device=dev)
    ids = torch.stack([torch.full_like(digits, 10), digits], 1)[prompt_of]  # "a <digit>"
    x = torch.randn(S, 1, 28, 28, device=dev)
    states, logps = [x], []
    with torch.no_grad():
        for i in range(STEPS):
            v = velocity(m, x, torch.full((S,), sig[i], device=dev), ids)
            if i < STEPS - 1:
                s_i = torch.full((S, 1, 1, 1), sig[i], device=dev)
                mu, std = sde_mean_std(x, v, s_i, torch.full_like(s_i, sig[i + 1]), sig[1])
                x = mu + std * torch.randn_like(x)
                logps.append(log_prob(x, mu, std))
            else:  # the last step is the ODE step
                x = x + (sig[i + 1] - sig[i]) * v
            states.append(x)
        # stand-in reward (grove: the classifier), then Flow-GRPO advantages
        reward = ((x + 1) / 2).clamp(0, 1).mean(dim=(1, 2, 3))
        group_mean = reward.view(PROMPTS, GROUP).mean(1)[prompt_of]
        adv = ((reward - group_mean) / (reward.std(unbiased=False) + STD_EPS)).clamp(-ADV_CLIP,
                                                                                    ADV_CLIP)
    return torch.stack(states), torch.stack(logps), adv, ids


def train_iteration(m, ref, ema, opt, roll, sig, dev, state):
    """Every (sample, SDE step) unit once: 8 minibatches of 8 roots, chunks of MICRO_BATCH units."""
    states, logp_old, adv, ids = roll
    S, T = adv.shape[0], STEPS - 1
    sig_t = torch.tensor(sig, device=dev)
    units = 0
    first_ratio_dev = None  # max |rho - 1| over the first chunk, before any update: ~0 (float noise)
    perm = torch.randperm(S, device=dev)
    for mb in range(0, S, MINIBATCH_ROOTS):
        roots = perm[mb:mb + MINIBATCH_ROOTS]
        r_idx = roots.repeat_interleave(T)  # a root's T units together, as grove's chains
        t_idx = torch.arange(T, device=dev).repeat(roots.shape[0])
        n_mb = r_idx.shape[0]
        opt.zero_grad(set_to_none=True)
        for k in range(0, n_mb, MICRO_BATCH):
            r, t = r_idx[k:k + MICRO_BATCH], t_idx[k:k + MICRO_BATCH]
            x, x_next = states[t, r], states[t + 1, r]
            s, s_next = sig_t[t], sig_t[t + 1]
            v = m(x, s, ids[r])
            with torch.no_grad():
                v_ref = ref(x, s, ids[r])
            mu, std = sde_mean_std(x, v, s[:, None, None, None], s_next[:, None, None, None], sig[1])
            ratio = torch.exp(log_prob(x_next, mu, std) - logp_old[t, r])
            if first_ratio_dev is None:
                first_ratio_dev = (ratio.detach() - 1).abs().max().item()
            a = adv[r]
            pg = torch.maximum(-a * ratio, -a * ratio.clamp(1 - CLIP_RANGE, 1 + CLIP_RANGE))
            kl = ((v - v_ref) ** 2).mean(dim=(1, 2, 3))
            ((pg + KL_BETA * kl).sum() / n_mb).backward()
            units += r.shape[0]
        torch.nn.utils.clip_grad_norm_(m.parameters(), GRAD_CLIP)
        opt.step()
        state["steps"] += 1
        if state["steps"] % EMA_EVERY == 0:
            k = state["steps"]
            decay = min((1 + k) / (10 + k), EMA_DECAY)
            with torch.no_grad():
                for pe, p in zip(ema.parameters(), m.parameters()):
                    pe.lerp_(p, 1 - decay)
    return units, first_ratio_dev


def bench_grpo(m, iterations, dev, sync):
    ref = UNetS().to(dev).requires_grad_(False)
    ref.load_state_dict(m.state_dict())
    ema = UNetS().to(dev).requires_grad_(False)
    ema.load_state_dict(m.state_dict())
    opt = torch.optim.AdamW(m.parameters(), lr=LR, betas=(0.9, 0.999), weight_decay=1e-4)
    sig = schedule(STEPS, SHIFT)
    state = {"steps": 0}
    t_roll = t_train = 0.0
    units = images = 0
    for k in range(iterations):  # iteration 0 warms up (cudnn.benchmark at the 36-row shapes)
        sync()
        t0 = time.perf_counter()
        roll = rollout(m, sig, dev)
        sync()
        t1 = time.perf_counter()
        u, rho_dev = train_iteration(m, ref, ema, opt, roll, sig, dev, state)
        sync()
        t2 = time.perf_counter()
        print(f"  iteration {k}: rollout {t1 - t0:.3f} s, training {t2 - t1:.3f} s, first chunk "
              f"max |rho - 1| {rho_dev:.2e}{' (warm-up, not counted)' if k == 0 else ''}")
        if k > 0:
            t_roll += t1 - t0
            t_train += t2 - t1
            units += u
            images += roll[2].shape[0]
    n = max(iterations - 1, 1)
    if t_roll == 0.0:
        print("  flow-grpo: only the warm-up iteration ran (ask for 2 or more)")
        return
    print(f"  flow-grpo ({PROMPTS} prompts x {GROUP}, {STEPS} steps, micro-batch {MICRO_BATCH}, "
          f"{n} timed iteration(s))")
    print(f"  flow-grpo seconds per iteration  {(t_roll + t_train) / n:8.3f}  "
          f"(rollout {t_roll / n:.3f} + training {t_train / n:.3f})")
    print(f"  flow-grpo rollout images/s       {images / t_roll:8.2f}  "
          f"({images * STEPS / t_roll:.0f} denoiser rows/s, padding excluded)")
    print(f"  flow-grpo training units/s       {units / t_train:8.2f}  "
          f"({2 * units / t_train:.0f} NFE/s incl. the reference forwards)")


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    dev = sys.argv[3] if len(sys.argv) > 3 else "cuda"
    grpo_iters = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    if n < 1 or reps < 1 or grpo_iters < 0:
        print("usage: torch_unet_s.py [batch] [repetitions] [device] [Flow-GRPO iterations]",
              file=sys.stderr)
        return 2
    if dev == "cuda" and not torch.cuda.is_available():
        print("torch_unet_s: torch has no CUDA device here; no PyTorch figures")
        return 0
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    if dev == "cpu":
        torch.set_num_threads(2)
    torch.manual_seed(1)
    check_step_arithmetic()
    vocab = vocab_from_repo()
    m = UNetS(vocab=vocab).to(dev)
    params = sum(p.numel() for p in m.parameters())
    if vocab != VOCAB or params != GROVE_UNET_S_PARAMS:
        print(f"torch_unet_s: the twin drifted from grove's unet-s: {params} parameters at V = "
              f"{vocab}, grove has {GROVE_UNET_S_PARAMS} at V = {VOCAB}; no figures",
              file=sys.stderr)
        return 1
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    name = torch.cuda.get_device_name() if dev == "cuda" else "cpu"
    print(f"torch_unet_s: {params} parameters (= grove unet-s, V={vocab}), batch {n}, "
          f"torch {torch.__version__}, {name}, fp32 (TF32 off)")
    bench_pretrain(m, n, reps, dev, sync)
    if grpo_iters > 0:
        bench_grpo(m, grpo_iters, dev, sync)
    return 0


if __name__ == "__main__":
    sys.exit(main())
