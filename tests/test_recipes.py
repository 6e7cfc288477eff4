"""Recipes (wsg.recipes) and load_benchmark (wsg.data)."""
from __future__ import annotations

import types
import warnings

import numpy as np
import pytest
import torch

import wsg.models
from wsg import recipes
from wsg.data import load_benchmark

# the feature widths of the common releases (I3D, PCA C3D, C3D, VGG) and of the synthetic world
WIDTH = {"charades": 128, "activitynet": 128, "charades-sta": 1024, "activitynet-captions": 500, "tacos": 4096,
         "didemo": 4096}
SOURCE_PREFIXES = ("paper (", "ours", "tuned on validation")


def _withheld(*_):
    raise AssertionError("a recipe read a training-split moment")


def fake_bench(dataset: str, num_clips: int) -> types.SimpleNamespace:
    """A benchmark whose training moments are withheld: reading them fails the test."""
    g = torch.Generator().manual_seed(0)
    s = torch.rand(100, generator=g) * 0.6
    moments = torch.stack([s, s + 0.1 + 0.3 * torch.rand(100, generator=g)], 1)
    return types.SimpleNamespace(
        name=f"fake {dataset}", num_clips=num_clips, splits={"train": None, "val": None},
        train_moments=_withheld, moments=lambda split: _withheld() if split == "train" else moments,
        model_kwargs=lambda: {"vocab_size": 40, "video_dim": WIDTH[dataset], "num_clips": num_clips})


@pytest.mark.parametrize("dataset", recipes.DATASETS)
@pytest.mark.parametrize("profile", recipes.PROFILES)
def test_every_recipe_is_complete_sourced_and_builds(dataset, profile):
    for key in recipes.METHODS:
        r = recipes.get(key, dataset, profile)
        assert (r["key"], r["dataset"], r["profile"]) == (key, dataset, profile)
        for field in ("model", "lr", "epochs", "batch_size", "num_clips", "protocol", "sources"):
            assert field in r, (key, dataset, profile, field)
        assert r["lr"] > 0 and r["epochs"] >= 1 and r["batch_size"] >= 1
        # every value has exactly one source, and every source says where it comes from
        named = {*(f"model.{k}" for k in r["model"]), "lr", "epochs", "batch_size", "num_clips", "protocol"}
        assert set(r["sources"]) == named, (key, dataset, profile)
        assert all(src.startswith(SOURCE_PREFIXES) for src in r["sources"].values()), r["sources"]
        T = r["num_clips"] or (64 if dataset == "activitynet" else 32)
        model = wsg.models.build(key, **recipes.model_config(r, fake_bench(dataset, T)))
        assert model.config.num_clips == T and model.config.video_dim == WIDTH[dataset]


@pytest.mark.parametrize("dataset", ["didemo"])
def test_tiny_recipes_train_a_step(dataset):
    """Each tiny recipe's model runs forward, loss and predict on a random batch."""
    torch.manual_seed(0)
    for key in recipes.METHODS:
        r = recipes.get(key, dataset, "tiny")
        T = r["num_clips"] or 32
        model = wsg.models.build(key, **recipes.model_config(r, fake_bench(dataset, T)))
        B, L = 4, 7
        batch = {"video": torch.randn(B, T, WIDTH[dataset]), "video_mask": torch.ones(B, T, dtype=torch.bool),
                 "words": torch.randint(4, 40, (B, L)), "words_mask": torch.ones(B, L, dtype=torch.bool),
                 "duration": torch.full((B,), 30.0), "video_idx": torch.arange(B), "query_idx": torch.arange(B),
                 "video_id": [f"v{i}" for i in range(B)], "sentence": ["a b c"] * B,
                 "moment": torch.tensor([[0.1, 0.4], [0.3, 0.6], [0.0, 0.5], [0.5, 1.0]])}
        out = model(batch)
        loss, _ = model.loss(batch, out)
        assert torch.isfinite(loss), key
        if dataset == "didemo":
            batch["times"] = [[(0, 1)], [(1, 2)], [(0, 2)], [(3, 5)]]
        moments, scores = model.eval().predict(wsg.models.strip_labels(batch), top_k=5)
        assert moments.shape[0] == B and moments.shape[-1] == 2


