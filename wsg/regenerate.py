"""Remake the whole results store from one commit: ``make results`` (``python -m wsg.regenerate``).

Every file of ``results/`` is listed in :data:`PLAN` with the command that makes it and the
seconds it took last time (one CPU thread per process, on the machine that made the store). The
command runs the plan into a staging folder, ``results/next/``, and never touches ``results/``
until every job is done; then ``--promote`` copies the staged files into ``results/``, with the
ledger (``results/ledger.json``: the commit, code digest and seconds of every job), so the
chapters switch from the old store to the new one in a single commit.

**Resumable, across sessions.** The store holds hours of CPU time (``--list`` prints the
estimate from :data:`PLAN`). A job is done
when ``results/next/ledger.json`` records it for the current code digest
(:func:`wsg.provenance.code_digest`); a rerun skips it. Commit ``results/next/`` between
sessions and the next session goes on where the last stopped. ``--commit SHA`` pins the run:
it refuses to start unless ``HEAD`` is that commit and the tree is clean, so every staged row
comes from one commit. After each job the regenerator stamps its files' rows with the commit,
the code digest, the generator version and the data digest of the presets the job trains on
(the :mod:`wsg.experiments` rows record their own), so :mod:`wsg.store` can refuse comparisons
across code or data.

**Two cores, a few hours at a time.** ``--jobs 2`` runs two jobs at once (jobs that write the same
file wait for each other) and ``--hours 2.5`` starts only the jobs expected to finish in that
time, so a working session ends on a recorded ledger rather than on a killed job. Between
sessions the working checkout moves on (prose, the staged files) while the pinned commit stays:
run the pinned commit from a ``git worktree`` and point ``--staging`` at the working checkout's
``results/next/`` (the rows record the commit of the tree ``wsg`` is imported from)::

    git worktree add ../pinned SHA
    PYTHONPATH=../pinned .venv/bin/python -m wsg.regenerate --commit SHA --staging results/next --jobs 2 --hours 2.5
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

__all__ = ["Job", "PLAN", "pending", "runnable", "main"]

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Job:
    """One command of the plan: what it writes, and roughly how long it takes."""

    name: str
    argv: tuple[str, ...]  # after ``python``; ``{out}`` is the staging folder
    outputs: tuple[str, ...]  # files it writes under the staging folder
    seconds: float  # seconds it took at the last regeneration (one thread a process, two at once on two cores)
    presets: tuple[tuple[str, str], ...] = field(default=(("charades", "uniform"),))  # (preset, condition)


_EXP = ("-m", "wsg.experiments")
_BOTH = (("charades", "uniform"), ("activitynet", "uniform"))

#: every file of the store, with its command (in an order that makes the chapters' main tables first)
PLAN: tuple[Job, ...] = (
    *(Job(f"main tables: {key.upper()}", _EXP + (key, "--datasets", "charades", "activitynet", "--profile", "tiny",
                                                "--seeds", "0,1,2", "--blind", "--out", "{out}"),
          ("tiny-charades.csv", "tiny-activitynet.csv"), seconds, _BOTH)
      for key, seconds in (("wsra", 220), ("vlanet", 180), ("fsan", 390), ("marn", 1870))),
    Job("main tables: FIAN", _EXP + ("fian", "--datasets", "charades", "activitynet", "--profile", "tiny", "--seeds",
                                     "0,1,2", "--blind", "--out", "{out}"), ("tiny-charades.csv", "tiny-activitynet.csv"),
        540, _BOTH),
    Job("restarts against the seed spread (validation)", ("scripts/seed_spread.py", "--out", "{out}/seed_spread.csv"),
        ("seed_spread.csv",), 1420),
    Job("FIAN label budgets", _EXP + ("fian", "--datasets", "charades", "--profile", "tiny", "--seeds", "0,1,2",
                                      "--label-fractions", "0.01,0.05,0.25", "--out", "{out}"), ("tiny-charades.csv",),
        310),
    Job("start-biased world", _EXP + ("wsra", "vlanet", "fsan", "marn", "fian", "--datasets", "charades", "--profile",
                                      "tiny", "--seeds", "0,1,2", "--condition", "start", "--out", "{out}"),
        ("tiny-charades-start.csv",), 690, (("charades", "start"),)),
    Job("compositional world", _EXP + ("wsra", "vlanet", "fsan", "marn", "fian", "--datasets", "charades", "--profile",
                                       "tiny", "--seeds", "0,1,2", "--condition", "compositional", "--out", "{out}"),
        ("tiny-charades-compositional.csv",), 500, (("charades", "compositional"),)),
    Job("MARN scale rules", ("scripts/marn_experiments.py", "--study", "scales", "--presets", "charades", "--jobs", "1",
                             "--out", "{out}/marn_scales.csv"), ("marn_scales.csv", "marn_scales_history.csv"), 550),
    Job("MARN scale rules (ActivityNet-like)", ("scripts/marn_experiments.py", "--study", "scales-activitynet",
                                                "--jobs", "1", "--out", "{out}/marn_scales-activitynet.csv"),
        ("marn_scales-activitynet.csv", "marn_scales-activitynet_history.csv"), 800, (("activitynet", "uniform"),)),
    Job("MARN ablations", ("scripts/marn_experiments.py", "--study", "ablation", "--jobs", "1", "--out",
                           "{out}/marn_ablation.csv"), ("marn_ablation.csv", "marn_ablation_history.csv"), 530),
    Job("MARN learning rates", ("scripts/marn_experiments.py", "--study", "lr", "--jobs", "1", "--out",
                                "{out}/marn_lr.csv"), ("marn_lr.csv", "marn_lr_history.csv"), 250),
    Job("WSRA: what the words add", ("scripts/wsra_words_gain.py", "--out", "{out}"),
        ("wsra_words_gain.csv", "wsra_words_gain_epochs.csv"), 430, _BOTH),
    Job("VLANet decode rules", ("scripts/vlanet_rules.py", "--jobs", "1", "--out", "{out}"),
        ("vlanet_rules_val.csv", "vlanet_rules_test.csv"), 140, _BOTH),
    Job("FSAN decode", ("scripts/fsan_experiments.py", "--study", "decode", "--fresh", "--out", "{out}"),
        ("fsan_decode.csv", "fsan_decode_history.csv"), 390, _BOTH),
    Job("FSAN ablations", ("scripts/fsan_experiments.py", "--study", "ablation", "--out", "{out}"),
        ("fsan_ablation.csv",), 160),
    Job("paper departures (validation)", ("scripts/departures.py", "--out", "{out}/departures.csv"),
        ("departures.csv",), 1600),
    Job("choices under conditions", ("scripts/choices_under_conditions.py", "--jobs", "1", "--methods",
                                     "fsan,vlanet,wsra,marn", "--out", "{out}/choices_under_conditions.csv"),
        ("choices_under_conditions.csv",), 2050, (("charades", "start"), ("charades", "compositional"))),
    Job("candidate ceiling (development worlds)", ("scripts/candidate_ceiling.py", "--worlds", "20", "--out",
                                                   "{out}/candidate_ceiling_dev.csv"), ("candidate_ceiling_dev.csv",),
        30, ()),
    Job("where the extent fails (development worlds)", ("scripts/world_diagnosis.py", "--worlds", "0,3,5", "--out",
                                                       "{out}/world_diagnosis_dev.csv"),
        ("world_diagnosis_dev.csv", "world_diagnosis_dev_history.csv"), 5000, ()),
    Job("MARN with twice its budget (a development world)",
        ("scripts/world_diagnosis.py", "--worlds", "3", "--methods", "marn", "--epochs", "60", "--out",
         "{out}/world_budget_marn_dev.csv"), ("world_budget_marn_dev.csv", "world_budget_marn_dev_history.csv"),
        350, ()),
    Job("windows that follow the world (development worlds)",
        ("scripts/world_diagnosis.py", "--worlds", "0,3,5", "--methods", "wsra,vlanet", "--windows",
         "validation,recipe", "--out", "{out}/world_windows_dev.csv"),
        ("world_windows_dev.csv", "world_windows_dev_history.csv"), 790, ()),
    Job("FSAN span lengths that follow the world (development worlds)",
        ("scripts/world_diagnosis.py", "--worlds", "3,0", "--methods", "fsan", "--windows", "validation,recipe",
         "--out", "{out}/world_windows_fsan_dev.csv"),
        ("world_windows_fsan_dev.csv", "world_windows_fsan_dev_history.csv"), 710, ()),
    *(Job(f"held-out worlds, windows read off validation: {key.upper()}",
          _EXP + (key, "--worlds", "5", "--profile", "tiny", "--seeds", "0,1,2", "--blind", "--windows", "validation",
                  "--out", "{out}"), ("tiny-worlds-windows.csv",), seconds, ())
      for key, seconds in (("wsra", 6000), ("fsan", 6000))),
    *(Job(f"held-out worlds: {key.upper()}", _EXP + (key, "--worlds", "5", "--profile", "tiny", "--seeds", "0,1,2",
                                                    *blind, "--out", "{out}"), ("tiny-worlds.csv",), seconds, ())
      # MARN's query-blind variant would double its 3.3 CPU-hours; it is below chance among events there anyway
      for key, seconds, blind in (("wsra", 6000, ("--blind",)), ("vlanet", 3000, ("--blind",)),
                                  ("fsan", 6000, ("--blind",)), ("marn", 12000, ()))),
    Job("speed and memory", ("-m", "wsg", "bench", "--profile", "tiny", "--epochs", "3", "--threads", "1", "--out",
                             "{out}/bench.csv"), ("bench.csv",), 120),
    Job("speed and memory at Charades-STA size", ("-m", "wsg", "bench", "--profile", "tiny", "--epochs", "2",
                                                  "--threads", "1", "--videos", "4120,100,100", "--feature-dim", "1024",
                                                  "--out", "{out}/bench-charades-sta-size.csv"),
        ("bench-charades-sta-size.csv",), 300),
)


def _ledger(staging: Path) -> dict:
    path = staging / "ledger.json"
    return json.loads(path.read_text()) if path.exists() else {}


def pending(staging: Path, code: str) -> list[Job]:
    """The jobs of :data:`PLAN` not yet done for this code digest."""
    done = _ledger(staging)
    return [job for job in PLAN if done.get(job.name, {}).get("code") != code]


def _stamp(job: Job, staging: Path, provenance: dict) -> None:
    """Record how the job's rows were made in every file it wrote (rows it did not write keep theirs)."""
    from wsg.data import load_synthetic
    from wsg.experiments import CONDITIONS
    from wsg.provenance import data_digest

    data = "+".join(data_digest(load_synthetic(p, "tiny", **CONDITIONS[c])) for p, c in job.presets)
    if not job.presets:  # the job records its own data digests (per world)
        data = None
    for name in job.outputs:
        path = staging / name
        if not path.exists():
            raise FileNotFoundError(f"{job.name}: {path} was not written")
        df = pd.read_csv(path)
        if "command" in df:  # a reader reruns it with results/, not with this machine's staging folder
            df["command"] = df["command"].astype(str).str.replace(str(staging), "results", regex=False)
        if not ("code" in df and df["code"].notna().all()):  # wsg.experiments rows record their own digests
            for column, value in {**provenance, **({"data": data} if data else {})}.items():
                df[column] = value
        df.to_csv(path, index=False)


