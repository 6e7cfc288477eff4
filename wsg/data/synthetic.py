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
* **A family of worlds.** Beyond the two presets the config can draw its words from
  larger pools (:data:`VERB_POOL`, :data:`OBJECT_POOL`, :data:`TEMPLATE_POOL`,
  :data:`ADJECTIVES`), lay out up to 6 events with uneven gaps and narrow, wide, skewed
  or bimodal moment lengths, bias positions to the start, the end or a mix, and let the
  scene drift within a video. Every such field defaults to the presets' behaviour, and
  a field left at its default is left out of the cache key and ``config.json``, so the
  presets' files are unchanged bit for bit. :mod:`wsg.worlds` draws whole configs
  from a world seed.

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
from dataclasses import asdict, dataclass, field, fields, replace
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

# ----------------------------------------------------------------------------- the pools of the family
# Additive: the first entries of each pool are the lists above (a config that names no
# ids uses them, as the presets do). Every object and adjective starts with a consonant
# ("a {o}"), and no template word is a pool verb or object.
VERB_POOL = VERBS + [
    ("pour", "pours", "pouring", "poured"), ("drop", "drops", "dropping", "dropped"),
    ("shake", "shakes", "shaking", "shaken"), ("fold", "folds", "folding", "folded"),
    ("turn", "turns", "turning", "turned"), ("move", "moves", "moving", "moved"),
    ("grab", "grabs", "grabbing", "grabbed"), ("tidy", "tidies", "tidying", "tidied"),
    ("watch", "watches", "watching", "watched"), ("touch", "touches", "touching", "touched"),
    ("hide", "hides", "hiding", "hidden"), ("drag", "drags", "dragging", "dragged"),
    ("wipe", "wipes", "wiping", "wiped"), ("flip", "flips", "flipping", "flipped"),
    ("hang", "hangs", "hanging", "hung"), ("sort", "sorts", "sorting", "sorted"),
]
OBJECT_POOL = OBJECTS + [
    "blanket", "broom", "bucket", "plate", "lamp", "camera", "guitar", "jacket", "ball", "basket",
    "sandwich", "picture", "mirror", "paper", "cushion", "kettle", "bowl", "pan", "hat", "notebook",
]
TEMPLATE_POOL = TEMPLATES + [
    "a person is seen {ving} the {o} in the kitchen.",
    "after a moment, someone {v3} the {o} again.",
    "the person in the video {v3} a {o} slowly.",
    "a {o} gets {vpp} by the person standing there.",
    "someone starts to {v} the {o}.",
    "the person tries to {v} a {o} but stops halfway.",
    "we see a person {ving} the {o} near the wall.",
    "a person walks over and {v3} the {o}.",
    "next, the {o} is {vpp} by someone in the room.",
    "the man {v3} the {o} with both hands.",
    "a woman is {ving} a {o} at the back of the room.",
    "for a few seconds the person keeps {ving} the {o}.",
    "while talking on and on, a person {v3} the {o} and looks around.",
    "the person goes to the corner of the room, stops, and then {v3} the {o} there.",
]
#: non-visual modifiers a query may put before its object (nuisance words: they never tell events apart)
ADJECTIVES = ["small", "big", "red", "blue", "green", "black", "white", "wooden", "new", "plastic",
              "heavy", "little", "brown", "yellow", "dark", "striped"]
