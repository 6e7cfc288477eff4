import math

import pandas as pd
import pytest
import torch
from torch import nn

from wsg.data import load_synthetic
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

    def candidates(self):
        return self.spans


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


class Noisy(Spy):
    """Spy with dropout: training draws from the global random stream, as real models do."""

    def __init__(self):
        super().__init__("weak")
        self.drop = nn.Dropout(0.5)

    def forward(self, batch):
        return {"clip": self.score(self.drop(batch["video"])).squeeze(-1)}

    def loss(self, batch, out):
        loss = (out["clip"] - 1.0).pow(2).mean()
        return loss, {"term": loss.item()}


def _noisy_run(bench, tmp_path, plan, **config):
    """Train Noisy for the epochs in ``plan`` (one Trainer per entry, resuming from tmp_path)."""
    from wsg.train import set_seed

    for epochs in plan:
        set_seed(0)
        model = Noisy()
        trainer = Trainer(model, TrainConfig(epochs=epochs, lr=0.05, progress=False,
                                             checkpoint_dir=str(tmp_path), **config))
        trainer.fit(bench.loader("train", batch_size=8), bench.loader("val"))
    return trainer, model


def test_resume_is_bit_identical_to_an_uninterrupted_run(small_bench, tmp_path):
    """Two epochs straight vs one epoch + a new Trainer resuming: same weights, same history.

    Fails if the loader reshuffles from its seed on resume, if a random state is lost, or
    if Trainer.load skips the model or optimizer state (the second epoch would start
    elsewhere)."""
    straight, m1 = _noisy_run(small_bench, tmp_path / "a", [3])
    resumed, m2 = _noisy_run(small_bench, tmp_path / "b", [1, 2, 3])
    for a, b in zip(straight.last_state.values(), resumed.last_state.values()):
        assert torch.equal(a, b)
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    h1, h2 = straight.history_frame().drop(columns="train_seconds"), resumed.history_frame().drop(
        columns="train_seconds")
    pd.testing.assert_frame_equal(h1, h2)


def test_resume_with_changed_settings_names_the_fields(small_bench, tmp_path):
    _noisy_run(small_bench, tmp_path, [1])
    with pytest.raises(ValueError, match=r"lr: checkpoint 0.05 vs now 0.01"):
        from wsg.train import set_seed
        set_seed(0)
        Trainer(Noisy(), TrainConfig(epochs=2, lr=0.01, progress=False, checkpoint_dir=str(tmp_path))).fit(
            small_bench.loader("train", batch_size=8))
    # allowed explicitly; more epochs are always allowed
    Trainer(Noisy(), TrainConfig(epochs=2, lr=0.01, progress=False, checkpoint_dir=str(tmp_path),
                                 allow_config_change=True)).fit(small_bench.loader("train", batch_size=8))


def test_best_checkpoint_holds_its_own_history_row(small_bench, tmp_path):
    trainer, _ = _noisy_run(small_bench, tmp_path, [2])
    best = torch.load(tmp_path / "best.pt", weights_only=False)
    assert best["history"][-1]["epoch"] == best["epoch"] and best["history"][-1]["best"]


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

    with pytest.raises(FloatingPointError, match="non-finite loss at epoch 1, step 0"):
        Trainer(Broken(), TrainConfig(epochs=1, progress=False)).fit(small_bench.loader("train"))


class Cheat(Spy):
    """Reads no video and no words: only what else ``predict`` gets and batch positions.

    It answers the k-th of a video's n queries (by ``query_idx`` when it gets one, else
    by position in the batch) with the k-th n-th of the video: perfect when a video's
    queries arrive in time order."""

    def predict(self, batch, top_k=10):
        self.seen.append(set(batch))
        vid = batch["video_idx"]
        order = batch.get("query_idx", torch.arange(len(vid)))
        same = vid[:, None] == vid[None, :]
        k = (same & (order[None, :] < order[:, None])).sum(1).float()  # earlier queries of the video
        n = same.sum(1).float()
        moment = torch.stack([k / n, (k + 1) / n], -1)[:, None]
        return moment.expand(-1, top_k, -1), torch.ones(len(vid), top_k)


@pytest.fixture(scope="module")
def tiny_preset_bench(tmp_path_factory):
    """The tiny Charades-like preset (150 test videos, ~450 queries)."""
    return load_synthetic("charades", "tiny", cache_dir=tmp_path_factory.mktemp("wsgdata"))


def _time_ordered(bench):
    table = bench.splits["test"].sort_values(["video_id", "start"]).reset_index(drop=True)
    return bench.with_split("test", table)


def test_a_cheating_model_stays_at_chance_among_events(tiny_preset_bench):
    """Nothing predict receives encodes where a query's moment is (issue: 67.3 before the fix)."""
    from wsg.baselines import blind_baselines

    for bench in (tiny_preset_bench, _time_ordered(tiny_preset_bench)):
        events = blind_baselines(bench, "test").loc["events", "R@1,IoU=0.5"]
        cheat = Cheat()
        score = evaluate(cheat, bench.loader("test", batch_size=32))["R@1,IoU=0.5"]
        assert score <= events + 3.0, (bench.name, score, events)
        assert all("query_idx" not in keys for keys in cheat.seen)


