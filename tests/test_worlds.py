"""The family of synthetic worlds (wsg.worlds): determinism, ranges, the presets as members
(bit for bit), the held-out guard, and a smoke run of the harness."""
import hashlib
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from wsg.data import load_events, load_synthetic
from wsg.data.synthetic import (ADJECTIVES, OBJECT_POOL, OBJECTS, TEMPLATE_POOL, TEMPLATES, VERB_POOL, VERBS,
                                SyntheticConfig, generate, preset_config)
from wsg import worlds
from wsg.worlds import (DEV_SEEDS, HELD_OUT_SEEDS, K_MAX, PRESET_SEEDS, HeldOutWorldError, check_dev_seed,
                        check_member, dev_worlds, development, held_out_worlds, load_dev_world, load_world,
                        recipe_dataset, run_worlds, world_config, worlds_table)

SMALL = {"num_videos": (12, 4, 4)}

# sha256 of the tiny presets' files, computed with the generator *before* the family existed
# (commit of wsg/data/synthetic.py at GENERATOR_VERSION 2, tiny profile: 400/80/150 videos).
# ``features``: sha256 over the HDF5 datasets in sorted key order (key bytes, then the array's bytes).
PRESET_DIGESTS = {
    "charades": {
        "folder": "charades-369520b12d",
        "train.json": "faa3ff40b12063aa536713005044181ed8126c2f733a8d2c95d4e905a91e8115",
        "val.json": "6437889af0227b654ac27413ad45a090012f14f4777e28b76852859f1fe7eab0",
        "test.json": "b8d12398eeb1b70ee1c2f28f65cb5fc101671f1d51919e48939b9e6ae0b6e386",
        "events.json": "8ff2704c37177991ba5453a2c6a041ab4ad1c11f633b3acbbedf5e07e3f44fc9",
        "config.json": "e041315e58961e255f9305a3458f5112c212c3e976745f676d3fed2f19c1214b",
        "features": "63780c1bd596af38de5c8a80efa7cbbae8422391fff577e6ff3021e82bdfb1fe",
    },
    "activitynet": {
        "folder": "activitynet-415a0ffaf4",
        "train.json": "fa3a36afdd22c3e68245914c1a36eff4df2235c42a25a3c7e10eb992b3913735",
        "val.json": "3991bc4e76fb51c9488250ad210bc7cb93de96aedb0b2d448a809a43b1936cbe",
        "test.json": "d720e6aa5c9a96141b40bc90dbaa6102b0f5e7be1ac332d958497aa7b49278e0",
        "events.json": "c14ea9a920127df9262039d8b909c9554baa045c22ace031f3c9ac2e80ab6aaf",
        "config.json": "179c7fd3831b505617cb5d2d7a8a237129a2f1aaf86690a9796daf7652274d6e",
        "features": "b8be98d46f618b18ee66e6ed3c5162d5d927bbf2f5191a21df548d5320643fdf",
    },
}


# float64 sum, sum of squares and size of all features: the same data to 1e-9 where another BLAS
# (another CPU) rounds the generator's float64 matmul differently in the last bit
PRESET_CHECKSUMS = {"charades": (351638.61304928723, 175964.9448313664, 2427008),
                    "activitynet": (956082.9282147416, 495335.30118852254, 6133504)}


def _checksums(root: Path) -> tuple:
    import h5py

    with h5py.File(root / "features.hdf5", "r") as f:
        arrays = [f[k][()].astype(np.float64) for k in sorted(f)]
    return (float(sum(a.sum() for a in arrays)), float(sum((a ** 2).sum() for a in arrays)),
            sum(a.size for a in arrays))


def _digests(root: Path) -> dict:
    import h5py

    out = {"folder": root.name}
    for name in ("train.json", "val.json", "test.json", "events.json", "config.json"):
        out[name] = hashlib.sha256((root / name).read_bytes()).hexdigest()
    h = hashlib.sha256()
    with h5py.File(root / "features.hdf5", "r") as f:
        for key in sorted(f):
            a = np.ascontiguousarray(f[key][()])
            h.update(key.encode())
            h.update(str(a.shape).encode())
            h.update(str(a.dtype).encode())
            h.update(a.tobytes())
    out["features"] = h.hexdigest()
    return out


