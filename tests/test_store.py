"""The results store (wsg.store) and its digests (wsg.provenance.code_digest / data_digest)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from wsg.experiments import difference
from wsg.provenance import _source_without_docstrings, data_digest
from wsg.store import StoreMismatchError, check_comparable, load_results

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _module(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return _source_without_docstrings(path)


def test_code_digest_ignores_prose_and_sees_code(tmp_path):
    base = _module(tmp_path, "a.py", 'def f(x):\n    """Add one."""\n    return x + 1  # why\n')
    prose = _module(tmp_path, "b.py", 'def f(x):\n    """Add one, as Eq. 3 says."""\n    # a new comment\n'
                                      '    return x + 1\n')
    code = _module(tmp_path, "c.py", 'def f(x):\n    """Add one."""\n    return x + 2\n')
    only_doc = _module(tmp_path, "d.py", 'def f(x):\n    """Only a docstring."""\n')
    assert base == prose
    assert base != code
    assert "Pass" in only_doc  # a body of only a docstring keeps a valid tree


def test_data_digest_follows_the_data(small_bench):
    from wsg.controls import query_blind

    assert data_digest(small_bench) == data_digest(small_bench)
    assert data_digest(query_blind(small_bench)) != data_digest(small_bench)


def _rows(code, data, values):
    return pd.DataFrame({"code": code, "data": data, "R@1,IoU=0.5": values})


def test_rows_of_different_code_are_not_compared():
    a, b = _rows("c1", "d1", [50.0, 52.0, 54.0]), _rows("c2", "d1", [40.0, 41.0, 43.0])
    with pytest.raises(StoreMismatchError, match="code digests differ"):
        difference(a, b, metric="R@1,IoU=0.5")
    assert difference(a, _rows("c1", "d2", [40.0, 41.0, 43.0]), metric="R@1,IoU=0.5")["separated"]
    with pytest.raises(StoreMismatchError, match="data digests differ"):
        difference(a, _rows("c1", "d2", [40.0, 41.0, 43.0]), metric="R@1,IoU=0.5", digests=("code", "data"))
    with pytest.raises(ValueError, match="metric"):
        difference(a, b)
    check_comparable(a, _rows(None, None, [1.0, 2.0]))  # rows without digests: nothing recorded to disagree


def test_load_results_refuses_a_file_of_mixed_code(tmp_path):
    import wsg

    row = {"method": "wsra", "dataset": "charades", "profile": "tiny", "variant": "words", "R@1,IoU=0.5": 50.0,
           "wsg_version": wsg.__version__, "commit": "abc", "device": "cpu", "command": "x", "data": "d"}
    df = pd.DataFrame([{**row, "seed": 0, "code": "c1"}, {**row, "seed": 1, "code": "c2"}])
    df.to_csv(tmp_path / "tiny-charades.csv", index=False)
    with pytest.raises(StoreMismatchError, match="tiny-charades.csv"):
        load_results(tmp_path / "tiny-charades.csv")
    assert len(load_results(tmp_path / "tiny-charades.csv", digests=())) == 2


@pytest.mark.parametrize("path", sorted(RESULTS.glob("*.csv")), ids=lambda p: p.name)
def test_the_committed_store_is_uniform_where_it_records_digests(path):
    """Every row of a file that records digests was made by one code and one commit."""
    df = pd.read_csv(path)
    if "code" not in df:
        pytest.skip(f"{path.name}: written before the digests existed (make results regenerates it)")
    recorded = df[df["code"].notna()]
    assert recorded["code"].nunique() == 1, f"{path.name}: rows from {recorded['code'].nunique()} code digests"
    commits = recorded.get("commit", recorded.get("git_commit"))
    assert commits.nunique() == 1, f"{path.name}: rows from commits {sorted(commits.unique())}"
    assert not commits.astype(str).str.endswith("+dirty").any(), f"{path.name}: rows from a dirty tree"


def test_the_whole_store_is_one_regeneration():
    """Every job of the plan is in the promoted ledger, all at one commit and code digest, and every
    row of every file was made at that commit: the chapters compare nothing across commits."""
    import json

    from wsg.regenerate import PLAN

    ledger = json.loads((RESULTS / "ledger.json").read_text())
    assert {job.name for job in PLAN} <= set(ledger), "jobs the promoted ledger lacks"
    commits = {entry["commit"] for entry in ledger.values()}
    assert len(commits) == 1 and len({entry["code"] for entry in ledger.values()}) == 1, commits
    (commit,) = commits
    for job in PLAN:
        for name in job.outputs:
            df = pd.read_csv(RESULTS / name)
            made = set(df.get("commit", df.get("git_commit", pd.Series(dtype=str))).astype(str))
            assert made == {commit}, f"{name}: rows from {sorted(made)}, the ledger says {commit}"


@pytest.mark.parametrize("path", sorted(RESULTS.glob("*.csv")), ids=lambda p: p.name)
def test_a_stored_command_names_no_folder_of_the_machine_that_ran_it(path):
    """The chapters print each row's command for a reader to rerun: no absolute path in it."""
    df = pd.read_csv(path)
    if "command" in df:
        absolute = df["command"].astype(str).str.contains(r"(?:^|\s)/\S", regex=True)
        assert not absolute.any(), f"{path.name}: {df.loc[absolute, 'command'].iloc[0]}"


