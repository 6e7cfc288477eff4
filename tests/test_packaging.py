"""The project's set-up files agree with each other."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}


def _name(req: str) -> str:
    return re.split(r"[<>=!\[ ]", req.strip(), maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {_name(d): d for d in env["dependencies"] if isinstance(d, str)}
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pip_names = {_name(p) for p in pip if not p.startswith("-e")}
    for req in project["dependencies"]:
        name = CONDA_NAMES.get(_name(req), _name(req))
        assert name in conda, f"{req} missing from environment.yml"
        lower = re.search(r">=\s*([\w.]+)", req).group(1)
        assert f">={lower}" in conda[name].replace(" ", ""), f"{name}: pyproject says {req}, conda {conda[name]}"
    for extra in ("test", "book"):
        for req in project["optional-dependencies"][extra]:
            assert _name(req) in pip_names, f"extra {extra}: {req} missing from environment.yml pip section"
    assert "-e ." in pip


def test_book_toolchain_pinned_below_2_and_torch_loose():
    text = (ROOT / "pyproject.toml").read_text()
    assert '"jupyter-book>=1.0.4.post1,<2"' in text
    assert '"torch>=2.1"' in text
    makefile = (ROOT / "Makefile").read_text()
    assert "torch==2.13.0" in makefile  # installed first, pinned


def test_ci_calls_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make book" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_notebook_is_in_the_toc_and_stored_without_outputs():
    import json

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = {c["file"] for part in toc["parts"] for c in part["chapters"]}
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    for nb in notebooks:
        assert f"notebooks/{nb.stem}" in files, f"{nb.name} missing from _toc.yml"
        cells = json.loads(nb.read_text())["cells"]
        assert all(not c.get("outputs") for c in cells if c["cell_type"] == "code"), f"{nb.name} has outputs"
        tags = [set(c.get("metadata", {}).get("tags", [])) for c in cells]
        assert any("parameters" in t for t in tags), f"{nb.name} has no parameters cell"
        assert any({"skip-execution", "nbval-skip"} <= t for t in tags), f"{nb.name}: Colab cell not tagged"