def _clean_commit(pin: str | None) -> str:
    from wsg.provenance import git_commit

    commit = git_commit() or "unknown"
    if pin is not None and (commit.endswith("+dirty") or not commit.startswith(pin)):
        raise SystemExit(f"--commit {pin}: HEAD is {commit}; check out {pin} on a clean tree first")
    return commit


def runnable(todo: list[Job], running: list[Job], seconds_left: float | None = None) -> Job | None:
    """The first job of ``todo`` that may start now: it writes no file a running job writes (two
    processes must not merge rows into one file at once) and, given ``seconds_left``, its
    expected time fits in what is left."""
    busy = {name for job in running for name in job.outputs}
    for job in todo:
        if busy.isdisjoint(job.outputs) and (seconds_left is None or job.seconds <= seconds_left):
            return job
    return None


def main(argv=None) -> int:
    """``python -m wsg.regenerate``: run the pending jobs of the plan (see the module docstring)."""
    from tqdm.auto import tqdm

    from wsg.data.synthetic import GENERATOR_VERSION
    from wsg.provenance import code_digest

    ap = argparse.ArgumentParser(prog="python -m wsg.regenerate", description=__doc__.splitlines()[0])
    ap.add_argument("--commit", default=None, help="refuse to run unless HEAD is this commit on a clean tree")
    ap.add_argument("--staging", default=str(ROOT / "results" / "next"), help="where the new store is built")
    ap.add_argument("--list", action="store_true", help="show the plan and what is left, run nothing")
    ap.add_argument("--promote", action="store_true", help="move a complete staged store into results/")
    ap.add_argument("--only", default=None, help="run only the jobs whose name contains this text")
    ap.add_argument("--jobs", type=int, default=1,
                    help="jobs run at once, one CPU thread each (jobs that write the same file wait for each other)")
    ap.add_argument("--hours", type=float, default=None,
                    help="start only the jobs expected to finish within this many hours (a session's time)")
    args = ap.parse_args(argv)
    staging, code = Path(args.staging).resolve(), code_digest()  # absolute: jobs run in ROOT
    todo = pending(staging, code)
    if args.only:
        todo = [j for j in todo if args.only in j.name]
    left = sum(j.seconds for j in todo)
    print(f"code {code}: {len(PLAN) - len(pending(staging, code))} of {len(PLAN)} jobs done; "
          f"{len(todo)} to run, about {left / 3600:.1f} CPU-hours "
          f"({left / 3600 / max(args.jobs, 1):.1f} hours with --jobs {args.jobs})")
    if args.list:
        for job in PLAN:
            print(f"  [{'x' if job not in pending(staging, code) else ' '}] {job.name} (~{job.seconds / 60:.0f} min)")
        return 0
    if args.promote:
        if pending(staging, code):
            raise SystemExit(f"{len(pending(staging, code))} jobs are not done for code {code}: nothing promoted")
        for job in PLAN:
            for name in job.outputs:
                shutil.copy2(staging / name, ROOT / "results" / name)
        shutil.copy2(staging / "ledger.json", ROOT / "results" / "ledger.json")  # which commit made it, and how long
        print(f"promoted {staging} into {ROOT / 'results'}; the staging folder can go")
        return 0
    commit = _clean_commit(args.commit)
    staging.mkdir(parents=True, exist_ok=True)
    deadline = None if args.hours is None else time.monotonic() + args.hours * 3600
    running: dict[subprocess.Popen, tuple[Job, float]] = {}
    failed: list[str] = []
    with tqdm(total=round(left), unit="s", desc="store (expected CPU seconds)") as bar:
        while todo or running:
            seconds_left = None if deadline is None else deadline - time.monotonic()
            job = runnable(todo, [j for j, _ in running.values()], seconds_left) if not failed else None
            if job is not None and len(running) < args.jobs:
                todo.remove(job)
                argv_ = [sys.executable, *(a.replace("{out}", str(staging)) for a in job.argv)]
                running[subprocess.Popen(argv_, cwd=ROOT)] = (job, time.monotonic())
                bar.set_postfix_str(", ".join(j.name for j, _ in running.values()))
                continue
            if not running:
                break  # nothing fits in the time left (or a job failed)
            time.sleep(2)
            for proc in [p for p in running if p.poll() is not None]:
                job, t0 = running.pop(proc)
                if proc.returncode != 0:
                    failed.append(job.name)
                    continue
                _stamp(job, staging, {"commit": commit, "code": code, "generator": GENERATOR_VERSION})
                ledger = _ledger(staging)
                ledger[job.name] = {"code": code, "commit": commit, "seconds": round(time.monotonic() - t0, 1),
                                    "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
                (staging / "ledger.json").write_text(json.dumps(ledger, indent=1, sort_keys=True))
                bar.update(round(job.seconds))
    if failed:
        raise SystemExit(f"failed (the ledger does not record them): {failed}")
    left = pending(staging, code)
    print(f"{len(PLAN) - len(left)} of {len(PLAN)} jobs done for code {code}"
          + (f"; {len(left)} left, about {sum(j.seconds for j in left) / 3600:.1f} CPU-hours" if left else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
