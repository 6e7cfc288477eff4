"""What "reproduces" means for a stored number (see :mod:`wsg.provenance`).

On the machine that made a row or a checkpoint (same fingerprint), the same command must
give it again bit for bit. On another machine rounding differs, so a test proves two
weaker things instead: the command is deterministic here (run twice, identical), and its
numbers agree with the stored ones within :func:`seed_tolerance`.
"""
from __future__ import annotations

import pandas as pd

#: the tolerance is this many seed standard deviations ...
SEED_STDS = 3.0
#: ... and never less than this many points (a handful of test queries)
FLOOR = 1.0


def seed_tolerance(per_seed_values: pd.DataFrame) -> pd.Series:
    """Per metric: ``SEED_STDS`` x the sample std over the stored seeds, at least ``FLOOR`` points.

    Why the seed spread: another machine's rounding perturbs training the way another seed
    does, only less (the data order and the initialisation stay), so its effect on a metric
    should lie well inside the range a new seed would land in.
    """
    return (SEED_STDS * per_seed_values.std(ddof=1)).clip(lower=FLOOR)


def outside(again: pd.Series, stored: pd.Series, tolerance: pd.Series) -> dict:
    """``{metric: (again, stored, tolerance)}`` for every metric that differs by more than its tolerance."""
    return {c: (float(again[c]), float(stored[c]), float(tolerance[c])) for c in tolerance.index
            if abs(float(again[c]) - float(stored[c])) > float(tolerance[c])}
