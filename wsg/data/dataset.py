"""``torch.utils.data.Dataset`` of (video, query) pairs and the collate that pads them into a batch.

The batch layout is documented in :mod:`wsg.models.base`. Every record is validated
when the dataset is built (features present, query encodable, moment inside the
video), so that a bad record fails at once with its origin named, not mid-epoch.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from wsg.data.features import FeatureStore, resample
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
        dur = df["duration"].to_numpy(float)
        start, end = df["start"].to_numpy(float), df["end"].to_numpy(float)
        bad = (dur <= 0) | (start < 0) | (end > dur + 1e-6) | (start >= end)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{self.records[i]}: moment ({start[i]}, {end[i]}) is empty or outside the "
                             f"video [0, {dur[i]}]; fix it or choose a policy in read_annotations")
        self.moments = normalised_moments(df)
        self.durations = torch.tensor(dur, dtype=torch.float32)
        first_record = dict(zip(df["video_id"], self.records))
        self._clips: dict[str, torch.Tensor] = {}
        for vid in self.video_ids:  # load once: fails early and keeps epochs fast
            arr = features.get(vid, record=first_record[vid])
            self._clips[vid] = resample(arr, num_clips) if num_clips else torch.from_numpy(arr)
        self.video_dim = next(iter(self._clips.values())).shape[1]

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


def make_loader(dataset: GroundingDataset, batch_size: int = 32, shuffle: bool = False, seed: int = 0,
                drop_last: bool = False) -> DataLoader:
    """A DataLoader with :func:`collate`; shuffling is seeded, so epochs are reproducible."""
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, collate_fn=collate, generator=gen,
                      drop_last=drop_last)