def test_the_plan_makes_every_file_of_the_store():
    from wsg.regenerate import PLAN

    made = {name for job in PLAN for name in job.outputs}
    stored = {p.name for p in RESULTS.glob("*.csv")}
    assert stored <= made, f"files no job of wsg.regenerate.PLAN makes: {sorted(stored - made)}"
    for job in PLAN:
        script = job.argv[0]
        assert script == "-m" or (RESULTS.parent / script).exists(), f"{job.name}: {script} does not exist"


def test_the_regeneration_resumes_where_it_stopped(tmp_path):
    import json

    from wsg.regenerate import PLAN, pending

    assert pending(tmp_path, "c1") == list(PLAN)
    (tmp_path / "ledger.json").write_text(json.dumps({PLAN[0].name: {"code": "c1"}, PLAN[1].name: {"code": "c0"}}))
    assert pending(tmp_path, "c1") == list(PLAN[1:])  # a job done for other code runs again
    assert pending(tmp_path, "c2") == list(PLAN)


def test_the_regeneration_never_runs_two_writers_of_one_file_at_once():
    from wsg.regenerate import Job, runnable

    a = Job("a", ("x",), ("tiny-charades.csv",), 100)
    b = Job("b", ("x",), ("tiny-charades.csv", "tiny-activitynet.csv"), 50)
    c = Job("c", ("x",), ("other.csv",), 300)
    assert runnable([a, b, c], running=[]) is a
    assert runnable([b, c], running=[a]) is c  # b shares a file with the running a
    assert runnable([b], running=[a]) is None
    assert runnable([a, b, c], running=[], seconds_left=60) is b  # a does not fit in the time left
    assert runnable([a, c], running=[], seconds_left=60) is None


def test_the_regeneration_runs_jobs_side_by_side_and_records_each(tmp_path, monkeypatch):
    import json

    import wsg.regenerate as regenerate

    def writes(name):  # a job that writes one small results file into the staging folder
        return ("-c", f"import pathlib; pathlib.Path(r'{{out}}/{name}').write_text('x\\n1\\n')")

    plan = (regenerate.Job("one", writes("a.csv"), ("a.csv",), 1, ()),
            regenerate.Job("two", writes("b.csv"), ("b.csv",), 1, ()),
            regenerate.Job("long", writes("c.csv"), ("c.csv",), 10 ** 6, ()))
    monkeypatch.setattr(regenerate, "PLAN", plan)
    assert regenerate.main(["--staging", str(tmp_path), "--jobs", "2", "--hours", "1"]) == 0
    ledger = json.loads((tmp_path / "ledger.json").read_text())
    assert sorted(ledger) == ["one", "two"]  # "long" does not fit in the hour: left for the next session
    assert pd.read_csv(tmp_path / "a.csv")["code"].nunique() == 1
    assert [job.name for job in regenerate.pending(tmp_path, ledger["one"]["code"])] == ["long"]
