"""Tests for wsg.data.annotations: tiny files in each released format, hand-checked values."""
import contextlib
import json
import warnings

import pandas as pd
import pytest

from wsg.data.annotations import (
    AnnotationRepairWarning,
    apply_moment_policies,
    read_annotations,
    split_validation,
)

# ----------------------------------------------------------------------------- file writers

CHARADES_CSV = (
    "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length\n"
    'AAA1,S1,Kitchen,6,7,Yes,"A person opens a door, then turns on a light.",door;light,"opens, turns",c001 0.0 6.9,30.5\n'
    "BBB2,S2,Bedroom,5,7,Yes,A person sits.,chair,sits,c002 1.0 5.0,20.0\n"
)
CHARADES_TXT = (
    "AAA1 0.0 6.9##person opens a door.\n"
    "AAA1 24.3 31.0##person turns a light on.\n"
    "BBB2 1.5 5.2##a person sits on a chair.\n"
)


def write(path, text):
    path.write_text(text)
    return path


def write_json(path, obj):
    path.write_text(json.dumps(obj, indent=1))
    return path


def charades(root, txt=CHARADES_TXT, csv=CHARADES_CSV, split="train"):
    write(root / f"charades_sta_{split}.txt", txt)
    write(root / f"Charades_v1_{split}.csv", csv)
    return root


