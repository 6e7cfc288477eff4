"""The project's set-up files agree with each other."""
import json
import re
import sys
from pathlib import Path

import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

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
    for extra in ("test", "book", "lab"):
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


def _install_spec() -> tuple[str, str]:
    """(distribution name, the install requirement every instruction uses)."""
    name = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    return name, f"{name} @ git+{repo}"


def test_distribution_name_is_used_by_every_install_instruction():
    import importlib.metadata

    import wsg

    name, spec = _install_spec()
    assert name != "wsg", "`wsg` on PyPI is an unrelated project: the distribution needs its own name"
    assert wsg.DISTRIBUTION == name  # what wsg.__version__ is read from
    try:
        installed = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        installed = None  # a source tree that is not installed
    if installed is not None:
        assert wsg.__version__ == installed
    for doc in ("README.md", "book/how_to_run.md"):
        # the bare spec (the library) or a release of it (what the Colab cell installs)
        assert re.search(rf'pip install "{re.escape(spec)}(@v[\w.]+)?"', (ROOT / doc).read_text()), \
            f"{doc} does not install {spec}"
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        colab = [c for c in cells if "nbval-skip" in c.get("metadata", {}).get("tags", [])
                 and "pip install" in "".join(c["source"])]
        assert len(colab) == 1, f"{nb.name}: {len(colab)} Colab set-up cells"
        source = "".join(colab[0]["source"])
        # a release tag (tests/test_colab.py: the one pyproject.toml's version names), never `main`
        assert re.search(rf'%pip install -q "{re.escape(spec)}@v[\w.]+"', source), \
            f"{nb.name}: Colab cell does not install a release of {spec}"
        assert "import wsg" in source


def _workflow(name: str) -> tuple[dict, list[str]]:
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    runs = [step["run"].strip() for job in wf["jobs"].values() for step in job.get("steps", []) if "run" in step]
    return wf, runs


def _readme_commands() -> dict[str, str]:
    """The README's two commands ("make test", "make book"), read from its first bash block."""
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    return {c.split()[-1]: c for c in commands}


def test_workflows_run_the_readme_commands_like_ci():
    readme = _readme_commands()
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith("#")]
    assert readme["test"] in ci, ".ci/run does not run the README test command"

    for target in ("second-machine", "wheel-check", "full-check"):  # the readers'-machines checks
        assert any(target in line for line in ci), f".ci/run does not run make {target}"

    tests, runs = _workflow("tests.yml")
    assert runs == ["bash .ci/run"], f"tests.yml runs {runs}, not .ci/run"
    pythons = tests["jobs"]["test"]["strategy"]["matrix"]["python"]
    oldest = re.search(r'^requires-python = ">=([\d.]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert oldest in pythons and len(pythons) >= 2, f"the matrix {pythons} must test requires-python's {oldest} and the newest"
    on = tests.get("on", tests.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "push" in on and "pull_request" in on

    book, runs = _workflow("book.yml")
    assert runs[0] == readme["book"], f"book.yml builds with {runs[0]}, the README says {readme['book']}"
    on = book.get("on", book.get(True))
    assert on["push"]["branches"] == [yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["branch"]]
    steps = [s for job in book["jobs"].values() for s in job["steps"]]
    uses = [s.get("uses", "").split("@")[0] for s in steps]
    assert "actions/upload-pages-artifact" in uses and "actions/deploy-pages" in uses
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html"

    ci_data = re.search(r'WSG_DATA="\$\{WSG_DATA:-\$PWD/([^}]+)\}"', (ROOT / ".ci" / "run").read_text()).group(1)
    for wf in (tests, book):
        for job in wf["jobs"].values():
            if "steps" not in job or not any("run" in s for s in job["steps"]):
                continue
            assert job["env"]["WSG_PROFILE"] == "tiny"
            assert job["env"]["WSG_DATA"] == "${{ github.workspace }}/" + ci_data
            cached = {s["with"]["path"] for s in job["steps"] if s.get("uses", "").startswith("actions/cache")}
            assert cached == {".venv", ci_data}, f"caches {cached}: the environment and the synthetic data"
