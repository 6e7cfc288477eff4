"""Annotation readers for the four grounding benchmarks, in their released formats.

One call reads any of them into the same table::

    df = read_annotations("charades-sta", root, "train")

with one row per (video, sentence, moment) and the columns

========== ===================================================================
video_id   the video's id as released (str)
duration   video length in seconds (float)
start, end the ground-truth moment in seconds (float)
sentence   the query, whitespace-stripped, otherwise as released (str)
record     where the row came from, e.g. ``charades_sta_train.txt:17`` or
           ``train.json['v_x'][2]``, so later errors can point at the source
========== ===================================================================

DiDeMo adds ``times`` (every annotator's (i, j) chunk pair), ``num_segments``
and ``annotation_id``.

Files expected under ``root`` (the names of the public releases):

* **Charades-STA** (TALL txt): ``charades_sta_{train,test}.txt``, one line
  ``VIDEOID START END##sentence`` each. Durations come from the Charades csv
  ``Charades_v1_{train,test}.csv`` (columns ``id`` and ``length``), looked up in
  ``root`` unless ``charades_csv`` names the file(s). There is **no official
  validation split**: use :func:`split_validation` on the train split and select
  models on that, never on test.
* **ActivityNet Captions**: ``train.json``; val = ``val_1.json`` (or ``val.json``,
  the 2D-TAN name); test = ``val_2.json`` (or ``test.json``). The release's own
  split names are accepted too: ``split="val_1"`` reads ``val_1.json`` and
  ``split="val_2"`` reads ``val_2.json`` (only those names). A JSON object
  ``video_id -> {"duration", "timestamps": [[s, e], ...], "sentences": [...]}``.
  The synthetic benchmark of this library writes this format.
* **DiDeMo**: ``{train,val,test}_data.json``, a list of records ``{"video",
  "times": [[i, j], ...], "description", "num_segments", "annotation_id"}``.
  Videos are cut in 5-second chunks and were truncated to 30 s (6 chunks) for
  annotation; ``duration = 5 * num_segments`` (the real video's last chunk may
  be shorter, the chunk grid is what the protocol uses). ``start, end`` is the
  most frequent annotator pair (ties: the earliest in the list) in seconds,
  ``[5 i, 5 (j + 1)]``; the full set stays in ``times`` for the official
  protocol (:func:`wsg.metrics.didemo_scores`).
* **TACoS** (2D-TAN json): ``{train,val,test}.json``, ``video_id ->
  {"num_frames", "fps", "timestamps": [[frame_s, frame_e], ...], "sentences"}``;
  seconds = frame / fps, duration = num_frames / fps.

Moment policies (:func:`apply_moment_policies`) are explicit arguments, and
every repair is counted in ``df.attrs["repairs"]`` (only non-zero counts, e.g.
``{"clipped_end": 3, "dropped_invalid": 1}``), the affected records are listed
in ``df.attrs["repaired_records"]``, and one :class:`AnnotationRepairWarning`
summarises them:

* ``out_of_range`` -- a moment reaching outside ``[0, duration]``: ``"clip"``
  (default; clip to ``[0, duration]`` as 2D-TAN does), ``"drop"``, ``"keep"``
  or ``"raise"``.
* ``invalid`` -- ``start >= end`` (after clipping): ``"drop"`` (default, as
  2D-TAN does: the official releases hold 4 such Charades-STA train queries and
  4 ActivityNet Captions train queries, so they load as released), ``"raise"``
  (refuse the file, naming the records) or ``"keep"``. Dropped queries are
  counted in ``attrs["repairs"]["dropped_invalid"]`` and named (file and
  record) in the warning and in ``attrs["repaired_records"]``.

Malformed input (wrong field count, non-numeric or non-finite numbers, missing
``##`` or JSON keys, timestamps/sentences length mismatch, empty sentences or
sentences without a single word token -- punctuation only, see
:func:`wsg.text.tokenize` --, a video missing from the Charades csv,
non-positive durations, an empty file) raises :class:`ValueError` naming the
file and the line or record. Nothing is skipped silently; only blank lines of a
txt file (which hold no record) are passed over.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence, Union

import numpy as np
import pandas as pd

from wsg.text import tokenize

__all__ = [
    "AnnotationRepairWarning",
    "DATASETS",
    "read_annotations",
    "apply_moment_policies",
    "split_validation",
]

PathLike = Union[str, os.PathLike]

#: canonical dataset names (``read_annotations`` also accepts the aliases below)
DATASETS = ("charades-sta", "activitynet", "didemo", "tacos")
_ALIASES = {
    "charades-sta": "charades-sta",
    "charades": "charades-sta",
    "charadessta": "charades-sta",
    "activitynet": "activitynet",
    "activitynet-captions": "activitynet",
    "didemo": "didemo",
    "tacos": "tacos",
}
SPLITS = ("train", "val", "test")
#: ActivityNet Captions' own split names (the release's files), accepted for that dataset only
ACTIVITYNET_SPLITS = ("val_1", "val_2")
OUT_OF_RANGE_POLICIES = ("clip", "drop", "keep", "raise")
INVALID_POLICIES = ("drop", "raise", "keep")
DIDEMO_CHUNK_S = 5.0
DIDEMO_MAX_CHUNKS = 6

_BASE_COLUMNS = ["video_id", "duration", "start", "end", "sentence", "record"]


class AnnotationRepairWarning(UserWarning):
    """Moments were clipped, dropped or kept out of range / invalid (see ``df.attrs``)."""


# ----------------------------------------------------------------------------- public API


def read_annotations(
    dataset: str,
    root: PathLike,
    split: str,
    *,
    out_of_range: str = "clip",
    invalid: str = "drop",
    charades_csv: PathLike | Sequence[PathLike] | None = None,
) -> pd.DataFrame:
    """Read one split of a grounding benchmark into a DataFrame (one row per query).

    Args:
        dataset: ``"charades-sta"`` (or ``"charades"``), ``"activitynet"``,
            ``"didemo"`` or ``"tacos"``; case-insensitive.
        root: folder holding the annotation files (names in the module docstring).
        split: ``"train"``, ``"val"`` or ``"test"``; for ActivityNet also the
            release's ``"val_1"`` / ``"val_2"``. Charades-STA has no val split
            (a ValueError says so; use :func:`split_validation`).
        out_of_range: policy for moments outside ``[0, duration]``:
            ``"clip"`` (default) | ``"drop"`` | ``"keep"`` | ``"raise"``.
        invalid: policy for ``start >= end`` after clipping: ``"drop"``
            (default; counted, warned about with the records named) |
            ``"raise"`` | ``"keep"``.
        charades_csv: Charades-STA only: path(s) of the Charades csv giving
            durations; default ``root/Charades_v1_{split}.csv``.

    Returns:
        DataFrame with columns ``video_id, duration, start, end, sentence, record``
        (+ ``times, num_segments, annotation_id`` for DiDeMo), index 0..n-1, and
        ``attrs`` ``dataset, split, files, out_of_range, invalid, repairs,
        repaired_records``.

    Raises:
        ValueError: unknown dataset / split / policy, malformed input (the message
            names the file and the line or record), or an invalid moment under
            ``invalid="raise"`` / an out-of-range one under ``out_of_range="raise"``.
        FileNotFoundError: a file is missing (names the folder and the names tried).
    """
    key = _ALIASES.get(str(dataset).strip().lower().replace("_", "-").replace(" ", "-"))
    if key is None:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)} (alias: 'charades')")
    split = str(split).strip().lower()
    known = SPLITS + (ACTIVITYNET_SPLITS if key == "activitynet" else ())
    if split not in known:
        extra = "" if key == "activitynet" else f" (ActivityNet Captions also accepts {', '.join(ACTIVITYNET_SPLITS)})"
        raise ValueError(f"unknown split {split!r} for {key}; known: {', '.join(known)}{extra}")
    _check_choice("out_of_range", out_of_range, OUT_OF_RANGE_POLICIES)
    _check_choice("invalid", invalid, INVALID_POLICIES)
    root = Path(root)

    if key == "charades-sta":
        rows, files = _read_charades_sta(root, split, charades_csv)
    elif key == "activitynet":
        rows, files = _read_activitynet(root, split)
    elif key == "didemo":
        rows, files = _read_didemo(root, split)
    else:
        rows, files = _read_tacos(root, split)

    columns = _BASE_COLUMNS + (["times", "num_segments", "annotation_id"] if key == "didemo" else [])
    df = pd.DataFrame(rows, columns=columns)
    df = df.astype({"duration": float, "start": float, "end": float})
    df = apply_moment_policies(df, out_of_range=out_of_range, invalid=invalid,
                               context=f"{key} {split} [file {files[0]}]", stacklevel=3)
    df.attrs.update(dataset=key, split=split, files=[str(f) for f in files],
                    out_of_range=out_of_range, invalid=invalid)
    return df


def apply_moment_policies(
    df: pd.DataFrame,
    *,
    out_of_range: str = "clip",
    invalid: str = "drop",
    context: str = "",
    stacklevel: int = 2,
) -> pd.DataFrame:
    """Apply the out-of-range then the start >= end policy; count and report every repair.

    ``df`` needs ``duration, start, end, record``. Returns a new DataFrame (index
    reset) whose ``attrs["repairs"]`` holds the non-zero counts among
    ``clipped_start, clipped_end, dropped_out_of_range, kept_out_of_range,
    dropped_invalid, kept_invalid`` and ``attrs["repaired_records"]`` the
    records behind each count. A single :class:`AnnotationRepairWarning`
    summarises them when any is non-zero; it names every dropped record (up to
    ``_NAMED_IN_WARNING`` per kind, then "... and N more"), since a dropped query
    is data lost, while the other kinds show a few examples.
    """
    _check_choice("out_of_range", out_of_range, OUT_OF_RANGE_POLICIES)
    _check_choice("invalid", invalid, INVALID_POLICIES)
    where = f"{context}: " if context else ""
    df = df.copy()
    repairs: dict[str, int] = {}
    records: dict[str, list[str]] = {}

    def note(kind: str, mask) -> None:
        n = int(np.sum(mask))
        if n:
            repairs[kind] = n
            records[kind] = df.loc[mask, "record"].tolist()

    dur, s, e = (df[c].to_numpy(float) for c in ("duration", "start", "end"))
    bad_start = (s < 0) | (s > dur)
    bad_end = (e < 0) | (e > dur)
    outside = bad_start | bad_end
    if outside.any():
        if out_of_range == "raise":
            raise ValueError(f"{where}{_describe(df[outside], 'outside [0, duration]')}; "
                             "pass out_of_range='clip', 'drop' or 'keep' to accept them")
        if out_of_range == "clip":
            note("clipped_start", bad_start)
            note("clipped_end", bad_end)
            df["start"] = np.clip(s, 0.0, dur)
            df["end"] = np.clip(e, 0.0, dur)
        elif out_of_range == "drop":
            note("dropped_out_of_range", outside)
            df = df[~outside]
        else:
            note("kept_out_of_range", outside)

    empty = (df["start"] >= df["end"]).to_numpy()
    if empty.any():
        if invalid == "raise":
            after = " after clipping" if out_of_range == "clip" else ""
            raise ValueError(f"{where}{_describe(df[empty], 'with start >= end' + after)}; "
                             "pass invalid='drop' (the default, 2D-TAN's choice) or 'keep' to accept them")
        if invalid == "drop":
            note("dropped_invalid", empty)
            df = df[~empty]
        else:
            note("kept_invalid", empty)

    df = df.reset_index(drop=True)
    df.attrs["repairs"] = repairs
    df.attrs["repaired_records"] = records
    if repairs:
        summary = ", ".join(f"{k}={v}" for k, v in repairs.items())
        first = "; ".join(f"{k}: {_list_records(v, _NAMED_IN_WARNING if k.startswith('dropped') else 3)}"
                          for k, v in records.items())
        warnings.warn(f"{where}{summary} (out_of_range={out_of_range!r}, invalid={invalid!r}); "
                      f"records: {first}. See df.attrs['repairs'] and df.attrs['repaired_records'].",
                      AnnotationRepairWarning, stacklevel=stacklevel + 1)
    return df


_NAMED_IN_WARNING = 20


def _list_records(records: list[str], limit: int) -> str:
    shown = ", ".join(records[:limit])
    return shown + (f" ... and {len(records) - limit} more" if len(records) > limit else "")


def split_validation(df: pd.DataFrame, fraction: float = 0.1, seed: int = 0
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out a fraction of the *videos* of a train split as a validation split.

    For Charades-STA, which has no official val split. Every query of a video
    goes to the same side, so no video is in both. Choose epochs, thresholds and
    hyper-parameters on the returned ``val_df``, **never on test**.

    Deterministic and platform-independent: videos are ranked by
    ``sha1(f"{seed}:{video_id}")`` and the first ``round(fraction * n_videos)``
    (at least 1, at most n_videos - 1) go to val. Row order is preserved.
    """
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    videos = sorted(set(df["video_id"].astype(str)))
    if len(videos) < 2:
        raise ValueError(f"need at least 2 videos to split by video, got {len(videos)}")
    n_val = min(max(1, round(fraction * len(videos))), len(videos) - 1)
    ranked = sorted(videos, key=lambda v: hashlib.sha1(f"{seed}:{v}".encode()).hexdigest())
    is_val = df["video_id"].astype(str).isin(set(ranked[:n_val])).to_numpy()
    train_df = df[~is_val].reset_index(drop=True)
    val_df = df[is_val].reset_index(drop=True)
    note = f"split_validation(fraction={fraction}, seed={seed})"
    train_df.attrs = dict(df.attrs, split="train", held_out_by=note)
    val_df.attrs = dict(df.attrs, split="val", held_out_by=note)
    return train_df, val_df


