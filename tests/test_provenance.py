"""Provenance (wsg.provenance) and what ships with the book (wsg.shipped, results_dir, store_for,
the checkpoints a chapter opened alone loads)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import wsg.experiments as ex
from wsg.provenance import fingerprint_id, git_commit, machine_fingerprint, same_machine
from wsg.shipped import shipped_dir

ROOT = Path(__file__).resolve().parents[1]


def test_the_fingerprint_names_what_decides_rounding():
    fp = machine_fingerprint()
    assert {"torch", "torch_build", "cpu", "cpu_flags", "capability", "blas", "kernel_env", "threads"} <= set(fp)
    assert fp["capability"] == torch.backends.cpu.get_cpu_capability()
    assert fp["threads"] == torch.get_num_threads()
    assert len(fingerprint_id(fp)) == 12 and fingerprint_id(fp) == fingerprint_id()
    json.dumps(fp)  # it goes into a CSV cell and a checkpoint


def test_threads_are_part_of_the_machine():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = fingerprint_id()
        torch.set_num_threads(2)
        assert fingerprint_id() != one
        assert not same_machine(one) and same_machine(fingerprint_id())
    finally:
        torch.set_num_threads(threads)


def _fingerprint_under(**env) -> dict:
    code = "import json, wsg.provenance as p; print(json.dumps(p.machine_fingerprint()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, **env})
    return json.loads(out.stdout)


def test_another_kernel_set_is_another_machine():
    """Two machines can report the same capability and round differently: restricting the
    instruction set by an environment variable changes the fingerprint even where it does not
    change the capability (MKL_ENABLE_INSTRUCTIONS)."""
    here = _fingerprint_under(**{k: "" for k in ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")})
    other = _fingerprint_under(ATEN_CPU_CAPABILITY="default", MKL_ENABLE_INSTRUCTIONS="SSE4_2")
    assert other["capability"] == "DEFAULT" and other["kernel_env"]["MKL_ENABLE_INSTRUCTIONS"] == "SSE4_2"
    assert fingerprint_id(here) != fingerprint_id(other)


@pytest.mark.parametrize("recorded", [None, float("nan"), "", "0123456789ab"])
def test_a_missing_or_foreign_fingerprint_is_not_this_machine(recorded):
    assert not same_machine(recorded)


def test_git_commit_is_a_full_hash_with_a_dirty_flag():
    commit = git_commit()
    assert commit is None or len(commit.removesuffix("+dirty")) == 40


def test_store_rows_record_the_machine(small_bench):
    rows = ex.per_seed(ex.run("wsra", small_bench, seeds=[0], profile="tiny", epochs=1, controls=False))
    row = rows.iloc[0]
    assert row["machine"] == fingerprint_id(json.loads(row["fingerprint"]))
    assert row["machine"] == fingerprint_id()


# ----------------------------------------------------------------------------- shipped files
def test_in_a_clone_the_shipped_folders_are_the_repositorys():
    assert shipped_dir("results") == ROOT / "results"
    assert shipped_dir("checkpoints") == ROOT / "checkpoints"
    with pytest.raises(ValueError, match="unknown shipped folder"):
        shipped_dir("data")


def test_results_dir_prefers_the_variable_then_the_working_tree_then_the_shipped_copy(tmp_path, monkeypatch):
    monkeypatch.delenv("WSG_RESULTS", raising=False)
    monkeypatch.chdir(tmp_path)  # no results/ above a temporary folder
    assert ex.results_dir() == ROOT / "results"  # the copy that ships (here: the repository's)
    (tmp_path / "results").mkdir()
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert ex.results_dir() == tmp_path / "results"
    monkeypatch.setenv("WSG_RESULTS", str(tmp_path / "elsewhere"))
    assert ex.results_dir() == tmp_path / "elsewhere"


def test_store_for_falls_back_to_tiny_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WSG_RESULTS", str(tmp_path))
    (tmp_path / "tiny-charades.csv").write_text("x\n")
    assert ex.store_for("charades", "full") == (tmp_path / "tiny-charades.csv", "tiny")
    assert "no full results store for charades" in capsys.readouterr().out
    (tmp_path / "full-charades.csv").write_text("x\n")
    assert ex.store_for("charades", "full") == (tmp_path / "full-charades.csv", "full")
    assert ex.store_for("charades", "tiny") == (tmp_path / "tiny-charades.csv", "tiny")


def test_a_chapter_alone_loads_the_shipped_checkpoint_and_saves_elsewhere(small_bench, tmp_path, monkeypatch, capsys):
    """No checkpoints/ above the working folder: train_or_load finds the file among the shipped ones
    (read only) and would save a new one under ./checkpoints."""
    import wsg.checkpoints as ck
    import wsg.shipped
    from wsg.models import build
    from wsg.recipes import get, model_config
    from wsg.train import set_seed

    recipe = get("wsra", "charades", "tiny")
    shipped = tmp_path / "wheel" / "checkpoints"
    monkeypatch.setattr(wsg.shipped, "shipped_dir", lambda name: shipped)
    work = tmp_path / "colab"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("WSG_CHECKPOINTS", raising=False)
    set_seed(0)
    model = build("wsra", **model_config(recipe, small_bench))
    _, _, info = ck.train_or_load("wsra", model, small_bench, recipe, dataset="charades", epochs=1, progress=False,
                                  path=shipped / "tiny" / "wsra-charades-seed0.pt")  # make the "shipped" file
    set_seed(0)
    model = build("wsra", **model_config(recipe, small_bench))
    _, _, info = ck.train_or_load("wsra", model, small_bench, recipe, dataset="charades", epochs=1, progress=False)
    assert info["loaded"] and info["path"] == shipped / "tiny" / "wsra-charades-seed0.pt"
    assert not (work / "checkpoints").exists()
    assert ck.chapter_checkpoint("wsra", "charades", "tiny") == work / "checkpoints" / "tiny" / "wsra-charades-seed0.pt"


def test_a_capped_run_is_neither_saved_nor_taken_for_a_real_one(small_bench, tmp_path, monkeypatch, capsys):
    import wsg.checkpoints as ck
    from wsg.models import build
    from wsg.recipes import get, model_config
    from wsg.train import set_seed

    recipe = get("wsra", "charades", "tiny")
    path = tmp_path / "wsra.pt"
    set_seed(0)
    ck.train_or_load("wsra", build("wsra", **model_config(recipe, small_bench)), small_bench, recipe, path=path,
                     epochs=1, progress=False)
    monkeypatch.setenv("WSG_STEP_CAP", "1,1")
    set_seed(0)
    _, _, info = ck.train_or_load("wsra", build("wsra", **model_config(recipe, small_bench)), small_bench, recipe,
                                  path=path, epochs=1, progress=False)
    out = capsys.readouterr().out
    assert not info["loaded"] and "train.step_cap: checkpoint None vs now [1, 1]" in out
    assert "not saving the checkpoint: WSG_STEP_CAP is set" in out
    assert "step_cap" not in ck.load_checkpoint(path)["identity"]["train"]


def test_strong_bar_in_full_without_a_full_store_is_all_tiny(capsys):
    """No full store: the tiny store's rows, against the tiny benchmark's blind rows over the tiny
    recipe's candidates (MARN's map follows the data), whatever candidates the full chapter passes."""
    from wsg.data import load_synthetic
    from wsg.models import build
    from wsg.recipes import get, model_config

    tiny = load_synthetic("charades", "tiny")
    own = build("marn", **model_config(get("marn", "charades", "tiny"), tiny)).candidates()
    bogus = own[:3]
    table, verdict = ex.strong_bar("marn", tiny, bogus, dataset="charades", profile="full")
    reference, _ = ex.strong_bar("marn", tiny, own, dataset="charades", profile="tiny")
    assert "no full results store for charades" in capsys.readouterr().out
    assert table.loc["prior (own candidates)"].equals(reference.loc["prior (own candidates)"])
    assert table.index.name.endswith("charades/tiny")
