"""The chapters run in the ``full`` profile too: static checks on their MyST sources.

Executing a chapter in ``full`` (``WSG_PROFILE=full WSG_STEP_CAP=2,1``) takes minutes per chapter
on a CPU, too slow for this suite; these checks keep the properties that made it possible:

* the results folder and the per-profile store are found by the library
  (``wsg.experiments.results_dir`` / ``store_for``), never by ad-hoc paths, so a chapter opened
  alone (Colab) or run in ``full`` without a ``full`` store reads the ``tiny`` one, labelled;
* every chapter that trains reads ``wsg.train.capped_note()`` once, so the asserts about what a
  trained model learned can step aside under ``WSG_STEP_CAP`` while the derivation checks run;
* the strong bar is checked in every profile (``strong_bar(..., profile=...)`` falls back to the
  ``tiny`` store), not only in ``tiny``.
"""
import re
from pathlib import Path

import pytest

SOURCES = sorted((Path(__file__).resolve().parents[1] / "notebooks" / "src").glob("*.md"))


def _code(path):
    """The code of every {code-cell} block of a MyST notebook (solutions in prose are not run)."""
    return "\n".join(re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", path.read_text(), flags=re.S))


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_results_are_found_by_the_library(source):
    code = _code(source)
    for pattern in ("find_store(", 'Path("results")', '"../results"', "'../results'"):
        assert pattern not in code, f"{source.name}: use wsg.experiments.results_dir() or store_for(), not {pattern}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_a_chapter_that_trains_reads_the_step_cap(source):
    code = _code(source)
    if "train_or_load(" in code or "Trainer(" in code:
        assert "CAPPED = wsg.train.capped_note()" in code, \
            f"{source.name} trains but never reads wsg.train.capped_note()"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_the_strong_bar_is_checked_in_every_profile(source):
    code = _code(source)
    for call in re.findall(r"strong_bar\((.*?)\)\n", code, flags=re.S):
        assert "profile=" in call, f"{source.name}: strong_bar without profile= reads the tiny store in full"
    assert not re.search(r'if [^\n]*profile\.name == "tiny"[^\n]*:\n\s*bar, verdict = ', code), \
        f"{source.name}: the strong bar is skipped outside tiny"
