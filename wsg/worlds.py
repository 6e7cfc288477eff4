"""A family of synthetic worlds, a held-out protocol, and a harness that runs methods across worlds.

The two synthetic presets (:mod:`wsg.data.synthetic`) are two points of a larger family.
:func:`world_config` draws a whole :class:`~wsg.data.synthetic.SyntheticConfig` from a
*world seed* alone (its own ``numpy`` Generator; the global random state is never read
or changed): the words and templates, how long videos are and how many clips they have,
how many events a video holds and how they are laid out, the moment-length distribution,
the position bias, the feature width, the noise, the scene and the boundary softness.
:func:`load_world` generates it once (cached on disk like the presets) and reads it back
through the same real loaders as :func:`wsg.data.load_synthetic`.

What stays fixed in every world (the generator's design, so the controls keep their meaning):
each video holds events of the same visual statistics, each described by one query;
every event has a distractor sharing its verb or its object; queries are written in
random order. So chance among events is still the yardstick in every world.

Ranges drawn by :func:`world_config` (``U`` uniform, ``logU`` log-uniform; *clips* are
raw feature vectors, before a benchmark resamples a video to ``num_clips``):

==========================  =============================================  =========================
quantity                    drawn from                                     charades / activitynet
==========================  =============================================  =========================
verbs in use                6-20 of the 28 of ``VERB_POOL``                8 / 10 (first of pool)
objects in use              6-24 of the 32 of ``OBJECT_POOL``              8 / 10 (first of pool)
query templates             4-20 of the 20 of ``TEMPLATE_POOL``            the first 6
adjective rate              0 (p 0.4) or U[0.1, 0.6]                       0
feature rate (clips / s)    one of 0.5, 1, 2                               1 / 0.5
mean clips per video        logU[16, 128]                                  30 / 75
duration max / min          U[1.2, 4]                                      2 / 4
events per video            2..m, m in {4 (p .5), 5, 6};                   2-4: (.3,.4,.3) /
                            probabilities Dirichlet(1, ..., 1)             (.45,.35,.2)
coverage of the video       lo U[0.4, 0.85],                               (.7,.93) / (.75,.95)
                            hi = min(0.97, lo + U[0.05, 0.3])
gap concentration           logU[0.3, 5]                                   2
moment-length shape         dirichlet (p .5, concentration logU[0.7, 30]:  dirichlet, 4
                            high = narrow, low = wide), lognormal (p .25,
                            sigma U[0.4, 1.2]: skewed), bimodal (p .25,
                            long/short U[2.5, 6], Gamma shape U[4, 12])
position bias               uniform .4, start .25, end .1, mixed .25       uniform
                            (start_prob U[0.2, 0.8])
feature width D             one of 64, 96, 128, 192, 256                   128
latent width                one of 16, 24, 32, 48                          32
noise                       U[0.3, 1.0]                                    0.6
scene                       U[0.2, 1.0]                                    0.5
scene drift                 0 (p 0.5) or U[0.2, 1.0]                       0
boundary (clips)            U[0.25, 3] (stored in seconds: / rate)         0.6 / 1.0
==========================  =============================================  =========================

``num_videos`` follows the profile, as for the presets; ``compositional`` stays 0 (a
condition of an experiment, not a statistic of a world). :func:`check_member` tests a
config against this table (a test runs it over 200 worlds).

**The presets are members.** Their configs lie inside every range above (a test checks
it), and two reserved world seeds name them: ``world_config(PRESET_SEEDS["charades"])``
*is* ``preset_config("charades", profile)`` (and ``-2`` the ActivityNet-like one), so
:func:`load_world` of a reserved seed is :func:`wsg.data.load_synthetic` of the preset,
bit for bit. Drawn seeds are never negative, so the reserved seeds never collide.

**Held-out protocol.** :data:`DEV_SEEDS` (0-999) are for development: choosing methods,
recipes and inference rules. :data:`HELD_OUT_SEEDS` (1,000,000 onwards) are read once, for
the final numbers (:func:`held_out_worlds`). The development helpers (:func:`dev_worlds`,
:func:`load_dev_world`) refuse a held-out seed with :class:`HeldOutWorldError`, and inside
``with development():`` (or with ``WSG_WORLDS=dev`` in the environment) every loader and
:func:`run_worlds` refuse one too.

**Harness.** :func:`run_worlds` trains each method on each world through
:func:`wsg.experiments.run` with the recipe of the preset the world resembles
(:func:`recipe_dataset`: ``"charades"`` when the mean raw clip count is at most 48, the
geometric middle of the presets' 30 and 75, else ``"activitynet"``), and adds chance
among events, the ratio to it, the swapped/true ratio and the event hit per row.
"""
from __future__ import annotations

