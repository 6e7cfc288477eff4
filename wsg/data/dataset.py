"""``torch.utils.data.Dataset`` of (video, query) pairs and the collate that pads them into a batch.

The batch layout is documented in :mod:`wsg.models.base`. Every record is validated
when the dataset is built (features present for every video, one feature width for
all videos, query encodable, moment inside the video), so that a bad record fails
at once with its origin named, not mid-epoch. A query whose words are all unknown
to the training vocabulary is kept (as ``<unk>`` ids, see
:class:`wsg.text.Vocabulary`) and listed in ``unknown_queries``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from wsg.data.features import FeatureStore, MissingFeaturesError, resample
from wsg.text import Vocabulary


class GroundingDataset(Dataset):
    """Queries of one split with their video features.

    Args:
        annotations: table from :func:`wsg.data.read_annotations` (video_id, duration,
            start, end, sentence, optional record/times).
        features: a :class:`~wsg.data.features.FeatureStore`.
        vocab: the vocabulary (built on the training split).
        num_clips: resample every video to this many clips (``None``: keep the native
            length and pad in the batch).
        max_words: queries are cut to this many tokens.
    """

    def __init__(self, annotations: pd.DataFrame, features: FeatureStore, vocab: Vocabulary,
                 num_clips: int | None = 32, max_words: int = 30):
        self.annotations = annotations.reset_index(drop=True)
        self.vocab = vocab
        self.num_clips = num_clips
        df = self.annotations
        records = df["record"] if "record" in df else [f"row {i}" for i in range(len(df))]
        self.records = list(records)
        self.video_ids = sorted(df["video_id"].unique())
        self._video_index = {v: i for i, v in enumerate(self.video_ids)}
        # Validate and encode everything up front: errors name the record.
        self.words = [vocab.encode(s, max_words, where=r) for s, r in zip(df["sentence"], self.records)]
        #: records of the queries whose every word is unknown to the vocabulary (evaluated as <unk> ids)
        self.unknown_queries = [r for w, r in zip(self.words, self.records) if all(i == vocab.unk_id for i in w)]
        dur = df["duration"].to_numpy(float)
        start, end = df["start"].to_numpy(float), df["end"].to_numpy(float)
        bad = (dur <= 0) | (start < 0) | (end > dur + 1e-6) | (start >= end)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{self.records[i]}: moment ({start[i]}, {end[i]}) is empty or outside the "
                             f"video [0, {dur[i]}]; fix it or choose a policy in read_annotations")
        self.moments = normalised_moments(df)
        self.durations = torch.tensor(dur, dtype=torch.float32)
        first_record = dict(zip(df["video_id"][::-1], self.records[::-1]))
        video_duration = df.groupby("video_id")["duration"].max().to_dict()
        missing = [v for v in self.video_ids if v not in features]
        if missing:  # name every missing video, not only the first
            shown = "; ".join(f"{v!r} (needed by {first_record[v]})" for v in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise MissingFeaturesError(f"{features.missing_message(missing[0], first_record[missing[0]])}. "
                                       f"{len(missing)} of {len(self.video_ids)} videos of this table have no "
                                       f"features in {features.path}: {shown}{more}")
        self._clips: dict[str, torch.Tensor] = {}
        widths: dict[int, list[str]] = {}
        for vid in self.video_ids:  # load once: fails early and keeps epochs fast
            arr = features.get(vid, record=first_record[vid], duration=video_duration[vid])
            widths.setdefault(arr.shape[1], []).append(vid)
            self._clips[vid] = resample(arr, num_clips) if num_clips else torch.from_numpy(arr)
        if len(widths) > 1:  # collate would fail mid-epoch naming nothing
            common = max(widths, key=lambda d: len(widths[d]))
            odd = [(v, d) for d, vids in widths.items() if d != common for v in vids]
            shown = "; ".join(f"video {v!r} (record {first_record[v]}) is {d}-d" for v, d in odd[:5])
            more = f" and {len(odd) - 5} more" if len(odd) > 5 else ""
            raise ValueError(f"{features.path}: mixed feature widths: {len(widths[common])} videos are "
                             f"{common}-d but {shown}{more}; use one feature file per table")
        self.video_dim = next(iter(widths))

    def __len__(self) -> int:
        return len(self.annotations)

    def __getitem__(self, i: int) -> dict:
        row = self.annotations.iloc[i]
        item = {
            "video": self._clips[row["video_id"]],
            "words": torch.tensor(self.words[i], dtype=torch.long),
            "duration": self.durations[i],
            "video_idx": self._video_index[row["video_id"]],
            "query_idx": i,
            "video_id": row["video_id"],
            "sentence": row["sentence"],
            "moment": self.moments[i],
        }
        if "times" in row:
            item["times"] = row["times"]
        return item


def normalised_moments(annotations: pd.DataFrame) -> torch.Tensor:
    """Ground-truth moments of a table as fractions of the video, ``[N, 2]`` float32."""
    dur = annotations["duration"].to_numpy(float)
    start, end = annotations["start"].to_numpy(float), annotations["end"].to_numpy(float)
    return torch.tensor(np.stack([start / dur, end / dur], 1), dtype=torch.float32)


def _pad(seqs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(s) for s in seqs])
    out = torch.nn.utils.rnn.pad_sequence(list(seqs), batch_first=True)
    mask = torch.arange(out.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
    return out, mask


def collate(items: Sequence[dict]) -> dict:
    """Pad a list of dataset items into the batch dict of :mod:`wsg.models.base`."""
    video, video_mask = _pad([it["video"] for it in items])
    words, words_mask = _pad([it["words"] for it in items])
    batch = {
        "video": video,
        "video_mask": video_mask,
        "words": words,
        "words_mask": words_mask,
        "duration": torch.stack([torch.as_tensor(it["duration"]) for it in items]).float(),
        "video_idx": torch.tensor([it["video_idx"] for it in items]),
        "query_idx": torch.tensor([it["query_idx"] for it in items]),
        "video_id": [it["video_id"] for it in items],
        "sentence": [it["sentence"] for it in items],
        "moment": torch.stack([it["moment"] for it in items]),
    }
    if "times" in items[0]:
        batch["times"] = [it["times"] for it in items]
    return batch


class EpochShuffle(Sampler[int]):
    """A seeded shuffle whose order is a function of ``(seed, epoch)`` only.

    Each pass draws the permutation of ``torch.Generator().manual_seed(seed + epoch)``.
    The trainer calls :meth:`set_epoch` before every epoch (as with
    :class:`torch.utils.data.distributed.DistributedSampler`), so a run resumed from a
    checkpoint sees exactly the batches of an uninterrupted one; iterating without
    ``set_epoch`` advances the epoch by itself, so plain loops get a new order each pass.
    """

    def __init__(self, num_items: int, seed: int = 0):
        self.num_items, self.seed, self.epoch = int(num_items), int(seed), 0
        self._explicit = False

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self._explicit = int(epoch), True

    def __len__(self) -> int:
        return self.num_items

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.num_items, generator=g).tolist()
        if not self._explicit:  # a plain loop: the next pass is the next epoch
            self.epoch += 1
        self._explicit = False
        return iter(order)


def make_loader(dataset: GroundingDataset, batch_size: int = 32, shuffle: bool = False, seed: int = 0,
                drop_last: bool = False, num_workers: int = 0, pin_memory: bool | None = None) -> DataLoader:
    """A DataLoader with :func:`collate`; shuffling is seeded per epoch (:class:`EpochShuffle`).

    ``num_workers`` collate batches in worker processes (the clip features are loaded into
    memory when the dataset is built, so no worker opens a feature file); the batches and
    their order are the same as with ``0``. ``pin_memory`` (default: when CUDA is
    available) lets the trainer's ``non_blocking`` copies overlap with compute.
    """
    sampler = EpochShuffle(len(dataset), seed) if shuffle else None
    pin = torch.cuda.is_available() if pin_memory is None else pin_memory
    # an own generator: iterating a DataLoader draws a base seed, which must not come from
    # (and shift) the global random stream that dropout and initialisation use
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate, drop_last=drop_last,
                      num_workers=num_workers, pin_memory=pin, persistent_workers=num_workers > 0,
                      generator=torch.Generator().manual_seed(seed))
