"""The synthetic benchmark: a small generative world of actions, written in the real on-disk formats.

Real features cannot be downloaded in a sandbox or in CI, so every chapter runs by
default on data generated here. The world is built so that grounding needs the words:

* **Concepts.** An event is a (verb, object) pair. Each verb and object has a latent
  prototype; an event's latent code is the object prototype plus the verb prototype,
  whose strength ramps up over the event (so the inside of an event has temporal
  structure), plus a small pair-specific interaction term.
* **Clips.** ``feature_t = relu(M (w_t z_t + scene + noise_t) + b)``: a fixed random
  non-linear map of the event code, a per-video scene vector and temporally correlated
  noise. ``w_t`` rises and falls with a sigmoid ramp at the event boundaries (soft
  boundaries).
* **Every video holds 2-4 events of the same visual statistics, each described by one
  query.** The events share a verb or an object with each other (a 2 x 2 grid of two
  verbs and two objects, cut to the event count), so the query's words must be
  encoded: neither the verb nor the object alone singles out the event. Because each
  event is the target of exactly one of the video's queries, any query-blind scorer
  ranks the events identically for all of them and picks the right event for exactly
  one query per video: chance, by construction (a test checks this).
* **Queries** come from several templates with function words, active and passive.
  A video's queries are written in random order, never in time order, so a query's
  row in the table says nothing about where its moment is.
* **Presets** shaped like Charades-STA (~30 s videos, moments ~27 % of the video) and
  ActivityNet Captions (long videos, moments ~31 %).
* **Position bias** is a knob: ``"uniform"`` spreads events evenly; ``"start"`` puts
  the first event at the very start and makes it longer, like the start-biased real
  distributions, so the book can show a blind prior exploiting it.
* **Compositional split** (optional): some verb-object pairs never occur in training.

The output is an ActivityNet-Captions-style json per split (``train.json``, ``val.json``,
``test.json``: ``{video_id: {duration, timestamps, sentences}}``), one HDF5 file of
clip features keyed by video id, and ``events.json`` (every event with its verb, object
and split, for plots and tests). The data are read back through the real loaders
(:func:`wsg.data.read_annotations` with ``"activitynet"`` and :class:`wsg.data.HDF5Features`).
Generation is deterministic from the seed and cached on disk (see :func:`synthetic_root`).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

VERBS = [  # base, third person, -ing, past participle
    ("open", "opens", "opening", "opened"), ("close", "closes", "closing", "closed"),
    ("hold", "holds", "holding", "held"), ("wash", "washes", "washing", "washed"),
    ("throw", "throws", "throwing", "thrown"), ("fix", "fixes", "fixing", "fixed"),
    ("carry", "carries", "carrying", "carried"), ("push", "pushes", "pushing", "pushed"),
    ("pull", "pulls", "pulling", "pulled"), ("lift", "lifts", "lifting", "lifted"),
    ("clean", "cleans", "cleaning", "cleaned"), ("kick", "kicks", "kicking", "kicked"),
]
OBJECTS = ["door", "box", "cup", "book", "towel", "laptop", "bag", "chair", "phone", "shoe", "pillow", "bottle"]

# {v3}: third person, {ving}: -ing form, {vpp}: past participle, {o}: object.
TEMPLATES = [
    "a person {v3} the {o}.",
    "the person is {ving} a {o}.",
    "someone {v3} a {o} in the room.",
    "then the person {v3} the {o}.",
    "the {o} is {vpp} by a person.",
    "person {ving} the {o} for a while.",
]


@dataclass(frozen=True)
class SyntheticConfig:
    """Everything that determines a synthetic benchmark (its hash names the cache folder).

    Attributes:
        preset: ``"charades"`` or ``"activitynet"`` (a label; the numbers below shape it).
        num_videos: videos per split (train, val, test).
        duration: (min, max) video duration in seconds, drawn uniformly.
        feature_rate: feature vectors per second (Charades I3D-like: 1/s; ActivityNet C3D-like: 0.5/s).
        feature_dim: width D of the clip features.
        num_verbs / num_objects: size of the concept vocabulary actually used.
        events_per_video: probabilities of 2, 3 and 4 events in a video.
        coverage: (min, max) fraction of the video covered by events.
        position_bias: ``"uniform"`` or ``"start"``.
        compositional: hold this fraction of verb-object pairs out of training (0 = off).
        noise: standard deviation of the clip noise, relative to a prototype's norm.
        scene: standard deviation of the per-video scene vector.
        boundary: width in seconds of the soft ramp at event boundaries.
        latent_dim: width of the latent concept space.
        seed: the world (prototypes, mixing map) and every split derive from it.
    """

    preset: str = "charades"
    num_videos: tuple[int, int, int] = (400, 80, 150)
    duration: tuple[float, float] = (20.0, 40.0)
    feature_rate: float = 1.0
    feature_dim: int = 128
    num_verbs: int = 8
    num_objects: int = 8
    events_per_video: tuple[float, float, float] = (0.3, 0.4, 0.3)
    coverage: tuple[float, float] = (0.7, 0.93)
    position_bias: str = "uniform"
    compositional: float = 0.0
    noise: float = 0.6
    scene: float = 0.5
    boundary: float = 0.6
    latent_dim: int = 32
    seed: int = 0

    def digest(self) -> str:
        """Names the cache folder: the config and the generator's version (a new version regenerates)."""
        key = {**asdict(self), "generator": GENERATOR_VERSION}
        return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]


