"""Clip-feature readers (HDF5 via h5py, a folder of ``.npy``) and resampling to a fixed number of clips.

Real releases store one 2-D array ``[T_v, D]`` per video, keyed by video id (2D-TAN's
``*.hdf5`` files; one ``<video_id>.npy`` per video elsewhere). Both readers return
``float32`` numpy arrays and fail with a message naming the file and the key.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


class FeatureStore:
    """Mapping ``video_id -> float32 array [T_v, D]`` backed by files; see :func:`open_features`."""

    path: Path

    def _load(self, video_id: str) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __contains__(self, video_id: str) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def get(self, video_id: str, record: str = "") -> np.ndarray:
        """Features of one video, validated (2-D, at least one clip, finite).

        Raises:
            KeyError: the video is missing; the message names the file and ``record``.
            ValueError: the array is not ``[T_v, D]``, is empty or holds NaN/inf.
        """
        where = f" (needed by {record})" if record else ""
        if video_id not in self:
            raise KeyError(f"{self.path}: no features for video {video_id!r}{where}")
        arr = np.asarray(self._load(video_id), dtype=np.float32)
        if arr.ndim != 2:
            raise ValueError(f"{self.path}[{video_id!r}]: expected a [T, D] array, got shape {arr.shape}{where}")
        if arr.shape[0] < 1:
            raise ValueError(f"{self.path}[{video_id!r}]: features shorter than one clip{where}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{self.path}[{video_id!r}]: features contain NaN or inf{where}")
        return arr

    __getitem__ = get


class HDF5Features(FeatureStore):
    """Features in one HDF5 file, one dataset per video id (the file is opened lazily, once per process)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"feature file not found: {self.path}")
        self._file = None

    def _h5(self):
        import h5py

        if self._file is None:
            self._file = h5py.File(self.path, "r")
        return self._file

    def __contains__(self, video_id: str) -> bool:
        return video_id in self._h5()

    def _load(self, video_id: str) -> np.ndarray:
        return self._h5()[video_id][()]

    def keys(self) -> list[str]:
        return list(self._h5().keys())

    def __getstate__(self):  # h5py handles cannot be pickled into DataLoader workers
        return {**self.__dict__, "_file": None}


class NpyFeatures(FeatureStore):
    """Features in a folder holding one ``<video_id>.npy`` per video."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise FileNotFoundError(f"feature folder not found: {self.path}")

    def __contains__(self, video_id: str) -> bool:
        return (self.path / f"{video_id}.npy").is_file()

    def _load(self, video_id: str) -> np.ndarray:
        return np.load(self.path / f"{video_id}.npy")

    def keys(self) -> list[str]:
        return sorted(p.stem for p in self.path.glob("*.npy"))


def open_features(path: str | Path) -> FeatureStore:
    """An HDF5 store for a ``.h5``/``.hdf5`` file, an ``.npy`` store for a folder."""
    path = Path(path)
    if path.is_dir():
        return NpyFeatures(path)
    if path.suffix.lower() in (".h5", ".hdf5"):
        return HDF5Features(path)
    raise ValueError(f"{path}: expected an .h5/.hdf5 file or a folder of .npy files")


def resample(features: np.ndarray | torch.Tensor, num_clips: int) -> torch.Tensor:
    """Resample ``[T_v, D]`` features to ``[num_clips, D]`` by averaging over equal time bins.

    Bin ``i`` covers source rows ``[round(i T_v / N), round((i+1) T_v / N))``; a bin that is
    empty (when ``T_v < N``) takes the single row at its start, i.e. rows are repeated.
    This is the pooling used by 2D-TAN-style loaders, computed for all bins at once
    with a prefix sum instead of a loop.
    """
    x = torch.as_tensor(features, dtype=torch.float32)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"resample expects a non-empty [T, D] array, got shape {tuple(x.shape)}")
    T = x.shape[0]
    edges = torch.round(torch.linspace(0, T, num_clips + 1, dtype=torch.float64)).long()
    start = edges[:-1].clamp(max=T - 1)
    end = torch.maximum(edges[1:], start + 1)
    csum = torch.cat([x.new_zeros(1, x.shape[1]), x.cumsum(0)])
    # index_select, not csum[end]: advanced indexing opens an OpenMP region per call,
    # which is ~200x slower on a busy 2-core machine.
    total = csum.index_select(0, end) - csum.index_select(0, start)
    return total / (end - start).unsqueeze(1).to(x.dtype)