import contextlib
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from wsg.data.synthetic import (ADJECTIVES, OBJECT_POOL, TEMPLATE_POOL, VERB_POOL, SyntheticConfig, check_config,
                                preset_config)

__all__ = ["world_config", "load_world", "load_dev_world", "recipe_dataset", "check_member", "dev_worlds",
           "held_out_worlds", "check_dev_seed", "development", "run_worlds", "worlds_table", "candidate_controls",
           "add_candidate_controls", "held_out_summary", "HeldOutWorldError",
           "DEV_SEEDS", "HELD_OUT_SEEDS", "K_MAX", "PRESET_SEEDS", "WORLDS_VERSION", "CLIP_THRESHOLD"]

#: bumped whenever the same world seed would draw a different config
WORLDS_VERSION = 1
#: development worlds: every choice (method, recipe, inference rule) is made on these
DEV_SEEDS = range(0, 1000)
#: how many held-out worlds exist
K_MAX = 1000
#: held-out worlds: read once, for the final numbers; disjoint from DEV_SEEDS
HELD_OUT_SEEDS = range(1_000_000, 1_000_000 + K_MAX)
#: reserved world seeds that name the presets (drawn seeds are >= 0)
PRESET_SEEDS = {"charades": -1, "activitynet": -2}
#: mean raw clips per video at or below which a world uses the Charades-like recipe
CLIP_THRESHOLD = 48.0

_TAG = 0x776F726C64  # "world": separates the config stream from any other use of the seed

# the ranges of the table above, checked by check_member
_RANGES = {
    "num_verbs": (6, 20), "num_objects": (6, 24), "num_templates": (4, len(TEMPLATE_POOL)),
    "adjective_rate": (0.0, 0.6), "feature_rate": (0.5, 1.0, 2.0), "mean_clips": (16.0, 128.0),
    "duration_ratio": (1.2, 4.0), "max_events": (4, 6), "coverage_lo": (0.4, 0.85),
    "coverage_width": (0.05, 0.3), "coverage_hi": 0.97, "gap_concentration": (0.3, 5.0),
    "dirichlet_concentration": (0.7, 30.0), "lognormal_sigma": (0.4, 1.2), "bimodal_ratio": (2.5, 6.0),
    "bimodal_concentration": (4.0, 12.0), "start_prob": (0.2, 0.8), "feature_dim": (64, 96, 128, 192, 256),
    "latent_dim": (16, 24, 32, 48), "noise": (0.3, 1.0), "scene": (0.2, 1.0), "scene_drift": (0.2, 1.0),
    "boundary_clips": (0.25, 3.0),
}


class HeldOutWorldError(ValueError):
    """A development helper was asked for a held-out world (:data:`HELD_OUT_SEEDS`)."""


# ----------------------------------------------------------------------------- the held-out protocol
_DEV_MODE = [False]


@contextlib.contextmanager
def development():
    """Inside this block every loader of this module refuses held-out worlds::

        with wsg.worlds.development():
            bench = wsg.worlds.load_world(3)              # fine
            wsg.worlds.load_world(1_000_000)              # HeldOutWorldError
    """
    before = _DEV_MODE[0]
    _DEV_MODE[0] = True
    try:
        yield
    finally:
        _DEV_MODE[0] = before


def _in_development() -> bool:
    return _DEV_MODE[0] or os.environ.get("WSG_WORLDS", "").strip().lower() == "dev"


