import math

import pandas as pd
import pytest
import torch
from torch import nn

from wsg.models import LABEL_KEYS, GroundingModel, strip_labels
from wsg.proposals import all_spans
from wsg.train import Trainer, TrainConfig, evaluate, predict_all, training_view


class Spy(GroundingModel):
    """A tiny model that records every key it is shown; supervision is set per test."""

    def __init__(self, supervision="weak", video_dim=128, num_clips=32):
        super().__init__()
        self.supervision = supervision
        self.score = nn.Linear(video_dim, 1)
        spans, valid = all_spans(num_clips)
        self.register_buffer("spans", spans[valid])
        self.seen: list[set] = []
        self.steps = 0

    def forward(self, batch):
        self.seen.append(set(batch))
        clip = self.score(batch["video"]).squeeze(-1)  # [B, T]
        return {"clip": clip}

    def loss(self, batch, out):
        self.seen.append(set(batch))
        self.steps += 1
        if self.supervision == "full":  # uses the labels: a mean-start regression
            target = batch["moment"][:, 0]
            loss = ((out["clip"].mean(1) - target) ** 2).mean()
        else:
            loss = out["clip"].pow(2).mean()
        return loss, {"term": loss.item()}

    def predict(self, batch, top_k=10):
        self.seen.append(set(batch))
        clip = self.score(batch["video"]).squeeze(-1)
        T = clip.shape[1]
        s = (self.spans * T).round().long()
        c = torch.cat([clip.new_zeros(len(clip), 1), clip.cumsum(1)], 1)
        scores = c[:, s[:, 1]] - c[:, s[:, 0]]
        top = scores.topk(top_k, dim=1)
        return self.spans[top.indices], top.values


def test_weak_models_never_see_temporal_labels(small_bench):
    model = Spy("weak")
    Trainer(model, TrainConfig(epochs=2, progress=False)).fit(small_bench.loader("train"), small_bench.loader("val"))
    assert model.steps > 0 and model.seen
    for keys in model.seen:
        assert not keys & set(LABEL_KEYS), keys
        assert {"video", "words", "video_idx"} <= keys


def test_full_models_get_labels_in_training_but_never_in_predict(small_bench):
    model = Spy("full")
    Trainer(model, TrainConfig(epochs=1, progress=False)).fit(small_bench.loader("train"))
    assert any("moment" in keys for keys in model.seen)
    model.seen.clear()
    evaluate(model, small_bench.loader("test"))
    assert model.seen and all(not keys & set(LABEL_KEYS) for keys in model.seen)


def test_training_view_rejects_unknown_supervision():
    batch = {"video": torch.zeros(1), "moment": torch.zeros(1, 2), "times": [[(0, 0)]]}
    assert set(strip_labels(batch)) == {"video"}
    assert set(training_view(Spy("full"), batch)) == set(batch)
    with pytest.raises(ValueError, match="supervision"):
        training_view(Spy("semi"), batch)


def test_best_epoch_is_selected_on_validation_and_restored(small_bench, monkeypatch):
    """The model must end with the weights of the epoch with the best validation score."""
    import wsg.train as train

    scores = iter([10.0, 30.0, 20.0])
    snapshots = []

    def fake_evaluate(model, loader, **kw):
        snapshots.append(model.score.weight.detach().clone())
        return {"R@1,IoU=0.5": next(scores)}

    monkeypatch.setattr(train, "evaluate", fake_evaluate)
    model = Spy("weak")
    trainer = Trainer(model, TrainConfig(epochs=3, lr=0.05, progress=False))
    history = trainer.fit(small_bench.loader("train"), small_bench.loader("val"))
    assert isinstance(history, pd.DataFrame) and len(history) == 3
    assert history["best"].tolist() == [True, True, False]
    assert trainer.best_epoch == 2
    torch.testing.assert_close(model.score.weight, snapshots[1])
    assert not torch.equal(snapshots[1], snapshots[2])


def test_checkpoints_are_written_and_training_resumes(small_bench, tmp_path):
    cfg = TrainConfig(epochs=2, progress=False, checkpoint_dir=str(tmp_path))
    m1 = Spy("weak")
    Trainer(m1, cfg).fit(small_bench.loader("train"), small_bench.loader("val"))
    assert (tmp_path / "last.pt").exists() and (tmp_path / "best.pt").exists()
    assert not list(tmp_path.glob("*.tmp"))
    m2 = Spy("weak")
    t2 = Trainer(m2, TrainConfig(epochs=3, progress=False, checkpoint_dir=str(tmp_path)))
    history = t2.fit(small_bench.loader("train"), small_bench.loader("val"))
    assert history["epoch"].tolist() == [1, 2, 3]
    assert m2.steps == len(small_bench.loader("train"))  # only the third epoch was run


def test_nan_loss_is_a_clear_error(small_bench):
    class Broken(Spy):
        def loss(self, batch, out):
            return out["clip"].mean() * math.nan, {}

    with pytest.raises(FloatingPointError, match="non-finite loss.*epoch 1, step 0"):
        Trainer(Broken(), TrainConfig(epochs=1, progress=False)).fit(small_bench.loader("train"))


def test_predict_all_collects_every_query_in_order(small_bench):
    pred = predict_all(Spy(), small_bench.loader("test", batch_size=7), top_k=5)
    n = len(small_bench.dataset("test"))
    assert pred["moments"].shape == (n, 5, 2)
    assert pred["query_idx"].tolist() == list(range(n))
    torch.testing.assert_close(pred["gt"], small_bench.dataset("test").moments)
    assert torch.all(pred["scores"][:, :-1] >= pred["scores"][:, 1:])


def test_on_epoch_end_adds_columns_to_the_history(small_bench):
    calls = []

    def hook(trainer, row):
        calls.append(row["epoch"])
        return {"weight_norm": trainer.model.score.weight.detach().norm().item()}

    history = Trainer(Spy(), TrainConfig(epochs=2, progress=False)).fit(small_bench.loader("train"),
                                                                        on_epoch_end=hook)
    assert calls == [1, 2]
    assert history["weight_norm"].notna().all() and history["weight_norm"].iloc[0] > 0


def test_fit_in_two_calls_equals_one_call(small_bench, monkeypatch):
    """A second fit() continues from the last epoch's weights, not from the restored best ones."""
    import wsg.train as train

    def run(calls):
        scores = iter([30.0, 10.0, 20.0])  # epoch 1 is the best: fit() restores it at the end
        monkeypatch.setattr(train, "evaluate", lambda model, loader, **kw: {"R@1,IoU=0.5": next(scores)})
        model = Spy()
        trainer = Trainer(model, TrainConfig(epochs=3, lr=0.05, progress=False))
        loader, val = small_bench.loader("train"), small_bench.loader("val")
        for epochs in calls:
            history = trainer.fit(loader, val, epochs=epochs)
        return trainer, model, history

    one, one_model, _ = run([3])
    two, two_model, history = run([2, 3])
    assert history["epoch"].tolist() == [1, 2, 3] and two.best_epoch == one.best_epoch == 1
    torch.testing.assert_close(two_model.score.weight, one_model.score.weight)
    torch.testing.assert_close(two.last_state["score.weight"], one.last_state["score.weight"])
    assert not torch.equal(one.last_state["score.weight"], one_model.score.weight)
