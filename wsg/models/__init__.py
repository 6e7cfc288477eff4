"""The five methods behind one interface (:class:`~wsg.models.base.GroundingModel`).

``build(key, **config)`` creates a model from its key and the fields of its config
dataclass, e.g. ``build("marn", vocab_size=500, video_dim=128, num_clips=32)``.
"""
from __future__ import annotations

import importlib

from wsg.models.base import LABEL_KEYS, GroundingModel, strip_labels

# key -> (module, model class, config class); modules are imported on first use.
REGISTRY: dict[str, tuple[str, str, str]] = {}


def register(key: str, module: str, model: str, config: str) -> None:
    """Declare a method (done once per method module below)."""
    REGISTRY[key] = (module, model, config)


def build(key: str, **config) -> GroundingModel:
    """Instantiate method ``key`` with its config dataclass built from ``config``.

    Raises:
        KeyError: for an unknown key, listing the known ones.
        TypeError: for a config field the method does not have.
    """
    key = key.lower()
    if key not in REGISTRY:
        raise KeyError(f"unknown method {key!r}; known: {sorted(REGISTRY)}")
    module, model_name, config_name = REGISTRY[key]
    mod = importlib.import_module(module)
    cfg = getattr(mod, config_name)(**config)
    return getattr(mod, model_name)(cfg)


def supervision_of(key: str) -> str:
    """``"weak"`` or ``"full"`` for a registered method."""
    module, model_name, _ = REGISTRY[key.lower()]
    return getattr(importlib.import_module(module), model_name).supervision


__all__ = ["GroundingModel", "LABEL_KEYS", "strip_labels", "build", "register", "supervision_of", "REGISTRY"]

register("marn", "wsg.models.marn", "MARN", "MARNConfig")
register("wsra", "wsg.models.wsra", "WSRA", "WSRAConfig")
register("vlanet", "wsg.models.vlanet", "VLANet", "VLANetConfig")
register("fsan", "wsg.models.fsan", "FSAN", "FSANConfig")
register("fian", "wsg.models.fian", "FIAN", "FIANConfig")
