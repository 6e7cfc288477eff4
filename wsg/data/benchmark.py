"""A benchmark = annotation tables of the splits + a feature store + the training vocabulary.

Chapters use :func:`load_synthetic` (the default, offline) or :meth:`Benchmark.from_files`
(real data in a release's format); both give the same object, so everything after
loading is identical for synthetic and real data.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from wsg.data.annotations import read_annotations
from wsg.data.dataset import GroundingDataset, make_loader, normalised_moments
from wsg.data.features import FeatureStore, open_features
from wsg.text import Vocabulary


@dataclass
class Benchmark:
    """Splits, features and vocabulary of one dataset.

    Attributes:
        name: a label for tables and plots.
        splits: split name -> annotation table (see :func:`wsg.data.read_annotations`).
        features: the clip-feature store.
        num_clips: clips per video after resampling.
        vocab: built from the *training* sentences only.
        root: where the files are.
    """

    name: str
    splits: dict[str, pd.DataFrame]
    features: FeatureStore
    num_clips: int = 32
    max_words: int = 30
    root: Path | None = None
    vocab: Vocabulary = field(init=False)
    _datasets: dict = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self):
        if "train" not in self.splits:
            raise ValueError(f"benchmark {self.name!r} has no 'train' split (has {sorted(self.splits)})")
        self.vocab = Vocabulary.build(self.splits["train"]["sentence"])

    @classmethod
    def from_files(cls, dataset: str, root: str | Path, features: str | Path, num_clips: int = 32,
                   splits=("train", "val", "test"), name: str | None = None, **read_kwargs) -> "Benchmark":
        """Read the splits of a real dataset (see :func:`wsg.data.read_annotations`) and its features."""
        tables = {s: read_annotations(dataset, root, s, **read_kwargs) for s in splits}
        return cls(name or dataset, tables, open_features(features), num_clips=num_clips, root=Path(root))

    def dataset(self, split: str) -> GroundingDataset:
        """The (cached) torch Dataset of a split."""
        if split not in self._datasets:
            self._datasets[split] = GroundingDataset(self.splits[split], self.features, self.vocab,
                                                     self.num_clips, self.max_words)
        return self._datasets[split]

    def loader(self, split: str, batch_size: int = 32, shuffle: bool | None = None, seed: int = 0,
               num_workers: int = 0, pin_memory: bool | None = None):
        """A DataLoader of a split; shuffled by default only for ``"train"`` (see :func:`make_loader`)."""
        shuffle = (split == "train") if shuffle is None else shuffle
        return make_loader(self.dataset(split), batch_size, shuffle=shuffle, seed=seed, num_workers=num_workers,
                           pin_memory=pin_memory)

    def with_split(self, split: str, table: pd.DataFrame) -> "Benchmark":
        """A copy whose ``split`` is ``table``; features, vocabulary and other splits are shared.

        The controls use it (:mod:`wsg.controls`): the swapped-query split is the test
        table with other sentences, read through the same features and vocabulary.
        """
        other = copy.copy(self)
        other.splits = {**self.splits, split: table}
        other._datasets = {k: v for k, v in self._datasets.items() if k != split}
        return other

    def with_labelled_fraction(self, fraction: float, seed: int = 0) -> "Benchmark":
        """A copy whose training split keeps the labels of only ``fraction`` of its queries.

        For a fully-supervised method (FIAN) trained on a label budget: a random
        ``ceil(fraction * N)`` of the N training queries (drawn with ``seed``) are kept,
        and repeated to fill N rows, so every budget trains for the same number of
        optimisation steps per epoch and is validated as often; only the number of
        distinct labelled moments changes. Validation and test are untouched, and the
        vocabulary stays that of all training sentences (sentences are unlabelled data).
        """
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        train = self.splits["train"]
        n = len(train)
        keep = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max(1, math.ceil(fraction * n))]
        rows = keep.repeat(math.ceil(n / len(keep)))[:n].sort().values
        table = train.iloc[rows.numpy()].reset_index(drop=True)
        table.attrs = {**train.attrs, "labelled_fraction": float(fraction), "labelled_queries": int(len(keep))}
        return self.with_split("train", table)

    @property
    def video_dim(self) -> int:
        return self.dataset("train").video_dim

    def moments(self, split: str) -> torch.Tensor:
        """Normalised ground-truth moments ``[N, 2]`` of a split, in table order (no features loaded)."""
        return normalised_moments(self.splits[split])

    def train_moments(self) -> torch.Tensor:
        """Normalised training moments [N, 2]: all a blind prior may look at."""
        return self.moments("train")

    def model_kwargs(self) -> dict:
        """The data-dependent fields every model config needs."""
        return {"vocab_size": len(self.vocab), "video_dim": self.video_dim, "num_clips": self.num_clips}


def load_synthetic(preset: str = "charades", profile=None, num_clips: int | None = None,
                   cache_dir: str | Path | None = None, **overrides) -> Benchmark:
    """Generate (once, cached) and load a synthetic benchmark through the real loaders.

    Args:
        preset: ``"charades"`` or ``"activitynet"``.
        profile: a :class:`wsg.Profile` or its name; sizes the splits.
        num_clips: clips per video (default 32 for Charades-like, 64 for ActivityNet-like).
        cache_dir: where to cache (default ``$WSG_DATA`` or ``~/.cache/wsg``).
        **overrides: fields of :class:`wsg.data.synthetic.SyntheticConfig`
            (e.g. ``position_bias="start"``, ``compositional=0.2``, ``seed=1``).
    """
    from wsg.data.synthetic import generate, preset_config

    config = preset_config(preset, profile, **overrides)
    root = generate(config, cache_dir)
    tables = {s: read_annotations("activitynet", root, s) for s in ("train", "val", "test")}
    num_clips = num_clips or (32 if preset == "charades" else 64)
    name = f"synthetic-{preset}" + ("" if config.position_bias == "uniform" else f"-{config.position_bias}")
    bench = Benchmark(name, tables, open_features(root / "features.hdf5"), num_clips=num_clips, root=root)
    bench.config = config
    return bench


def load_events(bench: Benchmark) -> pd.DataFrame:
    """Every event of a synthetic benchmark (verb, object, span, query, split)."""
    return pd.read_json(Path(bench.root) / "events.json")


#: real benchmarks :func:`load_benchmark` reads -> the name :func:`wsg.data.read_annotations` knows
REAL_DATASETS = {"charades-sta": "charades-sta", "activitynet-captions": "activitynet", "tacos": "tacos",
                 "didemo": "didemo"}


def load_benchmark(dataset: str, root: str | Path | None = None, features: str | Path | None = None,
                   profile=None, num_clips: int | None = None, val_fraction: float = 0.1, val_seed: int = 0,
                   **kw) -> Benchmark:
    """Load a synthetic preset or a real benchmark by name, with train / val / test splits.

    Args:
        dataset: a synthetic preset (``"charades"``, ``"activitynet"``: :func:`load_synthetic`)
            or a real benchmark: ``"charades-sta"``, ``"activitynet-captions"``, ``"tacos"``,
            ``"didemo"`` (:meth:`Benchmark.from_files`).
        root: real data: the folder of the annotation files (see :mod:`wsg.data.annotations`).
        features: real data: an HDF5 feature file or a folder of ``.npy`` files
            (see :func:`wsg.data.open_features`).
        profile: synthetic data: sizes the splits (ignored for real data).
        num_clips: clips per video (``None``: 32, or 64 for the ActivityNet-like preset;
            a recipe's ``num_clips`` is meant to go here).
        val_fraction / val_seed: Charades-STA only (see below).
        **kw: synthetic: fields of :class:`wsg.data.synthetic.SyntheticConfig`; real:
            options of :func:`wsg.data.read_annotations` (e.g. ``invalid="raise"``).

    Splits. ActivityNet Captions: train, val = ``val_1``, test = ``val_2`` (2D-TAN's
    ``val.json`` / ``test.json`` are the same files); TACoS and DiDeMo: their official
    train / val / test. **Charades-STA has no validation split**: ``val_fraction`` of
    the *videos* of its train split (every query of a held-out video, so no video is
    on both sides) is held out with :func:`wsg.data.split_validation` (``seed=val_seed``);
    the test split is the official 3,720 queries. Models are selected on val, never on test.

    Raises:
        ValueError: unknown dataset (lists the known ones), or ``root`` / ``features``
            missing for a real dataset (names the option).
    """
    from wsg.data.annotations import split_validation
    from wsg.data.synthetic import PRESETS

    name = str(dataset).strip().lower()
    if name in PRESETS:
        return load_synthetic(name, profile, num_clips=num_clips, **kw)
    if name not in REAL_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; known: synthetic presets {', '.join(sorted(PRESETS))}; "
                         f"real benchmarks {', '.join(REAL_DATASETS)}")
    for option, value, what in (("root", root, "the folder of the annotation files"),
                                ("features", features, "an HDF5 feature file or a folder of .npy files")):
        if value is None or str(value).strip() == "":
            raise ValueError(f"dataset {name!r} is real data: give {option}= ({what}); "
                             f"on the command line --{option}, in a chapter {'DATA_ROOT' if option == 'root' else 'FEATURES'}"
                             f" (or $WSG_{'DATA_ROOT' if option == 'root' else 'FEATURES'})")
    num_clips = num_clips or 32
    reader = REAL_DATASETS[name]
    if name == "charades-sta":
        train = read_annotations(reader, root, "train", **kw)
        train, val = split_validation(train, fraction=val_fraction, seed=val_seed)
        tables = {"train": train, "val": val, "test": read_annotations(reader, root, "test", **kw)}
    else:
        tables = {s: read_annotations(reader, root, s, **kw) for s in ("train", "val", "test")}
    return Benchmark(name, tables, open_features(features), num_clips=num_clips, root=Path(root))
