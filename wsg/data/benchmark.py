"""A benchmark = annotation tables of the splits + a feature store + the training vocabulary.

Chapters use :func:`load_synthetic` (the default, offline) or :meth:`Benchmark.from_files`
(real data in a release's format); both give the same object, so everything after
loading is identical for synthetic and real data.
"""
from __future__ import annotations

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

    def loader(self, split: str, batch_size: int = 32, shuffle: bool | None = None, seed: int = 0):
        """A DataLoader of a split; shuffled by default only for ``"train"``."""
        shuffle = (split == "train") if shuffle is None else shuffle
        return make_loader(self.dataset(split), batch_size, shuffle=shuffle, seed=seed)

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