# ----------------------------------------------------------------------------- readers


def _read_charades_sta(root: Path, split: str, charades_csv) -> tuple[list, list]:
    """Charades-STA txt (``VID START END##sentence``) + durations from the Charades csv."""
    if split == "val":
        raise ValueError("Charades-STA has no official validation split; read split='train' and "
                         "hold out videos with wsg.data.annotations.split_validation(df) "
                         "(select models on that, never on test)")
    path = _find(root, [f"charades_sta_{split}.txt"], f"Charades-STA {split!r} annotations")
    csv_paths = _charades_csv_paths(root, split, charades_csv)
    lengths = _read_charades_lengths(csv_paths)

    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue  # a blank line holds no record
        rec = f"{path.name}:{lineno}"
        head, sep, sentence = line.partition("##")
        if not sep:
            _fail(path, rec, f"missing '##' between 'VIDEOID START END' and the sentence: {line!r}")
        fields = head.split()
        if len(fields) != 3:
            _fail(path, rec, f"expected 3 fields 'VIDEOID START END' before '##', got {len(fields)}: {head!r}")
        vid, start, end = fields[0], _number(fields[1], "start", path, rec), _number(fields[2], "end", path, rec)
        if vid not in lengths:
            _fail(path, rec, f"video {vid!r} not found in the Charades csv "
                             f"({', '.join(p.name for p in csv_paths)}); pass charades_csv= to name the right file")
        raw, csv_rec = lengths[vid]
        duration = _number(raw, f"duration of video {vid!r} ({csv_rec})", path, rec)
        if not duration > 0:
            _fail(path, rec, f"video {vid!r} has non-positive duration {raw!r} ({csv_rec})")
        rows.append((vid, duration, start, end, _sentence(sentence, path, rec), rec))
    if not rows:
        _fail(path, path.name, "no annotations in file")
    return rows, [path, *csv_paths]


