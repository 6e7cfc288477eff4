"""Model checkpoints: the selected weights with everything needed to trust and reuse them.

One format (:data:`FORMAT`) serves the command line (``python -m wsg train`` writes
``seed<s>/model.pt``, ``python -m wsg evaluate`` reads it) and the chapters' *train or
load* step (:func:`train_or_load`): a chapter loads the weights of its main model when a
checkpoint of the same method, model config, training settings, data and code exists,
and trains (then saves) otherwise, saying why. A checkpoint holds:

* ``state_dict`` (the best-validation weights, on the CPU), ``key``, ``model_config``;
* ``identity``: what must match for the weights to be the ones the chapter would train
  (model config, training settings and seed, the data's fingerprint with its digest, the wsg
  version, a digest of the model's code);
* ``history`` (one row per epoch, for the training curves), ``best_epoch``, ``seconds``,
  ``versions``, the ``machine`` fingerprint (:mod:`wsg.provenance`) and the ``command`` that
  reproduces it;
* ``vocab``, ``data``, ``recipe`` for :func:`wsg.cli.run_evaluate`.

The ``tiny`` checkpoints of the chapters ship in ``checkpoints/tiny/`` and are made by
one command (``make checkpoints``)::

    python -m wsg checkpoints marn wsra vlanet fsan fian --dataset charades --profile tiny --seed 0
"""
from __future__ import annotations

import hashlib
import os
import sys
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path

import torch

__all__ = ["FORMAT", "CHECKPOINTS_DIR", "chapter_checkpoint", "identity", "save_model", "load_checkpoint",
           "differences", "train_or_load"]

FORMAT = "wsg-model/1"
CHECKPOINTS_DIR = Path("checkpoints")


def chapter_checkpoint(key: str, dataset: str, profile: str, seed: int = 0) -> Path:
    """``<root>/<profile>/<key>-<dataset>-seed<seed>.pt``, where a chapter saves what it trains; the
    root is ``$WSG_CHECKPOINTS`` if set, else the first ``checkpoints/`` folder in the working
    directory or above it (a chapter runs from ``notebooks/``), else ``./checkpoints``.
    :func:`train_or_load` also looks for the file among the checkpoints that ship with wsg."""
    if os.environ.get("WSG_CHECKPOINTS"):
        root = Path(os.environ["WSG_CHECKPOINTS"])
    else:
        here = Path.cwd().resolve()
        root = next((f / CHECKPOINTS_DIR for f in (here, *here.parents) if (f / CHECKPOINTS_DIR).is_dir()),
                    here / CHECKPOINTS_DIR)
    return root / profile / f"{key}-{dataset}-seed{seed}.pt"


def _code_digest(model) -> str:
    """A digest of the model's module and the shared model base, as code (syntax trees without
    docstrings and comments, :func:`wsg.provenance.code_digest`'s rule): weights trained by other
    code are not these weights, and a corrected docstring does not make them other weights."""
    from wsg.models import base
    from wsg.provenance import _source_without_docstrings

    files = [sys.modules[type(model).__module__].__file__, base.__file__]
    h = hashlib.sha256()
    for f in files:
        h.update(_source_without_docstrings(Path(f)).encode())
    return h.hexdigest()[:16]


def _data_fingerprint(bench) -> dict:
    """What identifies a benchmark's data: its name, clips per video, split sizes, vocabulary size and
    the digest of its annotations and features (:func:`wsg.provenance.data_digest`)."""
    from wsg.provenance import data_digest

    return {"name": bench.name, "num_clips": bench.num_clips, "vocab": len(bench.vocab),
            "splits": {s: int(len(t)) for s, t in sorted(bench.splits.items())}, "digest": data_digest(bench)}


def identity(model, bench, lr: float, epochs: int, batch_size: int, protocol: str, seed: int,
             amp: bool = False) -> dict:
    """Everything that must match for a checkpoint's weights to be those a run would train (mixed
    precision and a step cap, :func:`wsg.train.step_cap`, only when they are on)."""
    from wsg import __version__
    from wsg.train import step_cap

    config = getattr(model, "config", None)
    train = {"lr": lr, "epochs": epochs, "batch_size": batch_size, "protocol": protocol, "seed": seed}
    if amp:
        train["amp"] = True
    if step_cap() is not None:
        train["step_cap"] = list(step_cap())
    return {"key": type(model).__name__,
            "model_config": asdict(config) if is_dataclass(config) else None,
            "train": train,
            "data": _data_fingerprint(bench), "wsg": __version__, "code": _code_digest(model)}


