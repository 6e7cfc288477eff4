import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from wsg.data import GroundingDataset, collate, open_features
from wsg.text import Vocabulary


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "f.hdf5"
    with h5py.File(path, "w") as h5:
        h5["a"] = np.arange(20.0).reshape(10, 2)
        h5["b"] = np.ones((4, 2))
    return open_features(path)


def table(**over):
    rows = {"video_id": ["a", "b", "a"], "duration": [10.0, 4.0, 10.0], "start": [1.0, 0.0, 5.0],
            "end": [4.0, 2.0, 10.0], "sentence": ["open the door", "hold a cup", "close the door"],
            "record": ["t.json['a'][0]", "t.json['b'][0]", "t.json['a'][1]"]}
    rows.update(over)
    return pd.DataFrame(rows)


def test_items_and_collate_pad_with_masks(store):
    df = table()
    ds = GroundingDataset(df, store, Vocabulary.build(df["sentence"]), num_clips=5)
    assert len(ds) == 3
    item = ds[0]
    torch.testing.assert_close(item["moment"], torch.tensor([0.1, 0.4]))
    torch.testing.assert_close(item["video"][:, 0], torch.tensor([1.0, 5.0, 9.0, 13.0, 17.0]))
    batch = collate([ds[0], ds[1]])
    assert batch["words"].shape == (2, 3) and batch["words_mask"].all()
    assert batch["video_idx"].tolist() == [0, 1] and ds[2]["video_idx"] == 0  # same video, same index
    native = GroundingDataset(df, store, ds.vocab, num_clips=None)
    b = collate([native[0], native[1]])
    assert b["video"].shape == (2, 10, 2)
    assert b["video_mask"].sum(1).tolist() == [10, 4]
    assert torch.all(b["video"][1, 4:] == 0)


def test_bad_moment_names_the_record(store):
    df = table(start=[1.0, 3.0, 5.0], end=[4.0, 3.0, 10.0])
    with pytest.raises(ValueError, match=r"t.json\['b'\]\[0\].*empty or outside"):
        GroundingDataset(df, store, Vocabulary.build(df["sentence"]))


def test_missing_features_name_file_and_record(store):
    df = table(video_id=["a", "zzz", "a"])
    with pytest.raises(KeyError, match=r"f.hdf5.*'zzz'.*t.json\['b'\]\[0\]"):
        GroundingDataset(df, store, Vocabulary.build(df["sentence"]))


def test_all_unknown_query_is_kept_as_unk_and_listed(store):
    # Was: refused with an error. Real test splits hold such queries; they are evaluated.
    df = table()
    vocab = Vocabulary.build(["open the door"])
    ds = GroundingDataset(df, store, vocab)
    assert len(ds) == 3
    assert ds[1]["words"].tolist() == [vocab.unk_id, vocab.unk_id, vocab.unk_id]   # "hold a cup"
    assert ds.unknown_queries == ["t.json['b'][0]"]


def test_missing_features_list_every_missing_video(store):
    df = table(video_id=["x1", "zzz", "a"])
    with pytest.raises(KeyError) as err:
        GroundingDataset(df, store, Vocabulary.build(df["sentence"]))
    msg = str(err.value)
    assert "2 of 3 videos" in msg and "'x1' (needed by t.json['a'][0])" in msg
    assert "'zzz' (needed by t.json['b'][0])" in msg and "f.hdf5" in msg


def test_mixed_feature_widths_raise_at_construction_naming_video_and_record(tmp_path):
    path = tmp_path / "mixed.hdf5"
    with h5py.File(path, "w") as h5:
        h5["a"] = np.ones((10, 2))
        h5["b"] = np.ones((4, 3))
        h5["c"] = np.ones((4, 2))
    df = table(video_id=["a", "b", "c"])
    with pytest.raises(ValueError) as err:
        GroundingDataset(df, open_features(path), Vocabulary.build(df["sentence"]))
    msg = str(err.value)
    assert "mixed.hdf5" in msg and "2 videos are 2-d" in msg
    assert "video 'b' (record t.json['b'][0]) is 3-d" in msg


def test_worker_processes_give_the_same_batches_in_the_same_order(small_bench):
    import torch

    one = [b["query_idx"] for b in small_bench.loader("train", 16, num_workers=0)]
    two = [b["query_idx"] for b in small_bench.loader("train", 16, num_workers=2)]
    assert all(torch.equal(a, b) for a, b in zip(one, two)) and len(one) == len(two)
