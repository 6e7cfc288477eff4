"""Run profiles: ``tiny`` (CPU, every chapter in a minute or two) and ``full`` (GPU, larger data).

The profile is chosen by the ``WSG_PROFILE`` environment variable; without it, ``full``
when a CUDA device is present and ``tiny`` otherwise. Every chapter can override it in
its parameters cell.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace

import torch


@dataclass(frozen=True)
class Profile:
    """Sizes that scale a chapter's run time.

    Attributes:
        name: ``"tiny"`` or ``"full"``.
        num_train_videos / num_val_videos / num_test_videos: synthetic split sizes
            (each video holds 2-4 queries).
        epochs: default number of training epochs for a method chapter.
        batch_size: default training batch size.
        device: ``"cuda"`` or ``"cpu"``.
        amp: mixed precision in training (:class:`wsg.train.TrainConfig`).
        max_minutes: the time budget of one training run (``None``: none; a Colab session ends,
            so ``full`` stops at an epoch boundary, keeping the best validation weights).
    """

    name: str
    num_train_videos: int
    num_val_videos: int
    num_test_videos: int
    epochs: int
    batch_size: int
    device: str
    amp: bool = False
    max_minutes: float | None = None

    def with_(self, **changes) -> "Profile":
        """A copy with some fields changed (e.g. ``profile.with_(epochs=3)``)."""
        return replace(self, **changes)


_PROFILES = {
    "tiny": dict(num_train_videos=400, num_val_videos=80, num_test_videos=150, epochs=12, batch_size=32),
    # a time budget per training run: a chapter trains its main model once in `full`, and a free
    # Colab session ends after a few hours
    "full": dict(num_train_videos=4000, num_val_videos=500, num_test_videos=1000, epochs=40, batch_size=64,
                 amp=True, max_minutes=45.0),
}


def get_profile(name: "Profile | str | None" = None) -> Profile:
    """Return the named profile, or the one selected by ``WSG_PROFILE`` / the hardware.

    Raises:
        ValueError: for an unknown profile name.
    """
    if isinstance(name, Profile):
        return name
    cuda = torch.cuda.is_available()
    if name is None:
        name = os.environ.get("WSG_PROFILE") or ("full" if cuda else "tiny")
    name = name.strip().lower()
    if name not in _PROFILES:
        raise ValueError(f"unknown profile {name!r}; expected one of {sorted(_PROFILES)}")
    return Profile(name=name, device="cuda" if cuda else "cpu", **_PROFILES[name])