def check_dev_seed(seed: int) -> int:
    """``seed`` if it is a development world (or a preset's reserved seed).

    Raises:
        HeldOutWorldError: a held-out seed.
        ValueError: any other seed outside :data:`DEV_SEEDS`.
    """
    seed = int(seed)
    if seed in HELD_OUT_SEEDS:
        raise HeldOutWorldError(f"world {seed} is held out (HELD_OUT_SEEDS = {HELD_OUT_SEEDS}): development "
                                f"uses DEV_SEEDS = {DEV_SEEDS}; held-out worlds are read once, for the final "
                                "numbers (held_out_worlds / run_worlds outside development())")
    if seed not in DEV_SEEDS and seed not in PRESET_SEEDS.values():
        raise ValueError(f"world {seed} is not a development world (DEV_SEEDS = {DEV_SEEDS})")
    return seed


def _guard(seed: int) -> None:
    if _in_development() and int(seed) in HELD_OUT_SEEDS:
        check_dev_seed(seed)


def dev_worlds(k: int, start: int = 0, sample_seed: int | None = None) -> tuple[int, ...]:
    """``k`` development world seeds: ``start, start + 1, ...``, or (``sample_seed`` given) ``k``
    drawn without replacement from :data:`DEV_SEEDS` by a Generator of that seed.

    Raises:
        HeldOutWorldError: the seeds would reach into :data:`HELD_OUT_SEEDS`.
        ValueError: more worlds than :data:`DEV_SEEDS` holds, or ``k < 0``.
    """
    if k < 0 or k > len(DEV_SEEDS):
        raise ValueError(f"dev_worlds: k={k} outside 0..{len(DEV_SEEDS)}")
    if sample_seed is not None:
        seeds = np.random.default_rng(sample_seed).choice(len(DEV_SEEDS), k, replace=False)
        return tuple(int(DEV_SEEDS[i]) for i in seeds)
    return tuple(check_dev_seed(s) for s in range(start, start + k))


def held_out_worlds(k: int) -> tuple[int, ...]:
    """The first ``k`` held-out world seeds (for the final numbers only).

    Raises:
        HeldOutWorldError: inside :func:`development`.
        ValueError: ``k`` outside ``0..K_MAX``.
    """
    if not 0 <= k <= K_MAX:
        raise ValueError(f"held_out_worlds: k={k} outside 0..{K_MAX}")
    seeds = tuple(HELD_OUT_SEEDS[:k])
    if k and _in_development():
        _guard(seeds[0])
    return seeds


