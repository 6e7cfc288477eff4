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


# ----------------------------------------------------------------------------- release layouts


def test_activitynet_c3d_groups_are_read_by_name(tmp_path):
    # sub_activitynet_v1-3.c3d.hdf5: f[vid]["c3d_features"] -> [T, 500] (2D-TAN / CPL loaders)
    path = tmp_path / "sub_activitynet_v1-3.c3d.hdf5"
    x = np.random.default_rng(0).normal(size=(7, 500)).astype(np.float32)
    with h5py.File(path, "w") as h5:
        h5.create_group("v_abc").create_dataset("c3d_features", data=x)
        h5.create_group("v_def").create_dataset("c3d_features", data=x[:3])
    store = open_features(path)
    assert store.layout == "c3d-groups" and store.seconds_per_row is None
    np.testing.assert_array_equal(store.get("v_abc"), x)
    assert store["v_def"].shape == (3, 500) and "v_abc" in store and "v_zzz" not in store


def test_unrecognised_hdf5_layout_lists_keys_and_shapes(tmp_path):
    path = tmp_path / "odd.hdf5"
    with h5py.File(path, "w") as h5:
        h5.create_group("v1").create_dataset("rgb", data=np.ones((3, 2)))
        h5.create_group("v2").create_dataset("rgb", data=np.ones((4, 2)))
    with pytest.raises(ValueError) as err:
        open_features(path)
    msg = str(err.value)
    assert "odd.hdf5: unrecognised feature layout" in msg
    assert "'v1': group {'rgb'[3, 2]}" in msg and "'v2': group {'rgb'[4, 2]}" in msg
    empty = tmp_path / "empty.h5"
    h5py.File(empty, "w").close()
    with pytest.raises(ValueError, match="empty.h5: the HDF5 file holds no keys"):
        open_features(empty)


@pytest.mark.parametrize("file_key, asked", [("s13-d21.avi", "s13-d21"), ("s13-d21", "s13-d21.avi"),
                                              ("s13-d21.avi", "s13-d21.avi")])
def test_tacos_ids_resolve_with_or_without_avi(tmp_path, file_key, asked):
    path = tmp_path / "tall_c3d_features.hdf5"
    with h5py.File(path, "w") as h5:
        h5[file_key] = np.arange(8.0).reshape(2, 4)
    store = open_features(path)
    assert store.layout == "datasets"
    assert store.resolve(asked) == file_key and asked in store
    assert store[asked].tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_missing_video_names_file_video_record_and_what_exists(tmp_path):
    path = tmp_path / "tall_c3d_features.hdf5"
    with h5py.File(path, "w") as h5:
        for k in ("s13-d21.avi", "s14-d22.avi", "s15-d23.avi", "s16-d24.avi"):
            h5[k] = np.ones((2, 4))
    with pytest.raises(KeyError) as err:
        open_features(path).get("s99-d1", record="train.json['s99-d1'][0]")
    msg = str(err.value)
    assert msg.startswith(str(path))                       # printed as written, not quoted
    assert "'s99-d1'" in msg and "train.json['s99-d1'][0]" in msg
    assert "'s99-d1' or 's99-d1.avi'" in msg and "among 4 videos" in msg and "'s13-d21.avi'" in msg


def test_didemo_chunk_files_are_recognised_by_name_and_cut_to_the_video(tmp_path):
    # LocalizingMoments' average_fc7.h5: f[video] -> [6, 4096], zero rows after the video's end
    path = tmp_path / "average_fc7.h5"
    x = np.zeros((6, 4096), np.float32)
    x[:4] = np.arange(1, 5)[:, None]                       # a 20 s video: 4 chunks, 2 zero rows
    with h5py.File(path, "w") as h5:
        h5["123@N00_456_abc.mov"] = x
        h5["bad.mp4"] = np.ones((5, 4096))
    store = open_features(path)
    assert store.layout == "didemo-chunks" and store.seconds_per_row == 5.0
    assert store.get("123@N00_456_abc.mov").shape == (6, 4096)
    assert store.get("123@N00_456_abc.mov", duration=20.0)[:, 0].tolist() == [1, 2, 3, 4]
    assert store.get("123@N00_456_abc.mov", duration=30.0).shape == (6, 4096)
    assert store.get("123@N00_456_abc.mov", duration=22.0).shape == (5, 4096)   # a partial chunk counts
    with pytest.raises(ValueError, match=r"bad.mp4.*\[6, D\].*\[5, 4096\]"):
        store.get("bad.mp4")
    # the same file under another name is a plain layout unless forced
    other = tmp_path / "rgb.h5"
    path.rename(other)
    assert open_features(other).layout == "datasets"
    assert open_features(other, layout="didemo-chunks").get("123@N00_456_abc.mov", duration=10.0).shape == (2, 4096)


def test_npy_folder_squeezes_singleton_axes_and_rejects_a_folder_without_npy(tmp_path):
    np.save(tmp_path / "AB12C.npy", np.ones((5, 1, 1, 1024), np.float32))   # LGI's I3D files
    np.save(tmp_path / "QX7PL.npy", np.ones((5, 2, 1024), np.float32))
    store = open_features(tmp_path)
    assert store.layout == "npy-folder" and store["AB12C"].shape == (5, 1024)
    with pytest.raises(ValueError, match=r"QX7PL.*expected a \[T, D\] array"):
        store["QX7PL"]
    empty = tmp_path / "feats"
    empty.mkdir()
    (empty / "readme.txt").write_text("")
    with pytest.raises(ValueError, match=r"feats: unrecognised feature layout.*readme.txt"):
        open_features(empty)
    with pytest.raises(ValueError, match="layout must be one of"):
        open_features(tmp_path, layout="groups")
    with pytest.raises(FileNotFoundError):
        open_features(tmp_path / "nothing.hdf5")
