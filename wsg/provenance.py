"""Provenance: where a number or a checkpoint came from.

Every row of the results store and every checkpoint records the versions, the git commit
(with ``+dirty`` when the tree had uncommitted changes) and the *machine fingerprint*:
what decides how floating-point arithmetic rounds on this machine.

**What "reproducible" means across machines.** Training is deterministic: the same
command on the same machine gives the same numbers, bit for bit. On another machine
the same command can round differently (another CPU kernel set, another BLAS code
path, another number of threads), and a few thousand optimisation steps turn rounding
differences into a different trajectory, so the metrics can move by about as much as
changing the seed would. Two machines can even report the same kernel capability and
still round differently, which is why the fingerprint holds more than the capability.
The tests therefore compare bit for bit only when the fingerprints match, and
otherwise check determinism on this machine plus agreement with the stored numbers
within their seed spread (:func:`same_machine`).
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
from pathlib import Path

__all__ = ["git_commit", "versions", "machine_fingerprint", "fingerprint_id", "same_machine", "code_digest",
           "data_digest"]

#: environment variables that change which kernels torch, MKL and oneDNN run
_KERNEL_VARIABLES = ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA",
                     "DNNL_MAX_CPU_ISA", "OPENBLAS_CORETYPE")


def git_commit() -> str | None:
    """The commit of the source tree wsg is imported from, with ``+dirty`` when tracked files have
    uncommitted changes (``None`` outside a git checkout, e.g. an installed wheel)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict:
    """wsg, torch and Python versions and the git commit."""
    import torch

    import wsg

    return {"wsg": wsg.__version__, "torch": torch.__version__, "python": platform.python_version(),
            "git_commit": git_commit()}


def _cpu() -> tuple[str, str]:
    """(CPU model name, sha256 of its sorted feature flags), from /proc/cpuinfo where there is one."""
    model, flags = platform.processor() or platform.machine(), ""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    if m:
        model = m.group(1).strip()
    f = re.search(r"^(?:flags|Features)\s*:\s*(.+)$", text, re.M)
    if f:
        flags = hashlib.sha256(" ".join(sorted(f.group(1).split())).encode()).hexdigest()[:12]
    return model, flags


def _blas(config: str) -> str:
    """The BLAS torch was built with, with its version where torch's build config names it."""
    for pattern in (r"Math Kernel Library Version ([\w.\-]+)", r"OpenBLAS ([\w.\-]+)"):
        m = re.search(pattern, config)
        if m:
            return ("mkl " if "Kernel" in pattern else "openblas ") + m.group(1)
    m = re.search(r"BLAS_INFO=(\w+)", config)
    return m.group(1) if m else "unknown"


def machine_fingerprint() -> dict:
    """What decides how this machine rounds: the torch version and build, the CPU model and a digest
    of its feature flags, the kernel set torch dispatches to (``get_cpu_capability``), the BLAS and
    the environment variables that restrict its instruction set, the number of threads, and the
    accelerator when one is used."""
    import torch

    config = torch.__config__.show()
    model, flags = _cpu()
    fp = {"torch": torch.__version__,
          "torch_build": hashlib.sha256(config.encode()).hexdigest()[:12],
          "cpu": model, "cpu_flags": flags, "machine": platform.machine(),
          "capability": torch.backends.cpu.get_cpu_capability(),
          "blas": _blas(config),
          "kernel_env": {k: os.environ[k] for k in _KERNEL_VARIABLES if os.environ.get(k)},
          "threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        fp["cuda"] = f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    return fp


def fingerprint_id(fingerprint: dict | None = None) -> str:
    """A 12-hex-digit digest of :func:`machine_fingerprint` (the store's ``machine`` column)."""
    fingerprint = machine_fingerprint() if fingerprint is None else fingerprint
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:12]


def same_machine(recorded) -> bool:
    """Whether a recorded fingerprint (its id, or the dict) is this machine's, as it is set up now
    (threads included: set them as the recorded run did before asking)."""
    if recorded is None or (isinstance(recorded, float) and recorded != recorded):  # missing, or NaN in a CSV
        return False
    recorded = fingerprint_id(recorded) if isinstance(recorded, dict) else str(recorded)
    return recorded == fingerprint_id()


def _source_without_docstrings(path: Path) -> str:
    """A module's code as its syntax tree with the docstrings removed: what the module *does*.
    Comments are not in the tree either, so editing prose in a docstring or comment keeps the digest."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(getattr(body[0], "value", None), ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)


#: modules that present, record or ship numbers but compute none: outside the code digest
_NOT_COMPUTING = ("__main__.py", "cli.py", "provenance.py", "regenerate.py", "shipped.py", "store.py",
                  "viz.py")


def code_digest() -> str:
    """A digest (12 hex characters) of the ``wsg`` code a run depends on: every module's syntax
    tree without docstrings and comments, except the modules that only present, record or ship
    numbers (:data:`_NOT_COMPUTING`). Two results rows with the same code digest were made by the
    same code, whatever the commit: a commit that changes only prose (chapters, docstrings,
    comments) or figures keeps it."""
    global _CODE_DIGEST
    if _CODE_DIGEST is None:
        package = Path(__file__).resolve().parent
        h = hashlib.sha256()
        for path in sorted(package.rglob("*.py")):
            if path.parent == package and path.name in _NOT_COMPUTING:
                continue
            h.update(path.relative_to(package).as_posix().encode())
            h.update(_source_without_docstrings(path).encode())
        _CODE_DIGEST = h.hexdigest()[:12]
    return _CODE_DIGEST


_CODE_DIGEST: str | None = None


def data_digest(bench) -> str:
    """A digest (12 hex characters) of the data a benchmark holds: every split's annotation rows
    (video, sentence, times, duration) and the clip features of every video they name, as arrays
    (not file bytes, which depend on the HDF5 library that wrote them)."""
    import numpy as np

    h = hashlib.sha256()
    videos = set()
    for name in sorted(bench.splits):
        table = bench.splits[name]
        cols = [c for c in ("video_id", "sentence", "start", "end", "duration") if c in table.columns]
        h.update(name.encode())
        h.update(table[cols].to_csv(index=False, float_format="%.6f").encode())
        videos.update(table["video_id"].astype(str))
    for video in sorted(videos):
        if video in bench.features:
            array = np.ascontiguousarray(bench.features.get(video), dtype=np.float32)
            h.update(video.encode())
            h.update(str(array.shape).encode())
            h.update(array.tobytes())
    return h.hexdigest()[:12]
