"""wsg: weakly-supervised temporal grounding of text queries in videos.

The library behind the book. One module per concept:

- :mod:`wsg.data`      annotation and feature readers, the synthetic benchmark, Dataset/collate
- :mod:`wsg.text`      tokenizer, vocabulary, GloVe loader, sentence encoders
- :mod:`wsg.proposals` candidate moments (sliding windows, 2D maps, DiDeMo moments, all spans)
- :mod:`wsg.metrics`   temporal IoU, NMS, R@n,IoU=m, mIoU, the DiDeMo protocol
- :mod:`wsg.baselines` blind baselines (random ranking, moment-frequency prior)
- :mod:`wsg.models`    the five methods behind one interface
- :mod:`wsg.train`     one trainer and one evaluator for every method
- :mod:`wsg.viz`       plots and ipywidgets explorers
"""
from importlib.metadata import PackageNotFoundError, version as _version

DISTRIBUTION = "wsg-book"  # the name on PyPI and in pyproject.toml; `wsg` there is an unrelated tool

try:
    __version__ = _version(DISTRIBUTION)
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

from wsg.profiles import Profile, get_profile  # noqa: E402

__all__ = ["__version__", "Profile", "get_profile", "describe_environment"]


def describe_environment(profile: "Profile | str | None" = None) -> str:
    """One line naming the wsg version, the device and the profile (printed atop every chapter)."""
    import torch

    prof = get_profile(profile)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        device += f" ({torch.cuda.get_device_name(0)})"
    return f"wsg {__version__} | torch {torch.__version__} | device {device} | profile {prof.name}"
