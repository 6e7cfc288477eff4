"""One trainer and one evaluator for every method.

:class:`Trainer` runs the epochs (device auto-choice, seeding, optional AMP, ``tqdm``
progress, atomic checkpoints with resume, NaN detection), evaluates on a *validation*
split after each epoch and keeps the best epoch's weights. The history is a pandas
DataFrame.

Two limits bound a run. ``TrainConfig.max_minutes`` (set by the ``full`` profile) stops
at the end of the epoch that would overrun the budget, keeping the best validation
weights so far; the trainer prints its estimate of the time left after the first epoch.
The environment variable ``WSG_STEP_CAP="steps[,epochs]"`` (:func:`step_cap`) cuts every
run to that many steps per epoch (and epochs): a smoke test of a whole chapter, e.g.
the ``full`` profile on a CPU. A capped model has learned next to nothing, so chapters
skip their asserts about what a trained model learned when it is set, and say so.

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
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from wsg.metrics import recall_at
from wsg.models.base import GroundingModel, strip_labels


def step_cap() -> tuple[int, int] | None:
    """``(steps per epoch, epochs)`` from ``$WSG_STEP_CAP`` (``"3"`` or ``"3,1"``; epochs default
    to 1), or ``None`` when it is not set.

    Raises:
        ValueError: a value that is not one or two positive integers.
    """
    text = os.environ.get("WSG_STEP_CAP", "").strip()
    if not text:
        return None
    try:
        parts = [int(x) for x in text.split(",")]
    except ValueError:
        parts = []
    if not 1 <= len(parts) <= 2 or min(parts) < 1:
        raise ValueError(f"WSG_STEP_CAP={text!r}: expected 'steps' or 'steps,epochs' (positive integers)")
    return parts[0], parts[1] if len(parts) == 2 else 1


def capped_note() -> str | None:
    """The line a chapter prints instead of asserting what a trained model learned, under a step cap."""
    cap = step_cap()
    if cap is None:
        return None
    return (f"WSG_STEP_CAP={os.environ['WSG_STEP_CAP']}: every training run stops after {cap[0]} steps x "
            f"{cap[1]} epoch(s), so the asserts about what the trained models learned are skipped "
            "(every derivation check still runs)")


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA). Call it *before* building a model."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every global random state a training step may draw from (saved in checkpoints)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` saved."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def choose_device(device: str | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def to_device(batch: Mapping, device: torch.device) -> dict:
    """Move the tensors of a batch to ``device`` (lists stay as they are)."""
    return {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}


# --------------------------------------------------------------------- distributed (torchrun)
def init_distributed() -> tuple[int, int]:
    """Join the process group ``torchrun`` describes in the environment; ``(rank, world_size)``.

    Without ``torchrun`` (no ``WORLD_SIZE`` in the environment) it does nothing and
    returns ``(0, 1)``. Backend: NCCL on CUDA, gloo on CPU. Each process uses the GPU
    ``LOCAL_RANK``.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _world() -> tuple[int, int]:
    """``(rank, world_size)`` of an initialised process group, else ``(0, 1)``."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _distributed_loader(loader, rank: int, world: int, seed: int):
    """The same DataLoader with a :class:`~torch.utils.data.DistributedSampler` (shuffled per epoch)."""
    from torch.utils.data.distributed import DistributedSampler

    shuffle = loader.sampler is not None and hasattr(loader.sampler, "set_epoch")
    sampler = DistributedSampler(loader.dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=seed)
    return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler, collate_fn=loader.collate_fn,
                      num_workers=loader.num_workers, pin_memory=loader.pin_memory, drop_last=loader.drop_last,
                      generator=torch.Generator().manual_seed(seed))


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
        amp: mixed precision: bfloat16 autocast (float16 with loss scaling on a CUDA device
            without bfloat16). On by default in the ``full`` profile; on a CPU it runs the same
            code path in bfloat16 (slower than float32 on most CPUs: for checks, not speed).
        protocol: evaluation protocol used on the validation split (see :func:`wsg.metrics.recall_at`).
        select_metric: validation metric that picks the best epoch (higher is better).
        top_k: ranked candidates kept per query for evaluation.
        checkpoint_dir: if set, ``last.pt`` (every epoch) and ``best.pt`` are written there
            atomically, and training resumes from ``last.pt`` if it exists. Resuming is exact:
            the checkpoint holds the weights, the optimizer, every random state and the epoch
            (which fixes the loader's shuffle, :class:`wsg.data.EpochShuffle`).
        allow_config_change: resume from a checkpoint written with other settings (by default
            a difference raises, naming the fields; ``epochs`` may always grow).
        progress: show tqdm bars.
        log_every: steps between host synchronisations on an accelerator (the running loss
            sums stay on the device; the non-finite check runs at each of them). On CPU every
            step is checked, which costs nothing there.
        time_steps: accumulate the seconds of forward+loss and of backward+step in
            ``Trainer.step_seconds`` (synchronising the device twice a step: for the
            benchmark, not for training).
        max_minutes: a time budget: training stops at the end of the first epoch after which
            another epoch (at the mean epoch time so far) would overrun it; the best validation
            weights are kept. ``None``: no budget (the ``tiny`` profile: a budget would make the
            result depend on the machine's speed).
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
    allow_config_change: bool = False
    progress: bool = True
    log_every: int = 50
    time_steps: bool = False
    max_minutes: float | None = None


# Settings that may differ between a run and its resumption without changing its result.
_RESUMABLE_FIELDS = {"epochs", "device", "checkpoint_dir", "allow_config_change", "progress", "log_every",
                     "time_steps", "max_minutes"}


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
        self.rank, self.world_size = _world()
        self.device = choose_device(self.config.device)
        if self.device.type == "cuda" and self.world_size > 1 and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.model = model.to(self.device)
        # Under torchrun, gradients are averaged across processes by DistributedDataParallel;
        # `self.model` stays the plain module (its loss/predict/state_dict are used as is).
        self.ddp = None
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = DistributedDataParallel(self.model, device_ids=ids, find_unused_parameters=True)
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = optimizer or torch.optim.AdamW(params, lr=self.config.lr,
                                                        weight_decay=self.config.weight_decay)
        self.use_amp = self.config.amp and self.device.type in ("cuda", "cpu")
        # bf16 on CPUs and on GPUs that have it (no loss scaling needed), else fp16 with a GradScaler
        self.amp_dtype = (torch.float16 if self.use_amp and self.device.type == "cuda"
                          and not torch.cuda.is_bf16_supported() else torch.bfloat16)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)
        self.history: list[dict] = []
        self.best_score = -math.inf
        self.best_state: dict | None = None
        self.last_state: dict | None = None  # where a later fit() call continues from
        self.step_seconds = {"forward": 0.0, "backward": 0.0}  # filled when config.time_steps
        self.epoch = 0

    # ----------------------------------------------------------------- checkpoints
    def _ckpt(self, name: str) -> Path | None:
        d = self.config.checkpoint_dir
        return Path(d) / name if d else None

    def save(self, path: str | Path) -> None:
        """Write a checkpoint atomically (temporary file, then rename); under torchrun, rank 0 only.

        It holds everything an exact resumption needs (weights, optimizer, scaler, every
        random state, the epoch and the history) plus the training and model configs.
        """
        if self.rank != 0:
            return
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        model_config = getattr(self.model, "config", None)
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scaler": self.scaler.state_dict(), "epoch": self.epoch, "history": self.history,
                 "best_score": self.best_score, "best_state": self.best_state, "config": asdict(self.config),
                 "model_key": type(self.model).__name__,
                 "model_config": asdict(model_config) if is_dataclass(model_config) else None,
                 "rng": rng_state()}
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)

    def load(self, path: str | Path) -> None:
        """Resume from a checkpoint written by :meth:`save`.

        Raises:
            ValueError: the checkpoint was written with other settings (training config
                or model config), naming the differing fields, unless
                ``config.allow_config_change``.
        """
        state = torch.load(path, map_location=self.device, weights_only=False)
        self._check_same_settings(path, state)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.history = state["epoch"], state["history"]
        self.best_score, self.best_state = state["best_score"], state["best_state"]
        set_rng_state(state["rng"])

    def _check_same_settings(self, path, state: dict) -> None:
        if self.config.allow_config_change:
            return
        now, then = asdict(self.config), state.get("config", {})
        diff = {k: (then.get(k), now[k]) for k in now if k not in _RESUMABLE_FIELDS and then.get(k) != now[k]}
        model_config = getattr(self.model, "config", None)
        if is_dataclass(model_config) and state.get("model_config") is not None:
            mine = asdict(model_config)
            diff.update({f"model.{k}": (state["model_config"].get(k), v) for k, v in mine.items()
                         if state["model_config"].get(k) != v})
        if diff:
            listed = "; ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, a, b in
                               ((k, *v) for k, v in diff.items()))
            raise ValueError(f"{path}: written with other settings ({listed}); use another checkpoint_dir, "
                             "or TrainConfig(allow_config_change=True) to resume anyway")

    # ----------------------------------------------------------------- training
    def train_epoch(self, loader: Iterable) -> dict[str, float]:
        """One pass over ``loader``; returns the mean of the loss and of each named term.

        The loader's shuffle is set to this epoch first (``loader.sampler.set_epoch``), so
        the batches depend only on the seed and the epoch, never on what ran before.
        Running sums stay on the device; the host synchronises every ``log_every`` steps
        (every step on CPU, where it is free), which is also when a non-finite loss is caught.
        """
        self.model.train()
        if self.world_size > 1 and isinstance(loader, DataLoader):
            loader = self._sharded(loader)
        sampler = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(self.epoch)
        sync_every = 1 if self.device.type == "cpu" else max(1, self.config.log_every)
        sums: dict[str, torch.Tensor] = {}
        n = 0
        cap = step_cap()
        # mininterval: at most one widget update per second, so notebooks (and nbval,
        # which gives up after 5 s without a kernel message) are not flooded.
        bar = tqdm(loader, desc=f"epoch {self.epoch + 1}", leave=False, disable=not self.show_progress,
                   mininterval=1.0)
        timing = self.config.time_steps
        for step, batch in enumerate(bar):
            if cap is not None and step >= cap[0]:
                break
            batch = to_device(training_view(self.model, batch), self.device)
            t0 = self._clock() if timing else 0.0
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
                out = (self.ddp or self.model)(batch)
                loss, parts = self.model.loss(batch, out)
            t1 = self._clock() if timing else 0.0
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if self.config.grad_clip:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if timing:
                t2 = self._clock()
                self.step_seconds["forward"] += t1 - t0
                self.step_seconds["backward"] += t2 - t1
            n += 1
            for k, v in {"loss": loss.detach(), **parts}.items():
                v = torch.as_tensor(v, device=self.device).detach().float()
                sums[k] = sums[k] + v if k in sums else v
            if n % sync_every == 0:
                running = sums["loss"].item() / n  # the one host synchronisation of the interval
                if not math.isfinite(running):
                    raise FloatingPointError(
                        f"{type(self.model).__name__}: non-finite loss at epoch {self.epoch + 1}, step {step} "
                        f"(loss {loss.item()}, terms {({k: float(v) for k, v in parts.items()})}); "
                        "lower the learning rate or check the inputs")
                bar.set_postfix(loss=f"{running:.4f}", refresh=False)
        if self.world_size > 1:  # the history holds means over every process's batches
            import torch.distributed as dist

            keys = sorted(sums)
            packed = torch.stack([sums[k] for k in keys] + [torch.tensor(float(n), device=self.device)])
            dist.all_reduce(packed)
            sums, n = dict(zip(keys, packed[:-1])), int(packed[-1].item())
        means = {k: v.item() / max(n, 1) for k, v in sums.items()}
        if not math.isfinite(means.get("loss", 0.0)):
            raise FloatingPointError(f"{type(self.model).__name__}: non-finite loss in epoch {self.epoch + 1} "
                                     f"(terms {means}); lower the learning rate or check the inputs")
        return means

    @property
    def show_progress(self) -> bool:
        """``config.progress``, unless ``TQDM_DISABLE`` is set (the executed book build sets it:
        a static page cannot show a live bar, and each bar update is a kernel message)."""
        return self.config.progress and os.environ.get("TQDM_DISABLE", "").lower() not in ("1", "true", "yes")

    def _clock(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def _sharded(self, loader: DataLoader) -> DataLoader:
        """This process's share of a training loader (cached, so ``set_epoch`` persists)."""
        cache = getattr(self, "_shards", {})
        if id(loader) not in cache:
            cache[id(loader)] = _distributed_loader(loader, self.rank, self.world_size, self.config.seed)
            self._shards = cache
        return cache[id(loader)]

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
        cap = step_cap()
        if cap is not None:
            epochs = min(epochs, self.epoch + cap[1])
        budget = None if self.config.max_minutes is None else 60.0 * self.config.max_minutes
        t_start, first = self._wall(), self.epoch
        last = self._ckpt("last.pt")
        if last is not None and last.exists():
            self.load(last)
        elif self.last_state is not None:  # a second fit() continues from the last epoch, not the best
            self.model.load_state_dict(self.last_state)
        for _ in tqdm(range(self.epoch, epochs), desc="training", disable=not self.show_progress,
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
            improved = score > self.best_score
            if improved:
                self.best_score = score
                self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                row["best"] = True
            self.history.append(row)  # before saving: best.pt holds its own history row
            if improved and self._ckpt("best.pt") is not None:
                self.save(self._ckpt("best.pt"))
            if last is not None:
                self.save(last)
            if self._out_of_time(self._wall() - t_start, self.epoch - first, epochs - self.epoch, budget):
                break
        self.last_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return self.history_frame()

    @staticmethod
    def _wall() -> float:
        """The clock of the time budget (a method, so a test can stand in for it)."""
        return time.perf_counter()

    def _out_of_time(self, elapsed: float, done: int, left: int, budget: float | None) -> bool:
        """After the first epoch, print the estimated time left; stop when another epoch would overrun ``budget``."""
        per_epoch = elapsed / max(done, 1)
        if done == 1 and left > 0 and self.config.progress and self.rank == 0:
            note = "" if budget is None else f" (budget {budget / 60:.0f} min)"
            print(f"epoch 1 took {per_epoch:.0f} s: about {left * per_epoch / 60:.1f} min for the other "
                  f"{left} epoch(s){note}")
        stop = budget is not None and left > 0 and elapsed + per_epoch > budget
        if self.world_size > 1:  # every process stops at the same epoch, or they would wait on each other
            import torch.distributed as dist

            flag = torch.tensor(float(stop), device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item())
        if not stop:
            return False
        print(f"time budget of {budget / 60:.0f} min: stopping after epoch {self.epoch} of {self.epoch + left} "
              f"(about {per_epoch:.0f} s an epoch); the best validation epoch so far is kept")
        return True

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
def _in_random_order(loader: Iterable, seed: int, rank: int = 0, world: int = 1) -> Iterable:
    """The batches of ``loader`` with its queries in a seeded random order.

    A :class:`~torch.utils.data.DataLoader` over a sized dataset is re-created with a
    random permutation as its sampler (so batches mix queries of the whole split);
    any other iterable of batches keeps its batches but has the rows of each permuted.
    Either way a query's position in its batch carries nothing about the table order.
    Under torchrun (``world > 1``) process ``rank`` gets every ``world``-th query of the
    permutation (a DataLoader is required then).
    """
    g = torch.Generator().manual_seed(int(seed))
    if world > 1 and not isinstance(loader, DataLoader):
        raise TypeError("distributed evaluation needs a torch DataLoader (to shard its dataset)")
    if isinstance(loader, DataLoader):
        order = torch.randperm(len(loader.dataset), generator=g).tolist()[rank::world]
        return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=order,
                          collate_fn=loader.collate_fn, num_workers=loader.num_workers,
                          pin_memory=loader.pin_memory, generator=g)

    def permuted():
        for batch in loader:
            size = len(batch["query_idx"])
            perm = torch.randperm(size, generator=g)
            yield {k: (v[perm] if torch.is_tensor(v) and v.ndim and v.shape[0] == size
                       else [v[i] for i in perm.tolist()] if isinstance(v, list) and len(v) == size else v)
                   for k, v in batch.items()}
    return permuted()