# ----------------------------------------------------------------------------- the family
def _profile_sizes(profile) -> tuple[int, int, int]:
    from wsg.profiles import get_profile

    prof = get_profile(profile)
    return prof.num_train_videos, prof.num_val_videos, prof.num_test_videos


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def world_config(seed: int, profile="tiny", **overrides) -> SyntheticConfig:
    """The synthetic config of world ``seed``, drawn from the seed alone (see the module's table).

    Args:
        seed: a world seed (>= 0), or a reserved preset seed (:data:`PRESET_SEEDS`): then the
            preset's own config, :func:`wsg.data.synthetic.preset_config`.
        profile: sizes the splits (``num_videos``), as for the presets.
        **overrides: fields of :class:`~wsg.data.synthetic.SyntheticConfig` to change after the draw
            (e.g. ``num_videos=(40, 10, 10)`` for a quick test).

    Raises:
        ValueError: a negative seed that is not reserved.
    """
    seed = int(seed)
    for name, reserved in PRESET_SEEDS.items():
        if seed == reserved:
            return preset_config(name, profile, **overrides)
    if seed < 0:
        raise ValueError(f"world seeds are >= 0 (negative ones are reserved for the presets: {PRESET_SEEDS})")
    _guard(seed)
    rng = np.random.default_rng(np.random.SeedSequence([seed, _TAG, WORLDS_VERSION]))
    r = lambda x, n=4: round(float(x), n)  # noqa: E731  readable configs; deterministic

    # words
    num_verbs = int(rng.integers(6, 21))
    verb_ids = tuple(sorted(int(i) for i in rng.choice(len(VERB_POOL), num_verbs, replace=False)))
    num_objects = int(rng.integers(6, 25))
    object_ids = tuple(sorted(int(i) for i in rng.choice(len(OBJECT_POOL), num_objects, replace=False)))
    num_templates = int(rng.integers(4, len(TEMPLATE_POOL) + 1))
    template_ids = tuple(sorted(int(i) for i in rng.choice(len(TEMPLATE_POOL), num_templates, replace=False)))
    adjective_rate = 0.0 if rng.random() < 0.4 else r(rng.uniform(0.1, 0.6))
    # videos: rate, clip count, duration spread
    feature_rate = float(rng.choice([0.5, 1.0, 2.0]))
    mean_clips = _log_uniform(rng, 16.0, 128.0)
    ratio = rng.uniform(1.2, 4.0)
    d_min = 2 * mean_clips / feature_rate / (1 + ratio)
    duration = (round(d_min, 1), round(d_min * ratio, 1))
    # events and their layout
    max_events = int(rng.choice([4, 5, 6], p=[0.5, 0.25, 0.25]))
    events_per_video = tuple(float(p) for p in rng.dirichlet(np.ones(max_events - 1)))
    lo = rng.uniform(0.4, 0.85)
    coverage = (r(lo), r(min(0.97, lo + rng.uniform(0.05, 0.3))))
    gap_concentration = r(_log_uniform(rng, 0.3, 5.0))
    shape = str(rng.choice(["dirichlet", "lognormal", "bimodal"], p=[0.5, 0.25, 0.25]))
    lengths = {"length_shape": shape}
    if shape == "dirichlet":
        lengths["length_concentration"] = r(_log_uniform(rng, 0.7, 30.0))
    elif shape == "lognormal":
        lengths["length_spread"] = r(rng.uniform(0.4, 1.2))
    else:
        lengths["length_ratio"] = r(rng.uniform(2.5, 6.0))
        lengths["length_concentration"] = r(rng.uniform(4.0, 12.0))
    bias = str(rng.choice(["uniform", "start", "end", "mixed"], p=[0.4, 0.25, 0.1, 0.25]))
    start_prob = r(rng.uniform(0.2, 0.8)) if bias == "mixed" else 0.5
    # features
    feature_dim = int(rng.choice([64, 96, 128, 192, 256]))
    latent_dim = int(rng.choice([16, 24, 32, 48]))
    noise = r(rng.uniform(0.3, 1.0))
    scene = r(rng.uniform(0.2, 1.0))
    scene_drift = 0.0 if rng.random() < 0.5 else r(rng.uniform(0.2, 1.0))
    boundary = r(rng.uniform(0.25, 3.0) / feature_rate)
    generator_seed = int(np.random.SeedSequence([seed, _TAG, WORLDS_VERSION, 1]).generate_state(1)[0])

    config = SyntheticConfig(
        preset=f"world{seed}", num_videos=_profile_sizes(profile), duration=duration, feature_rate=feature_rate,
        feature_dim=feature_dim, num_verbs=num_verbs, num_objects=num_objects, events_per_video=events_per_video,
        coverage=coverage, position_bias=bias, compositional=0.0, noise=noise, scene=scene, boundary=boundary,
        latent_dim=latent_dim, seed=generator_seed, verb_ids=verb_ids, object_ids=object_ids,
        template_ids=template_ids, adjective_rate=adjective_rate, gap_concentration=gap_concentration,
        start_prob=start_prob, scene_drift=scene_drift, **lengths)
    config = replace(config, **overrides)
    check_config(config)
    return config


def mean_clips(config: SyntheticConfig) -> float:
    """Mean raw clips per video of a config: mean duration x feature rate."""
    return (config.duration[0] + config.duration[1]) / 2 * config.feature_rate


def recipe_dataset(config: SyntheticConfig) -> str:
    """The preset whose recipe a world uses: ``"charades"`` (32 resampled clips) when the mean raw
    clip count is at most :data:`CLIP_THRESHOLD` (48, between the presets' 30 and 75), else
    ``"activitynet"`` (64 clips)."""
    return "charades" if mean_clips(config) <= CLIP_THRESHOLD else "activitynet"