def test_paper_values_of_the_real_recipes():
    fian = recipes.get("fian", "activitynet-captions", "full")
    assert fian["model"]["window_sizes"] == (16, 32, 64, 96, 128, 160, 192)
    assert (fian["model"]["stride_fraction"], fian["model"]["alpha"], fian["model"]["heads"]) == (0.25, 0.001, 8)
    assert (fian["lr"], fian["batch_size"], fian["num_clips"]) == (8e-4, 128, 200)
    assert fian["sources"]["model.window_sizes"].startswith("paper (FIAN")
    tacos = recipes.get("fian", "tacos", "full")
    assert tacos["model"]["window_sizes"] == (8, 16, 32, 64) and tacos["model"]["stride_fraction"] == 0.125
    cha = recipes.get("fian", "charades-sta", "full")
    assert (cha["model"]["alpha"], cha["model"]["heads"], cha["lr"], cha["batch_size"]) == (0.005, 4, 4e-4, 64)
    marn = recipes.get("marn", "activitynet-captions", "full")
    assert (marn["model"]["epsilon"], marn["model"]["stride_fraction"], marn["num_clips"]) == (0.3, 0.25, 128)
    assert len(marn["model"]["scales"]) == 64
    assert recipes.get("marn", "charades-sta", "full")["model"]["scales"] == (6, 7, 8, 9, 10, 11)
    fsan = recipes.get("fsan", "didemo", "full")
    assert (fsan["batch_size"], fsan["lr"], fsan["model"]["d_model"], fsan["model"]["layers"]) == (128, 1e-4, 512, 6)
    wsra = recipes.get("wsra", "didemo", "full")
    assert wsra["model"]["candidates"] == "didemo"
    assert [wsra["model"][w] for w in ("w_bg", "w_crov", "w_vas", "w_ins")] == [0.1, 0.1, 0.1, 1.0]
    assert wsra["lr"] == 1e-4 and wsra["batch_size"] == 42
    assert recipes.get("wsra", "charades-sta", "full")["sources"]["model.w_bg"].startswith("ours")
    vla = recipes.get("vlanet", "charades-sta", "full")
    assert vla["model"]["window_frames"] == (176.0, 208.0, 240.0) and vla["model"]["stride_frames"] == 8.0
    assert recipes.get("vlanet", "didemo", "tiny")["model"]["candidates"] == "didemo"
    # the real tiny profile keeps the dataset's structure with the tiny widths
    tiny = recipes.get("fian", "activitynet-captions", "tiny")
    assert tiny["model"]["window_sizes"] == fian["model"]["window_sizes"] and tiny["model"]["hidden"] == 64


def test_synthetic_recipes_are_the_chapters_settings():
    assert recipes.get("marn", "charades", "tiny")["model"]["epsilon"] == 0.1
    assert recipes.get("marn", "activitynet", "tiny")["model"]["epsilon"] == 0.3
    assert recipes.get("fsan", "charades", "full")["lr"] == 1e-4
    assert recipes.get("fian", "charades", "tiny")["batch_size"] == 64
    assert "scales" not in recipes.get("marn", "charades", "tiny")["model"]  # derived from the data
    wsra = recipes.get("wsra", "activitynet", "full")
    assert wsra["model"]["w_bg"] == 0.0 and wsra["sources"]["model.w_bg"].startswith("tuned on validation")


def test_get_returns_a_fresh_copy_and_accepts_a_profile_object():
    r = recipes.get("fian", "charades", "tiny")
    r["model"]["hidden"] = 999
    r["sources"].clear()
    again = recipes.get("fian", "charades", wsg.get_profile("tiny"))
    assert again["model"]["hidden"] == 64 and again["sources"]


@pytest.mark.parametrize("args, listed", [
    (("nope", "charades", "tiny"), "marn, wsra, vlanet, fsan, fian"),
    (("fian", "kinetics", "tiny"), "charades-sta, activitynet-captions, tacos, didemo"),
    (("fian", "charades", "huge"), "tiny, full"),
])
def test_unknown_names_list_the_known_ones(args, listed):
    with pytest.raises(ValueError, match=listed):
        recipes.get(*args)