# ----------------------------------------------------------------------------- presets, bit for bit
@pytest.mark.parametrize("preset", ["charades", "activitynet"])
def test_presets_are_unchanged_bit_for_bit(preset, tmp_path):
    """The family's fields are additive: at their defaults the generator writes the files it
    wrote before (annotations, events, config, features, and the cache folder's name)."""
    root = generate(preset_config(preset, "tiny"), tmp_path)
    got, want = _digests(root), PRESET_DIGESTS[preset]
    assert {k: v for k, v in got.items() if k != "features"} == {k: v for k, v in want.items() if k != "features"}
    if got["features"] != want["features"]:  # not bit for bit: only a numerical library may differ
        s, s2, n = _checksums(root)
        ws, ws2, wn = PRESET_CHECKSUMS[preset]
        assert n == wn and s == pytest.approx(ws, rel=1e-9) and s2 == pytest.approx(ws2, rel=1e-9), \
            "the preset's features changed"
        pytest.skip("features equal to 1e-9 but not bit for bit: a different BLAS/CPU than the one that "
                    "recorded the digests (annotations are bit for bit)")


@pytest.mark.parametrize("profile", ["tiny", "full"])
def test_presets_are_members_under_reserved_seeds(profile):
    for name, seed in PRESET_SEEDS.items():
        assert world_config(seed, profile) == preset_config(name, profile)
        assert check_member(preset_config(name, profile)) == []  # inside every range of the family
        assert recipe_dataset(preset_config(name, profile)) == name  # the clip-count rule agrees
    assert check_member(preset_config("charades", "tiny", position_bias="start")) == []


def test_load_world_of_a_reserved_seed_is_the_preset(tmp_path):
    bench = load_world(PRESET_SEEDS["charades"], "tiny", cache_dir=tmp_path, **SMALL)
    preset = load_synthetic("charades", "tiny", cache_dir=tmp_path, **SMALL)
    assert bench.root == preset.root and bench.recipe_dataset == "charades"
    assert bench.splits["test"].equals(preset.splits["test"])


# ----------------------------------------------------------------------------- the family
def test_a_world_is_deterministic_in_its_seed_and_leaves_global_rng_alone(tmp_path):
    np_state, torch_state = np.random.get_state(), torch.random.get_rng_state()
    a, b = world_config(7), world_config(7)
    assert a == b and a.digest() == b.digest()
    ra = generate(world_config(7, **SMALL), tmp_path / "a")
    rb = generate(world_config(7, **SMALL), tmp_path / "b")
    assert _digests(ra) == _digests(rb)
    bench = load_world(7, cache_dir=tmp_path / "a", **SMALL)
    assert bench.root == ra and bench.name == "world7" and bench.world_seed == 7
    after = np.random.get_state()
    assert np_state[0] == after[0] and np.array_equal(np_state[1], after[1]) and np_state[2:] == after[2:]
    assert torch.equal(torch_state, torch.random.get_rng_state())


def test_different_seeds_give_different_worlds(tmp_path):
    configs = [world_config(s) for s in range(50)]
    assert len({c.digest() for c in configs}) == 50
    assert len({c.seed for c in configs}) == 50  # the generator's own seeds differ too
    a = load_world(1, cache_dir=tmp_path, **SMALL)
    b = load_world(2, cache_dir=tmp_path, **SMALL)
    assert a.root != b.root
    assert not a.splits["train"]["sentence"].equals(b.splits["train"]["sentence"])