def check_member(config: SyntheticConfig, tol: float = 1e-6) -> list[str]:
    """What puts ``config`` outside the family's ranges (the module's table); ``[]`` for a member.

    Read from the config the way the generator reads it: a preset that names no pool ids uses
    the first words of each pool and the six original templates.
    """
    c, R, bad = config, _RANGES, []

    def within(name, value, lo, hi, slack=tol):
        if not lo - slack <= value <= hi + slack:
            bad.append(f"{name}={value} outside [{lo}, {hi}]")

    def one_of(name, value, allowed):
        if value not in allowed:
            bad.append(f"{name}={value} not in {allowed}")

    within("num_verbs", c.num_verbs, *R["num_verbs"])
    within("num_objects", c.num_objects, *R["num_objects"])
    within("templates", len(c.template_ids) if c.template_ids else 6, *R["num_templates"])
    if c.adjective_rate:
        within("adjective_rate", c.adjective_rate, 0.1, R["adjective_rate"][1])
    one_of("feature_rate", c.feature_rate, R["feature_rate"])
    # durations are rounded to 0.1 s: half a rounding step of slack on the derived quantities
    within("mean clips", mean_clips(c), *R["mean_clips"], slack=0.05 * c.feature_rate + tol)
    ratio = c.duration[1] / c.duration[0]
    within("duration max/min", ratio, *R["duration_ratio"], slack=ratio * 0.05 * (1 / c.duration[0] + 1 / c.duration[1]))
    within("max events", len(c.events_per_video) + 1, *R["max_events"])
    within("events_per_video sum", sum(c.events_per_video), 1.0, 1.0, slack=1e-5)
    within("coverage lo", c.coverage[0], *R["coverage_lo"], slack=1e-4)
    within("coverage hi", c.coverage[1], c.coverage[0], R["coverage_hi"], slack=1e-4)
    if c.coverage[1] < R["coverage_hi"] - 1e-4:
        within("coverage width", c.coverage[1] - c.coverage[0], *R["coverage_width"], slack=2e-4)
    within("gap_concentration", c.gap_concentration, *R["gap_concentration"], slack=1e-4)
    if c.length_shape == "dirichlet":
        within("length_concentration", c.length_concentration, *R["dirichlet_concentration"], slack=1e-4)
    elif c.length_shape == "lognormal":
        within("length_spread", c.length_spread, *R["lognormal_sigma"], slack=1e-4)
    elif c.length_shape == "bimodal":
        within("length_ratio", c.length_ratio, *R["bimodal_ratio"], slack=1e-4)
        within("length_concentration", c.length_concentration, *R["bimodal_concentration"], slack=1e-4)
    else:
        bad.append(f"length_shape={c.length_shape!r}")
    one_of("position_bias", c.position_bias, ("uniform", "start", "end", "mixed"))
    if c.position_bias == "mixed":
        within("start_prob", c.start_prob, *R["start_prob"], slack=1e-4)
    one_of("feature_dim", c.feature_dim, R["feature_dim"])
    one_of("latent_dim", c.latent_dim, R["latent_dim"])
    within("noise", c.noise, *R["noise"], slack=1e-4)
    within("scene", c.scene, *R["scene"], slack=1e-4)
    if c.scene_drift:
        within("scene_drift", c.scene_drift, *R["scene_drift"], slack=1e-4)
    within("boundary (clips)", c.boundary * c.feature_rate, *R["boundary_clips"], slack=1e-3)
    if c.compositional:
        bad.append(f"compositional={c.compositional} (worlds are drawn without a compositional split)")
    return bad


