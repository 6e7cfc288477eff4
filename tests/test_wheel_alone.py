"""A chapter opened alone, as Colab gets it: the wheel in a fresh virtual environment, only the
notebooks in an empty folder, nothing of the repository reachable.

Slow (a virtual environment with torch, three chapters executed), so it runs in its own
target, ``make wheel-check`` (which ``.ci/run`` calls), and is skipped otherwise.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ("01_task_data_evaluation", "02_marn", "07_comparison")
TORCH = os.environ.get("TORCH", "torch==2.13.0")

pytestmark = pytest.mark.skipif(os.environ.get("WSG_WHEEL_CHECK") != "1",
                                reason="the wheel-alone check runs in `make wheel-check` (WSG_WHEEL_CHECK=1)")


def _run(cmd, **kw):
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, ROOT])
    (path,) = out.glob("wsg_book-*.whl")
    return path


def test_the_wheel_carries_the_store_and_the_checkpoints(wheel):
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    for f in (ROOT / "results").glob("*.csv"):
        assert f"wsg/_shipped/results/{f.name}" in names, f.name
    for f in (ROOT / "checkpoints" / "tiny").glob("*-charades-seed0.pt"):
        assert f"wsg/_shipped/checkpoints/tiny/{f.name}" in names, f.name


def test_chapters_run_from_the_wheel_in_an_empty_folder(wheel, tmp_path):
    venv, folder = tmp_path / "venv", tmp_path / "colab"
    _run([sys.executable, "-m", "venv", venv])
    python = venv / "bin" / "python"
    _run([python, "-m", "pip", "install", "-q", TORCH])  # first and pinned, as the Makefile does
    _run([python, "-m", "pip", "install", "-q", f"{wheel}[test]"])
    _run([python, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3"])
    folder.mkdir()
    source = ROOT / "colab" if (ROOT / "colab").is_dir() else ROOT / "notebooks"  # what Colab opens
    for name in CHAPTERS:
        shutil.copy(source / f"{name}.ipynb", folder)
    # nothing of the repository: no results/ or checkpoints/ above the folder, no variables pointing
    # there, a fresh data cache, this venv's kernel first on the Jupyter path
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WSG_", "PYTHON", "JUPYTER", "VIRTUAL_ENV")) and k != "TQDM_DISABLE"}
    env.update(WSG_PROFILE="tiny", WSG_DATA=str(tmp_path / "data"), TQDM_DISABLE="1",
               JUPYTER_PATH=str(venv / "share" / "jupyter"), PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")
    where = _run([python, "-c", "import wsg, wsg.shipped; print(wsg.__file__); print(wsg.shipped.shipped_dir('results'))"],
                 cwd=folder, env=env).split()
    site = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], env=env).strip()
    assert all(w.startswith(site) for w in where), f"wsg and its store must come from the wheel: {where}"
    assert sysconfig.get_paths()["purelib"] != site
    done = subprocess.run([python, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider",
                           "--nbval-cell-timeout", os.environ.get("WSG_CELL_TIMEOUT", "600"),
                           *[f"{n}.ipynb" for n in CHAPTERS]], cwd=folder, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "failed" not in done.stdout and " passed" in done.stdout, done.stdout[-2000:]
    assert not (folder / "results").exists(), "a chapter wrote a results folder where it should have read the wheel's"