@contextlib.contextmanager
def no_warnings():
    """Fail if any repair warning is issued."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", AnnotationRepairWarning)
        yield


# ----------------------------------------------------------------------------- known-good reads


def test_charades_sta_joins_csv_duration_and_clips_end(tmp_path):
    charades(tmp_path)
    with pytest.warns(AnnotationRepairWarning, match="clipped_end=1"):
        df = read_annotations("charades-sta", tmp_path, "train")
    assert list(df.columns[:6]) == ["video_id", "duration", "start", "end", "sentence", "record"]
    assert df["video_id"].tolist() == ["AAA1", "AAA1", "BBB2"]
    assert df["duration"].tolist() == [30.5, 30.5, 20.0]          # from the csv `length` column
    assert df["start"].tolist() == [0.0, 24.3, 1.5]
    assert df["end"].tolist() == [6.9, 30.5, 5.2]                 # 31.0 clipped to 30.5
    assert df["sentence"].tolist() == ["person opens a door.", "person turns a light on.",
                                       "a person sits on a chair."]
    assert df["record"].tolist() == [f"charades_sta_train.txt:{i}" for i in (1, 2, 3)]
    assert df.attrs["repairs"] == {"clipped_end": 1}
    assert df.attrs["repaired_records"] == {"clipped_end": ["charades_sta_train.txt:2"]}
    assert df.attrs["dataset"] == "charades-sta" and df.attrs["split"] == "train"


def test_charades_alias_case_and_csv_elsewhere(tmp_path):
    (tmp_path / "ann").mkdir()
    (tmp_path / "meta").mkdir()
    write(tmp_path / "ann" / "charades_sta_test.txt", "BBB2 1.5 5.2##a person sits.\n\n")  # blank line ok
    csv = write(tmp_path / "meta" / "Charades_v1_test.csv", CHARADES_CSV)
    with no_warnings():
        df = read_annotations("Charades", tmp_path / "ann", "TEST", charades_csv=csv)
    assert df[["video_id", "duration", "start", "end"]].values.tolist() == [["BBB2", 20.0, 1.5, 5.2]]
    assert df.attrs["repairs"] == {}


def test_activitynet_reads_official_and_2dtan_names(tmp_path):
    ann = {"v_a": {"duration": 100.0, "timestamps": [[0, 20.5], [30, 60]],
                   "sentences": ["A man talks.", "  He runs away. "]},
           "v_b": {"duration": 12.0, "timestamps": [[1.25, 2.5]], "sentences": ["A dog."]}}
    write_json(tmp_path / "val.json", ann)                       # 2D-TAN / synthetic-benchmark name
    with no_warnings():
        df = read_annotations("ActivityNet", tmp_path, "val")
    assert df["video_id"].tolist() == ["v_a", "v_a", "v_b"]
    assert df["duration"].tolist() == [100.0, 100.0, 12.0]
    assert df["start"].tolist() == [0.0, 30.0, 1.25]
    assert df["end"].tolist() == [20.5, 60.0, 2.5]
    assert df["sentence"].tolist() == ["A man talks.", "He runs away.", "A dog."]
    assert df["record"].tolist() == ["val.json['v_a'][0]", "val.json['v_a'][1]", "val.json['v_b'][0]"]
    # the official name wins when both are present
    write_json(tmp_path / "val_1.json", {"v_c": {"duration": 5, "timestamps": [[1, 2]], "sentences": ["x"]}})
    assert read_annotations("activitynet", tmp_path, "val")["video_id"].tolist() == ["v_c"]
    write_json(tmp_path / "test.json", {"v_d": {"duration": 5, "timestamps": [[1, 2]], "sentences": ["y"]}})
    assert read_annotations("activitynet", tmp_path, "test")["record"].tolist() == ["test.json['v_d'][0]"]


def test_tacos_frames_to_seconds(tmp_path):
    write_json(tmp_path / "train.json", {
        "s13-d21.avi": {"num_frames": 2940, "fps": 29.4,
                        "timestamps": [[147, 441], [0, 2940]],
                        "sentences": ["He takes out a knife.", "He cuts a cucumber."]}})
    with no_warnings():
        df = read_annotations("TACoS", tmp_path, "train")
    assert df["duration"].tolist() == pytest.approx([100.0, 100.0])   # 2940 / 29.4
    assert df["start"].tolist() == pytest.approx([5.0, 0.0])          # 147 / 29.4
    assert df["end"].tolist() == pytest.approx([15.0, 100.0])         # 441 / 29.4
    assert df["record"].tolist() == ["train.json['s13-d21.avi'][0]", "train.json['s13-d21.avi'][1]"]


def didemo_record(k, times, n=6, desc="the girl jumps"):
    return {"video": f"vid{k}.mp4", "times": times, "description": desc,
            "num_segments": n, "annotation_id": 100 + k, "dl_link": "x"}


def test_didemo_mode_of_times_ties_and_cap(tmp_path):
    write_json(tmp_path / "val_data.json", [
        didemo_record(0, [[1, 2], [1, 2], [0, 0], [1, 2]]),            # mode (1, 2)
        didemo_record(1, [[3, 3], [0, 1], [0, 1], [3, 3]]),            # tie -> earliest listed (3, 3)
        didemo_record(2, [[4, 5], [4, 5], [4, 4]], n=5),               # 5 chunks: end 30 capped at 25
    ])
    with pytest.warns(AnnotationRepairWarning, match="clipped_end=1"):
        df = read_annotations("didemo", tmp_path, "val")
    assert df["duration"].tolist() == [30.0, 30.0, 25.0]
    assert df["start"].tolist() == [5.0, 15.0, 20.0]
    assert df["end"].tolist() == [15.0, 20.0, 25.0]
    assert df["times"].tolist()[0] == [(1, 2), (1, 2), (0, 0), (1, 2)]
    assert df["num_segments"].tolist() == [6, 6, 5]
    assert df["annotation_id"].tolist() == [100, 101, 102]
    assert df["record"].tolist() == ["val_data.json[0]", "val_data.json[1]", "val_data.json[2]"]
    assert df.attrs["repaired_records"] == {"clipped_end": ["val_data.json[2]"]}


# ----------------------------------------------------------------------------- names, splits, files


def test_unknown_dataset_lists_known_names(tmp_path):
    with pytest.raises(ValueError) as err:
        read_annotations("youcook", tmp_path, "train")
    for name in ("charades-sta", "activitynet", "didemo", "tacos"):
        assert name in str(err.value)


def test_charades_has_no_val_split(tmp_path):
    charades(tmp_path)
    with pytest.raises(ValueError, match="no official validation split.*split_validation"):
        read_annotations("charades-sta", tmp_path, "val")


def test_activitynet_release_split_names(tmp_path):
    for name, vid in [("val_1.json", "v_1"), ("val_2.json", "v_2"), ("val.json", "v_x"), ("test.json", "v_y")]:
        write_json(tmp_path / name, {vid: {"duration": 5, "timestamps": [[1, 2]], "sentences": ["a dog"]}})
    with no_warnings():
        assert read_annotations("activitynet", tmp_path, "val_1")["video_id"].tolist() == ["v_1"]
        assert read_annotations("activitynet", tmp_path, "VAL_2")["video_id"].tolist() == ["v_2"]
        assert read_annotations("activitynet", tmp_path, "val")["video_id"].tolist() == ["v_1"]   # official first
        assert read_annotations("activitynet", tmp_path, "test")["video_id"].tolist() == ["v_2"]
    assert read_annotations("activitynet", tmp_path, "val_1").attrs["split"] == "val_1"
    (tmp_path / "val_2.json").unlink()
    assert read_annotations("activitynet", tmp_path, "test")["video_id"].tolist() == ["v_y"]  # 2D-TAN name
    with pytest.raises(FileNotFoundError, match="val_2.json"):                              # no fallback
        read_annotations("activitynet", tmp_path, "val_2")
    with pytest.raises(ValueError, match="unknown split 'val_1' for tacos.*ActivityNet"):
        read_annotations("tacos", tmp_path, "val_1")


def test_bad_split_and_policy_names(tmp_path):
    with pytest.raises(ValueError, match="unknown split"):
        read_annotations("tacos", tmp_path, "dev")
    with pytest.raises(ValueError, match="out_of_range must be one of"):
        read_annotations("tacos", tmp_path, "train", out_of_range="trim")
    with pytest.raises(ValueError, match="invalid must be one of"):
        read_annotations("tacos", tmp_path, "train", invalid="ignore")


def test_missing_file_names_path_and_tried_names(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        read_annotations("activitynet", tmp_path, "val")
    assert str(tmp_path) in str(err.value) and "val_1.json" in str(err.value) and "val.json" in str(err.value)
    with pytest.raises(FileNotFoundError, match="test_data.json"):
        read_annotations("didemo", tmp_path, "test")
    write(tmp_path / "charades_sta_train.txt", CHARADES_TXT)       # txt present, csv missing
    with pytest.raises(FileNotFoundError, match="Charades_v1_train.csv.*charades_csv"):
        read_annotations("charades-sta", tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        read_annotations("charades-sta", tmp_path, "train", charades_csv=tmp_path / "nowhere.csv")


# ----------------------------------------------------------------------------- bad input names file + record

GOOD = "AAA1 0.0 6.9##person opens a door.\n"


@pytest.mark.parametrize("bad_line, message", [
    ("AAA1 0.0##two fields", "expected 3 fields"),
    ("AAA1 zero 5.0##non-numeric", "start is not a number"),
    ("AAA1 0.0 nan##not finite", "end is not finite"),
    ("AAA1 0.0 5.0 no separator", "missing '##'"),
    ("AAA1 0.0 5.0##   ", "empty"),
    ("AAA1 0.0 5.0## ... !", "no word token"),
    ("ZZZ9 0.0 5.0##unknown video", "'ZZZ9' not found in the Charades csv (Charades_v1_train.csv)"),
])
def test_charades_bad_lines(tmp_path, bad_line, message):
    charades(tmp_path, txt=GOOD + bad_line + "\n")
    with pytest.raises(ValueError) as err:
        read_annotations("charades-sta", tmp_path, "train")
    assert "charades_sta_train.txt:2" in str(err.value)
    assert message in str(err.value)


def test_charades_non_positive_duration(tmp_path):
    charades(tmp_path, csv=CHARADES_CSV.replace(",20.0\n", ",0\n"))
    with pytest.raises(ValueError) as err:
        read_annotations("charades-sta", tmp_path, "train")
    msg = str(err.value)
    assert "charades_sta_train.txt:3" in msg and "non-positive duration" in msg
    assert "Charades_v1_train.csv row 2" in msg


def anet(**v_b):
    good = {"duration": 50.0, "timestamps": [[1, 2]], "sentences": ["ok"]}
    return {"v_a": good, "v_b": {**good, **v_b}}


@pytest.mark.parametrize("entry, record, message", [
    ({"duration": None}, "train.json['v_b']", "duration is not a number"),
    ({"duration": -3}, "train.json['v_b']", "non-positive duration"),
    ({"timestamps": [[1, 2], [3, 4]]}, "train.json['v_b']", "'timestamps' has 2 entries but 'sentences' has 1"),
    ({"sentences": [" "]}, "train.json['v_b'][0]", "empty"),
    ({"sentences": ["?!"]}, "train.json['v_b'][0]", "no word token"),
    ({"timestamps": [["a", 2]]}, "train.json['v_b'][0]", "start is not a number"),
    ({"timestamps": [[1, 2, 3]]}, "train.json['v_b'][0]", "[start, end] pair"),
])
def test_activitynet_bad_records(tmp_path, entry, record, message):
    write_json(tmp_path / "train.json", anet(**entry))
    with pytest.raises(ValueError) as err:
        read_annotations("activitynet", tmp_path, "train")
    assert record in str(err.value) and message in str(err.value)


def test_activitynet_missing_key_and_bad_json(tmp_path):
    data = anet()
    del data["v_b"]["sentences"]
    write_json(tmp_path / "train.json", data)
    with pytest.raises(ValueError, match=r"train.json\['v_b'\]: missing key 'sentences'"):
        read_annotations("activitynet", tmp_path, "train")
    write(tmp_path / "train.json", '{"v_a": {"duration": 5,\n "timestamps": [[1, 2]]\n "sentences": []}}')
    with pytest.raises(ValueError, match=r"train.json:3: not valid JSON"):
        read_annotations("activitynet", tmp_path, "train")
    write(tmp_path / "train.json", "{}")
    with pytest.raises(ValueError, match="train.json: no annotations"):
        read_annotations("activitynet", tmp_path, "train")


@pytest.mark.parametrize("entry, message", [
    ({"fps": 0}, "non-positive fps"),
    ({"num_frames": "many"}, "num_frames is not a number"),
    ({"sentences": ["."]}, "no word token"),
])
def test_tacos_bad_records(tmp_path, entry, message):
    good = {"num_frames": 300, "fps": 30.0, "timestamps": [[0, 30]], "sentences": ["ok"]}
    write_json(tmp_path / "test.json", {"s1.avi": good, "s2.avi": {**good, **entry}})
    with pytest.raises(ValueError) as err:
        read_annotations("tacos", tmp_path, "test")
    assert "test.json['s2.avi']" in str(err.value) and message in str(err.value)


@pytest.mark.parametrize("change, message", [
    ({"times": []}, "'times' must be a non-empty list"),
    ({"times": [[2, 1]]}, "bad chunk pair [2, 1]"),
    ({"times": [[0, 6]]}, "bad chunk pair [0, 6]"),
    ({"num_segments": 0}, "num_segments must be an integer in 1..6"),
    ({"description": ""}, "empty"),
    ({"description": " -- . "}, "no word token"),
])
def test_didemo_bad_records(tmp_path, change, message):
    write_json(tmp_path / "train_data.json", [didemo_record(0, [[0, 0]]), {**didemo_record(1, [[0, 0]]), **change}])
    with pytest.raises(ValueError) as err:
        read_annotations("didemo", tmp_path, "train")
    assert "train_data.json[1]" in str(err.value) and message in str(err.value)


def test_didemo_missing_key(tmp_path):
    rec = didemo_record(0, [[0, 0]])
    del rec["video"]
    write_json(tmp_path / "train_data.json", [rec])
    with pytest.raises(ValueError, match=r"train_data.json\[0\]: missing key 'video'"):
        read_annotations("didemo", tmp_path, "train")


# ----------------------------------------------------------------------------- moment policies

POLICY_ANN = {"v_a": {"duration": 100.0,
                      "timestamps": [[10, 20], [30, 120], [-5, 10], [50, 40], [100, 110]],
                      "sentences": ["ok", "end out", "start out", "reversed", "starts at the end"]}}


def read_policy(tmp_path, **kw):
    write_json(tmp_path / "train.json", POLICY_ANN)
    return read_annotations("activitynet", tmp_path, "train", **kw)


def rec(i):
    return f"train.json['v_a'][{i}]"


def test_policy_clip_then_drop_invalid(tmp_path):
    with pytest.warns(AnnotationRepairWarning, match="clipped_start=1, clipped_end=2, dropped_invalid=2") as w:
        df = read_policy(tmp_path, out_of_range="clip", invalid="drop")
    assert w[0].filename == __file__                       # points at the caller
    assert df[["start", "end"]].values.tolist() == [[10, 20], [30, 100], [0, 10]]
    assert df["record"].tolist() == [rec(0), rec(1), rec(2)]
    assert df.attrs["repairs"] == {"clipped_start": 1, "clipped_end": 2, "dropped_invalid": 2}
    assert df.attrs["repaired_records"]["dropped_invalid"] == [rec(3), rec(4)]  # [100, 110] -> [100, 100]


def test_policy_defaults_clip_and_drop_invalid_naming_file_and_records(tmp_path):
    # The official releases must load as released: start >= end is dropped by default
    # (2D-TAN's choice), counted, and every dropped record is named with its file.
    with pytest.warns(AnnotationRepairWarning) as w:
        df = read_policy(tmp_path)                         # defaults: clip, drop
    msg = str(w[0].message)
    assert "dropped_invalid=2" in msg and rec(3) in msg and rec(4) in msg
    assert str(tmp_path / "train.json") in msg
    assert df.attrs["invalid"] == "drop" and df.attrs["repairs"]["dropped_invalid"] == 2
    assert df.attrs["repaired_records"]["dropped_invalid"] == [rec(3), rec(4)]
    assert df["record"].tolist() == [rec(0), rec(1), rec(2)]


def test_policy_invalid_raise_names_records(tmp_path):
    with pytest.raises(ValueError) as err:
        read_policy(tmp_path, invalid="raise")
    msg = str(err.value)
    assert "2 moment(s) with start >= end after clipping" in msg
    assert rec(3) in msg and rec(4) in msg and "invalid='drop'" in msg


def test_warning_names_every_dropped_record_up_to_a_limit(tmp_path):
    n = 25
    ann = {"v_a": {"duration": 10.0, "timestamps": [[1, 2]] + [[5, 5]] * n,
                   "sentences": ["ok"] + [f"empty {i}" for i in range(n)]}}
    write_json(tmp_path / "train.json", ann)
    with pytest.warns(AnnotationRepairWarning) as w:
        df = read_annotations("activitynet", tmp_path, "train")
    msg = str(w[0].message)
    assert len(df) == 1 and df.attrs["repairs"] == {"dropped_invalid": n}
    assert all(rec(i) in msg for i in range(1, 21)) and rec(21) not in msg and "and 5 more" in msg
    assert len(df.attrs["repaired_records"]["dropped_invalid"]) == n   # all of them, nothing lost


def test_policy_clip_keep_invalid(tmp_path):
    with pytest.warns(AnnotationRepairWarning, match="kept_invalid=2"):
        df = read_policy(tmp_path, invalid="keep")
    assert df[["start", "end"]].values.tolist() == [[10, 20], [30, 100], [0, 10], [50, 40], [100, 100]]
    assert df.attrs["repairs"] == {"clipped_start": 1, "clipped_end": 2, "kept_invalid": 2}


def test_policy_drop_out_of_range(tmp_path):
    with pytest.warns(AnnotationRepairWarning):
        df = read_policy(tmp_path, out_of_range="drop", invalid="drop")
    assert df[["start", "end"]].values.tolist() == [[10, 20]]
    assert df.attrs["repairs"] == {"dropped_out_of_range": 3, "dropped_invalid": 1}
    assert df.attrs["repaired_records"]["dropped_out_of_range"] == [rec(1), rec(2), rec(4)]


def test_policy_keep_everything(tmp_path):
    with pytest.warns(AnnotationRepairWarning):
        df = read_policy(tmp_path, out_of_range="keep", invalid="keep")
    assert df[["start", "end"]].values.tolist() == [[10, 20], [30, 120], [-5, 10], [50, 40], [100, 110]]
    assert df.attrs["repairs"] == {"kept_out_of_range": 3, "kept_invalid": 1}


def test_policy_raise_out_of_range(tmp_path):
    with pytest.raises(ValueError) as err:
        read_policy(tmp_path, out_of_range="raise", invalid="keep")
    msg = str(err.value)
    assert "3 moment(s) outside [0, duration]" in msg and rec(1) in msg and "(start 30, end 120, duration 100)" in msg


def test_apply_moment_policies_on_clean_table_is_silent():
    df = pd.DataFrame({"duration": [10.0], "start": [1.0], "end": [2.0], "record": ["x:1"]})
    with no_warnings():
        out = apply_moment_policies(df, out_of_range="raise", invalid="raise")
    assert out.attrs["repairs"] == {} and out[["start", "end"]].values.tolist() == [[1.0, 2.0]]


# ----------------------------------------------------------------------------- split_validation


def video_table(n_videos=20, per_video=3):
    rows = [(f"V{v:02d}", 30.0, q, q + 5.0, f"query {v} {q}", f"f.txt:{v * per_video + q + 1}")
            for v in range(n_videos) for q in range(per_video)]
    return pd.DataFrame(rows, columns=["video_id", "duration", "start", "end", "sentence", "record"])


def test_split_validation_by_video_and_deterministic():
    df = video_table()
    train, val = split_validation(df, fraction=0.1, seed=0)
    assert val["video_id"].nunique() == 2 and train["video_id"].nunique() == 18
    assert set(train["video_id"]).isdisjoint(val["video_id"])
    assert len(train) + len(val) == len(df) == 60
    assert sorted(train["record"].tolist() + val["record"].tolist()) == sorted(df["record"])
    assert val["record"].tolist() == sorted(val["record"], key=lambda r: int(r.split(":")[1]))  # order kept
    train2, val2 = split_validation(df, fraction=0.1, seed=0)
    pd.testing.assert_frame_equal(val, val2)
    pd.testing.assert_frame_equal(train, train2)
    assert set(split_validation(df.iloc[::-1], 0.1, 0)[1]["video_id"]) == set(val["video_id"])  # row order irrelevant
    assert set(split_validation(df, 0.1, seed=1)[1]["video_id"]) != set(val["video_id"])
    assert val.attrs["split"] == "val" and train.attrs["split"] == "train"


def test_split_validation_rejects_bad_arguments():
    with pytest.raises(ValueError, match="fraction"):
        split_validation(video_table(), fraction=1.0)
    with pytest.raises(ValueError, match="at least 2 videos"):
        split_validation(video_table(n_videos=1))