# ----------------------------------------------------------------------------- loading
def load_world(seed: int, profile="tiny", num_clips: int | None = None, cache_dir: str | Path | None = None,
               **overrides):
    """Generate (once, cached) and load world ``seed`` through the real loaders, like a preset.

    Args:
        seed: a world seed; a reserved preset seed (:data:`PRESET_SEEDS`) loads the preset
            itself (:func:`wsg.data.load_synthetic`).
        profile: sizes the splits.
        num_clips: clips per video (default: 32 for a Charades-like world, 64 for an
            ActivityNet-like one, :func:`recipe_dataset`).
        cache_dir: where to cache (default ``$WSG_DATA`` or ``~/.cache/wsg``).
        **overrides: fields of the config to change (:func:`world_config`).

    Returns:
        a :class:`wsg.data.Benchmark` named ``world<seed>``, with ``config``, ``world_seed``
        and ``recipe_dataset`` attributes.

    Raises:
        HeldOutWorldError: a held-out seed inside :func:`development`.
    """
    from wsg.data.annotations import read_annotations
    from wsg.data.benchmark import Benchmark, load_synthetic
    from wsg.data.features import open_features
    from wsg.data.synthetic import generate

    seed = int(seed)
    _guard(seed)
    for name, reserved in PRESET_SEEDS.items():
        if seed == reserved:
            bench = load_synthetic(name, profile, num_clips=num_clips, cache_dir=cache_dir, **overrides)
            bench.world_seed, bench.recipe_dataset = seed, name
            return bench
    config = world_config(seed, profile, **overrides)
    root = generate(config, cache_dir)
    tables = {s: read_annotations("activitynet", root, s) for s in ("train", "val", "test")}
    dataset = recipe_dataset(config)
    num_clips = num_clips or (32 if dataset == "charades" else 64)
    bench = Benchmark(config.preset, tables, open_features(root / "features.hdf5"), num_clips=num_clips, root=root)
    bench.config, bench.world_seed, bench.recipe_dataset = config, seed, dataset
    return bench


def load_dev_world(seed: int, profile="tiny", **kwargs):
    """:func:`load_world` for development: refuses a held-out seed (:class:`HeldOutWorldError`)."""
    return load_world(check_dev_seed(seed), profile, **kwargs)


# ----------------------------------------------------------------------------- the harness
_IOUS = (0.3, 0.5, 0.7)


