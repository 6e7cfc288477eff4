"""Controls: what a weakly-supervised method must beat before we say it reads the query.

A blind baseline says what a dataset gives away; a *control* says whether a trained
model used the words. Four of them, each a function here:

- **chance among events** (:func:`wsg.baselines.events_chance`): a rule that knows every
  event of the video but not which query asks for which. On the synthetic benchmark
  every event of a video looks alike, so any query-blind rule is at this level at R@1.
- **swapped query** (:func:`swapped_queries`): the trained model is asked, for each
  query, *another* query of the same video. A model that reads the words moves its
  answer away, so its R@1 collapses; one that found "an event" stays where it was.
  The *words gain* is R@1(true) - R@1(swapped).
- **query-blind variant** (:func:`query_blind`): the same method trained and evaluated
  with every sentence replaced by one constant token: the strongest blind rule the
  architecture itself can learn.
- **candidate-matched blind rankings**: random and prior over the model's own
  candidates (:meth:`wsg.models.GroundingModel.candidates`), so that a method with a
  good candidate set is not credited for it.

:func:`table` puts a trained model next to all of them (plus the *event hit*, the share
of top-1 moments whose centre lies inside the ground truth) under one named protocol.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from wsg.baselines import blind_rankings
from wsg.metrics import event_hit, recall_at
from wsg.train import predict_all

__all__ = ["BLIND_TOKEN", "swapped_queries", "query_blind", "table", "words_gain"]

# The one word of every sentence of a query-blind benchmark.
BLIND_TOKEN = "query"


def _multi_query_videos(table: pd.DataFrame, where: str) -> np.ndarray:
    """Boolean mask of the rows whose video has >= 2 queries; raises if there are none."""
    counts = table.groupby("video_id")["video_id"].transform("size").to_numpy()
    keep = counts >= 2
    if not keep.any():
        raise ValueError(f"{where}: no video has two or more queries, so no query can be swapped "
                         "for another of its video (the swapped-query control needs multi-query videos)")
    return keep


def swapped_queries(bench, split: str = "test"):
    """The split with each query's sentence replaced by another query of the same video.

    Every video's sentences are rotated by one (in table order): with queries
    ``q1, q2, q3`` the moment of ``q1`` is asked with ``q2``'s sentence, ``q2``'s with
    ``q3``'s and ``q3``'s with ``q1``'s. Moments, features and vocabulary are kept;
    videos with a single query cannot be swapped and are dropped (counted in
    ``result.splits[split].attrs["dropped_single_query"]``).

    Returns:
        a :class:`wsg.data.Benchmark` whose ``split`` is the swapped table (other
        splits shared). Evaluate a trained model on ``result.loader(split)``.

    Raises:
        ValueError: the split has no video with two or more queries.
    """
    where = f"{bench.name}/{split}"
    table = bench.splits[split].reset_index(drop=True)
    keep = _multi_query_videos(table, where)
    kept = table[keep].reset_index(drop=True)
    codes = pd.factorize(kept["video_id"])[0]
    order = np.argsort(codes, kind="stable")  # rows grouped by video, table order within each
    size = np.bincount(codes)[codes[order]]
    offset = kept.groupby("video_id").cumcount().to_numpy()[order]  # position within its video
    start = np.arange(len(kept)) - offset  # where its video's rows begin, in sorted order
    donor = np.empty(len(kept), dtype=int)
    donor[order] = order[start + (offset + 1) % size]  # the next query of the same video, cyclically
    swapped = kept.copy()
    swapped["sentence"] = kept["sentence"].to_numpy()[donor]
    if "record" in kept:
        swapped["record"] = [f"{r} (sentence of {d})" for r, d in zip(kept["record"], kept["record"].to_numpy()[donor])]
    swapped.attrs = {**table.attrs, "dropped_single_query": int((~keep).sum()), "control": "swapped queries"}
    return bench.with_split(split, swapped)


def query_blind(bench):
    """The benchmark with every sentence (of every split) replaced by one constant token.

    A method trained and evaluated on it cannot read any words: whatever it scores is
    what its architecture finds without the query: its own query-blind variant. Train it
    exactly like the real one (e.g. ``wsg.experiments.run(key, query_blind(bench))``);
    its vocabulary has the one word :data:`BLIND_TOKEN`.
    """
    from wsg.data.benchmark import Benchmark

    tables = {}
    for name, t in bench.splits.items():
        blind = t.copy()
        blind["sentence"] = BLIND_TOKEN
        blind.attrs = {**t.attrs, "control": "query-blind"}
        tables[name] = blind
    blind_bench = Benchmark(f"{bench.name}-query-blind", tables, bench.features, num_clips=bench.num_clips,
                            max_words=bench.max_words, root=bench.root)
    if hasattr(bench, "config"):  # the synthetic config, when there is one
        blind_bench.config = bench.config
    blind_bench.recipe_dataset = getattr(bench, "recipe_dataset", bench.name)  # the original's recipe
    return blind_bench


def words_gain(true_row, swapped_row, metric: str = "R@1,IoU=0.5") -> float:
    """R@1 with the true queries minus R@1 with swapped queries (points)."""
    return float(true_row[metric]) - float(swapped_row[metric])


def table(model, bench, split: str = "test", protocol: str = "2d-tan", blind_model=None, blind_bench=None,
          top_k: int = 50, seed: int = 0, device=None, name: str | None = None) -> pd.DataFrame:
    """A trained model next to every control, on one split, under one protocol.

    Rows: the model; ``swapped query`` (the same model asked another query of the same
    video, :func:`swapped_queries`); ``query-blind`` (when ``blind_model`` is given: that
    method trained on :func:`query_blind`, evaluated on ``blind_bench``'s split);
    ``events`` (chance among events); ``random`` and ``prior`` over the model's own
    candidates (``model.candidates()``). Columns: R@n,IoU=m, mIoU and ``event hit``
    (top-1 centre inside the ground truth, %). The model and swapped rows are scored on
    the same queries as the blind rows except for single-query videos, which the swapped
    row cannot contain (their count is in ``df.attrs``).

    Returns:
        ``pandas.DataFrame`` indexed by row name; ``df.attrs`` names the protocol, the
        split, the number of queries and the words gain.
    """
    label = name or type(model).__name__
    rows = {}

    def score(m, b, row):
        pred = predict_all(m, b.loader(split), top_k=top_k, device=device)
        rows[row] = {**recall_at(pred["moments"], pred["gt"], protocol=protocol),
                     "event hit": event_hit(pred["moments"], pred["gt"])}

    score(model, bench, label)
    swapped = swapped_queries(bench, split)
    score(model, swapped, "swapped query")
    if blind_model is not None:
        score(blind_model, blind_bench if blind_bench is not None else query_blind(bench), "query-blind")
    gt = bench.moments(split)
    rankings = blind_rankings(bench, split, model.candidates().detach().cpu(), seed)
    for row, new in (("events", "events"), ("random", "random (own candidates)"),
                     ("prior", "prior (own candidates)")):
        rows[new] = {**recall_at(rankings[row], gt, protocol=protocol), "event hit": event_hit(rankings[row], gt)}
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.attrs = {"protocol": protocol, "split": split, "queries": len(bench.splits[split]),
                "swapped queries": len(swapped.splits[split]),
                "dropped single-query videos' queries": swapped.splits[split].attrs["dropped_single_query"],
                "words gain R@1,IoU=0.5": words_gain(rows[label], rows["swapped query"])}
    df.index.name = f"{split}, protocol {protocol}"
    return df
