"""Clip-feature readers (HDF5 via h5py, a folder of ``.npy``) and resampling to a fixed number of clips.

Every store maps a video id to a ``float32`` array ``[T_v, D]`` and fails with a
message naming the file and the video. :func:`open_features` recognises the
layouts of the public releases by inspecting the file (and, for DiDeMo, its name),
as their own loaders read them:

================== ========================================================= ===========================
layout             what the file holds                                       releases
================== ========================================================= ===========================
``"datasets"``     one HDF5 dataset ``[T, D]`` per video id (``f[vid][:]``)  Charades-STA VGG (4096-d,
                                                                             2D-TAN ``vgg_rgb_features.hdf5``)
                                                                             and I3D (1024-d, CPL
                                                                             ``i3d_features.hdf5``); TACoS
                                                                             C3D (4096-d, 2D-TAN
                                                                             ``tall_c3d_features.hdf5``,
                                                                             keys such as ``s13-d21.avi``)
``"c3d-groups"``   one HDF5 *group* per video holding a dataset              ActivityNet C3D (500-d PCA,
                   ``c3d_features`` ``[T, 500]`` (``f[vid]["c3d_features"]``)  ``sub_activitynet_v1-3.c3d.hdf5``)
``"didemo-chunks"`` one dataset ``[6, D]`` per video (DiDeMo's 5-second       DiDeMo ``average_fc7.h5`` (VGG
                   chunks; chunks after the video's end are zero rows),      fc7, 4096-d) and
                   keyed by the annotation's ``video`` (with its extension)  ``average_global_flow.h5`` (flow,
                                                                             1024-d), LocalizingMoments
``"npy-folder"``   a folder of ``<video_id>.npy``, each ``[T, D]``           Charades-STA I3D (1024-d) as
                                                                             used by VSLNet / LGI-style code
================== ========================================================= ===========================

Details:

* **Video ids with or without ``.avi``.** TACoS annotations and features come
  both as ``s13-d21.avi`` (2D-TAN) and ``s13-d21`` (other releases); a store
  looks a video up under its own id first, then with ``.avi`` added or removed.
* **Singleton axes.** Arrays ``[T, 1, 1, D]`` (LGI's I3D ``.npy`` files) are read
  as ``[T, D]``; any other shape is an error naming the file and video.
* **DiDeMo chunks.** Rows past the video's end are zero padding, so
  :meth:`FeatureStore.get` with ``duration`` keeps the ``ceil(duration / 5 s)``
  rows that cover the video (the annotation's ``duration = 5 * num_segments``);
  otherwise the resampled clips would stretch a 20 s video over 30 s.
* An HDF5 file in none of these layouts raises a ValueError that lists the keys
  and shapes found; ``layout=`` forces a layout (e.g. DiDeMo chunks under another
  file name).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

__all__ = ["FeatureStore", "HDF5Features", "NpyFeatures", "MissingFeaturesError", "open_features", "resample",
           "LAYOUTS", "DIDEMO_FEATURE_FILES"]

#: layouts :func:`open_features` recognises (see the module docstring)
LAYOUTS = ("datasets", "c3d-groups", "didemo-chunks", "npy-folder")
#: DiDeMo's feature files (LocalizingMoments), recognised by name as ``"didemo-chunks"``
DIDEMO_FEATURE_FILES = ("average_fc7.h5", "average_global_flow.h5", "average_rgb_feats.h5",
                        "average_flow_feats.h5")
DIDEMO_CHUNK_S = 5.0
DIDEMO_CHUNKS = 6
_GROUP_DATASETS = ("c3d_features",)
_ALIAS_SUFFIX = ".avi"


class MissingFeaturesError(KeyError):
    """Features missing for a video; a ``KeyError`` whose message prints as written (not quoted)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _aliases(video_id: str) -> tuple[str, ...]:
    """``video_id`` then the same id with ``.avi`` added or removed (TACoS releases differ)."""
    if video_id.endswith(_ALIAS_SUFFIX):
        return video_id, video_id[: -len(_ALIAS_SUFFIX)]
    return video_id, video_id + _ALIAS_SUFFIX


