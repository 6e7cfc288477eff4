"""One trainer and one evaluator for every method.

:class:`Trainer` runs the epochs (device auto-choice, seeding, optional AMP, ``tqdm``
progress, atomic checkpoints with resume, NaN detection), evaluates on a *validation*
split after each epoch and keeps the best epoch's weights. The history is a pandas
DataFrame.

**Weak means weak.** A model whose ``supervision`` is ``"weak"`` receives every
training batch through :func:`wsg.models.strip_labels`, which removes the temporal
labels; no model's ``predict`` ever receives them. The evaluator keeps the labels to
itself.
"""
from __future__ import annotations

import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from wsg.metrics import recall_at
from wsg.models.base import GroundingModel, strip_labels


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def choose_device(device: str | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def to_device(batch: Mapping, device: torch.device) -> dict:
    """Move the tensors of a batch to ``device`` (lists stay as they are)."""
    return {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}


def training_view(model: GroundingModel, batch: Mapping) -> dict:
    """What a model may see of a training batch: without temporal labels unless fully supervised."""
    if model.supervision == "full":
        return dict(batch)
    if model.supervision != "weak":
        raise ValueError(f"{type(model).__name__}.supervision must be 'weak' or 'full', got {model.supervision!r}")
    return strip_labels(batch)


@dataclass
class TrainConfig:
    """Training settings shared by all methods (each chapter states its values).

    Attributes:
        epochs: passes over the training split.
        lr / weight_decay: Adam(W) settings.
        grad_clip: max gradient norm (``None``: no clipping).
        device: ``"cuda"``, ``"cpu"`` or ``None`` (auto).
        seed: seeds everything before the model's first step.
        amp: mixed precision on CUDA (ignored on CPU).
        protocol: evaluation protocol used on the validation split (see :func:`wsg.metrics.recall_at`).
        select_metric: validation metric that picks the best epoch (higher is better).
        top_k: ranked candidates kept per query for evaluation.
        checkpoint_dir: if set, ``last.pt`` (every epoch) and ``best.pt`` are written there
            atomically, and training resumes from ``last.pt`` if it exists.
        progress: show tqdm bars.
    """

    epochs: int = 10
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float | None = 5.0
    device: str | None = None
    seed: int = 0
    amp: bool = False
    protocol: str = "2d-tan"
    select_metric: str = "R@1,IoU=0.5"
    top_k: int = 50
    checkpoint_dir: str | None = None
    progress: bool = True


class Trainer:
    """Train one model; select its best epoch on the validation split.

    Example::

        trainer = Trainer(model, TrainConfig(epochs=10))
        history = trainer.fit(bench.loader("train"), bench.loader("val"))
        test = evaluate(model, bench.loader("test"))
    """

    def __init__(self, model: GroundingModel, config: TrainConfig | None = None,
                 optimizer: torch.optim.Optimizer | None = None):
        self.config = config or TrainConfig()
        set_seed(self.config.seed)
        self.device = choose_device(self.config.device)
        self.model = model.to(self.device)
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = optimizer or torch.optim.AdamW(params, lr=self.config.lr,
                                                        weight_decay=self.config.weight_decay)
        self.use_amp = self.config.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.history: list[dict] = []
        self.best_score = -math.inf
        self.best_state: dict | None = None
        self.last_state: dict | None = None  # where a later fit() call continues from
        self.epoch = 0

    # ----------------------------------------------------------------- checkpoints
    def _ckpt(self, name: str) -> Path | None:
        d = self.config.checkpoint_dir
        return Path(d) / name if d else None

    def save(self, path: str | Path) -> None:
        """Write a checkpoint atomically (temporary file, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scaler": self.scaler.state_dict(), "epoch": self.epoch, "history": self.history,
                 "best_score": self.best_score, "best_state": self.best_state, "config": asdict(self.config),
                 "rng": torch.get_rng_state()}
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)

    def load(self, path: str | Path) -> None:
        """Resume from a checkpoint written by :meth:`save`."""
        state = torch.load(path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.history = state["epoch"], state["history"]
        self.best_score, self.best_state = state["best_score"], state["best_state"]
        torch.set_rng_state(state["rng"])

    # ----------------------------------------------------------------- training
    def train_epoch(self, loader: Iterable) -> dict[str, float]:
        """One pass over ``loader``; returns the mean of the loss and of each named term."""
        self.model.train()
        sums: dict[str, float] = {}
        n = 0
        # mininterval: at most one widget update per second, so notebooks (and nbval,
        # which gives up after 5 s without a kernel message) are not flooded.
        bar = tqdm(loader, desc=f"epoch {self.epoch + 1}", leave=False, disable=not self.config.progress,
                   mininterval=1.0)
        for step, batch in enumerate(bar):
            batch = to_device(training_view(self.model, batch), self.device)
            with torch.autocast(self.device.type, enabled=self.use_amp):
                out = self.model(batch)
                loss, parts = self.model.loss(batch, out)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"{type(self.model).__name__}: non-finite loss {loss.item()} at epoch {self.epoch + 1}, "
                    f"step {step} (terms: {parts}); lower the learning rate or check the inputs")
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if self.config.grad_clip:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            n += 1
            for k, v in {"loss": loss.item(), **parts}.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            bar.set_postfix(loss=f"{sums['loss'] / n:.4f}")
        return {k: v / max(n, 1) for k, v in sums.items()}

    def fit(self, train_loader: Iterable, val_loader: Iterable | None = None, epochs: int | None = None,
            on_epoch_end: Callable[["Trainer", dict], dict | None] | None = None) -> pd.DataFrame:
        """Train for ``epochs`` (default: the config's), evaluating on ``val_loader`` after each.

        The model ends with the weights of the epoch with the best ``select_metric`` on
        the validation split (the last epoch when there is no validation loader).
        Returns the history: one row per epoch with the loss terms, the validation
        metrics (prefixed ``val_``) and the seconds it took. ``on_epoch_end(trainer, row)``
        runs after each epoch's validation; a dict it returns is added to the row
        (e.g. a chapter's own diagnostics on the validation split).
        """
        epochs = epochs or self.config.epochs
        last = self._ckpt("last.pt")
        if last is not None and last.exists():
            self.load(last)
        elif self.last_state is not None:  # a second fit() continues from the last epoch, not the best
            self.model.load_state_dict(self.last_state)
        for _ in tqdm(range(self.epoch, epochs), desc="training", disable=not self.config.progress,
                      initial=self.epoch, total=epochs, mininterval=1.0):
            t0 = time.perf_counter()
            row = {"epoch": self.epoch + 1, **self.train_epoch(train_loader)}
            row["train_seconds"] = time.perf_counter() - t0
            if val_loader is not None:
                metrics = evaluate(self.model, val_loader, protocol=self.config.protocol,
                                   top_k=self.config.top_k, device=self.device)
                row.update({f"val_{k}": v for k, v in metrics.items()})
                score = metrics[self.config.select_metric]
            else:
                score = float(self.epoch)
            if on_epoch_end is not None:
                row.update(on_epoch_end(self, row) or {})
            self.epoch += 1
            if score > self.best_score:
                self.best_score = score
                self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                row["best"] = True
                if self._ckpt("best.pt") is not None:
                    self.save(self._ckpt("best.pt"))
            self.history.append(row)
            if last is not None:
                self.save(last)
        self.last_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return self.history_frame()

    def history_frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.history)
        if "best" in df:
            df["best"] = df["best"].fillna(False).astype(bool)
        return df

    @property
    def best_epoch(self) -> int:
        """The 1-based epoch whose weights the model holds after :meth:`fit`."""
        df = self.history_frame()
        return int(df.loc[df["best"], "epoch"].iloc[-1]) if "best" in df else len(df)


# --------------------------------------------------------------------- evaluation
@torch.no_grad()
def predict_all(model: GroundingModel, loader: Iterable, top_k: int = 50,
                device: str | torch.device | None = None) -> dict:
    """Ranked predictions for every query of ``loader``.

    The model sees each batch without its labels. Returns a dict with ``moments``
    ``[Q, K, 2]`` and ``scores`` ``[Q, K]`` (normalised, best first), the ground truth
    ``gt`` ``[Q, 2]`` (normalised), ``duration`` ``[Q]`` and ``query_idx`` ``[Q]``.
    """
    device = choose_device(None if device is None else str(device))
    model.eval()
    model.to(device)
    moments, scores, gts, durs, idx = [], [], [], [], []
    for batch in loader:
        labels = batch["moment"]
        m, s = model.predict(to_device(strip_labels(batch), device), top_k=top_k)
        moments.append(m.float().cpu())
        scores.append(s.float().cpu())
        gts.append(labels)
        durs.append(batch["duration"])
        idx.append(batch["query_idx"])
    k = min(x.shape[1] for x in moments)
    return {"moments": torch.cat([x[:, :k] for x in moments]), "scores": torch.cat([x[:, :k] for x in scores]),
            "gt": torch.cat(gts), "duration": torch.cat(durs), "query_idx": torch.cat(idx)}


def evaluate(model: GroundingModel, loader: Iterable, protocol: str = "2d-tan", ns=(1, 5),
             ious=(0.3, 0.5, 0.7), top_k: int = 50, device=None) -> dict[str, float]:
    """R@n,IoU=m and mIoU (in %) of ``model`` on ``loader`` under ``protocol``.

    Moments are compared in normalised time, which gives the same IoU as seconds.
    """
    pred = predict_all(model, loader, top_k=top_k, device=device)
    return recall_at(pred["moments"], pred["gt"], ns=ns, ious=ious, protocol=protocol)