def _plain(x):
    """Tuples to lists, recursively: a config read back from a checkpoint compares equal."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def differences(saved: dict, now: dict, prefix: str = "") -> list[str]:
    """``"field: checkpoint A vs now B"`` for every leaf of two identities that differs."""
    saved, now = _plain(saved), _plain(now)
    out = []
    for k in sorted(set(saved) | set(now), key=str):
        a, b = saved.get(k), now.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: checkpoint {a!r} vs now {b!r}")
    return out


def save_model(path: str | Path, key: str, config: dict, state_dict: dict, bench, recipe: dict, data: dict,
               seed: int, best_epoch: int, **extra) -> None:
    """Write a checkpoint atomically (``extra``: ``identity``, ``history``, ``seconds``, ``command``)."""
    from wsg.provenance import machine_fingerprint, versions

    state = {"format": FORMAT, "key": key, "model_config": config,
             "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
             "vocab": list(bench.vocab.itos), "data": data, "recipe": recipe, "seed": seed,
             "best_epoch": best_epoch, "versions": versions(), "machine": machine_fingerprint(), **extra}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint of :data:`FORMAT` (a trainer's best.pt / last.pt: weights from it, the rest from
    the ``model.pt`` next to it).

    Raises:
        FileNotFoundError: no such file. ValueError: not a wsg checkpoint (naming the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path}: no such file")
    state = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(state, dict) and state.get("format") == FORMAT:
        return state
    if isinstance(state, dict) and "model" in state and "optimizer" in state:  # a Trainer checkpoint
        meta_path = path.parent / "model.pt"
        if not meta_path.is_file():
            raise ValueError(f"checkpoint {path} is a trainer checkpoint without the model.pt that "
                             f"'wsg train' writes next to it (it records the method, config and data)")
        meta = torch.load(meta_path, map_location="cpu", weights_only=False)
        meta["state_dict"] = state["model"]
        return meta
    raise ValueError(f"checkpoint {path} is not a checkpoint written by wsg (expected format {FORMAT!r})")


def _shown(path: str | Path) -> str:
    """A checkpoint's path as a page may print it: its last three parts (``checkpoints/tiny/x.pt``,
    or ``_shipped/...`` for the copy in the wheel), never the machine's own folders."""
    return Path(*Path(path).parts[-3:]).as_posix()


def train_or_load(key: str, model, bench, recipe: dict, seed: int = 0, dataset: str | None = None,
                  profile: str = "tiny", path: str | Path | None = None, retrain: bool = False,
                  save: bool = True, progress: bool = True, device: str | None = None, **train_changes):
    """Load ``model``'s weights from a matching checkpoint, or train it (and save the checkpoint).

    Args:
        key: the method key; ``model``: built by the caller *after* seeding (its config is checked).
        bench / recipe: the data and the recipe (:func:`wsg.recipes.get`) the model trains with.
        seed: the training seed (:class:`wsg.train.TrainConfig`, the loader's shuffle).
        dataset / profile: name the default path :func:`chapter_checkpoint` (dataset: the recipe's).
        path: the checkpoint file (default :func:`chapter_checkpoint`).
        retrain: train even when a matching checkpoint exists (and overwrite it).
        save: write the checkpoint after training.
        device: where to train (default: CUDA when available).
        **train_changes: ``epochs``, ``lr``, ``batch_size``, ``protocol`` instead of the recipe's.

    Returns:
        ``(trainer, history, info)``: a :class:`wsg.train.Trainer` holding the model (with the
        best validation weights) and its history, the history frame, and ``info`` with
        ``loaded`` (bool), ``seconds`` (of the training, then or now) and ``path``. A message
        says which, and for a checkpoint that does not match, every field that differs.
    """
    from wsg.recipes import train_config
    from wsg.shipped import shipped_dir
    from wsg.train import Trainer, step_cap

    settings = {k: train_changes.get(k) or recipe[k] for k in ("lr", "epochs", "batch_size", "protocol")}
    explicit_path = path
    path = Path(path) if path else chapter_checkpoint(key, dataset or recipe["dataset"], profile, seed)
    found = path
    train_cfg = train_config(recipe, seed=seed, progress=progress, device=device, lr=settings["lr"],
                             epochs=settings["epochs"], protocol=settings["protocol"])
    wanted = identity(model, bench, seed=seed, amp=train_cfg.amp, **settings)
    trainer = Trainer(model, train_cfg)
    if not path.exists() and explicit_path is None:  # a chapter opened alone: the copy in the wheel
        shipped = shipped_dir("checkpoints")
        if shipped is not None and (shipped / profile / path.name).is_file():
            found = shipped / profile / path.name
    if found.exists() and not retrain:
        state = load_checkpoint(found)
        diff = differences(state.get("identity") or {}, wanted)
        if not diff:
            model.load_state_dict(state["state_dict"])
            trainer.history = list(state["history"])
            commit = str(state["versions"].get("git_commit") or "unknown")[:12]
            print(f"loaded {_shown(found)}: best epoch {state['best_epoch']} of {settings['epochs']},\n"
                  f"  trained in {state['seconds']:.0f} s by wsg {state['versions']['wsg']} at commit {commit}"
                  f" (TRAIN = 'always' retrains)")
            return trainer, trainer.history_frame(), {"loaded": True, "seconds": state["seconds"], "path": found}
        print(f"{_shown(found)} does not match this run, training instead:\n  " + "\n  ".join(diff))
    elif not retrain:
        print(f"no checkpoint at {_shown(path)}: training ({settings['epochs']} epochs)")
    t0 = time.perf_counter()
    history = trainer.fit(bench.loader("train", settings["batch_size"], seed=seed), bench.loader("val", 64))
    seconds = time.perf_counter() - t0
    if save and step_cap() is not None:
        print("not saving the checkpoint: WSG_STEP_CAP is set (a capped run is a smoke test, not weights to reuse)")
    elif save:
        config = asdict(model.config) if is_dataclass(getattr(model, "config", None)) else {}
        data = {"dataset": dataset or recipe["dataset"], "profile": profile, "num_clips": bench.num_clips, "kw": {}}
        command = (f"python -m wsg checkpoints {key} --dataset {data['dataset']} --profile {profile} --seed {seed}")
        save_model(path, key, config, model.state_dict(), bench, {**recipe, **settings}, data, seed,
                   trainer.best_epoch, identity=wanted, history=trainer.history, seconds=seconds, command=command)
        print(f"saved {_shown(path)} ({path.stat().st_size / 1e6:.2f} MB); the same command makes it: {command}")
    return trainer, history, {"loaded": False, "seconds": seconds, "path": path}
