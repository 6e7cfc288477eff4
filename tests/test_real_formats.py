"""The four real benchmarks in their official formats, end to end, on fixtures the tests write.

For Charades-STA, ActivityNet Captions, TACoS and DiDeMo (see ``fixtures_real.py``): the
annotation files as released, with the known defects of the releases, and a feature file
in the layout the public loaders read, at the real width (1024 / 500 / 4096 / 4096). Each
loads through ``wsg.data.Benchmark.from_files`` with the default arguments, and each of the
five methods trains one epoch and is evaluated on it.
"""
import json
import math
import warnings

import h5py
import numpy as np
import pytest
import torch

import wsg.models
from fixtures_real import DATASETS, REAL_WIDTHS, UNKNOWN_QUERY, tiny_model, write_real
from wsg.data import Benchmark, open_features, read_annotations, resample, split_validation
from wsg.data.annotations import AnnotationRepairWarning
from wsg.train import Trainer, TrainConfig, evaluate

torch.set_num_threads(1)

NUM_CLIPS = 16
METHODS = ("marn", "wsra", "vlanet", "fsan", "fian")


def load(fx, num_clips: int = NUM_CLIPS, **read_kwargs):
    """``Benchmark.from_files`` with default arguments; Charades-STA's val is held out of train by video."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bench = Benchmark.from_files(fx.dataset, fx.root, fx.features, num_clips=num_clips, splits=fx.splits,
                                     **read_kwargs)
    if "val" not in bench.splits:  # Charades-STA has no official validation split
        train, val = split_validation(bench.splits["train"], fraction=0.34, seed=0)
        bench = Benchmark(bench.name, {"train": train, "val": val, "test": bench.splits["test"]}, bench.features,
                          num_clips=num_clips, root=fx.root)
    repairs = [str(w.message) for w in caught if issubclass(w.category, AnnotationRepairWarning)]
    return bench, repairs


@pytest.fixture(scope="module", params=DATASETS)
def real(request, tmp_path_factory):
    fx = write_real(request.param, tmp_path_factory.mktemp(request.param))
    bench, repairs = load(fx)
    return fx, bench, repairs


def raw_features(fx, vid: str) -> np.ndarray:
    """A video's features read straight from the file with h5py, as the public loaders do."""
    with h5py.File(fx.features, "r") as h5:
        if fx.dataset == "activitynet":
            return h5[vid]["c3d_features"][:]                                 # 2D-TAN / CPL
        return h5[vid][:]                                                      # f[vid][:]


# ----------------------------------------------------------------------------- loading


def test_tables_load_with_defaults_and_name_the_repairs(real):
    fx, bench, repairs = real
    assert len(repairs) == sum(bool(r) for r in fx.repairs.values())     # one warning per repaired split
    for split, expected in fx.repairs.items():
        if expected:
            msg = next(m for m in repairs if f"{fx.dataset} {split}" in m)
            assert "dropped_invalid=2" in msg and all(r in msg for r in fx.dropped[split])
            assert str(fx.root) in msg                                       # the file is named
    total = {s: len(bench.splits[s]) for s in bench.splits}
    if fx.dataset == "charades-sta":                                         # val held out of train
        assert total["train"] + total["val"] == fx.queries["train"] and total["test"] == fx.queries["test"]
        assert set(bench.splits["train"]["video_id"]).isdisjoint(bench.splits["val"]["video_id"])
    else:
        assert total == fx.queries
    for split in bench.splits:
        df = bench.splits[split]
        assert list(df.columns[:6]) == ["video_id", "duration", "start", "end", "sentence", "record"]
        assert (df["start"] < df["end"]).all() and (df["end"] <= df["duration"]).all()


def test_features_have_the_real_width_and_the_files_values(real):
    fx, bench, _ = real
    assert bench.video_dim == fx.width == REAL_WIDTHS[fx.dataset]
    assert bench.model_kwargs()["video_dim"] == fx.width
    ds = bench.dataset("test")
    vid = fx.videos["test"][0]
    x = raw_features(fx, vid)
    if fx.dataset == "didemo":                                               # cut to the video's chunks
        chunks = int(bench.splits["test"].set_index("video_id").loc[vid, "num_segments"].iloc[0])
        assert chunks == 4 and not x[chunks:].any()
        x = x[:chunks]
    expected = resample(x, NUM_CLIPS)
    torch.testing.assert_close(ds._clips[vid], expected)
    assert ds[0]["video"].shape == (NUM_CLIPS, fx.width)
    if fx.dataset == "didemo":
        assert (ds._clips[vid].abs().sum(1) > 0).all()                     # no padding chunk inside


def test_a_test_query_of_unknown_words_is_evaluated(real):
    fx, bench, _ = real
    ds = bench.dataset("test")
    assert ds.unknown_queries == fx.unknown["test"]
    row = bench.splits["test"]["record"].tolist().index(fx.unknown["test"][0])
    assert UNKNOWN_QUERY in bench.splits["test"]["sentence"][row].lower()
    assert set(ds[row]["words"].tolist()) == {bench.vocab.unk_id}


# ----------------------------------------------------------------------------- every method on every dataset