def run_worlds(methods: Sequence[str] | str, seeds: Iterable[int] = (0, 1, 2),
               worlds: Iterable[int] = held_out_worlds(5), profile="tiny", cache_dir: str | Path | None = None,
               world_overrides: dict | None = None, blind: bool = False, **kwargs) -> pd.DataFrame:
    """Train and evaluate each method on each world, with the controls of the evidence standard.

    Per world: :func:`load_world`, the recipe dataset (:func:`recipe_dataset`), and chance
    among events on its test split (:func:`wsg.baselines.blind_baselines`, row ``events``,
    under the recipe's protocol). Per method: :func:`wsg.experiments.run` with
    ``dataset=<recipe dataset>`` (its swapped-query control and event hit included), the
    blind rankings over the method's own candidates (``random`` and the training-moment
    ``prior``, from an untrained model of the recipe's config: candidates do not depend on
    weights) and, with ``blind``, the method's query-blind variant trained on
    :func:`wsg.controls.query_blind` of the world (rows with ``variant == "query-blind"``).

    Args:
        methods: method keys (or one key).
        seeds: training seeds per (world, method).
        worlds: world seeds (default the first 5 held-out worlds: the final numbers).
        profile: sizes the data and picks the recipe.
        world_overrides: config fields changed in every world (e.g. smaller ``num_videos``).
        blind: also train each method's query-blind variant (same seeds).
        **kwargs: passed to :func:`wsg.experiments.run` (``epochs``, ``lr``, ``device``, ...).

    Returns:
        one row per (world, method, training seed): every column of :func:`wsg.experiments.run`
        (its ``dataset`` replaced by the world's name, ``world<seed>``) plus ``world``,
        ``recipe_dataset``, ``num_clips``, ``events R@1,IoU=m`` (chance among events),
        ``R@1,IoU=m / events`` (the ratio to it), ``random R@1,IoU=m`` and ``prior R@1,IoU=m``
        (over the method's own candidates) for m in 0.3/0.5/0.7, ``swapped/true``
        (swapped-query R@1 over true R@1 at IoU 0.5; NaN when the true R@1 is 0) and
        ``event hit``.

    Raises:
        HeldOutWorldError: a held-out world inside :func:`development`.
    """
    import inspect

    from wsg.baselines import blind_baselines
    from wsg.controls import query_blind
    from wsg.experiments import per_seed, run
    from wsg.recipes import TRAIN_FIELDS, get

    methods = [methods] if isinstance(methods, str) else list(methods)
    worlds = [int(w) for w in worlds]
    for w in worlds:
        _guard(w)
    seeds = [int(s) for s in seeds]
    out = []
    for w in worlds:
        bench = load_world(w, profile, cache_dir=cache_dir, **(world_overrides or {}))
        dataset = bench.recipe_dataset
        chance = {}
        for key in methods:
            recipe = get(key, dataset, profile)
            recipe.update({k: kwargs[k] for k in TRAIN_FIELDS if k in kwargs})  # as run() will
            protocol = recipe["protocol"]
            if protocol not in chance:
                chance[protocol] = blind_baselines(bench, "test", protocol=protocol).loc["events"]
            model_changes = {k: v for k, v in kwargs.items()  # what run() passes on to the model config
                             if k not in TRAIN_FIELDS and k not in inspect.signature(run).parameters}
            matched = candidate_controls(key, bench, recipe, **model_changes)
            variants = [bench, query_blind(bench)] if blind else [bench]
            rows = pd.concat([per_seed(run(key, b, seeds=seeds, profile=profile, dataset=dataset, **kwargs))
                              for b in variants])
            rows["dataset"] = bench.name
            rows.insert(0, "world", w)
            rows["seed"] = rows["seed"].astype(int)
            rows["recipe_dataset"] = dataset
            rows["num_clips"] = bench.num_clips
            for m in _IOUS:
                col = f"R@1,IoU={m}"
                rows[f"events {col}"] = float(chance[protocol][col])
                rows[f"{col} / events"] = rows[col] / float(chance[protocol][col]) if chance[protocol][col] > 0 \
                    else float("nan")
                for control in ("random", "prior"):
                    rows[f"{control} {col}"] = float(matched.loc[control, col])
            true, swapped = rows["R@1,IoU=0.5"], rows.get("swapped R@1,IoU=0.5")
            rows["swapped/true"] = (swapped / true.where(true > 0)) if swapped is not None else float("nan")
            if "event hit" not in rows:
                rows["event hit"] = float("nan")
            out.append(rows)
    if not out:
        return pd.DataFrame()
    df = pd.concat(out)
    df.index.name = "run"
    return df.reset_index()


def worlds_table(rows: pd.DataFrame, metric: str = "R@1,IoU=0.5") -> pd.DataFrame:
    """Each (world, method) of :func:`run_worlds` rows against its best blind control.

    Columns: ``mean`` and ``std`` of ``metric`` over the seeds; the blind controls ``events``,
    ``random`` and ``prior`` (over the method's own candidates) and, when the rows hold it, the
    ``query-blind`` variant's mean; ``best blind`` (the largest of them); ``ratio`` (``mean`` over
    chance among events) and ``vs best blind`` (``mean`` over ``best blind``); ``swapped/true``
    (mean over seeds); ``grounds``: the evidence standard's test: above the best blind control
    *and* a swapped/true of at most 1/3.
    """
    real = rows[rows["variant"] != "query-blind"]
    blind = rows[rows["variant"] == "query-blind"].groupby(["world", "method"])[metric].mean()
    g = real.groupby(["world", "method"])
    out = pd.DataFrame({"mean": g[metric].mean(), "std": g[metric].std(ddof=1), "seeds": g[metric].size(),
                        "events": g[f"events {metric}"].first(), "random": g[f"random {metric}"].first()
                        if f"random {metric}" in real else float("nan"),
                        "prior": g[f"prior {metric}"].first() if f"prior {metric}" in real else float("nan"),
                        "swapped/true": g["swapped/true"].mean()})
    out["query-blind"] = blind.reindex(out.index)
    out["best blind"] = out[["events", "random", "prior", "query-blind"]].max(axis=1)
    out["ratio"] = out["mean"] / out["events"]
    out["vs best blind"] = out["mean"] / out["best blind"]
    out["grounds"] = (out["mean"] > out["best blind"]) & (out["swapped/true"] <= 1 / 3)
    return out


