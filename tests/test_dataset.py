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


def test_unknown_query_names_the_record(store):
    df = table()
    vocab = Vocabulary.build(["open the door"])
    with pytest.raises(ValueError, match=r"t.json\['b'\]\[0\].*unknown"):
        GroundingDataset(df, store, vocab)