def _charades_csv_paths(root: Path, split: str, charades_csv) -> list[Path]:
    if charades_csv is None:
        return [_find(root, [f"Charades_v1_{split}.csv"], "Charades csv (video durations)",
                      hint="; or pass charades_csv=path")]
    given = [charades_csv] if isinstance(charades_csv, (str, os.PathLike)) else list(charades_csv)
    paths = [Path(p) for p in given]
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"Charades csv (video durations) not found: {p} (given as charades_csv)")
    return paths


def _read_charades_lengths(paths: Iterable[Path]) -> dict[str, tuple[str, str]]:
    """``id -> (raw length, "file row N (id 'X')")``, rows 1-based after the header.

    Lengths are parsed (and checked) only for the videos an annotation file uses.
    """
    lengths: dict[str, tuple[str, str]] = {}
    for path in paths:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        missing = [c for c in ("id", "length") if c not in table.columns]
        if missing:
            _fail(path, path.name, f"missing column(s) {missing}; columns are {list(table.columns)}")
        for row, (vid, length) in enumerate(zip(table["id"], table["length"]), start=1):
            vid = str(vid).strip()
            rec = f"{path.name} row {row} (id {vid!r})"
            length = str(length).strip()
            if vid in lengths and lengths[vid][0] != length:
                _fail(path, rec, f"conflicting length {length!r} vs {lengths[vid][0]!r} ({lengths[vid][1]})")
            lengths[vid] = (length, rec)
    return lengths


