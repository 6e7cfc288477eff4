"""WSRA: where does the attention go in the first epochs? A per-term diagnosis.

Trains WSRA with the chapter's tiny settings and, after every epoch, prints the mean
attention density (1 = uniform) on the ground-truth snippets and on the snippets of any
event of the validation videos, with the validation R@1,IoU=0.5. A density below 1 on
the events means the attention has moved *off* them for every query. Run it with the
loss terms switched off one at a time to see which term drives a failing seed::

    WSG_DATA=.cache/wsg python scripts/wsra_attention_diagnosis.py --preset activitynet --w-bg 0.1
    WSG_DATA=.cache/wsg python scripts/wsra_attention_diagnosis.py --preset activitynet --w-bg 0.1 --w-vas 0
    WSG_DATA=.cache/wsg python scripts/wsra_attention_diagnosis.py --preset activitynet --w-bg 0.1 --w-vas 0 --w-crov 0 --w-ins 1
    WSG_DATA=.cache/wsg python scripts/wsra_attention_diagnosis.py --preset activitynet --w-bg 0

(seed 0, three epochs: a few minutes each on one CPU core). Nothing is written; the
chapter's prose about these runs states directions, not numbers.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

import wsg
import wsg.data
import wsg.models
from wsg.models import strip_labels
from wsg.train import Trainer, TrainConfig, evaluate, set_seed

WIDTHS = dict(word_dim=64, text_hidden=64, hidden=128, phi_hidden=64)


def densities(model, bench, loader) -> tuple[float, float]:
    """Mean attention density (1 = uniform) on the ground truth and on any event of the video."""
    events = wsg.data.load_events(bench)
    events = events[events.split == "val"]
    spans = {v: g[["start", "end"]].to_numpy() for v, g in events.groupby("video_id")}
    on_gt, on_event = [], []
    model.eval()
    with torch.no_grad():
        for b in loader:
            a = model.attend(strip_labels(b))["alpha"]
            T = a.shape[1]
            x = (torch.arange(T, dtype=torch.float64) + 0.5) / T
            gt = (x[None] >= b["moment"][:, :1]) & (x[None] <= b["moment"][:, 1:])
            sec = x[None, :, None].numpy() * b["duration"].double().numpy()[:, None, None]  # [B, T, 1]
            ev = torch.tensor(np.stack([((s >= spans[v][:, 0]) & (s <= spans[v][:, 1])).any(-1)
                                        for s, v in zip(sec, b["video_id"])]))
            on_gt += ((a * gt).sum(1) / gt.double().mean(1)).tolist()
            on_event += ((a * ev).sum(1) / ev.double().mean(1).clamp(min=1e-6)).tolist()
    model.train()
    return float(np.mean(on_gt)), float(np.mean(on_event))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="activitynet")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-3)
    for term, default in (("bg", None), ("vas", None), ("ins", None), ("crov", None)):
        ap.add_argument(f"--w-{term}", type=float, default=default, help=f"w_{term} (default: the config's)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    bench = wsg.data.load_synthetic(args.preset, "tiny")
    weights = {f"w_{t}": getattr(args, f"w_{t}") for t in ("bg", "vas", "ins", "crov")
               if getattr(args, f"w_{t}") is not None}
    set_seed(args.seed)
    model = wsg.models.build("wsra", **bench.model_kwargs(), **WIDTHS, **weights)
    val = bench.loader("val", 64)

    def report(tag: str) -> None:
        gt, ev = densities(model, bench, val)
        r1 = evaluate(model, val)["R@1,IoU=0.5"]
        print(f"{tag}: density on the ground truth {gt:.3f} | on any event {ev:.3f} | val R@1,IoU=0.5 {r1:.1f}",
              flush=True)

    print(args.preset, "seed", args.seed, weights or "config weights")
    report("epoch 0")
    trainer = Trainer(model, TrainConfig(epochs=args.epochs, lr=args.lr, seed=args.seed, progress=False))
    trainer.fit(bench.loader("train", 32, seed=args.seed), None,
                on_epoch_end=lambda t, row: report(f"epoch {row['epoch']} (loss {row['loss']:.3f})"))


if __name__ == "__main__":
    main()
