"""Speed and memory benchmark: ``python -m wsg bench [KEY ...] --profile P [--device D] [--amp] [--epochs N]``.

Each method trains for a few epochs on its recipe's synthetic data (the Charades-like
preset, sized by the profile) through the one :class:`wsg.train.Trainer`, and the
benchmark reports per method:

- ``s/epoch`` (training only, mean over the epochs after the first, which warms caches
  and, on CUDA, the kernels) and ``queries/s``;
- ``forward %``: the share of step time spent in forward + loss (the rest is backward
  + optimizer step), measured with a device synchronisation around each part;
- ``peak MiB``: on CUDA ``torch.cuda.max_memory_allocated`` for this method; on CPU the
  process's peak resident set size (``ru_maxrss``), which only grows, so it bounds the
  methods benchmarked so far in the process;
- ``parameters`` and ``eval s``: seconds to predict the whole test split.

Rows are appended to ``results/bench.csv`` with the device, the torch and wsg versions
and the command line.
"""
from __future__ import annotations

import resource
import shlex
import sys
import time
from pathlib import Path
from typing import Sequence

import pandas as pd
import torch

__all__ = ["benchmark", "BENCH_CSV"]

BENCH_CSV = Path("results") / "bench.csv"


def _peak_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def benchmark(keys: Sequence[str], profile: str = "tiny", device: str | None = None, amp: bool = False,
              epochs: int = 3, dataset: str = "charades", out: str | Path | None = BENCH_CSV,
              command: str | None = None, progress: bool = False, data=None) -> pd.DataFrame:
    """Time ``epochs`` training epochs of each method and one pass over the test split.

    ``data`` replaces the recipe's synthetic benchmark (a :class:`wsg.data.Benchmark`,
    e.g. real features or a small one for a test).

    Returns:
        one row per method (see the module docstring); appended to ``out`` unless ``None``.

    Raises:
        ValueError: ``epochs < 2`` (the first epoch is warm-up) or an unknown method.
    """
    from wsg import __version__
    from wsg.data import load_synthetic
    from wsg.models import build
    from wsg.recipes import METHODS, get, model_config, train_config
    from wsg.train import Trainer, choose_device, predict_all, set_seed

    if epochs < 2:
        raise ValueError(f"--epochs must be at least 2 (the first epoch is warm-up), got {epochs}")
    unknown = [k for k in keys if k not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; known: {', '.join(METHODS)}")
    dev = choose_device(device)
    bench = data if data is not None else load_synthetic(dataset, profile=profile)
    rows = []
    for key in keys:
        recipe = get(key, dataset, profile)
        set_seed(0)
        model = build(key, **model_config(recipe, bench))
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        trainer = Trainer(model, train_config(recipe, epochs=epochs, device=str(dev), amp=amp, progress=progress,
                                              time_steps=True))
        history = trainer.fit(bench.loader("train", recipe["batch_size"]), None)
        per_epoch = history["train_seconds"].iloc[1:].mean()
        t0 = time.perf_counter()
        predict_all(model, bench.loader("test"), device=dev)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        eval_s = time.perf_counter() - t0
        steps = trainer.step_seconds
        rows.append({
            "method": key, "profile": profile, "dataset": dataset, "device": str(dev),
            "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
            "amp": trainer.use_amp and str(trainer.amp_dtype).replace("torch.", ""),
            "epochs": epochs, "s/epoch": round(per_epoch, 3),
            "queries/s": round(len(bench.splits["train"]) / per_epoch, 1),
            "forward %": round(100 * steps["forward"] / max(steps["forward"] + steps["backward"], 1e-9), 1),
            "peak MiB": round(_peak_mib(dev), 1), "parameters": sum(p.numel() for p in model.parameters()),
            "eval s": round(eval_s, 3), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "wsg_version": __version__,
            "command": command or " ".join(shlex.quote(a) for a in sys.argv)})
    df = pd.DataFrame(rows)
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(out, mode="a", header=not out.exists(), index=False)
    return df