# Bumped whenever the same config would write different files. 2: queries in random order.
GENERATOR_VERSION = 2


PRESETS: dict[str, SyntheticConfig] = {
    "charades": SyntheticConfig(),
    "activitynet": SyntheticConfig(
        preset="activitynet", duration=(60.0, 240.0), feature_rate=0.5, num_verbs=10, num_objects=10,
        events_per_video=(0.45, 0.35, 0.2), coverage=(0.75, 0.95), boundary=2.0),
}

SPLITS = ("train", "val", "test")


def preset_config(preset: str = "charades", profile=None, **overrides) -> SyntheticConfig:
    """The config of a preset, sized by a profile (:func:`wsg.get_profile`), with overrides.

    Raises:
        ValueError: for an unknown preset.
    """
    from wsg.profiles import get_profile

    if preset not in PRESETS:
        raise ValueError(f"unknown synthetic preset {preset!r}; expected one of {sorted(PRESETS)}")
    prof = get_profile(profile)
    cfg = replace(PRESETS[preset], num_videos=(prof.num_train_videos, prof.num_val_videos, prof.num_test_videos))
    if prof.name == "full":  # the larger world of the full profile
        cfg = replace(cfg, num_verbs=len(VERBS), num_objects=len(OBJECTS))
    return replace(cfg, **overrides)


def synthetic_root(config: SyntheticConfig, cache_dir: str | Path | None = None) -> Path:
    """Cache folder of a config: ``$WSG_DATA`` (default ``~/.cache/wsg``) / synthetic / preset-hash."""
    base = Path(cache_dir or os.environ.get("WSG_DATA") or Path.home() / ".cache" / "wsg")
    return base / "synthetic" / f"{config.preset}-{config.digest()}"


def generate(config: SyntheticConfig, cache_dir: str | Path | None = None, overwrite: bool = False) -> Path:
    """Write the benchmark of ``config`` (once; later calls return the cached folder).

    The folder is written to a temporary name and renamed when complete, so an
    interrupted run never leaves a half-written cache behind, and processes that
    generate the same config at once (e.g. the ranks of a ``torchrun`` job) all end
    with the one complete folder: generation is deterministic, so whichever rename
    lands first is kept.
    """
    root = synthetic_root(config, cache_dir)
    if root.is_dir() and not overwrite and (root / "DONE").exists():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=root.name + ".", dir=root.parent))
    try:
        _write(config, tmp)
        (tmp / "DONE").write_text(config.digest())
        if root.exists() and (overwrite or not (root / "DONE").exists()):  # replaced, or stale
            shutil.rmtree(root, ignore_errors=True)
        try:
            os.replace(tmp, root)
        except OSError:  # another process renamed its identical copy into place first
            if not (root / "DONE").exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


# ----------------------------------------------------------------------------- the world