def test_ranges_hold_over_200_worlds_and_the_family_varies():
    configs = [world_config(s) for s in range(200)]
    bad = {s: check_member(c) for s, c in enumerate(configs) if check_member(c)}
    assert not bad, bad
    assert {c.length_shape for c in configs} == {"dirichlet", "lognormal", "bimodal"}
    assert {c.position_bias for c in configs} == {"uniform", "start", "end", "mixed"}
    assert {len(c.events_per_video) + 1 for c in configs} == {4, 5, 6}
    assert {recipe_dataset(c) for c in configs} == {"charades", "activitynet"}
    assert {c.feature_dim for c in configs} == {64, 96, 128, 192, 256}
    conc = [c.length_concentration for c in configs if c.length_shape == "dirichlet"]
    assert min(conc) < 1.5 and max(conc) > 15  # wide and narrow moment lengths
    assert any(c.adjective_rate > 0 for c in configs) and any(c.scene_drift > 0 for c in configs)
    assert max(len(c.template_ids) for c in configs) > 15 and max(c.num_verbs for c in configs) > len(VERBS)
    # the pools extend the presets' lists; templates never name a pool word
    assert VERB_POOL[:len(VERBS)] == VERBS and OBJECT_POOL[:len(OBJECTS)] == OBJECTS
    assert TEMPLATE_POOL[:len(TEMPLATES)] == TEMPLATES
    assert len(set(OBJECT_POOL)) == len(OBJECT_POOL) and len({v[0] for v in VERB_POOL}) == len(VERB_POOL)
    words = {w for v in VERB_POOL for w in v} | set(OBJECT_POOL)
    for t in TEMPLATE_POOL:
        plain = t.replace(".", " ").replace(",", " ").split()
        assert not words.intersection(plain), t
    assert all(a[0] not in "aeiou" for a in ADJECTIVES + OBJECT_POOL)  # "a {o}" stays grammatical


def test_the_module_docstring_table_names_every_drawn_field():
    doc = worlds.__doc__
    for phrase in ("VERB_POOL", "OBJECT_POOL", "TEMPLATE_POOL", "adjective rate", "feature rate", "mean clips",
                   "events per video", "coverage", "gap concentration", "moment-length shape", "position bias",
                   "feature width", "latent width", "noise", "scene drift", "boundary"):
        assert phrase in doc, phrase


def test_world_data_keep_the_generators_guarantees(tmp_path):
    """Events of 2-6 per video, each with a distractor sharing its verb or object, no overlap,
    and every query names its verb and object, in worlds with 5-6 events and every layout."""
    seen_shapes, seen_bias = set(), set()
    for seed in (3, 11, 36, 2):  # 6 events; lognormal + start; end; bimodal
        bench = load_world(seed, cache_dir=tmp_path, num_videos=(40, 4, 4))
        c = bench.config
        seen_shapes.add(c.length_shape)
        seen_bias.add(c.position_bias)
        verbs, objects, _ = c.words()
        ev = load_events(bench)
        for _, g in ev.groupby("video_id"):
            assert 2 <= len(g) <= len(c.events_per_video) + 1
            pairs = list(zip(g["verb"], g["object"]))
            assert len(set(pairs)) == len(pairs)
            for v, o in pairs:
                assert any((v2 == v) != (o2 == o) for v2, o2 in pairs)
            spans = g[["start", "end"]].to_numpy()
            spans = spans[np.argsort(spans[:, 0])]
            assert np.all(spans[1:, 0] >= spans[:-1, 1]) and np.all(spans[:, 1] > spans[:, 0])
        forms = {f[0]: f for f in verbs}
        for q, v, o in zip(ev["sentence"], ev["verb"], ev["object"]):
            assert o in objects and o in q and any(f in q.split() for f in forms[v]), q
        assert bench.features.get(ev["video_id"].iloc[0]).shape[1] == c.feature_dim
    assert {"lognormal", "bimodal"} <= seen_shapes and {"start", "end"} <= seen_bias


def test_end_bias_mirrors_start_bias(tmp_path):
    def at(bench, where):
        df = bench.splits["train"]
        return ((df["start"] / df["duration"] < 0.01) if where == "start"
                else (df["end"] / df["duration"] > 0.99)).mean()

    start = load_world(7, cache_dir=tmp_path, num_videos=(150, 2, 2), position_bias="start")
    end = load_world(7, cache_dir=tmp_path, num_videos=(150, 2, 2), position_bias="end")
    assert at(start, "start") > 0.25 and at(end, "end") > 0.25
    assert at(start, "end") < 0.15 and at(end, "start") < 0.15