def _read_activitynet(root: Path, split: str) -> tuple[list, list]:
    """ActivityNet Captions json (official names, or 2D-TAN's val.json / test.json)."""
    names = {"train": ["train.json"], "val": ["val_1.json", "val.json"], "test": ["val_2.json", "test.json"],
             "val_1": ["val_1.json"], "val_2": ["val_2.json"]}
    path = _find(root, names[split], f"ActivityNet Captions {split!r} annotations")
    rows = []
    for vid, entry, rec in _json_videos(path):
        duration = _positive(_get(entry, "duration", path, rec), "duration", path, rec)
        for i, (s, e), sentence in _moments(entry, path, rec):
            rows.append((vid, duration, s, e, sentence, f"{rec}[{i}]"))
    return rows, [path]


def _read_tacos(root: Path, split: str) -> tuple[list, list]:
    """TACoS json as released with 2D-TAN: frame timestamps -> seconds by fps."""
    path = _find(root, [f"{split}.json"], f"TACoS {split!r} annotations")
    rows = []
    for vid, entry, rec in _json_videos(path):
        fps = _positive(_get(entry, "fps", path, rec), "fps", path, rec)
        num_frames = _positive(_get(entry, "num_frames", path, rec), "num_frames", path, rec)
        for i, (s, e), sentence in _moments(entry, path, rec):
            rows.append((vid, num_frames / fps, s / fps, e / fps, sentence, f"{rec}[{i}]"))
    return rows, [path]


