"""Chapters run end to end on real-format data through their parameters cell.

Chapters 2 to 6 (MARN, WSRA, VLANet, FSAN, FIAN) execute under nbval with
``WSG_DATASET=charades-sta`` and the Charades-STA fixture of ``tests/fixtures_real.py`` (the
official TALL txt + Charades csv annotations, 1024-d I3D features in one HDF5 file): the same
path a reader takes with the real release, on a few videos. Cells that need the synthetic
benchmark (its event table, the results store's bar, learned behaviour calibrated on it) say
what they skip; every derivation check runs.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_real import write_real

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("chapter", ["02_marn", "03_wsra", "04_vlanet", "05_fsan", "06_fian"])
def test_chapter_runs_on_a_charades_sta_fixture(tmp_path, chapter):
    fx = write_real("charades-sta", tmp_path / "charades", n_videos=(24, 8), per_video=3)
    env = {**os.environ, "WSG_DATASET": "charades-sta", "WSG_DATA_ROOT": str(fx.root),
           "WSG_FEATURES": str(fx.features), "WSG_PROFILE": "tiny", "WSG_DATA": str(tmp_path / "cache"),
           "WSG_CHECKPOINTS": str(tmp_path / "checkpoints")}  # trains: never loads or writes the repository's
    done = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider",
                           str(ROOT / "notebooks" / f"{chapter}.ipynb")], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=1200)
    assert done.returncode == 0, done.stdout[-4000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