class FeatureStore:
    """Mapping ``video_id -> float32 array [T_v, D]`` backed by files; see :func:`open_features`.

    Attributes:
        path: the file or folder.
        layout: one of :data:`LAYOUTS`.
        seconds_per_row: fixed seconds per row for chunked layouts (DiDeMo: 5), else ``None``.
    """

    path: Path
    layout: str = ""
    seconds_per_row: float | None = None

    def _has(self, key: str) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def _load(self, key: str) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def keys(self) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def resolve(self, video_id: str) -> str | None:
        """The key holding ``video_id``'s features (the id itself or its ``.avi`` alias), or ``None``."""
        return next((k for k in _aliases(str(video_id)) if self._has(k)), None)

    def __contains__(self, video_id: str) -> bool:
        return self.resolve(video_id) is not None

    def missing_message(self, video_id: str, record: str = "") -> str:
        """Why ``video_id`` cannot be read: the file, the video, the record, what the file holds."""
        where = f" (needed by {record})" if record else ""
        keys = self.keys()
        sample = ", ".join(repr(k) for k in keys[:3]) + (" ..." if len(keys) > 3 else "")
        tried = " or ".join(repr(k) for k in _aliases(str(video_id)))
        return (f"{self.path}: no features for video {video_id!r}{where}; looked for {tried} among "
                f"{len(keys)} videos ({self.layout} layout), e.g. {sample or 'none'}")

    def get(self, video_id: str, record: str = "", duration: float | None = None) -> np.ndarray:
        """Features of one video, validated (2-D, at least one clip, finite).

        Args:
            video_id: the annotation's id (``.avi`` added/removed if needed).
            record: the annotation record that needs it, for error messages.
            duration: the video's length in seconds; for chunked layouts (DiDeMo)
                only the rows covering ``[0, duration]`` are returned.

        Raises:
            KeyError: the video is missing; the message names the file, the video,
                ``record`` and a few of the keys the file does hold.
            ValueError: the array is not ``[T_v, D]``, is empty or holds NaN/inf.
        """
        where = f" (needed by {record})" if record else ""
        key = self.resolve(video_id)
        if key is None:
            raise MissingFeaturesError(self.missing_message(video_id, record))
        arr = np.asarray(self._load(key), dtype=np.float32)
        if arr.ndim > 2 and all(n == 1 for n in arr.shape[1:-1]):
            arr = arr.reshape(arr.shape[0], arr.shape[-1])  # [T, 1, 1, D] (LGI's I3D files)
        if arr.ndim != 2:
            raise ValueError(f"{self.path}[{key!r}]: expected a [T, D] array, got shape {arr.shape}{where}")
        if arr.shape[0] < 1:
            raise ValueError(f"{self.path}[{key!r}]: features shorter than one clip{where}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{self.path}[{key!r}]: features contain NaN or inf{where}")
        if self.seconds_per_row and duration is not None:
            rows = max(1, math.ceil(float(duration) / self.seconds_per_row - 1e-6))
            arr = arr[:rows]
        return arr

    __getitem__ = get


def _describe_h5(h5, limit: int = 8) -> str:
    """``'key': dataset [T, D] float32`` / ``'key': group {names}`` for the first keys of a file."""
    import h5py

    items = []
    for key in list(h5.keys())[:limit]:
        obj = h5[key]
        if isinstance(obj, h5py.Dataset):
            items.append(f"{key!r}: dataset {list(obj.shape)} {obj.dtype}")
        else:
            inner = ", ".join(f"{k!r}{list(v.shape) if isinstance(v, h5py.Dataset) else ' (group)'}"
                              for k, v in list(obj.items())[:4])
            items.append(f"{key!r}: group {{{inner}}}")
    more = f" ... ({len(h5.keys())} keys in all)" if len(h5.keys()) > limit else ""
    return "; ".join(items) + more