def test_marn_scales_hand_worked():
    # lengths 2, 4, ..., 20 clips of 20: quartile 6.5 -> 6 (round half to even), 95th 19.1 -> 19
    lengths = torch.arange(2, 21, 2, dtype=torch.float64) / 20
    moments = torch.stack([torch.zeros(10, dtype=torch.float64), lengths], 1)
    expected_lo = round(float(np.quantile(np.arange(2, 21, 2), 0.25)))
    expected_hi = round(float(np.quantile(np.arange(2, 21, 2), 0.95)))
    assert recipes.marn_scales(moments, 20) == tuple(range(expected_lo, expected_hi + 1))
    assert recipes.marn_scales(moments, 20)[0] == 6 and recipes.marn_scales(moments, 20)[-1] == 19


def test_train_config_and_model_config_overrides():
    r = recipes.get("fsan", "charades", "tiny")
    cfg = recipes.train_config(r, seed=3, epochs=2)
    assert (cfg.lr, cfg.epochs, cfg.seed, cfg.protocol) == (1e-3, 2, 3, "2d-tan")
    conf = recipes.model_config(r, fake_bench("charades", 32), layers=0)
    assert conf["layers"] == 0 and conf["d_model"] == 64 and conf["vocab_size"] == 40
    assert list(recipes.table(r).columns) == ["value", "source"]