def test_invalid_family_fields_are_named():
    from wsg.data.synthetic import check_config

    with pytest.raises(ValueError, match="length_shape"):
        check_config(SyntheticConfig(length_shape="triangular"))
    with pytest.raises(ValueError, match="verb_ids"):
        check_config(SyntheticConfig(num_verbs=3, verb_ids=(0, 1)))
    with pytest.raises(ValueError, match="events_per_video"):
        check_config(SyntheticConfig(events_per_video=(0.5, 0.5)))
    with pytest.raises(ValueError, match="reserved"):
        world_config(-5)
    # family fields at their defaults stay out of the key: the presets' digests do not move
    from wsg.data.synthetic import _FAMILY_DEFAULTS

    family = set(_FAMILY_DEFAULTS)
    assert family <= {f.name for f in fields(SyntheticConfig)}
    assert set(SyntheticConfig().as_dict()) == set(asdict(SyntheticConfig())) - family
    assert "verb_ids" in world_config(0).as_dict()


# ----------------------------------------------------------------------------- the held-out protocol
def test_dev_and_held_out_seeds_are_disjoint_and_guarded(tmp_path, monkeypatch):
    assert not set(DEV_SEEDS) & set(HELD_OUT_SEEDS)
    assert not set(PRESET_SEEDS.values()) & (set(DEV_SEEDS) | set(HELD_OUT_SEEDS))
    assert len(HELD_OUT_SEEDS) == K_MAX
    assert held_out_worlds(3) == (1_000_000, 1_000_001, 1_000_002)
    assert dev_worlds(3) == (0, 1, 2) and set(dev_worlds(5, sample_seed=1)) <= set(DEV_SEEDS)
    with pytest.raises(ValueError):
        held_out_worlds(K_MAX + 1)
    with pytest.raises(ValueError):
        dev_worlds(3, start=len(DEV_SEEDS) - 1)  # would leave DEV_SEEDS
    held = HELD_OUT_SEEDS[0]
    with pytest.raises(HeldOutWorldError, match="held out"):
        check_dev_seed(held)
    with pytest.raises(HeldOutWorldError):
        load_dev_world(held, cache_dir=tmp_path)
    assert issubclass(HeldOutWorldError, ValueError)
    assert check_dev_seed(5) == 5 and check_dev_seed(PRESET_SEEDS["charades"]) == -1
    with development():
        for call in (lambda: world_config(held), lambda: load_world(held, cache_dir=tmp_path),
                     lambda: held_out_worlds(1), lambda: run_worlds(["wsra"], worlds=[held], cache_dir=tmp_path)):
            with pytest.raises(HeldOutWorldError):
                call()
        assert world_config(3) == world_config(3)  # development worlds are fine
    assert world_config(held).preset == f"world{held}"  # outside development: the final read
    monkeypatch.setenv("WSG_WORLDS", "dev")
    with pytest.raises(HeldOutWorldError):
        world_config(held)