class HDF5Features(FeatureStore):
    """Features in one HDF5 file (``"datasets"``, ``"c3d-groups"`` or ``"didemo-chunks"`` layout).

    The file is opened lazily, once per process (h5py handles are not pickled into
    DataLoader workers). The layout is detected from the first keys (see
    :func:`open_features`) unless given.
    """

    def __init__(self, path: str | Path, layout: str | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"feature file not found: {self.path}")
        self._file = None
        self.layout = layout or self._detect()
        if self.layout not in LAYOUTS[:3]:
            raise ValueError(f"{self.path}: layout must be one of {LAYOUTS[:3]} for an HDF5 file, got {layout!r}")
        self.seconds_per_row = DIDEMO_CHUNK_S if self.layout == "didemo-chunks" else None

    def _h5(self):
        import h5py

        if self._file is None:
            self._file = h5py.File(self.path, "r")
        return self._file

    def _detect(self, sample: int = 20) -> str:
        import h5py

        h5 = self._h5()
        keys = list(h5.keys())
        if not keys:
            raise ValueError(f"{self.path}: the HDF5 file holds no keys; expected one entry per video id")
        kinds = set()
        for key in keys[:sample]:
            obj = h5[key]
            if isinstance(obj, h5py.Dataset):  # a bad shape is reported by get(), naming the video
                kinds.add("datasets")
            elif isinstance(obj, h5py.Group) and any(isinstance(obj.get(n), h5py.Dataset) for n in _GROUP_DATASETS):
                kinds.add("c3d-groups")
            else:
                kinds.add("unknown")
        if len(kinds) != 1 or "unknown" in kinds:
            raise ValueError(
                f"{self.path}: unrecognised feature layout. Expected one [T, D] dataset per video id "
                f"(2D-TAN / CPL / TACoS / DiDeMo files) or one group per video holding "
                f"{' or '.join(_GROUP_DATASETS)} (ActivityNet C3D); found {_describe_h5(h5)}. "
                "Pass layout= to force one, or convert the file.")
        kind = kinds.pop()
        if kind == "datasets" and self.path.name in DIDEMO_FEATURE_FILES:
            return "didemo-chunks"
        return kind

    def _has(self, key: str) -> bool:
        return key in self._h5()

    def _load(self, key: str) -> np.ndarray:
        obj = self._h5()[key]
        if self.layout == "c3d-groups":
            name = next((n for n in _GROUP_DATASETS if n in obj), None)
            if name is None:
                raise ValueError(f"{self.path}[{key!r}]: group without {'/'.join(_GROUP_DATASETS)} "
                                 f"(has {list(obj.keys())})")
            obj = obj[name]
        elif not hasattr(obj, "shape"):
            raise ValueError(f"{self.path}[{key!r}]: expected a dataset, found a group with {list(obj.keys())[:5]}")
        arr = obj[()]
        if self.layout == "didemo-chunks" and (arr.ndim != 2 or arr.shape[0] != DIDEMO_CHUNKS):
            raise ValueError(f"{self.path}[{key!r}]: DiDeMo chunk features must be [{DIDEMO_CHUNKS}, D] "
                             f"(one row per 5-second chunk), got {list(arr.shape)}")
        return arr

    def keys(self) -> list[str]:
        return list(self._h5().keys())

    def __getstate__(self):  # h5py handles cannot be pickled into DataLoader workers
        return {**self.__dict__, "_file": None}


class NpyFeatures(FeatureStore):
    """Features in a folder holding one ``<video_id>.npy`` per video (``"npy-folder"`` layout)."""

    layout = "npy-folder"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise FileNotFoundError(f"feature folder not found: {self.path}")
        if not any(self.path.glob("*.npy")):
            found = sorted(p.name for p in self.path.iterdir())
            raise ValueError(f"{self.path}: unrecognised feature layout: a feature folder must hold "
                             f"<video_id>.npy files, found {found[:8]}{' ...' if len(found) > 8 else ''}")

    def _has(self, key: str) -> bool:
        return (self.path / f"{key}.npy").is_file()

    def _load(self, key: str) -> np.ndarray:
        return np.load(self.path / f"{key}.npy")

    def keys(self) -> list[str]:
        return sorted(p.stem for p in self.path.glob("*.npy"))


def open_features(path: str | Path, layout: str | None = None) -> FeatureStore:
    """Open a feature file or folder, recognising the layout of the public releases.

    Args:
        path: an ``.h5``/``.hdf5`` file or a folder of ``<video_id>.npy``.
        layout: force one of :data:`LAYOUTS` (default: detected; see the module docstring).

    Raises:
        FileNotFoundError: nothing at ``path``.
        ValueError: an unrecognised layout (the message lists the keys and shapes
            found) or a file that is neither HDF5 nor a folder.
    """
    path = Path(path)
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if path.is_dir():
        if layout not in (None, "npy-folder"):
            raise ValueError(f"{path}: a folder can only hold the 'npy-folder' layout, not {layout!r}")
        return NpyFeatures(path)
    if not path.exists():
        raise FileNotFoundError(f"feature file or folder not found: {path}")
    if path.suffix.lower() in (".h5", ".hdf5"):
        return HDF5Features(path, layout)
    raise ValueError(f"{path}: expected an .h5/.hdf5 file or a folder of <video_id>.npy files")


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
