"""Writers of tiny real-format fixtures: the four benchmarks' official annotation files + feature files.

Each ``write_*`` function writes a handful of videos **in the release's own format and
file names** into a folder, with a feature file in the layout the public loaders read
and the real feature width, and returns a :class:`RealFixture` describing what it
wrote (so tests can check what loads). Reused by ``tests/test_real_formats.py`` and by
the command-line tests::

    from fixtures_real import write_real
    fx = write_real("charades-sta", tmp_path)          # or "activitynet-captions", "tacos", "didemo"
    bench = wsg.data.load_benchmark(fx.benchmark, fx.root, fx.features)
    # python -m wsg train marn --dataset {fx.benchmark} --root {fx.root} --features {fx.features}

=================== ============================================= ===============================================
dataset             annotations (under ``root``)                   features (``fx.features``)
=================== ============================================= ===============================================
Charades-STA        ``charades_sta_{train,test}.txt`` (TALL) +     ``i3d_features.hdf5`` keyed by video id,
                    ``Charades_v1_{train,test}.csv`` (durations)   ``[T, 1024]`` (``features="npy"``: a folder
                                                                   ``i3d/`` of ``<vid>.npy``)
ActivityNet         ``train.json``, ``val_1.json``, ``val_2.json``  ``sub_activitynet_v1-3.c3d.hdf5``: one group
Captions            (``names="2d-tan"``: ``val.json``, ``test.json``) per video with ``c3d_features`` ``[T, 500]``
TACoS               ``{train,val,test}.json`` as released with       ``tall_c3d_features.hdf5`` ``[T, 4096]``, keys
                    2D-TAN (frames + fps), keys ``s13-d21.avi``     with ``.avi`` (``avi_in_features=False``:
                                                                   without)
DiDeMo              ``{train,val,test}_data.json``                   ``average_fc7.h5``: ``[6, 4096]`` per video,
                    (LocalizingMoments)                            zero rows after the video's last chunk
=================== ============================================= ===============================================

Known defects of the official files are planted on purpose (``defects=True``, the
default) in the train splits of Charades-STA and ActivityNet Captions: a moment
starting after the video's end (clipped to an empty moment, then dropped), a moment
with start == end or start > end (dropped), a moment ending after the video (clipped).
Every test split holds one query whose words are all unknown to the training
vocabulary. Everything is deterministic from ``seed``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

#: real feature widths: Charades-STA I3D, ActivityNet C3D (PCA), TACoS C3D, DiDeMo VGG fc7
REAL_WIDTHS = {"charades-sta": 1024, "activitynet": 500, "tacos": 4096, "didemo": 4096}
#: read_annotations name -> load_benchmark / recipes / command-line name
BENCHMARK_NAMES = {"charades-sta": "charades-sta", "activitynet": "activitynet-captions", "tacos": "tacos",
                   "didemo": "didemo"}
DATASETS = tuple(REAL_WIDTHS)
#: a test query made only of words no training sentence uses
UNKNOWN_QUERY = "zebras gallop sideways"

_AGENTS = ["person", "man", "woman"]
_VERBS = ["opens", "closes", "holds", "washes", "takes", "puts down"]
_OBJECTS = ["door", "cup", "book", "towel", "laptop", "box"]


@dataclass
class RealFixture:
    """What a ``write_*`` call wrote.

    Attributes:
        dataset: the :func:`wsg.data.read_annotations` name.
        benchmark: the :func:`wsg.data.load_benchmark` / recipes / command-line name.
        root: the annotation folder.
        features: the feature file or folder.
        width: the feature width ``D``.
        splits: the splits the annotation files hold (Charades-STA: train and test).
        queries: rows per split that load with the default arguments.
        written: queries per split written to the files (before repairs).
        repairs: ``df.attrs["repairs"]`` expected per split with the default arguments.
        dropped: records expected in ``attrs["repaired_records"]["dropped_invalid"]`` per split.
        videos: annotation video ids per split (after repairs; features exist for each).
        unknown: per split, records of the queries whose words are all unknown to training.
    """

    dataset: str
    benchmark: str
    root: Path
    features: Path
    width: int
    splits: tuple[str, ...]
    queries: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    repairs: dict[str, dict] = field(default_factory=dict)
    dropped: dict[str, list] = field(default_factory=dict)
    videos: dict[str, list] = field(default_factory=dict)
    unknown: dict[str, list] = field(default_factory=dict)


def _sentence(rng: np.random.Generator) -> str:
    return f"the {rng.choice(_AGENTS)} {rng.choice(_VERBS)} the {rng.choice(_OBJECTS)}"


def _moments(rng: np.random.Generator, duration: float, n: int) -> list[tuple[float, float]]:
    """``n`` valid moments of a video, rounded to 0.1 s."""
    out = []
    for _ in range(n):
        length = rng.uniform(0.15, 0.45) * duration
        start = rng.uniform(0, duration - length)
        out.append((round(start, 1), round(min(start + length, duration), 1)))
    return out


def _features(rng: np.random.Generator, width: int, rows: int | None = None) -> np.ndarray:
    rows = rows or int(rng.integers(20, 41))
    return rng.normal(size=(rows, width)).astype(np.float32)


def _split_plan(splits, n_videos):
    return {s: n_videos[i] for i, s in enumerate(splits)}


# ----------------------------------------------------------------------------- Charades-STA


def write_charades_sta(root: str | Path, *, width: int = REAL_WIDTHS["charades-sta"], features: str = "hdf5",
                       n_videos=(6, 3), per_video: int = 3, defects: bool = True, seed: int = 0) -> RealFixture:
    """Charades-STA (TALL txt + Charades csv) with I3D-like features ``[T, width]``.

    ``features="hdf5"`` writes ``i3d_features.hdf5`` keyed by video id (CPL's layout);
    ``"npy"`` a folder ``i3d/`` with one ``<vid>.npy`` per video.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    fx = RealFixture("charades-sta", "charades-sta", root, root / ("i3d_features.hdf5" if features == "hdf5" else "i3d"),
                     width, ("train", "test"))
    arrays = {}
    header = "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length\n"
    for split, n in _split_plan(fx.splits, n_videos).items():
        lines, csv = [], [header]
        vids = [f"{chr(65 + (seed + k) % 26)}{split[:2].upper()}{k:02d}" for k in range(n)]
        durations = {}
        for k, vid in enumerate(vids):
            duration = durations[vid] = round(float(rng.uniform(20, 40)), 2)
            csv.append(f'{vid},S{k:02d},Kitchen,6,7,Yes,"A person opens a door.",door,"opens",c001 0.0 5.0,'
                       f"{duration}\n")
            for s, e in _moments(rng, duration, per_video):
                lines.append(f"{vid} {s:.1f} {e:.1f}##{_sentence(rng)}.")
            arrays[vid] = _features(rng, width)
        if split == "train" and defects:
            v0, d0 = vids[0], durations[vids[0]]
            lines += [f"{v0} {d0 + 1:.1f} {d0 + 3.5:.1f}##a person sits on the chair.",   # start after the end
                      f"{v0} 5.0 5.0##the person laughs.",                                 # start == end
                      f"{v0} 2.0 {d0 + 0.8:.1f}##a person runs to the door."]              # end clipped
            first = len(lines) - 3
            fx.dropped[split] = [f"charades_sta_train.txt:{first + 1}", f"charades_sta_train.txt:{first + 2}"]
            fx.repairs[split] = {"clipped_start": 1, "clipped_end": 2, "dropped_invalid": 2}
            n_dropped = 2
        else:
            n_dropped = 0
            fx.repairs[split] = {}
        if split == "test":
            lines.append(f"{vids[0]} 1.0 6.0##{UNKNOWN_QUERY.capitalize()}.")
            fx.unknown[split] = [f"charades_sta_test.txt:{len(lines)}"]
        (root / f"charades_sta_{split}.txt").write_text("\n".join(lines) + "\n")
        (root / f"Charades_v1_{split}.csv").write_text("".join(csv))
        fx.written[split] = len(lines)
        fx.queries[split] = len(lines) - n_dropped
        fx.videos[split] = vids
    _write_plain(fx.features, arrays, npy=(features == "npy"))
    return fx


def _write_plain(path: Path, arrays: dict, npy: bool = False) -> None:
    if npy:
        path.mkdir(parents=True, exist_ok=True)
        for vid, x in arrays.items():
            np.save(path / f"{vid}.npy", x)
        return
    with h5py.File(path, "w") as h5:
        for vid, x in arrays.items():
            h5.create_dataset(vid, data=x)


# ----------------------------------------------------------------------------- ActivityNet Captions


def write_activitynet_captions(root: str | Path, *, width: int = REAL_WIDTHS["activitynet"],
                               names: str = "official", n_videos=(6, 3, 3), per_video: int = 3,
                               defects: bool = True, seed: int = 0) -> RealFixture:
    """ActivityNet Captions json (``train.json``, ``val_1.json``, ``val_2.json``; ``names="2d-tan"``:
    ``val.json``, ``test.json``) with ``sub_activitynet_v1-3.c3d.hdf5`` (groups with ``c3d_features``)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    fx = RealFixture("activitynet", "activitynet-captions", root, root / "sub_activitynet_v1-3.c3d.hdf5", width,
                     ("train", "val", "test"))
    files = {"train": "train.json", "val": "val_1.json", "test": "val_2.json"}
    if names == "2d-tan":
        files.update(val="val.json", test="test.json")
    arrays = {}
    for split, n in _split_plan(fx.splits, n_videos).items():
        data = {}
        vids = [f"v_{split[:2]}{seed}{k:02d}xYz_{k}" for k in range(n)]
        for vid in vids:
            duration = round(float(rng.uniform(60, 200)), 2)
            stamps = [list(m) for m in _moments(rng, duration, per_video)]
            # the release's sentences start with a space and end with a period
            data[vid] = {"duration": duration, "timestamps": stamps,
                         "sentences": [f" {_sentence(rng).capitalize()}." for _ in stamps]}
            arrays[vid] = _features(rng, width)
        name = files[split]
        n_dropped = 0
        fx.repairs[split] = {}
        if split == "train" and defects:
            v0 = data[vids[0]]
            d0, k = v0["duration"], len(v0["timestamps"])
            v0["timestamps"] += [[d0 + 2.0, d0 + 9.5], [40.0, 31.5], [3.0, d0 + 1.25]]
            v0["sentences"] += [" A man waves at the camera.", " He walks away.", " The crowd cheers."]
            fx.dropped[split] = [f"{name}[{vids[0]!r}][{k}]", f"{name}[{vids[0]!r}][{k + 1}]"]
            fx.repairs[split] = {"clipped_start": 1, "clipped_end": 2, "dropped_invalid": 2}
            n_dropped = 2
        if split == "test":
            data[vids[0]]["timestamps"].append([1.0, 9.0])
            data[vids[0]]["sentences"].append(f" {UNKNOWN_QUERY.capitalize()}.")
            fx.unknown[split] = [f"{name}[{vids[0]!r}][{len(data[vids[0]]['sentences']) - 1}]"]
        (root / name).write_text(json.dumps(data))
        fx.written[split] = sum(len(v["sentences"]) for v in data.values())
        fx.queries[split] = fx.written[split] - n_dropped
        fx.videos[split] = vids
    with h5py.File(fx.features, "w") as h5:
        for vid, x in arrays.items():
            h5.create_group(vid).create_dataset("c3d_features", data=x)
    return fx


# ----------------------------------------------------------------------------- TACoS


def write_tacos(root: str | Path, *, width: int = REAL_WIDTHS["tacos"], avi_in_features: bool = True,
                n_videos=(4, 2, 2), per_video: int = 3, seed: int = 0) -> RealFixture:
    """TACoS as released with 2D-TAN (``{split}.json``: frames, ``fps``, ``num_frames``; keys
    ``s13-d21.avi``) with ``tall_c3d_features.hdf5`` ``[T, width]`` keyed with or without ``.avi``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    fx = RealFixture("tacos", "tacos", root, root / "tall_c3d_features.hdf5", width, ("train", "val", "test"))
    arrays, k = {}, 0
    fps = 29.4
    for split, n in _split_plan(fx.splits, n_videos).items():
        data = {}
        vids = []
        for _ in range(n):
            k += 1
            vid = f"s{10 + k}-d{20 + k}.avi"
            vids.append(vid)
            num_frames = int(rng.integers(3000, 9000))
            stamps = [[int(s * fps), int(e * fps)] for s, e in _moments(rng, num_frames / fps, per_video)]
            data[vid] = {"timestamps": stamps, "sentences": [f"{_sentence(rng).capitalize()}." for _ in stamps],
                         "fps": fps, "num_frames": num_frames}
            arrays[vid if avi_in_features else vid[: -len(".avi")]] = _features(rng, width)
        if split == "test":
            data[vids[0]]["timestamps"].append([30, 300])
            data[vids[0]]["sentences"].append(f"{UNKNOWN_QUERY.capitalize()}.")
            fx.unknown[split] = [f"test.json[{vids[0]!r}][{len(data[vids[0]]['sentences']) - 1}]"]
        (root / f"{split}.json").write_text(json.dumps(data))
        fx.written[split] = fx.queries[split] = sum(len(v["sentences"]) for v in data.values())
        fx.repairs[split] = {}
        fx.videos[split] = vids
    _write_plain(fx.features, arrays)
    return fx


# ----------------------------------------------------------------------------- DiDeMo


def write_didemo(root: str | Path, *, width: int = REAL_WIDTHS["didemo"], feature_file: str = "average_fc7.h5",
                 n_videos=(6, 3, 3), per_video: int = 2, seed: int = 0) -> RealFixture:
    """DiDeMo (``{split}_data.json``, LocalizingMoments) with ``average_fc7.h5``: ``[6, width]`` per video,
    zero rows after the video's last 5-second chunk (videos of 4, 5 and 6 chunks)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    fx = RealFixture("didemo", "didemo", root, root / feature_file, width, ("train", "val", "test"))
    arrays, aid = {}, 0
    for split, n in _split_plan(fx.splits, n_videos).items():
        records, vids = [], []
        for k in range(n):
            vid = f"{1000 + 7 * k + seed}@N0{k % 9}_{5000 + 13 * k}_{split[:1]}{k:02d}abc.{['mov', 'mp4', 'avi'][k % 3]}"
            vids.append(vid)
            chunks = 4 + k % 3
            x = np.zeros((6, width), np.float32)
            x[:chunks] = rng.normal(size=(chunks, width))
            arrays[vid] = x
            for _ in range(per_video):
                i = int(rng.integers(0, chunks))
                j = int(rng.integers(i, chunks))
                times = [[i, j], [i, j], [max(i - 1, 0), j], [i, min(j + 1, chunks - 1)]]
                aid += 1
                records.append({"video": vid, "times": times, "description": _sentence(rng),
                                "num_segments": chunks, "annotation_id": aid,
                                "dl_link": f"https://www.flickr.com/video_download.gne?id={aid}"})
        if split == "test":
            aid += 1
            records.append({"video": vids[0], "times": [[0, 1]] * 4, "description": UNKNOWN_QUERY,
                            "num_segments": 4, "annotation_id": aid, "dl_link": ""})
            fx.unknown[split] = [f"test_data.json[{len(records) - 1}]"]
        (root / f"{split}_data.json").write_text(json.dumps(records))
        fx.written[split] = fx.queries[split] = len(records)
        fx.repairs[split] = {}
        fx.videos[split] = vids
    _write_plain(fx.features, arrays)
    return fx


# ----------------------------------------------------------------------------- dispatch + tiny models

_WRITERS = {"charades-sta": write_charades_sta, "activitynet": write_activitynet_captions,
            "tacos": write_tacos, "didemo": write_didemo}


def write_real(dataset: str, root: str | Path, **kw) -> RealFixture:
    """Write the fixture of ``dataset`` (a read_annotations or a load_benchmark name) into ``root``."""
    name = {v: k for k, v in BENCHMARK_NAMES.items()}.get(dataset, dataset)
    if name not in _WRITERS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)} or "
                         f"{', '.join(BENCHMARK_NAMES.values())}")
    return _WRITERS[name](root, **kw)


def marn_reduction(video_dim: int, channels: int = 16) -> int:
    """The largest ``r`` dividing ``video_dim`` with at least ``channels`` reduced channels (MARN Eq. 1)."""
    return next(r for r in range(max(video_dim // channels, 1), 0, -1) if video_dim % r == 0)


def tiny_model(key: str, video_dim: int) -> dict:
    """Tiny widths for a one-epoch smoke run of ``key`` on ``video_dim``-d features (not a recipe)."""
    return {
        "marn": dict(scales=(2, 4, 6), num_points=2, reduction=marn_reduction(video_dim), proposal_dim=16,
                     word_dim=16, query_dim=16, attention_dim=16, decoder_dim=16),
        "wsra": dict(word_dim=16, text_hidden=16, hidden=16, phi_hidden=16),
        "vlanet": dict(word_dim=16, hidden=16, dim=16),
        "fsan": dict(word_dim=16, d_model=16, heads=2, layers=1, dropout=0.0),
        "fian": dict(word_dim=16, hidden=16, heads=2),
    }[key]