def _read_didemo(root: Path, split: str) -> tuple[list, list]:
    """DiDeMo json: chunk pairs -> seconds of the most frequent annotator pair."""
    path = _find(root, [f"{split}_data.json"], f"DiDeMo {split!r} annotations")
    data = _load_json(path)
    if not isinstance(data, list):
        _fail(path, path.name, f"expected a JSON list of records, got {type(data).__name__}")
    if not data:
        _fail(path, path.name, "no annotations in file")
    rows = []
    for k, item in enumerate(data):
        rec = f"{path.name}[{k}]"
        if not isinstance(item, dict):
            _fail(path, rec, f"expected a JSON object, got {type(item).__name__}")
        vid = str(_get(item, "video", path, rec))
        n_seg = _get(item, "num_segments", path, rec)
        if not _is_int(n_seg) or not 1 <= n_seg <= DIDEMO_MAX_CHUNKS:
            _fail(path, rec, f"num_segments must be an integer in 1..{DIDEMO_MAX_CHUNKS}, got {n_seg!r}")
        times = _get(item, "times", path, rec)
        if not isinstance(times, list) or not times:
            _fail(path, rec, f"'times' must be a non-empty list of [i, j] chunk pairs, got {times!r}")
        pairs = []
        for t in times:
            if not (isinstance(t, (list, tuple)) and len(t) == 2 and all(map(_is_int, t))
                    and 0 <= t[0] <= t[1] < DIDEMO_MAX_CHUNKS):
                _fail(path, rec, f"bad chunk pair {t!r} in 'times': need integers 0 <= i <= j <= 5")
            pairs.append((int(t[0]), int(t[1])))
        i, j = _most_frequent(pairs)
        sentence = _sentence(_get(item, "description", path, rec), path, rec)
        rows.append((vid, DIDEMO_CHUNK_S * n_seg, DIDEMO_CHUNK_S * i, DIDEMO_CHUNK_S * (j + 1),
                     sentence, rec, pairs, int(n_seg), item.get("annotation_id")))
    return rows, [path]