@dataclass
class World:
    """The fixed part of the generator: concept prototypes and the non-linear mixing map."""

    config: SyntheticConfig
    verb_proto: np.ndarray = field(init=False)
    object_proto: np.ndarray = field(init=False)
    pair_proto: np.ndarray = field(init=False)
    mix: np.ndarray = field(init=False)
    bias: np.ndarray = field(init=False)
    held_out: set = field(init=False)

    def __post_init__(self):
        c = self.config
        rng = np.random.default_rng([c.seed, 0])
        z = c.latent_dim
        self.verb_proto = rng.normal(size=(c.num_verbs, z)) / np.sqrt(z) * 1.5
        self.object_proto = rng.normal(size=(c.num_objects, z)) / np.sqrt(z) * 1.5
        self.pair_proto = rng.normal(size=(c.num_verbs, c.num_objects, z)) / np.sqrt(z) * 0.3
        self.mix = rng.normal(size=(z, c.feature_dim)) / np.sqrt(z)
        self.bias = rng.normal(size=c.feature_dim) * 0.1
        pairs = [(v, o) for v in range(c.num_verbs) for o in range(c.num_objects)]
        n_held = int(round(c.compositional * len(pairs)))
        order = rng.permutation(len(pairs))
        self.held_out = {pairs[i] for i in order[:n_held]}

    def events(self, rng: np.random.Generator, train: bool) -> list[tuple[int, int]]:
        """2-4 (verb, object) events from a 2 x 2 grid of two verbs and two objects."""
        c = self.config
        k = int(rng.choice([2, 3, 4], p=c.events_per_video))
        for _ in range(1000):
            v = rng.choice(c.num_verbs, 2, replace=False)
            o = rng.choice(c.num_objects, 2, replace=False)
            grid = [(v[0], o[0]), (v[0], o[1]), (v[1], o[0]), (v[1], o[1])]
            if k == 2:  # the two share a verb or an object
                grid = [grid[0], grid[1]] if rng.random() < 0.5 else [grid[0], grid[2]]
            chosen = [(int(a), int(b)) for a, b in grid[:k]]
            if not (train and self.held_out.intersection(chosen)):
                order = rng.permutation(k)
                return [chosen[i] for i in order]
        raise RuntimeError("compositional hold-out too large: cannot draw training events")

    def layout(self, rng: np.random.Generator, k: int, duration: float) -> np.ndarray:
        """Non-overlapping [start, end] seconds of k events, in temporal order."""
        c = self.config
        cover = rng.uniform(*c.coverage)
        alpha = np.full(k, 4.0)
        if c.position_bias == "uniform":
            gaps = rng.dirichlet(np.full(k + 1, 2.0)) * (1 - cover)
        elif c.position_bias == "start":  # the first event opens the video and is longer
            alpha[0] *= 3.0
            gaps = np.concatenate([[0.0], rng.dirichlet(np.full(k, 2.0)) * (1 - cover)])
        else:
            raise ValueError(f"position_bias must be 'uniform' or 'start', got {c.position_bias!r}")
        lengths = rng.dirichlet(alpha) * cover
        starts = np.cumsum(gaps[:-1] + np.concatenate([[0.0], lengths[:-1]]))
        return np.round(np.stack([starts, starts + lengths], 1) * duration, 2)

    def features(self, rng: np.random.Generator, events, spans: np.ndarray, duration: float) -> np.ndarray:
        """Clip features [T_v, D] of a video with the given events (vectorised over time)."""
        c = self.config
        T = max(2, int(round(duration * c.feature_rate)))
        t = (np.arange(T) + 0.5) / c.feature_rate  # clip centres in seconds
        ev = np.asarray(events)
        s, e = spans[:, :1], spans[:, 1:]  # [k, 1]
        tau = c.boundary / 4
        weight = _sigmoid((t - s) / tau) * _sigmoid((e - t) / tau)  # [k, T] soft boundaries
        phase = np.clip((t - s) / (e - s), 0, 1)  # progress through each event
        verb = self.verb_proto[ev[:, 0]][:, None, :] * (0.6 + 0.8 * phase)[:, :, None]
        code = verb + (self.object_proto[ev[:, 1]] + self.pair_proto[ev[:, 0], ev[:, 1]])[:, None, :]
        signal = np.einsum("kt,ktz->tz", weight, code)
        noise = rng.normal(size=(T, c.latent_dim)) * c.noise * 1.5 / np.sqrt(c.latent_dim)
        noise = 0.6 * noise + 0.4 * np.roll(noise, 1, axis=0)  # temporally correlated
        scene = rng.normal(size=c.latent_dim) * c.scene / np.sqrt(c.latent_dim)
        return np.maximum((signal + scene + noise) @ self.mix + self.bias, 0.0).astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * x))


def describe(verb: int, obj: int, rng: np.random.Generator) -> str:
    """A query for a (verb, object) event, from a random template."""
    base, v3, ving, vpp = VERBS[verb]
    return TEMPLATES[rng.integers(len(TEMPLATES))].format(v3=v3, ving=ving, vpp=vpp, o=OBJECTS[obj])


def _write(config: SyntheticConfig, root: Path) -> None:
    import h5py

    if config.num_verbs > len(VERBS) or config.num_objects > len(OBJECTS):
        raise ValueError(f"at most {len(VERBS)} verbs and {len(OBJECTS)} objects are defined")
    world = World(config)
    all_events = []
    with h5py.File(root / "features.hdf5", "w") as h5:
        for split_no, (split, n) in enumerate(zip(SPLITS, config.num_videos)):
            rng = np.random.default_rng([config.seed, 1, split_no])
            order_rng = np.random.default_rng([config.seed, 2, split_no])
            table = {}
            for i in range(n):
                vid = f"{split[:2]}{i:05d}"
                duration = float(np.round(rng.uniform(*config.duration), 2))
                events = world.events(rng, train=(split == "train"))
                spans = world.layout(rng, len(events), duration)
                h5.create_dataset(vid, data=world.features(rng, events, spans, duration))
                sentences = [describe(v, o, rng) for v, o in events]
                # Write the queries in random order, never in time order (the layout is
                # chronological): a query's row must not tell where its moment is. A
                # separate stream, so features and spans are those of the first version.
                order = order_rng.permutation(len(events))
                events, spans, sentences = [events[j] for j in order], spans[order], [sentences[j] for j in order]
                table[vid] = {"duration": duration, "timestamps": spans.tolist(), "sentences": sentences}
                for (v, o), (s, e), q in zip(events, spans, sentences):
                    all_events.append({"split": split, "video_id": vid, "verb": VERBS[v][0], "object": OBJECTS[o],
                                       "start": float(s), "end": float(e), "sentence": q,
                                       "held_out": (v, o) in world.held_out})
            (root / f"{split}.json").write_text(json.dumps(table))
    (root / "events.json").write_text(json.dumps(all_events))
    (root / "config.json").write_text(json.dumps(asdict(config), indent=1))
