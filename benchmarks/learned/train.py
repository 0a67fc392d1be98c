"""Train the learned mu estimator's TCN (``neurofeed.dsp.learned``) and export its weights.

One network per (sampling rate, design delay). Inputs: conditioned, referenced single channels
(``benchmarks/learned/data.py``: simulated bursty rhythms + EEGMMIDB S001 R01/R02 only; R03–R06
and S02 are the test records). Target: the non-causal 8–13 Hz analytic signal ``design_delay``
ago. Loss: squared error of the log power (what the frontier scores) plus a small squared error
of the analytic signal itself (keeps the phase honest and the training stable). Early stopping on
a held-out time split (the last 20 % of each training record).

Needs the ``[train]`` extra (torch). One thread, ~1 CPU-minute per network::

    nice .venv/bin/python benchmarks/learned/train.py --sfreq 160 --delays-ms 0 20 \
        --out neurofeed/dsp/weights/mu_tcn.npz

Networks already in ``--out`` for other (rate, delay) pairs are kept; ``--merge a.npz b.npz``
merges files trained in parallel into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from data import BAND, TRAIN_RUNS, training_records  # noqa: E402

DILATIONS = (1, 2, 4, 8, 16, 32, 64)
HIDDEN = 16
RF = 1 + 2 * sum(DILATIONS)
OUT_LEN = 256
VAL_FRACTION = 0.2


def build(torch, hidden=HIDDEN, dilations=DILATIONS):
    nn = torch.nn
    F = torch.nn.functional

    class TCN(nn.Module):
        """Causal dilated convolutions, no biases (positively homogeneous), residual layers."""

        def __init__(self):
            super().__init__()
            self.dil = dilations
            self.first = nn.Conv1d(1, hidden, 3, dilation=dilations[0], bias=False)
            self.layers = nn.ModuleList([nn.Conv1d(hidden, hidden, 3, dilation=d, bias=False) for d in dilations[1:]])
            self.out = nn.Conv1d(hidden, 2, 1, bias=False)
            with torch.no_grad():
                for conv in self.layers:
                    conv.weight.mul_(0.5)

        def forward(self, x):  # x: (batch, 1, n) -> (batch, 2, n), causal
            h = F.relu(self.first(F.pad(x, (2 * self.dil[0], 0))))
            for d, conv in zip(self.dil[1:], self.layers):
                h = h + F.relu(conv(F.pad(h, (2 * d, 0))))
            return self.out(h)

    return TCN()


def crops(recs, shift, rng, batch, split, sfreq):
    """A batch of (input, target re/im) crops; ``split`` 'train' (first 80 %) or 'val' (last 20 %)."""
    edge = int(0.5 * sfreq)
    xs, ys = [], []
    for _ in range(batch):
        _, x, a, scale = recs[rng.integers(len(recs))]
        n = x.size
        cut = int((1 - VAL_FRACTION) * n)
        lo, hi = (0, cut) if split == "train" else (cut, n)
        # outputs (at s + RF ... s + RF + OUT_LEN - 1) lie in the split; their truth (shift earlier)
        # stays 0.5 s away from the record's edges, where the brick-wall truth rings
        s_min = max(lo, edge + shift - RF)
        s_max = min(hi, n - edge + shift) - RF - OUT_LEN
        if s_max <= s_min:
            continue
        s = int(rng.integers(s_min, s_max))
        sign = 1.0 if rng.random() < 0.5 else -1.0
        xs.append(sign * x[s:s + RF + OUT_LEN] / scale)
        t = np.arange(s + RF, s + RF + OUT_LEN) - shift
        ys.append(sign * np.stack([a[t].real, a[t].imag]) / scale)
    return np.array(xs)[:, None, :], np.array(ys)


def loss_fn(torch, pred, y, out_len=OUT_LEN):
    pred = pred[..., -out_len:]
    pp = 0.5 * (pred ** 2).sum(1)
    pt = 0.5 * (y ** 2).sum(1)
    eps = 1e-3 * pt.mean(dim=1, keepdim=True) + 1e-8
    log_err = (torch.log(pp + eps) - torch.log(pt + eps)) ** 2
    lin_err = ((pred - y) ** 2).sum(1) / (pt.mean(dim=1, keepdim=True) + 1e-8)
    return log_err.mean() + 0.3 * lin_err.mean()


def train_one(torch, recs, sfreq, delay_ms, steps, batch, seed, log, hidden=HIDDEN):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    shift = int(round(delay_ms * sfreq / 1000.0))
    model = build(torch, hidden=hidden)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    vrng = np.random.default_rng(10_000 + seed)
    val = [crops(recs, shift, vrng, batch, "val", sfreq) for _ in range(8)]
    val = [(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)) for x, y in val]
    best, best_state, t0 = np.inf, None, time.process_time()
    for step in range(1, steps + 1):
        x, y = crops(recs, shift, rng, batch, "train", sfreq)
        x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
        opt.zero_grad()
        loss = loss_fn(torch, model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 200 == 0 or step == steps:
            with torch.no_grad():
                v = float(np.mean([float(loss_fn(torch, model(vx), vy)) for vx, vy in val]))
            if v < best:
                best, best_state = v, {k: t.clone() for k, t in model.state_dict().items()}
            log(f"  {sfreq:g} Hz @{delay_ms:+d} ms step {step:5d} train {loss.item():.4f} val {v:.4f} "
                f"(best {best:.4f}) cpu {time.process_time() - t0:.0f} s")
    model.load_state_dict(best_state)
    return model, best, time.process_time() - t0


def export(model, sfreq, delay_ms, val_loss, cpu_s, steps, n_recs):
    sd = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    w0 = sd["first.weight"][:, 0, :]  # (C, 3), tap 2 newest
    w = np.stack([sd[f"layers.{i}.weight"].transpose(0, 2, 1) for i in range(len(DILATIONS) - 1)])  # (L-1, C, 3, C)
    w_out = sd["out.weight"][:, :, 0]  # (2, C)
    meta = {"sfreq": float(sfreq), "design_delay_ms": int(delay_ms), "band_hz": list(BAND), "hidden": int(w0.shape[0]),
            "dilations": list(DILATIONS), "receptive_field_samples": RF, "val_loss": float(val_loss),
            "train_cpu_s": float(cpu_s), "steps": int(steps), "records": int(n_recs),
            "trained_on": f"simulated bursty rhythms + EEGMMIDB S001 {'/'.join(TRAIN_RUNS)} (small Laplacian, "
                          f"every channel with a ring), resampled to {sfreq:g} Hz; R03-R06 and S02 held out"}
    return {"w0": w0, "w": w, "w_out": w_out, "dilations": np.array(DILATIONS, dtype=np.int64), "meta": meta}


def save(nets, path):
    """Write ``nets`` ({(sfreq, delay_ms): exported}) to one npz (float32 weights, JSON meta)."""
    arrays, metas = {}, []
    for k, key in enumerate(sorted(nets)):
        n = nets[key]
        for name in ("w0", "w", "w_out"):
            arrays[f"k{k}_{name}"] = n[name].astype(np.float32)
        arrays[f"k{k}_dilations"] = n["dilations"]
        metas.append(n["meta"])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, meta=np.array(json.dumps({"networks": metas})), **arrays)


def load_existing(path):
    if not Path(path).exists():
        return {}
    with np.load(path) as z:
        metas = json.loads(str(z["meta"]))["networks"]
        return {(float(m["sfreq"]), int(m["design_delay_ms"])): {
            "w0": z[f"k{k}_w0"].astype(float), "w": z[f"k{k}_w"].astype(float), "w_out": z[f"k{k}_w_out"].astype(float),
            "dilations": z[f"k{k}_dilations"], "meta": m} for k, m in enumerate(metas)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sfreq", type=float, nargs="+", default=[160.0])
    ap.add_argument("--delays-ms", type=int, nargs="+", default=[0])
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--hidden", type=int, default=HIDDEN, help="channels per layer (run time grows with its square)")
    ap.add_argument("--batch", type=int, default=24)
    ap.add_argument("--sim-seconds", type=float, default=1200.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[2] / "neurofeed" / "dsp" / "weights" / "mu_tcn.npz"))
    ap.add_argument("--merge", nargs="+", metavar="NPZ",
                    help="only merge these weight files (trained in parallel) into --out, then exit")
    args = ap.parse_args(argv)
    if args.merge:
        nets = load_existing(args.out)
        for path in args.merge:
            nets.update(load_existing(path))
        save(nets, args.out)
        print(f"{args.out}: {', '.join(f'{k[0]:g} Hz @{k[1]:+d} ms' for k in sorted(nets))}")
        return
    try:
        import torch
    except ImportError:
        sys.exit("benchmarks/learned/train.py needs torch: pip install -e '.[train]'")
    torch.set_num_threads(1)
    nets = load_existing(args.out)
    for sfreq in args.sfreq:
        t = time.process_time()
        recs = [(n, x, a, float(np.std(x)) + 1e-9) for n, x, a in training_records(sfreq, args.sim_seconds, args.seed)]
        print(f"{sfreq:g} Hz: {len(recs)} training records ({time.process_time() - t:.0f} s CPU to build)", flush=True)
        for d in args.delays_ms:
            model, val, cpu = train_one(torch, recs, sfreq, d, args.steps, args.batch, args.seed,
                                        lambda s: print(s, flush=True), hidden=args.hidden)
            nets[(float(sfreq), int(d))] = export(model, sfreq, d, val, cpu, args.steps, len(recs))
            save(nets, args.out)
            print(f"{sfreq:g} Hz @{d:+d} ms: val loss {val:.4f}, {cpu:.0f} s CPU -> {args.out}", flush=True)


if __name__ == "__main__":
    main()