def test_the_cheat_would_win_on_a_time_ordered_table_fed_in_order(tiny_preset_bench):
    """The cheat is a real threat: fed a time-ordered table in order, with query_idx, it wins."""
    from wsg.baselines import blind_baselines
    from wsg.metrics import recall_at

    bench = _time_ordered(tiny_preset_bench)
    cheat = Cheat()
    moments, gts = [], []
    for batch in bench.loader("test", batch_size=32):  # what the evaluator used to do
        m, _ = cheat.predict(batch, top_k=5)
        moments.append(m)
        gts.append(batch["moment"])
    score = recall_at(torch.cat(moments), torch.cat(gts), protocol="2d-tan")["R@1,IoU=0.5"]
    events = blind_baselines(bench, "test").loc["events", "R@1,IoU=0.5"]
    assert score > events + 20, (score, events)


def test_evaluation_order_is_random_but_results_come_back_in_table_order(small_bench):
    seen = []

    class Recorder(Spy):
        def predict(self, batch, top_k=10):
            seen.extend(batch["sentence"])
            return super().predict(batch, top_k)

    model = Recorder()
    pred = predict_all(model, small_bench.loader("test", batch_size=7), top_k=5)
    table = list(small_bench.splits["test"]["sentence"])
    assert sorted(seen) == sorted(table) and seen != table
    assert pred["query_idx"].tolist() == list(range(len(table)))
    # a list of batches (not a DataLoader) is permuted within each batch
    batches = list(small_bench.loader("test", batch_size=7))
    seen.clear()
    pred2 = predict_all(model, batches, top_k=5)
    assert seen != table and torch.equal(pred2["moments"], pred["moments"])


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


# ----------------------------------------------------------------------------- the two limits
@pytest.mark.parametrize("text, cap", [("3", (3, 1)), ("2,4", (2, 4)), (" 5 , 1 ", (5, 1)), ("", None)])
def test_step_cap_reads_steps_and_epochs(monkeypatch, text, cap):
    from wsg.train import capped_note, step_cap

    monkeypatch.setenv("WSG_STEP_CAP", text)
    assert step_cap() == cap
    assert (capped_note() is None) == (cap is None)


@pytest.mark.parametrize("text", ["0", "a", "1,2,3", "-1", "2,0"])
def test_a_bad_step_cap_is_a_named_error(monkeypatch, text):
    from wsg.train import step_cap

    monkeypatch.setenv("WSG_STEP_CAP", text)
    with pytest.raises(ValueError, match="WSG_STEP_CAP"):
        step_cap()


def test_step_cap_cuts_steps_per_epoch_and_epochs(small_bench, monkeypatch):
    monkeypatch.setenv("WSG_STEP_CAP", "2,1")
    model = Spy("weak")
    history = Trainer(model, TrainConfig(epochs=5, progress=False)).fit(small_bench.loader("train", 8),
                                                                        small_bench.loader("val"))
    assert len(small_bench.loader("train", 8)) > 2
    assert model.steps == 2 and len(history) == 1


def test_time_budget_stops_at_an_epoch_boundary_keeping_the_best(small_bench, monkeypatch, capsys):
    """Each epoch 'takes' 60 s: with a 2.5-minute budget, 2 epochs run (a third would end at 180 s)."""
    clock = iter(range(0, 10_000, 60))  # read once at the start, then once after each epoch
    trainer = Trainer(Spy("weak"), TrainConfig(epochs=6, max_minutes=2.5, progress=True))
    monkeypatch.setattr(trainer, "_wall", lambda: float(next(clock)))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    history = trainer.fit(small_bench.loader("train"), small_bench.loader("val"))
    out = capsys.readouterr().out
    assert len(history) == 2 and trainer.best_epoch in (1, 2)
    assert "epoch 1 took 60 s: about 5.0 min for the other 5 epoch(s) (budget 2 min)" in out
    assert "stopping after epoch 2 of 6" in out
    best = history.loc[history["best"], "epoch"].iloc[-1]
    assert trainer.best_epoch == best


def test_without_a_budget_every_epoch_runs(small_bench, monkeypatch):
    clock = iter(range(0, 100_000, 3600))  # an hour an epoch: no budget, no stop
    trainer = Trainer(Spy("weak"), TrainConfig(epochs=3, progress=False))
    monkeypatch.setattr(trainer, "_wall", lambda: float(next(clock)))
    history = trainer.fit(small_bench.loader("train"))
    assert len(history) == 3


class DtypeSpy(Spy):
    """Records the dtype of its linear layer's output in training: bf16 under CPU autocast."""

    def forward(self, batch):
        out = super().forward(batch)
        if self.training:
            self.dtypes.append(out["clip"].dtype)
        return out


@pytest.mark.parametrize("amp, dtype", [(True, torch.bfloat16), (False, torch.float32)])
def test_amp_runs_bf16_autocast_on_cpu(small_bench, monkeypatch, amp, dtype):
    monkeypatch.setenv("WSG_STEP_CAP", "2,1")
    model = DtypeSpy("weak")
    model.dtypes = []
    Trainer(model, TrainConfig(epochs=1, amp=amp, device="cpu", progress=False)).fit(small_bench.loader("train"))
    assert model.dtypes == [dtype, dtype]


def test_the_full_profile_trains_with_amp_and_a_budget():
    from wsg.recipes import get, train_config

    full, tiny = train_config(get("wsra", "charades", "full")), train_config(get("wsra", "charades", "tiny"))
    assert full.amp and full.max_minutes == 45
    assert not tiny.amp and tiny.max_minutes is None  # a budget would make tiny depend on the machine's speed
