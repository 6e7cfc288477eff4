import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from wsg import viz  # noqa: E402


def teardown_function():
    plt.close("all")


def test_timeline_draws_gt_and_each_prediction_where_they_are():
    ax = viz.timeline(gt=(0.2, 0.5), preds=[(0.1, 0.4), (0.6, 0.9)], scores=[0.9, 0.3], curve=np.ones(8))
    bars = [p for p in ax.patches if isinstance(p, matplotlib.patches.Rectangle)]
    spans = sorted((round(b.get_x(), 3), round(b.get_x() + b.get_width(), 3)) for b in bars)
    assert spans == [(0.1, 0.4), (0.2, 0.5), (0.6, 0.9)]
    assert [t.get_text() for t in ax.texts] == ["#1 (0.90)", "#2 (0.30)"]


def test_heatmap_marks_boxes_in_cell_units():
    m = np.arange(12.0).reshape(3, 4)
    ax = viz.heatmap(m, boxes=[((1, 3), (0, 3), "ground truth")], colorbar=False)
    rects = [p for p in ax.patches if isinstance(p, plt.Rectangle) and not p.get_fill()]
    assert len(rects) == 1 and rects[0].get_x() == 1 and rects[0].get_width() == 2
    assert ax.collections[0].get_array().reshape(3, 4)[2, 3] == 11


def test_training_curves_plot_losses_and_mark_selected_epoch():
    hist = pd.DataFrame({"epoch": [1, 2, 3], "loss": [3.0, 2.0, 1.5], "val_R@1,IoU=0.5": [10.0, 30.0, 20.0],
                         "val_mIoU": [20.0, 35.0, 30.0], "train_seconds": [1, 1, 1], "best": [True, True, False]})
    left, right = viz.training_curves(hist)
    assert [l.get_label() for l in left.get_lines()] == ["loss"]
    labels = [l.get_label() for l in right.get_lines()]
    assert "R@1,IoU=0.5" in labels and "selected (epoch 2)" in labels


def test_results_table_names_the_protocol():
    df = viz.results_table({"prior": {"R@1,IoU=0.5": 12.345}, "model": {"R@1,IoU=0.5": 40.0}}, "2d-tan")
    assert df.index.name == "system (protocol: 2d-tan)"
    assert df.loc["prior", "R@1,IoU=0.5"] == pytest.approx(12.3)


def test_explorer_renders_the_selected_item():
    seen = []
    viz.explorer(3, lambda i: seen.append(i))
    assert seen == [0]


def test_a_static_explorer_draws_the_first_item_without_a_widget(monkeypatch, capsys):
    """make book sets WSG_STATIC_EXPLORERS: no widget (whose outputs an executed build relays to the
    kernel, which can stall a cell until its timeout), the first item as a figure, nothing returned."""
    import sys

    seen = []
    monkeypatch.setenv("WSG_STATIC_EXPLORERS", "1")
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # importing it would fail
    assert viz.explorer(3, lambda i: seen.append(i), description="query") is None
    assert seen == [0]
    assert "query 1 of 3" in capsys.readouterr().out


def test_a_live_explorer_returns_nothing_to_print():
    assert viz.explorer(2, lambda i: None) is None  # a cell ending with it shows no function repr


def test_show_departures_shows_the_table_and_glues_each_number(monkeypatch, capsys):
    import pandas as pd

    from wsg import viz

    rows = pd.DataFrame([{"method": "m", "arm": arm, "seed": s, "R@1,IoU=0.5": v + s, "restores": f"paper {arm}",
                          "code": "c", "data": "d", "command": "python scripts/departures.py"}
                         for arm, v in (("ours", 50.0), ("a", 40.0)) for s in range(3)])
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj) if hasattr(obj, "data") else None)
    deps = viz.show_departures(rows, "m", {"a": "slug"}, prefix="ch-dep")
    assert "produced by: python scripts/departures.py" in capsys.readouterr().out
    assert len(shown) == 1 and shown[0].data.loc["a", "ours"] == "51.0 ± 1.0" and deps.loc["a", "ours - arm"] == 10.0
    assert viz._GLUED["ch-dep-ours"] == 51.0 and viz._GLUED["ch-dep-slug-arm"] == 41.0
    assert viz._GLUED["ch-dep-slug-diff"] == 10.0 and viz._GLUED["ch-dep-slug-verdict"] == "separated"