LENGTH_SHAPES = ("dirichlet", "lognormal", "bimodal")
POSITION_BIASES = ("uniform", "start", "end", "mixed")


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

    Family fields (:mod:`wsg.worlds`; each default reproduces the presets exactly):
        verb_ids / object_ids: indices into :data:`VERB_POOL` / :data:`OBJECT_POOL` of the
            words in use (``()``: the first ``num_verbs`` / ``num_objects``); their lengths
            must then equal ``num_verbs`` / ``num_objects``.
        template_ids: indices into :data:`TEMPLATE_POOL` (``()``: the six :data:`TEMPLATES`).
        adjective_rate: probability that a query puts a random :data:`ADJECTIVES` word before
            its object (0: never, and no random draw).
        events_per_video (longer): up to 5 probabilities, of 2..6 events; 5 or 6 events
            come from a 2 x 3 (or 3 x 2) grid of verbs and objects, so every event still has a
            distractor sharing its verb or its object.
        gap_concentration: Dirichlet concentration of the gaps between events (low: uneven).
        length_shape: ``"dirichlet"`` (concentration ``length_concentration``: high narrow,
            low wide), ``"lognormal"`` (sigma ``length_spread``: right-skewed) or ``"bimodal"``
            (each event short or ``length_ratio`` times longer, with Gamma jitter of shape
            ``length_concentration``). Lengths are relative weights within ``coverage``.
        position_bias (more values): ``"end"`` mirrors ``"start"`` (the last event closes the
            video and is longer); ``"mixed"`` lays a video out ``"start"`` with probability
            ``start_prob``, else ``"uniform"``.
        scene_drift: the scene vector moves within a video by this much of a second random
            scene vector, linearly from start to end (0: a static scene, no random draw).
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
    # --- the family's fields (wsg.worlds), all after `seed`; defaults reproduce the presets
    verb_ids: tuple[int, ...] = ()
    object_ids: tuple[int, ...] = ()
    template_ids: tuple[int, ...] = ()
    adjective_rate: float = 0.0
    gap_concentration: float = 2.0
    length_shape: str = "dirichlet"
    length_concentration: float = 4.0
    length_spread: float = 1.0
    length_ratio: float = 4.0
    start_prob: float = 0.5
    scene_drift: float = 0.0

    def as_dict(self) -> dict:
        """The fields that define the data: every original field, and each family field that is
        not at its default (so a preset's key, cache folder and ``config.json`` involve only the
        original fields, and the presets' files stay the same bit for bit)."""
        d = asdict(self)
        for name, default in _FAMILY_DEFAULTS.items():
            if d[name] == default or (isinstance(default, tuple) and tuple(d[name]) == default):
                del d[name]
        return d

    def digest(self) -> str:
        """Names the cache folder: the config and the generator's version (a new version regenerates)."""
        key = {**self.as_dict(), "generator": GENERATOR_VERSION}
        return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]

    def words(self) -> tuple[list, list, list]:
        """``(verbs, objects, templates)`` in use: verb 4-tuples, object nouns, template strings."""
        verbs = [VERB_POOL[i] for i in self.verb_ids] if self.verb_ids else VERBS[:self.num_verbs]
        objects = [OBJECT_POOL[i] for i in self.object_ids] if self.object_ids else OBJECTS[:self.num_objects]
        templates = [TEMPLATE_POOL[i] for i in self.template_ids] if self.template_ids else TEMPLATES
        return verbs, objects, templates


#: the family's fields (those declared after ``seed``) and their defaults (the presets' behaviour)
_FIELDS = fields(SyntheticConfig)
_FAMILY_DEFAULTS = {f.name: f.default for f in _FIELDS[[f.name for f in _FIELDS].index("seed") + 1:]}


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
        """2-4 (verb, object) events from a 2 x 2 grid of two verbs and two objects
        (5-6 from a 2 x 3 or 3 x 2 grid, when ``events_per_video`` allows them)."""
        c = self.config
        k = int(rng.choice(list(range(2, 2 + len(c.events_per_video))), p=c.events_per_video))
        for _ in range(1000):
            if k > 4:  # a 2 x 3 or 3 x 2 grid cut to k cells: each row and column keeps >= 2 cells
                nv, no = (2, 3) if rng.random() < 0.5 else (3, 2)
                v = rng.choice(c.num_verbs, nv, replace=False)
                o = rng.choice(c.num_objects, no, replace=False)
                grid = [(a, b) for a in v for b in o]
                grid = [grid[i] for i in rng.permutation(len(grid))]
                chosen = [(int(a), int(b)) for a, b in grid[:k]]
                if not (train and self.held_out.intersection(chosen)):
                    order = rng.permutation(k)
                    return [chosen[i] for i in order]
                continue
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
        alpha = np.full(k, c.length_concentration)
        bias = c.position_bias
        if bias == "mixed":  # one draw per video, only in this mode
            bias = "start" if rng.random() < c.start_prob else "uniform"
        if bias == "uniform":
            gaps = rng.dirichlet(np.full(k + 1, c.gap_concentration)) * (1 - cover)
        elif bias in ("start", "end"):  # the first event opens the video and is longer ("end": mirrored)
            alpha[0] *= 3.0
            gaps = np.concatenate([[0.0], rng.dirichlet(np.full(k, c.gap_concentration)) * (1 - cover)])
        else:
            raise ValueError(f"position_bias must be one of {POSITION_BIASES}, got {c.position_bias!r}")
        if c.length_shape == "dirichlet":
            lengths = rng.dirichlet(alpha) * cover
        else:
            boost = alpha / c.length_concentration  # 3 on the first event under a start/end bias, else 1
            if c.length_shape == "lognormal":  # right-skewed: many short events, a few long ones
                w = rng.lognormal(0.0, c.length_spread, size=k)
            elif c.length_shape == "bimodal":  # short events and events length_ratio times longer
                w = rng.gamma(c.length_concentration, size=k) * np.where(rng.random(k) < 0.5, c.length_ratio, 1.0)
            else:
                raise ValueError(f"length_shape must be one of {LENGTH_SHAPES}, got {c.length_shape!r}")
            w = w * boost
            lengths = w / w.sum() * cover
        starts = np.cumsum(gaps[:-1] + np.concatenate([[0.0], lengths[:-1]]))
        if bias == "end":  # mirror the start-biased layout: the last event closes the video
            ends = 1.0 - starts[::-1]
            starts = ends - lengths[::-1]
            return np.round(np.stack([starts, ends], 1) * duration, 2)
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
        if c.scene_drift > 0:  # the scene moves within the video (a draw only when on)
            other = rng.normal(size=c.latent_dim) * c.scene / np.sqrt(c.latent_dim)
            scene = scene + c.scene_drift * (t / duration - 0.5)[:, None] * other
        return np.maximum((signal + scene + noise) @ self.mix + self.bias, 0.0).astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * x))