# ----------------------------------------------------------------------------- load_benchmark
def write_charades_sta(root, videos=8, per_video=2, seed=0, dim=16, features="npy"):
    """Charades-STA in its release format (txt + Charades csv) and an .npy feature folder."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    feat = root / "features"
    feat.mkdir(exist_ok=True)
    for split, prefix in (("train", "TR"), ("test", "TE")):
        lines, csv = [], ["id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length"]
        for v in range(videos):
            vid = f"{prefix}{v:03d}"
            duration = float(rng.uniform(20, 40))
            csv.append(f"{vid},s,kitchen,6,7,Yes,x,y,z,c000 0.0 5.0,{duration:.2f}")
            for q in range(per_video):
                s = float(rng.uniform(0, duration / 2))
                lines.append(f"{vid} {s:.1f} {s + 5:.1f}##a person opens the door {q}.")
            np.save(feat / f"{vid}.npy", rng.standard_normal((int(duration), dim)).astype(np.float32))
        (root / f"charades_sta_{split}.txt").write_text("\n".join(lines) + "\n")
        (root / f"Charades_v1_{split}.csv").write_text("\n".join(csv) + "\n")
    return root, feat


def test_load_benchmark_charades_sta_holds_out_val_by_video(tmp_path):
    root, feat = write_charades_sta(tmp_path / "cha", videos=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bench = load_benchmark("charades-sta", root, feat, num_clips=16, val_fraction=0.2)
    train, val, test = (bench.splits[s] for s in ("train", "val", "test"))
    assert len(set(train.video_id) & set(val.video_id)) == 0
    assert set(train.video_id) | set(val.video_id) == {f"TR{v:03d}" for v in range(10)}
    assert val.video_id.nunique() == 2 and len(val) == 4  # 20 % of 10 videos, every query of each
    assert len(test) == 20 and bench.num_clips == 16 and bench.name == "charades-sta"
    assert bench.model_kwargs()["video_dim"] == 16
    # the vocabulary is built on the training split only
    assert set(bench.vocab.itos) >= {"person", "opens"}


def test_load_benchmark_synthetic_and_bad_input(tmp_path):
    bench = load_benchmark("charades", profile="tiny", cache_dir=tmp_path, num_videos=(6, 3, 3))
    assert bench.name == "synthetic-charades" and len(bench.splits["train"]) >= 12
    with pytest.raises(ValueError, match="charades-sta, activitynet-captions, tacos, didemo"):
        load_benchmark("kinetics")
    with pytest.raises(ValueError, match=r"root=.*--root"):
        load_benchmark("tacos", features=tmp_path)
    with pytest.raises(ValueError, match=r"features=.*--features.*FEATURES"):
        load_benchmark("activitynet-captions", root=tmp_path)


def test_chapters_read_their_settings_from_the_recipes():
    """Each method chapter takes its hyper-parameters from wsg.recipes (defined once) and its data from
    the DATASET / DATA_ROOT / FEATURES parameters (also settable from the environment)."""
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "notebooks" / "src"
    for name, key in (("02_marn", "marn"), ("03_wsra", "wsra"), ("04_vlanet", "vlanet"), ("05_fsan", "fsan"),
                      ("06_fian", "fian")):
        text = (src / f"{name}.md").read_text()
        assert f'RECIPE = wsg.recipes.get("{key}", DATASET, profile)' in text, name
        assert 'os.environ.get("WSG_DATASET", "charades")' in text and 'os.environ.get("WSG_FEATURES")' in text
        assert "wsg.data.load_benchmark(DATASET, DATA_ROOT, FEATURES, profile" in text, name
    assert "TINY_WIDTHS" not in (src / "06_fian.md").read_text()  # Chapter 6 compares the methods' own recipes


@pytest.mark.parametrize("preset", ["charades", "activitynet"])
def test_weak_recipes_never_read_a_training_moment(preset, monkeypatch):
    """Weak stays weak: every weak method's model config, built from the synthetic preset with its
    training moments withheld (``train_moments`` fails; the training table's times are replaced by
    random ones), is the config built from the full benchmark."""
    import copy

    import numpy as np

    from wsg.data import load_synthetic
    from wsg.models import supervision_of

    bench = load_synthetic(preset, "tiny")
    withheld = copy.copy(bench)
    train = bench.splits["train"].copy()
    start = np.random.default_rng(0).uniform(0, 0.5, len(train)) * train["duration"]
    train["start"], train["end"] = start, start + 0.05 * train["duration"]
    withheld.splits = {**bench.splits, "train": train}
    monkeypatch.setattr(withheld, "train_moments", _withheld, raising=False)
    for key in recipes.METHODS:
        if supervision_of(key) == "full":
            continue
        r = recipes.get(key, preset, "tiny")
        assert recipes.model_config(r, withheld) == recipes.model_config(r, bench), key
        if key in ("vlanet", "wsra", "fsan"):  # the windows read off the validation moments, too
            r["windows"] = "validation"
            assert recipes.model_config(r, withheld) == recipes.model_config(r, bench), key


def test_marn_scales_need_a_validation_split():
    bench = fake_bench("charades", 32)
    bench.splits = {"train": None, "test": None}
    with pytest.raises(ValueError, match="validation"):
        recipes.model_config(recipes.get("marn", "charades", "tiny"), bench)


def test_validation_windows_hand_worked():
    """Quantiles of the lengths at (i + 1/2) / count, at least one clip: lengths 0.1, 0.2, ..., 1.0."""
    lengths = torch.arange(1, 11, dtype=torch.float64) / 10
    moments = torch.stack([torch.zeros(10, dtype=torch.float64), lengths], 1)
    expected = tuple(float(np.quantile(lengths.numpy(), q)) for q in (0.25, 0.75))  # (0.325, 0.775)
    assert recipes.validation_windows(moments, 2, 32) == pytest.approx(expected)
    assert recipes.validation_windows(moments * 0.001, 2, 32) == (1 / 32, 1 / 32)  # never below one clip


def test_validation_windows_in_model_config():
    """VLANet's windows in frames (fractions x video_frames), WSRA's as fractions, from the validation
    moments and as many as the recipe has; FSAN's span lengths the range of MARN's rule; MARN (its scales
    already follow the validation moments) and unknown rules are refused."""
    from wsg.models.vlanet import VLANetConfig

    bench = fake_bench("charades", 32)
    val = bench.moments("val")
    for key, field, count in (("vlanet", "window_frames", 3), ("wsra", "window_fractions", 4)):
        r = recipes.get(key, "charades", "tiny")
        r["windows"] = "validation"
        got = recipes.model_config(r, bench)[field]
        fractions = recipes.validation_windows(val, count, 32)
        scale = VLANetConfig.video_frames if key == "vlanet" else 1.0
        assert got == pytest.approx(tuple(f * scale for f in fractions)) and len(got) == count
        wsg.models.build(key, **recipes.model_config(r, bench))  # a valid config
    r = recipes.get("fsan", "charades", "tiny")
    r["windows"] = "validation"
    scales = recipes.marn_scales(val, 32)
    assert recipes.model_config(r, bench)["span_lengths"] == (scales[0], scales[-1])
    r = recipes.get("marn", "charades", "tiny")
    r["windows"] = "validation"
    with pytest.raises(ValueError, match="VLANet, WSRA and FSAN"):
        recipes.model_config(r, bench)
    r = recipes.get("wsra", "charades", "tiny")
    r["windows"] = "quantiles"
    with pytest.raises(ValueError, match="windows must be one of"):
        recipes.model_config(r, bench)