@torch.no_grad()
def predict_all(model: GroundingModel, loader: Iterable, top_k: int = 50,
                device: str | torch.device | None = None, order_seed: int = 0) -> dict:
    """Ranked predictions for every query of ``loader``, in table order.

    The model sees each batch without its labels and without ``query_idx``
    (:data:`wsg.models.LABEL_KEYS`), and the queries are fed in a seeded random order
    (``order_seed``), so neither a query's row nor its position in a batch can tell
    the model where its moment is (ActivityNet Captions paragraphs, for one, are
    chronological). The evaluator keeps ``query_idx`` to itself and restores the
    table order. Returns a dict with ``moments`` ``[Q, K, 2]`` and ``scores`` ``[Q, K]``
    (normalised, best first), the ground truth ``gt`` ``[Q, 2]`` (normalised),
    ``duration`` ``[Q]`` and ``query_idx`` ``[Q]`` (= ``arange(Q)`` for a full split).
    """
    device = choose_device(None if device is None else str(device))
    rank, world = _world()
    if world > 1 and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    model.eval()
    model.to(device)
    moments, scores, gts, durs, idx = [], [], [], [], []
    for batch in _in_random_order(loader, order_seed, rank, world):
        m, s = model.predict(to_device(strip_labels(batch), device), top_k=top_k)
        moments.append(m.float().cpu())
        scores.append(s.float().cpu())
        gts.append(batch["moment"])
        durs.append(batch["duration"])
        idx.append(torch.as_tensor(batch["query_idx"]))
    if world > 1:  # every process predicted a share: gather them all (to every rank)
        import torch.distributed as dist

        shares = [None] * world
        dist.all_gather_object(shares, (moments, scores, gts, durs, idx))
        moments, scores, gts, durs, idx = ([x for share in shares for x in share[i]] for i in range(5))
    k = min(x.shape[1] for x in moments)
    query_idx = torch.cat(idx)
    back = query_idx.argsort()  # table order
    return {"moments": torch.cat([x[:, :k] for x in moments])[back],
            "scores": torch.cat([x[:, :k] for x in scores])[back],
            "gt": torch.cat(gts)[back], "duration": torch.cat(durs)[back], "query_idx": query_idx[back]}


def evaluate(model: GroundingModel, loader: Iterable, protocol: str = "2d-tan", ns=(1, 5),
             ious=(0.3, 0.5, 0.7), top_k: int = 50, device=None) -> dict[str, float]:
    """R@n,IoU=m and mIoU (in %) of ``model`` on ``loader`` under ``protocol``.

    Moments are compared in normalised time, which gives the same IoU as seconds.
    """
    pred = predict_all(model, loader, top_k=top_k, device=device)
    return recall_at(pred["moments"], pred["gt"], ns=ns, ious=ious, protocol=protocol)