def describe(verb: int, obj: int, rng: np.random.Generator, config: SyntheticConfig | None = None) -> str:
    """A query for a (verb, object) event, from a random template.

    ``config`` selects the words and templates of a family member (:meth:`SyntheticConfig.words`)
    and its ``adjective_rate``; without it, the presets' words."""
    if config is None:
        verbs, objects, templates, rate = VERBS, OBJECTS, TEMPLATES, 0.0
    else:
        (verbs, objects, templates), rate = config.words(), config.adjective_rate
    base, v3, ving, vpp = verbs[verb]
    template = templates[rng.integers(len(templates))]
    noun = objects[obj]
    if rate > 0 and rng.random() < rate:  # draws only when adjectives are on
        noun = f"{ADJECTIVES[rng.integers(len(ADJECTIVES))]} {noun}"
    return template.format(v=base, v3=v3, ving=ving, vpp=vpp, o=noun)


def _write(config: SyntheticConfig, root: Path) -> None:
    import h5py

    check_config(config)
    verbs, objects, _ = config.words()
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
                sentences = [describe(v, o, rng, config) for v, o in events]
                # Write the queries in random order, never in time order (the layout is
                # chronological): a query's row must not tell where its moment is. A
                # separate stream, so features and spans are those of the first version.
                order = order_rng.permutation(len(events))
                events, spans, sentences = [events[j] for j in order], spans[order], [sentences[j] for j in order]
                table[vid] = {"duration": duration, "timestamps": spans.tolist(), "sentences": sentences}
                for (v, o), (s, e), q in zip(events, spans, sentences):
                    all_events.append({"split": split, "video_id": vid, "verb": verbs[v][0], "object": objects[o],
                                       "start": float(s), "end": float(e), "sentence": q,
                                       "held_out": (v, o) in world.held_out})
            (root / f"{split}.json").write_text(json.dumps(table))
    (root / "events.json").write_text(json.dumps(all_events))
    (root / "config.json").write_text(json.dumps(config.as_dict(), indent=1))


def check_config(config: SyntheticConfig) -> None:
    """Refuse a config the generator cannot write, naming the field.

    Raises:
        ValueError: too many words for the lists in use, pool ids out of range or of the wrong
            count, unknown ``length_shape`` / ``position_bias``, or ``events_per_video`` that is
            not 3-5 probabilities summing to 1.
    """
    c = config
    if not c.verb_ids and not c.object_ids and (c.num_verbs > len(VERBS) or c.num_objects > len(OBJECTS)):
        raise ValueError(f"at most {len(VERBS)} verbs and {len(OBJECTS)} objects are defined")
    for name, ids, n, pool in (("verb_ids", c.verb_ids, c.num_verbs, VERB_POOL),
                               ("object_ids", c.object_ids, c.num_objects, OBJECT_POOL)):
        if ids and (len(ids) != n or len(set(ids)) != n or not all(0 <= i < len(pool) for i in ids)):
            raise ValueError(f"{name} must be {n} distinct indices into a pool of {len(pool)}, got {ids}")
    if not c.verb_ids and c.num_verbs > len(VERBS):
        raise ValueError(f"num_verbs={c.num_verbs} > {len(VERBS)}: give verb_ids into VERB_POOL")
    if not c.object_ids and c.num_objects > len(OBJECTS):
        raise ValueError(f"num_objects={c.num_objects} > {len(OBJECTS)}: give object_ids into OBJECT_POOL")
    if len(c.events_per_video) > 3 and (c.num_verbs < 3 or c.num_objects < 3):
        raise ValueError("5-6 events per video need at least 3 verbs and 3 objects (a 2 x 3 or 3 x 2 grid)")
    if c.template_ids and not all(0 <= i < len(TEMPLATE_POOL) for i in c.template_ids):
        raise ValueError(f"template_ids must index TEMPLATE_POOL ({len(TEMPLATE_POOL)} templates), got {c.template_ids}")
    p = np.asarray(c.events_per_video, dtype=float)
    if not 3 <= len(p) <= 5 or (p < 0).any() or abs(p.sum() - 1) > 1e-6:
        raise ValueError(f"events_per_video must be 3-5 probabilities (of 2, 3, ... events) summing to 1, "
                         f"got {c.events_per_video}")
    if c.length_shape not in LENGTH_SHAPES:
        raise ValueError(f"length_shape must be one of {LENGTH_SHAPES}, got {c.length_shape!r}")
    if c.position_bias not in POSITION_BIASES:
        raise ValueError(f"position_bias must be one of {POSITION_BIASES}, got {c.position_bias!r}")
