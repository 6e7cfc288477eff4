"""Figures for the chapters: timelines, heatmaps, training curves, and an ipywidgets explorer.

All functions draw on a matplotlib ``Axes`` (a new one when ``ax`` is None) and return
it, so chapters can compose them into grids. Times are normalised to [0, 1] unless a
``duration`` is given.
"""
from __future__ import annotations

from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

GT_COLOR = "#2a9d8f"
PRED_COLORS = sns.color_palette("rocket", 6)


def _ax(ax, figsize=(7, 2.2)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def timeline(gt=None, preds: Sequence = (), scores: Sequence | None = None, curve=None, ax=None,
             title: str = "", duration: float = 1.0, labels: Sequence[str] | None = None):
    """Ground truth vs ranked predictions on one time axis, optionally over a per-clip curve.

    Args:
        gt: ground-truth ``(start, end)`` (normalised, or seconds if ``duration`` is given).
        preds: predicted ``(start, end)`` moments, best first; one row each below the ground truth.
        scores: optional score per prediction, printed next to it.
        curve: optional per-clip values (e.g. attention), drawn as a filled curve across the video.
        duration: scale of the time axis (1.0 = normalised).
        labels: optional name per prediction row.
    """
    ax = _ax(ax, figsize=(7, 0.9 + 0.35 * (len(preds) + 1)))
    rows = len(preds) + 1
    if curve is not None:
        c = np.asarray(curve, dtype=float)
        x = (np.arange(len(c)) + 0.5) / len(c) * duration
        top = c.max() if c.max() > 0 else 1.0
        ax.fill_between(x, rows - 0.5, rows - 0.5 + 1.2 * c / top, color="0.75", step="mid", label="attention")
    if gt is not None:
        ax.barh(rows - 1, gt[1] - gt[0], left=gt[0], height=0.6, color=GT_COLOR, label="ground truth")
    for i, p in enumerate(preds):
        y = rows - 2 - i
        ax.barh(y, float(p[1]) - float(p[0]), left=float(p[0]), height=0.6,
                color=PRED_COLORS[min(i, len(PRED_COLORS) - 1)], alpha=0.85)
        txt = labels[i] if labels else f"#{i + 1}"
        if scores is not None:
            txt += f" ({float(scores[i]):.2f})"
        ax.text(float(p[1]) + 0.01 * duration, y, txt, va="center", fontsize=8)
    ax.set_xlim(0, duration * 1.12)
    ax.set_ylim(-0.7, rows + (0.9 if curve is not None else 0))
    ax.set_yticks([rows - 1] + [rows - 2 - i for i in range(len(preds))])
    ax.set_yticklabels(["GT"] + [f"P{i + 1}" for i in range(len(preds))], fontsize=8)
    ax.set_xlabel("time" + (" (s)" if duration != 1.0 else " (fraction of the video)"))
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def heatmap(matrix, ax=None, xlabel: str = "", ylabel: str = "", boxes: Sequence | None = None,
            title: str = "", cmap: str = "viridis", xticklabels="auto", yticklabels="auto",
            colorbar: bool = True, **kwargs):
    """A matrix (attention, proposal map, alignment map) with optional boxes marking spans.

    Args:
        matrix: 2-D array or tensor (masked cells may be NaN; they show blank).
        boxes: list of ``((x0, x1), (y0, y1), label)`` in cell units, e.g. the ground-truth
            span along x and all rows along y; drawn as outlined rectangles.
    """
    m = np.asarray(matrix.detach().cpu() if hasattr(matrix, "detach") else matrix, dtype=float)
    ax = _ax(ax, figsize=(6, 3.5))
    sns.heatmap(m, ax=ax, cmap=cmap, cbar=colorbar, xticklabels=xticklabels, yticklabels=yticklabels, **kwargs)
    colors = ["white", "red", "orange", "cyan"]
    for k, (xs, ys, label) in enumerate(boxes or []):
        rect = plt.Rectangle((xs[0], ys[0]), xs[1] - xs[0], ys[1] - ys[0], fill=False, lw=2,
                             ec=colors[k % len(colors)], label=label)
        ax.add_patch(rect)
    if boxes:
        ax.legend(loc="upper right", fontsize=7, framealpha=0.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def training_curves(history: pd.DataFrame, keys: Sequence[str] | None = None, axes=None):
    """Loss terms (left) and validation metrics (right) per epoch; the selected epoch is marked.

    Args:
        history: the DataFrame returned by :meth:`wsg.train.Trainer.fit`.
        keys: loss columns to plot (default: ``loss`` and every term that is not a metric).
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3))
    skip = {"epoch", "train_seconds", "best"}
    loss_keys = keys or [c for c in history.columns if c not in skip and not c.startswith("val_")]
    val_keys = [c for c in history.columns if c.startswith("val_R@1") or c == "val_mIoU"]
    for k in loss_keys:
        axes[0].plot(history["epoch"], history[k], marker=".", label=k)
    axes[0].set_xlabel("epoch")
    axes[0].set_title("training loss", fontsize=10)
    axes[0].legend(fontsize=7)
    for k in val_keys:
        axes[1].plot(history["epoch"], history[k], marker=".", label=k[4:])
    if "best" in history and history["best"].any():
        best = history.loc[history["best"], "epoch"].iloc[-1]
        axes[1].axvline(best, color="0.5", ls="--", lw=1, label=f"selected (epoch {best})")
    axes[1].set_xlabel("epoch")
    axes[1].set_title("validation (%)", fontsize=10)
    axes[1].legend(fontsize=7)
    plt.tight_layout()
    return axes


def explorer(num_items: int, render: Callable[[int], None], description: str = "query") -> None:
    """Step through items with a slider; ``render(i)`` draws item ``i`` (with matplotlib).

    In a live notebook this is an interactive widget that starts on item 0. When the
    environment variable ``WSG_STATIC_EXPLORERS`` is set (``make book`` sets it) the
    first item is drawn as a plain figure instead, with no widget: a static page cannot
    move a slider, and the executor of an executed build would otherwise relay every
    output of the widget back to the kernel, which can leave a cell's reply unnoticed
    until the cell timeout (scripts/execution_soak.py). Returns nothing, so a cell that
    ends with it prints no function repr.
    """
    import os

    def show(i):
        render(i)
        plt.show()

    if os.environ.get("WSG_STATIC_EXPLORERS", "").lower() in ("1", "true", "yes"):
        print(f"{description} 1 of {num_items} (in a live notebook, a slider steps through all {num_items})")
        show(0)
        return None
    import ipywidgets as widgets

    widgets.interact(show, i=widgets.IntSlider(min=0, max=num_items - 1, step=1, value=0,
                                               description=description, continuous_update=False))
    return None


def show_table(df: pd.DataFrame, caption: str, columns: Sequence[str] | None = None, decimals: int = 1,
               empty: str = "–"):
    """A table drawn for the book's column: a caption, no index-name header row, ``empty`` for missing cells.

    ``df.index.name`` (the way the chapters label a table) becomes the start of the caption, so
    the page shows no extra header row; missing values print as ``empty`` (never ``NaN``); numbers
    are rounded to ``decimals``. ``columns`` keeps only those columns: a wide table's compact form
    (show the full one in a cell tagged ``hide-output``, folded on the page).

    Returns:
        a pandas ``Styler`` (rendered as HTML by Jupyter and by the book).
    """
    table = df if columns is None else df[list(columns)]
    label = " / ".join(str(n) for n in table.index.names if n is not None)
    table = table.rename_axis(index=[None] * table.index.nlevels)
    text = f"{label}: {caption}" if label and caption else (label or caption)
    numeric = table.select_dtypes("number").columns
    return (table.style.format(precision=decimals, na_rep=empty, subset=list(numeric))
            .format(na_rep=empty, subset=[c for c in table.columns if c not in numeric])
            .set_caption(text))


def glue(name: str, value, display: bool = True) -> None:
    """Keep ``value`` under ``name`` for the book's ``{glue:text}`` / ``{glue:figure}`` (myst-nb).

    The book builds with myst-nb, which renders a glued number inside the prose and a glued
    figure with its number and caption. Where myst-nb is not installed (Colab, a plain
    ``pip install wsg-book``) the chapter still runs: a figure is shown in place
    (``display=True``) and a number is simply not glued (the cell that computed it prints it).
    """
    _GLUED[name] = value
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            from IPython.display import display as show

            show(value)
        return
    myst_glue(name, value, display=display)


_GLUED: dict = {}


def glued(*names: str) -> None:
    """Print the values :func:`glue` kept under ``names`` (the Colab copies call it after a paragraph
    whose numbers the book renders in place: there they read ``‹name›``)."""
    for name in names:
        value = _GLUED.get(name, "(computed by a cell further down)")
        shown = f"{value:.4g}" if isinstance(value, float) else value
        print(f"‹{name}› = {shown}")


def results_table(rows: dict[str, dict], protocol: str, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """A results table (rows = systems) with the protocol in its name, values rounded to 0.1."""
    df = pd.DataFrame(rows).T
    if metrics is not None:
        df = df[list(metrics)]
    df.index.name = f"system (protocol: {protocol})"
    return df.astype(float).round(1)


def show_departures(rows: pd.DataFrame, method: str, slugs: dict[str, str], prefix: str) -> pd.DataFrame:
    """Show one method's departures from its paper, measured (``scripts/departures.py`` rows), and glue them.

    Prints the command that made the rows, shows :func:`wsg.experiments.departure_table` with
    ``mean ± std`` cells, and glues ``<prefix>-ours`` (the recipe's mean) and, per departure,
    ``<prefix>-<slug>-arm``, ``-diff`` and ``-verdict`` for the chapter's prose.

    Returns:
        the departure table (one row per departure).
    """
    from IPython.display import display

    from wsg.experiments import departure_table

    mine = rows[rows["method"] == method]
    print("produced by:", mine["command"].iloc[0])
    deps = departure_table(mine, method)
    pm = lambda m, s: [f"{a:.1f} ± {b:.1f}" for a, b in zip(deps[m], deps[s])]
    view = pd.DataFrame({"restores": deps["restores"], "ours": pm("ours", "ours std"), "arm": pm("arm", "arm std"),
                         "ours - arm": deps["ours - arm"], "se": deps["se"], "verdict": deps["verdict"]},
                        index=deps.index)
    display(show_table(view, "validation R@1,IoU=0.5, mean ± std over 3 seeds (ours vs the paper's reading), "
                             "Charades-like preset, tiny profile"))
    glue(f"{prefix}-ours", float(deps["ours"].iloc[0]), display=False)
    for arm, slug in slugs.items():
        glue(f"{prefix}-{slug}-arm", float(deps.loc[arm, "arm"]), display=False)
        glue(f"{prefix}-{slug}-diff", float(deps.loc[arm, "ours - arm"]), display=False)
        glue(f"{prefix}-{slug}-verdict", deps.loc[arm, "verdict"], display=False)
    return deps