# ----------------------------------------------------------------------------- helpers


def _most_frequent(pairs: list[tuple[int, int]]) -> tuple[int, int]:
    """The mode of the annotators' pairs; ties go to the pair listed first."""
    counts = Counter(pairs)
    best = max(counts.values())
    return next(p for p in pairs if counts[p] == best)


def _json_videos(path: Path):
    """Yield ``(video_id, entry, "file['video_id']")`` from a ``video_id -> dict`` JSON object."""
    data = _load_json(path)
    if not isinstance(data, dict):
        _fail(path, path.name, f"expected a JSON object mapping video id -> annotations, got {type(data).__name__}")
    if not data:
        _fail(path, path.name, "no annotations in file")
    for vid, entry in data.items():
        rec = f"{path.name}[{vid!r}]"
        if not isinstance(entry, dict):
            _fail(path, rec, f"expected a JSON object, got {type(entry).__name__}")
        yield str(vid), entry, rec


def _moments(entry: dict, path: Path, rec: str):
    """Yield ``(index, (start, end), sentence)`` from ``timestamps`` + ``sentences``."""
    stamps = _get(entry, "timestamps", path, rec)
    sentences = _get(entry, "sentences", path, rec)
    if not isinstance(stamps, list) or not isinstance(sentences, list):
        _fail(path, rec, "'timestamps' and 'sentences' must be lists")
    if len(stamps) != len(sentences):
        _fail(path, rec, f"'timestamps' has {len(stamps)} entries but 'sentences' has {len(sentences)}")
    if not stamps:
        _fail(path, rec, "no timestamps/sentences")
    for i, (ts, sentence) in enumerate(zip(stamps, sentences)):
        where = f"{rec}[{i}]"
        if not isinstance(ts, (list, tuple)) or len(ts) != 2:
            _fail(path, where, f"timestamp must be a [start, end] pair, got {ts!r}")
        yield i, (_number(ts[0], "start", path, where), _number(ts[1], "end", path, where)), \
            _sentence(sentence, path, where)


def _find(root: Path, names: list[str], what: str, hint: str = "") -> Path:
    for name in names:
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(f"{what} not found in {root}: tried {', '.join(names)}{hint}")


def _load_json(path: Path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        _fail(path, f"{path.name}:{err.lineno}", f"not valid JSON ({err.msg}, column {err.colno})")


def _get(entry: dict, key: str, path: Path, rec: str):
    if key not in entry:
        _fail(path, rec, f"missing key {key!r} (keys: {sorted(entry)})")
    return entry[key]


def _number(value, what: str, path: Path, rec: str) -> float:
    """A finite float; rejects booleans, non-numeric text, NaN and infinities."""
    try:
        if isinstance(value, bool):
            raise TypeError
        x = float(value)
    except (TypeError, ValueError):
        _fail(path, rec, f"{what} is not a number: {value!r}")
    if not math.isfinite(x):
        _fail(path, rec, f"{what} is not finite: {value!r}")
    return x


def _positive(value, what: str, path: Path, rec: str) -> float:
    x = _number(value, what, path, rec)
    if not x > 0:
        _fail(path, rec, f"non-positive {what} {value!r}")
    return x


def _sentence(value, path: Path, rec: str) -> str:
    """The stripped sentence; rejects non-text, empty and word-less (punctuation-only) sentences."""
    if not isinstance(value, str) or not value.strip():
        _fail(path, rec, f"empty or non-text sentence: {value!r}")
    if not tokenize(value):
        _fail(path, rec, f"sentence has no word token (punctuation only?): {value!r}; "
                         "wsg.text.tokenize keeps runs of [a-z0-9]")
    return value.strip()


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")


def _describe(bad: pd.DataFrame, problem: str, limit: int = 5) -> str:
    items = [f"{r.record} (start {r.start:g}, end {r.end:g}, duration {r.duration:g})"
             for r in bad.head(limit).itertuples()]
    more = f" and {len(bad) - limit} more" if len(bad) > limit else ""
    return f"{len(bad)} moment(s) {problem}: {'; '.join(items)}{more}"


def _fail(path: Path, rec: str, message: str):
    raise ValueError(f"{rec}: {message} [file {path}]")
