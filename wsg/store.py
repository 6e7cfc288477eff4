"""The results store: the CSV files under ``results/`` that every measured number of the book is read from.

One file per study: ``results/<profile>-<dataset>.csv`` for :func:`wsg.experiments.run`'s
multi-seed rows, and one file per study script (``results/marn_scales.csv``, ...). Each row records
how it was made (:mod:`wsg.provenance`): the wsg version, the git commit (``+dirty`` for
uncommitted changes), the generator version, the machine fingerprint and two digests:

- ``code``: :func:`wsg.provenance.code_digest`, the wsg code the run depends on;
- ``data``: :func:`wsg.provenance.data_digest`, the benchmark it trained and was evaluated on.

Two rows are *comparable* when their code digests agree and, for rows that compare conditions of
one benchmark, their data digests agree: :func:`check_comparable` raises
:class:`StoreMismatchError` otherwise, and :func:`load_results` and
:func:`wsg.experiments.difference` call it. A commit that changes only prose keeps both digests.
Rows written before the digests existed have none; they are compared as they are, and the
regeneration (``make results``, :mod:`wsg.regenerate`) replaces them.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

__all__ = ["IDENTITY", "RESULTS_DIR", "DIGESTS", "StoreMismatchError", "check_comparable", "per_seed",
           "store_path", "results_dir", "find_store", "store_for", "write_results", "load_results"]

#: columns that identify a row of the store
IDENTITY = ("method", "dataset", "profile", "seed", "variant")
_REQUIRED = IDENTITY + ("R@1,IoU=0.5", "wsg_version", "commit", "device", "command")
#: the digests a comparison must agree on
DIGESTS = ("code", "data")
RESULTS_DIR = Path("results")


class StoreMismatchError(ValueError):
    """Rows made by different code, or on different data, were about to be compared."""


def check_comparable(*frames: pd.DataFrame, digests=("code",), where: str = "") -> None:
    """Raise :class:`StoreMismatchError` when the rows of ``frames`` disagree on a digest.

    ``digests``: which of :data:`DIGESTS` must agree: ``code`` always (one comparison, one code);
    add ``data`` when the rows compare settings on one benchmark (rows of different presets or
    conditions differ in data by design). Rows without digests (written before they existed)
    are skipped: only recorded digests can disagree.
    """
    rows = pd.concat([f for f in frames if f is not None and len(f)], ignore_index=True) if frames else None
    if rows is None or not len(rows):
        return
    for column in digests:
        if column not in rows:
            continue
        values = rows[column].dropna().astype(str).unique()
        if len(values) > 1:
            raise StoreMismatchError(
                f"{where or 'rows'}: {column} digests differ ({', '.join(sorted(values))}); rows made by "
                f"{'different code' if column == 'code' else 'different data'} cannot be compared. "
                "Regenerate them at one commit (make results).")


def per_seed(df: pd.DataFrame) -> pd.DataFrame:
    """The per-seed rows of a :func:`run` result (without ``mean``/``std``)."""
    return df.drop(index=[i for i in ("mean", "std") if i in df.index])


def store_path(dataset: str, profile: str, root: str | Path = RESULTS_DIR) -> Path:
    """``<root>/<profile>-<dataset>.csv``."""
    return Path(root) / f"{profile}-{dataset}.csv"


def results_dir() -> Path:
    """The results folder: ``$WSG_RESULTS`` if set, else the first ``results/`` folder in the working
    directory or above it (a chapter runs from ``notebooks/``), else the one that ships with wsg
    (:func:`wsg.shipped.shipped_dir`: a chapter opened alone on Colab), else ``./results``."""
    import os

    from wsg.shipped import shipped_dir

    if os.environ.get("WSG_RESULTS"):
        return Path(os.environ["WSG_RESULTS"])
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / RESULTS_DIR).is_dir():
            return folder / RESULTS_DIR
    return shipped_dir("results") or here / RESULTS_DIR  # load_results explains how to make it


def find_store(dataset: str, profile: str = "tiny") -> Path:
    """The results file of ``dataset``/``profile`` in :func:`results_dir`."""
    return store_path(dataset, profile, results_dir())


def store_for(dataset: str, profile: str) -> tuple[Path, str]:
    """``(path, profile it holds)``: the store of ``profile`` if there is one, else the ``tiny`` store,
    with a printed line saying so (no ``full`` runs are stored yet: a chapter in ``full`` shows the
    ``tiny`` numbers, labelled)."""
    path = find_store(dataset, profile)
    if profile != "tiny" and not path.exists():
        print(f"no {profile} results store for {dataset}: the stored numbers below are the tiny profile's")
        return find_store(dataset, "tiny"), "tiny"
    return path, profile


def write_results(rows: pd.DataFrame, root: str | Path = RESULTS_DIR, name: str | None = None) -> list[Path]:
    """Merge per-seed rows into the store (a row with the same identity is replaced).

    Written atomically, one file per (profile, dataset), or per profile into
    ``<profile>-<name>.csv`` when ``name`` is given (e.g. ``worlds``: one file for many worlds).
    """
    rows = per_seed(rows).reset_index(drop=True)
    rows["seed"] = rows["seed"].astype(int)
    written = []
    for (profile, dataset), part in rows.groupby(["profile", "dataset" if name is None else "profile"]):
        path = store_path(dataset if name is None else name, profile, root)
        path.parent.mkdir(parents=True, exist_ok=True)
        old = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=part.columns)
        if len(old):
            key_old = old[list(IDENTITY)].astype(str).agg("|".join, axis=1)
            key_new = set(part[list(IDENTITY)].astype(str).agg("|".join, axis=1))
            old = old[~key_old.isin(key_new)]
        merged = pd.concat([old, part], ignore_index=True) if len(old) else part
        merged = merged.sort_values(list(IDENTITY)).reset_index(drop=True)
        tmp = path.with_suffix(".csv.tmp")
        merged.to_csv(tmp, index=False)
        tmp.replace(path)
        written.append(path)
    return written


def load_results(path: str | Path, method: str | None = None, variant: str | None = None,
                 check_version: bool = True, digests=("code",)) -> pd.DataFrame:
    """Read a results file of the store, checked.

    Args:
        path: a CSV written by :func:`write_results` (or a directory plus
            ``<profile>-<dataset>.csv``).
        method / variant: keep only these rows.
        check_version: refuse rows written by another wsg version.
        digests: the digests the selected rows must share (:func:`check_comparable`); ``()``
            reads a file whose rows are not compared with each other.

    Raises:
        FileNotFoundError: the file does not exist (with the command that makes it).
        ValueError: a required column is missing, or a row comes from another wsg
            version (naming the file and the row).
        StoreMismatchError: the selected rows were made by different code (:func:`check_comparable`).
    """
    from wsg import __version__

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such results file; produce it with "
                                "`python -m wsg.experiments KEY ... --datasets D --profile P --seeds 0,1,2`")
    df = pd.read_csv(path)
    missing = [c for c in _REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: not a results file of wsg.experiments: missing column(s) {missing}")
    if check_version:
        other = df.index[df["wsg_version"].astype(str) != __version__]
        if len(other):
            i = int(other[0])
            raise ValueError(f"{path}, row {i + 2} ({df.loc[i, 'method']}, seed {df.loc[i, 'seed']}): written by "
                             f"wsg {df.loc[i, 'wsg_version']}, this is wsg {__version__}; regenerate it with "
                             f"its command: {df.loc[i, 'command']}")
    if method is not None:
        df = df[df["method"] == method]
    if variant is not None:
        df = df[df["variant"] == variant]
    check_comparable(df, digests=digests, where=str(path))
    return df.reset_index(drop=True)