@pytest.mark.parametrize("key", METHODS)
def test_every_method_trains_one_epoch_and_evaluates(real, key):
    fx, bench, _ = real
    wsg.train.set_seed(0)
    model = wsg.models.build(key, **bench.model_kwargs(), **tiny_model(key, bench.video_dim))
    history = Trainer(model, TrainConfig(epochs=1, lr=1e-3, progress=False, device="cpu")).fit(
        bench.loader("train", batch_size=8), bench.loader("val", batch_size=8))
    assert len(history) == 1 and math.isfinite(float(history["loss"].iloc[0]))
    metrics = evaluate(model, bench.loader("test", batch_size=8), protocol="2d-tan", top_k=5, device="cpu")
    assert set(metrics) >= {"R@1,IoU=0.5", "R@5,IoU=0.5", "mIoU"}
    assert all(0.0 <= v <= 100.0 for v in metrics.values()), metrics


# ----------------------------------------------------------------------------- variants of the releases


def test_official_files_before_and_after(tmp_path):
    """Old default (invalid='raise') refused both releases; the default now drops and names them."""
    for name in ("charades-sta", "activitynet"):
        fx = write_real(name, tmp_path / name)
        with pytest.raises(ValueError) as err:
            read_annotations(fx.dataset, fx.root, "train", invalid="raise")
        assert all(r in str(err.value) for r in fx.dropped["train"])
        with pytest.warns(AnnotationRepairWarning):
            df = read_annotations(fx.dataset, fx.root, "train")
        assert len(df) == fx.queries["train"] == fx.written["train"] - 2
        assert df.attrs["repairs"] == fx.repairs["train"]
        assert df.attrs["repaired_records"]["dropped_invalid"] == fx.dropped["train"]


def test_charades_npy_folder_and_activitynet_2dtan_names(tmp_path):
    fx = write_real("charades-sta", tmp_path / "c", features="npy")
    assert open_features(fx.features).layout == "npy-folder"
    bench, _ = load(fx)
    assert bench.video_dim == 1024 and len(bench.dataset("test")) == fx.queries["test"]
    fx = write_real("activitynet-captions", tmp_path / "a", names="2d-tan")
    bench, _ = load(fx)
    assert len(bench.splits["val"]) == fx.queries["val"] and bench.video_dim == 500
    fx = write_real("activitynet", tmp_path / "o")                          # the release's own split names
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AnnotationRepairWarning)
        assert len(read_annotations("activitynet", fx.root, "val_1")) == fx.queries["val"]
        assert len(read_annotations("activitynet", fx.root, "val_2")) == fx.queries["test"]


@pytest.mark.parametrize("avi_in_features", [True, False])
def test_tacos_ids_with_or_without_avi(tmp_path, avi_in_features):
    fx = write_real("tacos", tmp_path, avi_in_features=avi_in_features)
    with h5py.File(fx.features, "r") as h5:
        assert all(k.endswith(".avi") is avi_in_features for k in h5)
    bench, _ = load(fx)
    assert bench.splits["train"]["video_id"].str.endswith(".avi").all()      # 2D-TAN's json keys
    assert len(bench.dataset("train")) == fx.queries["train"] and bench.video_dim == 4096


# ----------------------------------------------------------------------------- bad input: file + record


def test_missing_features_name_file_video_and_record(tmp_path):
    fx = write_real("activitynet", tmp_path)
    gone = fx.videos["test"][1]
    with h5py.File(fx.features, "a") as h5:
        del h5[gone]
    bench, _ = load(fx)
    bench.dataset("train")                                                   # other splits are fine
    with pytest.raises(KeyError) as err:
        bench.dataset("test")
    msg = str(err.value)
    assert str(fx.features) in msg and repr(gone) in msg and f"val_2.json[{gone!r}][0]" in msg


def test_mixed_widths_name_the_video_and_record(tmp_path):
    fx = write_real("charades-sta", tmp_path)
    odd = fx.videos["train"][2]
    with h5py.File(fx.features, "a") as h5:
        del h5[odd]
        h5[odd] = np.ones((30, 4096), np.float32)                            # a VGG video among I3D ones
    bench, _ = load(fx)
    with pytest.raises(ValueError) as err:
        bench.dataset("train")
    msg = str(err.value)
    assert "mixed feature widths" in msg and f"video {odd!r} (record charades_sta_train.txt:" in msg
    assert "is 4096-d" in msg and "1024-d" in msg


def test_unrecognised_feature_layout_lists_what_it_found(tmp_path):
    fx = write_real("didemo", tmp_path)
    odd = tmp_path / "features.h5"
    with h5py.File(odd, "w") as h5:
        for vid in fx.videos["train"][:2]:
            h5.create_group(vid).create_dataset("fc7", data=np.ones((6, 8)))
    with pytest.raises(ValueError) as err:
        Benchmark.from_files("didemo", fx.root, odd)
    msg = str(err.value)
    assert "unrecognised feature layout" in msg and repr(fx.videos["train"][0]) in msg and "'fc7'[6, 8]" in msg


def test_punctuation_only_sentence_names_file_and_record(tmp_path):
    fx = write_real("tacos", tmp_path)
    data = json.loads((fx.root / "val.json").read_text())
    vid = next(iter(data))
    data[vid]["sentences"][1] = " ... "
    (fx.root / "val.json").write_text(json.dumps(data))
    with pytest.raises(ValueError) as err:
        read_annotations("tacos", fx.root, "val")
    assert f"val.json[{vid!r}][1]" in str(err.value) and "no word token" in str(err.value)