def candidate_controls(key: str, bench, recipe: dict, **changes) -> pd.DataFrame:
    """The blind rows (:func:`wsg.baselines.blind_baselines`: ``random``, ``prior``, ``events``) over the
    candidates of ``key``'s model built from ``recipe`` (and model-config ``changes``), on the test
    split under the recipe's protocol. The model stays untrained: candidates do not depend on weights."""
    from wsg.baselines import blind_baselines
    from wsg.models import build
    from wsg.recipes import model_config

    candidates = build(key, **model_config(recipe, bench, **changes)).candidates().detach().cpu()
    return blind_baselines(bench, "test", protocol=recipe["protocol"], candidates=candidates)


def add_candidate_controls(rows: pd.DataFrame, profile="tiny", metrics: Sequence[str] = ("R@1,IoU=0.5",)
                           ) -> pd.DataFrame:
    """Rows of :func:`run_worlds` with the blind rankings over each method's own candidates filled in.

    Rows made before :func:`run_worlds` recorded them lack ``random <metric>`` and ``prior <metric>``;
    they are computed here as :func:`run_worlds` computes them (the world's test split, the recipe's
    protocol, and the candidates of the recipe with a row's recorded ``settings``; no training:
    candidates do not depend on weights). Rows that carry them are left as they are. Returns a copy.
    """
    import ast

    from wsg.recipes import TRAIN_FIELDS, get

    out = rows.copy()
    for col in (f"{c} {m}" for c in ("random", "prior") for m in metrics):
        if col not in out:
            out[col] = float("nan")
    settings = (out["settings"].astype("string").fillna("") if "settings" in out  # all-empty reads as NaN
                else pd.Series("", index=out.index))
    for (world, key, setting), part in out.groupby([out["world"], out["method"], settings]):
        if out.loc[part.index, [f"prior {m}" for m in metrics]].notna().all().all():
            continue
        bench = load_world(int(world), profile)
        recipe = get(key, bench.recipe_dataset, profile)
        changes = ast.literal_eval(setting) if setting else {}
        recipe.update({k: v for k, v in changes.items() if k in TRAIN_FIELDS})
        blind = candidate_controls(key, bench, recipe, **{k: v for k, v in changes.items() if k not in TRAIN_FIELDS})
        for control in ("random", "prior"):
            for m in metrics:
                out.loc[part.index, f"{control} {m}"] = float(blind.loc[control, m])
    return out


def held_out_summary(rows: pd.DataFrame, key: str, metric: str = "R@1,IoU=0.5") -> dict:
    """One method's held-out record in a few numbers, for a chapter's "beyond the presets".

    From :func:`run_worlds` rows (blind rankings over the method's own candidates filled in by
    :func:`add_candidate_controls`): ``worlds``; how many it is ``above events`` (chance among
    events), ``above best blind`` and ``grounds`` on (:func:`worlds_table`); the ``ratio`` to
    chance among events (``ratio low``, ``ratio high``) and ``swapped/true`` (``swapped high``)
    over the worlds; ``blind run`` (whether the query-blind variant is among the rows).
    """
    mine = rows[rows["method"] == key]
    if mine.empty:
        raise ValueError(f"held_out_summary: no rows for {key!r}")
    t = worlds_table(add_candidate_controls(mine, metrics=(metric,)), metric)
    return {"worlds": len(t), "above events": int((t["mean"] > t["events"]).sum()),
            "above best blind": int((t["mean"] > t["best blind"]).sum()), "grounds": int(t["grounds"].sum()),
            "ratio low": float(t["ratio"].min()), "ratio high": float(t["ratio"].max()),
            "swapped high": float(t["swapped/true"].max()), "blind run": bool(t["query-blind"].notna().all())}
