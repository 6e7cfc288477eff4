"""What ships with the book besides the code: the results store and the ``tiny`` checkpoints.

In a clone of the repository they are the folders ``results/`` and ``checkpoints/`` at its
root. An installed wheel (what a Colab chapter gets from its set-up cell) carries a copy of
both inside the package, in ``wsg/_shipped/`` (``setup.py`` puts it there when the wheel is
built), so a chapter opened alone finds the same numbers and weights. The copy is read
only: checkpoints a chapter trains are written to ``./checkpoints`` (or
``$WSG_CHECKPOINTS``), never into the installed package.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["shipped_dir", "SHIPPED"]

#: the folders that ship (a repository folder and its copy in the wheel have the same name)
SHIPPED = ("results", "checkpoints")


def shipped_dir(name: str) -> Path | None:
    """The shipped folder ``name`` (``"results"`` or ``"checkpoints"``): the wheel's copy, else the
    repository's own folder when wsg is imported from a clone; ``None`` when there is neither."""
    if name not in SHIPPED:
        raise ValueError(f"unknown shipped folder {name!r}; expected one of {SHIPPED}")
    packaged = Path(str(resources.files("wsg"))) / "_shipped" / name
    if packaged.is_dir():
        return packaged
    repository = Path(__file__).resolve().parents[1]
    if (repository / "pyproject.toml").is_file() and (repository / name).is_dir():
        return repository / name
    return None
