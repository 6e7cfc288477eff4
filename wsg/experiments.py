"""Multi-seed runs and the results store.

One training run is an anecdote: the same method, data and settings can move by many
points between two seeds. :func:`run` trains a method once per seed -- seeding *before*
the model is built, so its numbers never depend on what ran earlier in the process --
and returns one row per seed with the test metrics, the swapped-query control and the
event hit, followed by ``mean`` and ``std`` rows.

Runs too slow for CI (methods x seeds x presets, each with its query-blind variant)
are produced by one command into ``results/<profile>-<dataset>.csv``::

    python -m wsg.experiments marn wsra vlanet fsan fian --datasets charades activitynet \\
        --profile tiny --seeds 0,1,2 --blind

Two more studies go through the same command: ``--condition start`` or
``--condition compositional`` trains on the start-biased or compositional synthetic
world (rows in ``results/<profile>-<dataset>-<condition>.csv``; the compositional rows
add R@1 on the test queries whose verb-object pair was never trained, and on the others),
and ``--label-fractions 0.01,0.05,0.25`` trains a fully-supervised method on that share of
the training moments (:meth:`wsg.data.Benchmark.with_labelled_fraction`).

Each row records the method, dataset, profile, seed, variant (``words``,
``query-blind`` or ``labels <p>%``), every metric, the best epoch, seconds, the wsg version, the git
commit (``+dirty`` for uncommitted changes), the generator version, the ``code`` and ``data``
digests (:mod:`wsg.store` says what they guard), the device, the machine fingerprint
(``machine``, its digest, and ``fingerprint``, :mod:`wsg.provenance`) and the command line.
Chapters read the store with :func:`load_results` (:mod:`wsg.store`); a test re-runs a stored row and checks
it reproduces (bit for bit on the machine that made it, within the seed spread elsewhere),
so the store is generated, never typed.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd
import torch

from wsg.store import (IDENTITY, RESULTS_DIR, StoreMismatchError, check_comparable, find_store, load_results,
                       per_seed, results_dir, store_for, store_path, write_results)

# The store's functions are re-exported: ``wsg.experiments.load_results`` is public API (wsg.store is their home).
__all__ = ["run", "train_one", "summary", "difference", "departure_table", "plateau_budget", "unseen_pairs",
           "CONDITIONS", "per_seed", "load_results", "store_path", "results_dir", "find_store", "store_for",
           "write_results", "strong_bar", "describe_bar", "IDENTITY", "StoreMismatchError", "main"]


def _dataset_of(bench) -> str:
    """The recipe dataset name of a benchmark: the synthetic preset, else its name (a real dataset's)."""
    config = getattr(bench, "config", None)
    if config is not None and hasattr(config, "preset"):
        return config.preset
    return getattr(bench, "recipe_dataset", bench.name)


def _variant_of(bench) -> str:
    """``words``, ``query-blind``, or ``labels <p>%`` for a label budget (:meth:`Benchmark.with_labelled_fraction`)."""
    attrs = bench.splits["train"].attrs
    if attrs.get("control") == "query-blind":
        return "query-blind"
    fraction = attrs.get("labelled_fraction", 1.0)
    return "words" if fraction >= 1 else f"labels {100 * fraction:g}%"


#: conditions of the synthetic world the store knows -> generator overrides
CONDITIONS = {"uniform": {}, "start": {"position_bias": "start"}, "compositional": {"compositional": 0.2}}


def _store_dataset(recipe_dataset: str, bench) -> str:
    """The store's dataset label: the recipe's dataset, suffixed by a non-uniform condition
    (``charades-start``, ``charades-compositional``), so each condition has its own file."""
    condition = _condition_of(bench)
    return recipe_dataset if condition == "uniform" else f"{recipe_dataset}-{condition}"


def _condition_of(bench) -> str:
    """Which :data:`CONDITIONS` a synthetic benchmark was generated under (``uniform`` for real data)."""
    config = getattr(bench, "config", None)
    if config is None:
        return "uniform"
    if getattr(config, "compositional", 0) > 0:
        return "compositional"
    return "start" if getattr(config, "position_bias", "uniform") == "start" else "uniform"


def unseen_pairs(bench, split: str = "test"):
    """Boolean mask over ``split``'s rows: the query's verb-object pair never occurs in the
    training split (on a compositional benchmark: the held-out pairs, plus any pair the draw
    happened to leave out); ``None`` for a benchmark that is not compositional."""
    from wsg.data.benchmark import load_events

    if _condition_of(bench) != "compositional":
        return None
    events = load_events(bench)
    train = events.loc[events.split == "train", ["verb", "object"]].drop_duplicates().assign(seen=True)
    pairs = events.merge(train, on=["verb", "object"], how="left").set_index(["video_id", "sentence"])
    table = bench.splits[split]
    seen = pairs.loc[pd.MultiIndex.from_arrays([table["video_id"], table["sentence"]]), "seen"]
    return torch.tensor(seen.isna().to_numpy())


def train_one(key: str, bench, recipe: dict, seed: int, progress: bool = False, device: str | None = None,
              checkpoint_dir: str | Path | None = None, **settings):
    """Seed, build and train one model of ``key`` on ``bench`` with ``recipe`` (:func:`wsg.recipes.get`).

    :func:`wsg.train.set_seed` runs *before* the model is built, so the run depends on its seed
    only; the trainer selects the best epoch on the validation split. ``settings`` are
    model-config changes (an ablation). Returns ``(model, trainer, training seconds)``.
    """
    from wsg.models import build
    from wsg.recipes import model_config, train_config
    from wsg.train import Trainer, set_seed

    set_seed(seed)  # before the model exists: initialisation is part of the seed
    model = build(key, **model_config(recipe, bench, **settings))
    trainer = Trainer(model, train_config(recipe, seed=seed, progress=progress, device=device,
                                          checkpoint_dir=checkpoint_dir))
    t0 = time.perf_counter()
    trainer.fit(bench.loader("train", recipe["batch_size"], seed=seed), bench.loader("val"))
    return model, trainer, time.perf_counter() - t0


def run(key: str, bench, seeds: Sequence[int] = (0, 1, 2), profile=None, dataset: str | None = None,
        controls: bool = True, progress: bool = False, device: str | None = None,
        checkpoint_dir: str | Path | None = None, command: str | None = None, **settings) -> pd.DataFrame:
    """Train method ``key`` on ``bench`` once per seed and evaluate each run on the test split.

    Args:
        key: a method key (:func:`wsg.models.build`).
        bench: a :class:`wsg.data.Benchmark` (or its :func:`wsg.controls.query_blind` copy).
        seeds: one training run per seed; :func:`wsg.train.set_seed` runs *before* the model
            is built, so each run depends on its seed only.
        profile / dataset: which recipe (:func:`wsg.recipes.get`); default the current
            profile and the benchmark's own dataset.
        controls: also evaluate the swapped-query control and the event hit.
        checkpoint_dir: per-seed checkpoints in ``<dir>/seed<k>`` (resumed if present).
        command: the command line recorded with the rows (default ``sys.argv``).
        **settings: ``lr``, ``epochs``, ``batch_size``, ``protocol``, ``windows`` override the recipe's
            training settings; any other name is a model-config change (an ablation).

    Returns:
        one row per seed (index ``seed <k>``) with the identity columns, every test metric,
        ``swapped R@1,...`` and ``event hit`` (with ``controls``), ``best_epoch``,
        ``seconds``, ``parameters`` and provenance; then rows ``mean`` and ``std``
        (sample std over seeds) of the numeric columns. :func:`per_seed` drops them.

    Raises:
        ValueError: an empty seed list.
    """
    from wsg import __version__, get_profile
    from wsg.data.synthetic import GENERATOR_VERSION
    from wsg.provenance import code_digest, data_digest, fingerprint_id, git_commit, machine_fingerprint
    from wsg.controls import swapped_queries
    from wsg.metrics import event_hit, recall_at
    from wsg.recipes import TRAIN_FIELDS, get
    from wsg.train import choose_device, predict_all

    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("run: seeds is empty; give at least one seed (three or more for a comparison)")
    prof = get_profile(profile)
    recipe = get(key, dataset or _dataset_of(bench), prof.name)
    train_changes = {k: settings.pop(k) for k in list(settings) if k in TRAIN_FIELDS}
    recipe.update(train_changes)
    unseen = unseen_pairs(bench)
    digests = {"generator": GENERATOR_VERSION if getattr(bench, "config", None) is not None else "",
               "code": code_digest(), "data": data_digest(bench)}
    rows = []
    for seed in seeds:
        ckpt = None if checkpoint_dir is None else str(Path(checkpoint_dir) / f"seed{seed}")
        model, trainer, seconds = train_one(key, bench, recipe, seed, progress=progress, device=device,
                                            checkpoint_dir=ckpt, **settings)
        pred = predict_all(model, bench.loader("test"), device=trainer.device)
        row = {"method": key, "dataset": _store_dataset(recipe["dataset"], bench), "profile": prof.name,
               "seed": seed, "variant": _variant_of(bench),
               **recall_at(pred["moments"], pred["gt"], protocol=recipe["protocol"])}
        if unseen is not None:  # compositional: the held-out verb-object pairs, and the seen ones
            for name, mask in (("unseen", unseen), ("seen", ~unseen)):
                part = recall_at(pred["moments"][mask], pred["gt"][mask], protocol=recipe["protocol"])
                row.update({f"{name} {k}": v for k, v in part.items()})
        if controls:
            row["event hit"] = event_hit(pred["moments"], pred["gt"])
            swapped = swapped_queries(bench, "test")
            sw = predict_all(model, swapped.loader("test"), device=trainer.device)
            row.update({f"swapped {k}": v for k, v in
                        recall_at(sw["moments"], sw["gt"], protocol=recipe["protocol"]).items()})
        row.update({"best_epoch": trainer.best_epoch, "epochs": recipe["epochs"], "seconds": round(seconds, 2),
                    "parameters": sum(p.numel() for p in model.parameters()),
                    "protocol": recipe["protocol"],
                    "settings": repr({**train_changes, **settings}) if train_changes or settings else "",
                    "wsg_version": __version__, "commit": git_commit() or "unknown", **digests,
                    "machine": fingerprint_id(), "fingerprint": json.dumps(machine_fingerprint(), sort_keys=True),
                    "device": str(choose_device(device)), "torch": torch.__version__,
                    "command": command or " ".join(shlex.quote(a) for a in sys.argv)})
        rows.append(row)
    df = pd.DataFrame(rows, index=[f"seed {s}" for s in seeds])
    return pd.concat([df, summary(df)])


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Rows ``mean`` and ``std`` (sample standard deviation, ddof=1) of the metric columns of per-seed rows."""
    df = per_seed(df)
    metrics = [c for c in df.columns if c.startswith(("R@", "mIoU", "swapped", "event hit", "unseen", "seen"))
               or c in ("best_epoch", "seconds")]
    out = pd.DataFrame({"mean": df[metrics].mean(), "std": df[metrics].std(ddof=1)}).T
    for col in ("method", "dataset", "profile", "variant"):
        if col in df:
            values = df[col].unique()
            out[col] = values[0] if len(values) == 1 else "mixed"
    return out


def difference(a, b, metric: str | None = None, digests=("code",)) -> dict:
    """Mean of ``a`` minus mean of ``b`` (runs over seeds), its standard error and whether it
    is separated from the noise: the book's one definition of noise.

    ``se = sqrt(var_a / n_a + var_b / n_b)`` (sample variances: Welch's standard error);
    ``separated`` when ``|diff| > 2 se``, else the two are *within noise*. With three seeds a
    side this is a screen, not a significance test (the t distribution with ~2-4 degrees of
    freedom has wide tails): a difference it calls within noise cannot be claimed; one it
    separates is worth more seeds before a strong claim.

    Args:
        a / b: per-seed values, or per-seed rows of the results store with ``metric`` naming
            the column; rows are first checked to be comparable (:func:`wsg.store.check_comparable`
            on ``digests``: the same code, and ``"data"`` too when both arms ran on one benchmark).

    Raises:
        ValueError: fewer than two runs a side.
        StoreMismatchError: rows made by different code (or data, when asked).
    """
    if isinstance(a, pd.DataFrame) or isinstance(b, pd.DataFrame):
        if metric is None:
            raise ValueError("difference: give metric= when comparing rows of the results store")
        check_comparable(a, b, digests=digests, where=f"difference on {metric}")
        a, b = a[metric], b[metric]
    a, b = pd.Series(a, dtype=float), pd.Series(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"difference needs >= 2 runs a side, got {len(a)} and {len(b)}")
    diff = float(a.mean() - b.mean())
    se = float((a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)) ** 0.5)
    return {"diff": diff, "se": se, "separated": abs(diff) > 2 * se}


def departure_table(rows: pd.DataFrame, method: str, metric: str = "R@1,IoU=0.5") -> pd.DataFrame:
    """Each departure of ``method`` against the recipe, from ``scripts/departures.py`` rows.

    One row per arm other than ``ours`` (index: the departure): ``restores`` (the paper's
    reading the arm brings back), ``ours`` and ``arm`` (mean over seeds, with ``ours std`` and
    ``arm std``), ``ours - arm``, its ``se`` and the ``verdict`` of :func:`difference`:
    ``"within noise"`` or ``"separated"``. The arms are compared only when made by the same
    code on the same data (:func:`wsg.store.check_comparable`).
    """
    mine = rows[rows["method"] == method]
    if mine.empty:
        raise ValueError(f"departure_table: no rows for method {method!r}")
    ours = mine[mine["arm"] == "ours"]
    out = {}
    for arm, r in mine[mine["arm"] != "ours"].groupby("arm", sort=False):
        d = difference(ours, r, metric=metric, digests=("code", "data"))
        out[arm] = {"restores": r["restores"].iloc[0], "ours": ours[metric].mean(), "ours std": ours[metric].std(),
                    "arm": r[metric].mean(), "arm std": r[metric].std(), "ours - arm": d["diff"], "se": d["se"],
                    "verdict": "separated" if d["separated"] else "within noise", "seeds": len(r)}
    df = pd.DataFrame.from_dict(out, orient="index")
    df.index.name = "departure"
    return df


def plateau_budget(history: pd.DataFrame, metric: str, seed: str = "seed", epoch: str = "epoch") -> dict:
    """The epoch budget a validation plateau supports: the smallest budget within noise of the largest.

    A run with budget ``E`` keeps its best validation epoch among ``1..E`` (the trainer's model
    selection), so each seed's score at budget ``E`` is its best ``metric`` up to ``E``. The
    rule: the smallest ``E`` whose scores over seeds are within noise (:func:`difference`, not
    separated) of the scores at the largest budget run. A budget equal to the largest run means
    the curve had not flattened: the run was too short to say.

    Args:
        history: per-epoch validation rows of one setting (columns ``seed``, ``epoch``, ``metric``),
            e.g. a study's ``*_history.csv`` or a trainer's history with a seed column.

    Returns:
        ``budget``, ``largest`` (the longest run), ``best`` (seed-mean at the largest budget),
        ``at_budget`` (seed-mean at ``budget``), ``seeds``, and ``curve``: the seed-mean best-so-far
        score per budget.
    """
    table = history.pivot_table(index=epoch, columns=seed, values=metric).sort_index().cummax()
    if table.shape[1] < 2:
        raise ValueError(f"plateau_budget needs >= 2 seeds, got {table.shape[1]}")
    largest = int(table.index.max())
    final = table.loc[largest]
    budget = next(int(e) for e in table.index if not difference(table.loc[e], final)["separated"])
    return {"budget": budget, "largest": largest, "best": float(final.mean()), "at_budget":
            float(table.loc[budget].mean()), "seeds": table.shape[1], "curve": table.mean(axis=1)}


def strong_bar(key: str, bench, candidates, dataset: str = "charades", profile: str = "tiny",
               path: str | Path | None = None, metric: str = "R@1,IoU=0.5") -> tuple[pd.DataFrame, dict]:
    """The book's bar for a weak method, from the results store's multi-seed runs.

    Rows: the method, its swapped-query control and its query-blind variant (means over
    the stored seeds, with ``±`` std columns), and the blind rows of ``bench``'s test
    split (events chance; random and prior over ``candidates``, the method's own).
    With no store for ``profile`` the ``tiny`` store is read (:func:`store_for`), and the blind rows
    then come from the ``tiny`` synthetic benchmark and the candidates of the ``tiny`` recipe (MARN's
    proposal map follows the data), so both sides of the bar are tiny runs.
    The bar: the method's mean ``metric`` above the best query-blind control (events,
    its query-blind variant, the candidate-matched prior) **and** its swapped-query R@1
    at most a third of its true-query R@1.

    Returns:
        ``(table, verdict)``; ``verdict`` has ``best_blind`` (name, value), ``beats_blind``,
        ``swapped_ratio``, ``words_read`` (ratio <= 1/3), ``passes``, ``seeds`` and the
        noise (``std``) of the method's metric.
    """
    from wsg.baselines import blind_baselines

    if path is None:
        path, stored_profile = store_for(dataset, profile)
        if stored_profile != profile:  # both sides of the bar from the stored profile: data and candidates
            from wsg.data import load_synthetic
            from wsg.models import build
            from wsg.recipes import get, model_config

            bench = load_synthetic(dataset, stored_profile)
            candidates = build(key, **model_config(get(key, dataset, stored_profile), bench)).candidates()
            profile = stored_profile
    df = load_results(path, method=key)
    if df.empty:
        raise ValueError(f"no stored runs of {key!r} for {dataset}/{profile}; "
                         f"run `python -m wsg.experiments {key} --datasets {dataset} --profile {profile} --blind`")
    words, blind = df[df.variant == "words"], df[df.variant == "query-blind"]
    metrics = [c for c in df.columns if c.startswith(("R@", "mIoU"))]
    label = key.upper()
    rows = {f"{label} ({len(words)} seeds)": (words[metrics].mean(), words[metrics].std(ddof=1)),
            f"swapped query ({len(words)} seeds)": (
                words[[f"swapped {m}" for m in metrics]].set_axis(metrics, axis=1).mean(),
                words[[f"swapped {m}" for m in metrics]].set_axis(metrics, axis=1).std(ddof=1))}
    if len(blind):
        rows[f"query-blind {label} ({len(blind)} seeds)"] = (blind[metrics].mean(), blind[metrics].std(ddof=1))
    table = pd.DataFrame({k: v[0] for k, v in rows.items()}).T
    std = pd.DataFrame({k: v[1] for k, v in rows.items()}).T
    ctl = blind_baselines(bench, "test", protocol=str(words["protocol"].iloc[0]), candidates=candidates)
    for row, name in (("events", "events"), ("random", "random (own candidates)"), ("prior", "prior (own candidates)")):
        table.loc[name] = ctl.loc[row, metrics]
    table[f"± {metric}"] = std[metric]
    blind_names = ["events", "prior (own candidates)"] + [n for n in table.index if n.startswith("query-blind")]
    best = table.loc[blind_names, metric].idxmax()
    mean = table.iloc[0][metric]
    swapped = table.iloc[1][metric]
    verdict = {"best_blind": (best, float(table.loc[best, metric])), "mean": float(mean),
               "std": float(std.iloc[0][metric]), "beats_blind": bool(mean > table.loc[best, metric]),
               "swapped_ratio": float(swapped / mean) if mean > 0 else float("inf"),
               "seeds": sorted(words["seed"].tolist())}
    verdict["words_read"] = verdict["swapped_ratio"] <= 1 / 3
    verdict["passes"] = verdict["beats_blind"] and verdict["words_read"]
    table.index.name = f"test, {words['protocol'].iloc[0]}, {dataset}/{profile}"
    return table, verdict


def describe_bar(verdict: dict, label: str) -> str:
    """One line stating a :func:`strong_bar` verdict with its numbers."""
    name, value = verdict["best_blind"]
    return (f"{label}: test R@1,IoU=0.5 {verdict['mean']:.1f} ± {verdict['std']:.1f} over seeds {verdict['seeds']} "
            f"vs the best blind control ({name}) {value:.1f}: {'above' if verdict['beats_blind'] else 'NOT above'}; "
            f"swapped / true R@1 = {verdict['swapped_ratio']:.2f} ({'<=' if verdict['words_read'] else '>'} 1/3)")


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds must be comma-separated integers, got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("--seeds is empty")
    return seeds


def _fractions(text: str) -> list[float]:
    try:
        values = [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--label-fractions must be comma-separated numbers, got {text!r}") from None
    if not values or not all(0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"--label-fractions must be numbers in (0, 1], got {text!r}")
    return values


def main(argv: Iterable[str] | None = None) -> int:
    """``python -m wsg.experiments``: fill the results store (see the module docstring)."""
    from wsg.controls import query_blind
    from wsg.data import load_synthetic
    from wsg.recipes import METHODS, SYNTHETIC, WINDOW_RULES

    parser = argparse.ArgumentParser(prog="python -m wsg.experiments",
                                     description="Train methods over seeds and write results/<profile>-<dataset>.csv.")
    parser.add_argument("methods", nargs="+", choices=METHODS, help="method keys")
    parser.add_argument("--datasets", nargs="+", default=["charades"], choices=SYNTHETIC,
                        help="synthetic presets (real datasets: python -m wsg train)")
    parser.add_argument("--profile", default="tiny", choices=["tiny", "full"], help="recipe and data size")
    parser.add_argument("--seeds", type=_seeds, default=[0, 1, 2], help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--blind", action="store_true", help="also train each method's query-blind variant")
    parser.add_argument("--condition", default="uniform", choices=sorted(CONDITIONS),
                        help="the synthetic world: uniform moment positions (default), start-biased, or "
                             "compositional (20%% of verb-object pairs held out of training); non-uniform "
                             "conditions go to results/<profile>-<dataset>-<condition>.csv")
    parser.add_argument("--label-fractions", type=_fractions, default=None,
                        help="comma-separated label budgets in (0, 1], e.g. 0.01,0.05,0.25: train on that "
                             "fraction of the training moments (a fully-supervised method's label budget)")
    parser.add_argument("--worlds", type=int, default=None, metavar="K",
                        help="instead of the presets: the first K held-out worlds of the family (wsg.worlds), "
                             "rows in results/<profile>-worlds.csv (-worlds-windows.csv with --windows validation)")
    parser.add_argument("--dev-worlds", type=int, default=None, metavar="K",
                        help="the first K development worlds (rows in results/<profile>-dev-worlds.csv)")
    parser.add_argument("--windows", default=None, choices=WINDOW_RULES,
                        help="VLANet's and WSRA's windows, FSAN's span lengths: the recipe's (default) or read "
                             "off the validation moments (wsg.recipes.model_config)")
    parser.add_argument("--out", default=str(RESULTS_DIR), help="results folder (default results/)")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (default 1: small tensors, and bit-reproducible rows)")
    args = parser.parse_args(None if argv is None else list(argv))
    if args.label_fractions:
        from wsg.models import supervision_of

        weak = [k for k in args.methods if supervision_of(k) != "full"]
        if weak:  # a weak method never sees a label: a "budget" would only mean fewer training pairs
            parser.error(f"--label-fractions is a label budget for fully-supervised methods; {weak} never see labels")
    torch.set_num_threads(args.threads)
    given = list(sys.argv[1:] if argv is None else argv)
    if "--out" in given:  # where the rows were written is not how they were made
        i = given.index("--out")
        given = given[:i] + given[i + 2:]
    command = "python -m wsg.experiments " + " ".join(shlex.quote(a) for a in given)
    windows = {"windows": args.windows} if args.windows else {}
    if args.worlds or args.dev_worlds:
        from wsg.worlds import dev_worlds, held_out_worlds, run_worlds

        worlds, name = ((held_out_worlds(args.worlds), "worlds") if args.worlds
                        else (dev_worlds(args.dev_worlds), "dev-worlds"))
        if args.windows == "validation":  # another recipe: its own file, next to the recipe's rows
            name += "-windows"
        for key in args.methods:
            for world in worlds:  # one world at a time: a stopped run keeps what it made
                rows = run_worlds(key, args.seeds, [world], profile=args.profile, device=args.device, command=command,
                                  blind=args.blind, **windows)
                write_results(rows, args.out, name=name)
                print(f"world {world} {key}: R@1,IoU=0.5 {rows['R@1,IoU=0.5'].mean():.1f} "
                      f"(chance among events {rows['events R@1,IoU=0.5'].iloc[0]:.1f}), swapped/true "
                      f"{rows['swapped/true'].mean():.2f}", flush=True)
        return 0
    for dataset in args.datasets:
        bench = load_synthetic(dataset, profile=args.profile, **CONDITIONS[args.condition])
        for key in args.methods:
            variants = [bench, query_blind(bench)] if args.blind else [bench]
            if args.label_fractions:
                variants = [bench.with_labelled_fraction(f) for f in args.label_fractions]
            for b in variants:
                t0 = time.perf_counter()
                df = run(key, b, args.seeds, profile=args.profile, device=args.device, command=command, **windows)
                write_results(df, args.out)
                mean = df.loc["mean"]
                print(f"{dataset} {key} {_variant_of(b)}: R@1,IoU=0.5 {mean['R@1,IoU=0.5']:.1f} "
                      f"± {df.loc['std', 'R@1,IoU=0.5']:.1f} over seeds {args.seeds} ({time.perf_counter() - t0:.0f} s)",
                      flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