# ----------------------------------------------------------------------------- the harness
def test_run_worlds_smoke_under_a_step_cap(tmp_path, monkeypatch):
    monkeypatch.setenv("WSG_STEP_CAP", "20,2")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        df = run_worlds(["wsra"], seeds=[0], worlds=[21], cache_dir=tmp_path,
                        world_overrides={"num_videos": (16, 6, 6)}, blind=True)
    finally:
        torch.set_num_threads(before)
    assert len(df) == 2 and (df["variant"] == "query-blind").sum() == 1
    # the candidate-matched controls, computed independently from the recipe's own candidates
    bench = load_world(21, cache_dir=tmp_path, num_videos=(16, 6, 6))
    from wsg.baselines import blind_baselines
    from wsg.models import build
    from wsg.recipes import get, model_config
    own = build("wsra", **model_config(get("wsra", "charades", "tiny"), bench)).candidates()
    ref = blind_baselines(bench, "test", protocol=get("wsra", "charades", "tiny")["protocol"], candidates=own)
    for control in ("random", "prior"):
        assert (df[f"{control} R@1,IoU=0.5"] == ref.loc[control, "R@1,IoU=0.5"]).all()
    # rows made without the controls get the same values from add_candidate_controls
    bare = df.drop(columns=[f"{c} R@1,IoU=0.5" for c in ("random", "prior")])
    monkeypatch.setattr(worlds, "load_world", lambda seed, profile="tiny": bench)  # the small world above
    filled = worlds.add_candidate_controls(bare)
    for control in ("random", "prior"):
        assert (filled[f"{control} R@1,IoU=0.5"] == df[f"{control} R@1,IoU=0.5"]).all()
    table = worlds_table(df)
    assert table.loc[(21, "wsra"), "query-blind"] == df.loc[df["variant"] == "query-blind", "R@1,IoU=0.5"].item()
    row = df[df["variant"] != "query-blind"].iloc[0]
    assert row["world"] == 21 and row["method"] == "wsra" and row["seed"] == 0
    assert row["recipe_dataset"] == "charades" and row["num_clips"] == 32 and row["dataset"] == "world21"
    for m in (0.3, 0.5, 0.7):
        col = f"R@1,IoU={m}"
        assert 0 <= row[col] <= 100 and 0 < row[f"events {col}"] <= 100
        assert row[f"{col} / events"] == pytest.approx(row[col] / row[f"events {col}"])
    assert 0 <= row["event hit"] <= 100
    true = row["R@1,IoU=0.5"]
    assert (np.isnan(row["swapped/true"]) if true == 0
            else row["swapped/true"] == pytest.approx(row["swapped R@1,IoU=0.5"] / true))


def test_worlds_table_hand_worked():
    """Best blind control, ratios and the grounding verdict, on hand-made rows."""
    base = {"events R@1,IoU=0.5": 30.0, "random R@1,IoU=0.5": 10.0, "prior R@1,IoU=0.5": 35.0}
    rows = pd.DataFrame([
        {"world": 1, "method": "a", "variant": "", "seed": 0, "R@1,IoU=0.5": 40.0, "swapped/true": 0.2, **base},
        {"world": 1, "method": "a", "variant": "", "seed": 1, "R@1,IoU=0.5": 50.0, "swapped/true": 0.4, **base},
        {"world": 1, "method": "a", "variant": "query-blind", "seed": 0, "R@1,IoU=0.5": 44.0, "swapped/true": 1, **base},
        {"world": 1, "method": "a", "variant": "query-blind", "seed": 1, "R@1,IoU=0.5": 48.0, "swapped/true": 1, **base},
        {"world": 2, "method": "a", "variant": "", "seed": 0, "R@1,IoU=0.5": 36.0, "swapped/true": 0.5, **base},
    ])
    t = worlds_table(rows)
    one, two = t.loc[(1, "a")], t.loc[(2, "a")]
    assert one["mean"] == 45.0 and one["std"] == pytest.approx(50 ** 0.5) and one["query-blind"] == 46.0
    assert one["best blind"] == 46.0 and not one["grounds"]  # below its own query-blind variant
    assert one["swapped/true"] == pytest.approx(0.3) and one["ratio"] == pytest.approx(1.5)
    assert two["best blind"] == 35.0 and np.isnan(two["query-blind"]) and not two["grounds"]  # swapped/true 0.5
    rows.loc[4, "swapped/true"] = 0.3
    assert worlds_table(rows).loc[(2, "a"), "grounds"]
    summary = worlds.held_out_summary(rows.assign(settings=""), "a")  # the rows carry their controls
    assert summary == pytest.approx({"worlds": 2, "above events": 2, "above best blind": 1, "grounds": 1,
                                     "ratio low": 1.2, "ratio high": 1.5, "swapped high": 0.3, "blind run": False})
