import h5py
import numpy as np
import pytest
import torch

from wsg.data.features import HDF5Features, NpyFeatures, open_features, resample


def naive_resample(x, n):
    T = len(x)
    out = []
    for i in range(n):
        s, e = int(round(i * T / n)), int(round((i + 1) * T / n))
        s = min(s, T - 1)
        e = max(e, s + 1)
        out.append(x[s:e].mean(0))
    return np.stack(out)


@pytest.mark.parametrize("T,n", [(100, 32), (32, 32), (7, 16), (1, 4), (33, 5)])
def test_resample_matches_a_loop(T, n):
    x = np.random.default_rng(T).normal(size=(T, 3)).astype(np.float32)
    np.testing.assert_allclose(resample(x, n).numpy(), naive_resample(x, n), rtol=1e-5, atol=1e-5)


def test_resample_hand_worked():
    x = torch.arange(4.0).unsqueeze(1)  # rows 0, 1, 2, 3
    assert resample(x, 2).squeeze(1).tolist() == [0.5, 2.5]
    assert resample(x[:2], 4).squeeze(1).tolist() == [0.0, 0.0, 1.0, 1.0]


def test_resample_rejects_empty():
    with pytest.raises(ValueError, match="non-empty"):
        resample(np.zeros((0, 3)), 4)


def test_hdf5_store_reads_and_names_file_on_errors(tmp_path):
    path = tmp_path / "feats.hdf5"
    with h5py.File(path, "w") as h5:
        h5["v1"] = np.ones((5, 3))
        h5["flat"] = np.ones(5)
        h5["empty"] = np.ones((0, 3))
        h5["nan"] = np.full((2, 3), np.nan)
    store = open_features(path)
    assert isinstance(store, HDF5Features)
    assert store["v1"].shape == (5, 3) and store["v1"].dtype == np.float32
    with pytest.raises(KeyError, match=r"feats.hdf5.*'v2'.*train.json:3"):
        store.get("v2", record="train.json:3")
    with pytest.raises(ValueError, match=r"feats.hdf5\['flat'\]"):
        store["flat"]
    with pytest.raises(ValueError, match="shorter than one clip"):
        store["empty"]
    with pytest.raises(ValueError, match="NaN"):
        store["nan"]


def test_npy_store(tmp_path):
    np.save(tmp_path / "v1.npy", np.arange(6.0).reshape(3, 2))
    store = open_features(tmp_path)
    assert isinstance(store, NpyFeatures)
    assert store.keys() == ["v1"]
    assert store["v1"].tolist() == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(KeyError, match="no features for video 'v9'"):
        store["v9"]


def test_open_features_rejects_unknown_files(tmp_path):
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(ValueError, match="hdf5"):
        open_features(tmp_path / "x.txt")
    with pytest.raises(FileNotFoundError):
        HDF5Features(tmp_path / "missing.h5")
