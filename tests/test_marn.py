"""Tests of wsg.models.marn against naive loops, hand-worked cases and finite differences."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wsg.models import build, strip_labels
from wsg.models.marn import (
    MARN,
    AttentionModule,
    MARNConfig,
    attend,
    average_matrix,
    caption_loss,
    decoder_io,
    masked_softmax,
    refine_scores,
    scales_from_lengths,
)
from wsg.proposals import proposal_map, sampling_matrix
from wsg.text import Vocabulary

V, D, T = 20, 8, 10
SMALL = dict(vocab_size=V, video_dim=D, num_clips=T, scales=(2, 3, 5), num_points=3, reduction=2,
             proposal_dim=6, word_dim=5, query_dim=7, attention_dim=6, decoder_dim=9)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def make_model(**kw) -> MARN:
    torch.manual_seed(0)
    return build("marn", **{**SMALL, **kw})


def make_batch(B: int = 3, T_: int = T, L: int = 5, seed: int = 0, lengths=None) -> dict:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths if lengths is not None else [L, L - 2, 1][:B] + [L] * max(0, B - 3))
    words = torch.randint(4, V, (B, L), generator=g)
    wmask = torch.arange(L)[None] < lengths[:, None]
    return {
        "video": torch.rand(B, T_, D, generator=g),
        "video_mask": torch.ones(B, T_, dtype=torch.bool),
        "words": words * wmask,
        "words_mask": wmask,
        "duration": torch.full((B,), 30.0),
        "video_idx": torch.arange(B),
        "query_idx": torch.arange(B),
        "video_id": [f"v{i}" for i in range(B)],
        "sentence": ["x"] * B,
        "moment": torch.tensor([[0.1, 0.4]] * B),
    }


# ------------------------------------------------------------------ proposal module


def test_eq1_conv1d_reduction_matches_loop():
    """MARN Eq. 1: F_v hat = ReLU(Conv1d_k3(F_v)) with zero padding, written as a loop."""
    m = make_model()
    b = make_batch(B=2)
    out = m.proposals.reduce(b["video"], b["video_mask"])
    w, bias = m.proposals.conv1d.weight, m.proposals.conv1d.bias  # [C, D, 3]
    x = F.pad(b["video"], (0, 0, 1, 1))  # zero clip before and after
    for i in range(2):
        for t in range(T):
            ref = torch.relu(bias + sum(w[:, :, k] @ x[i, t + k] for k in range(3)))
            torch.testing.assert_close(out[i, t], ref)
    assert out.shape == (2, T, D // 2)


def test_eq2_4_5_sampled_features_equal_direct_interpolation():
    """MARN Eqs. 2, 4-5: the sampled point features equal np.interp of each channel."""
    m = make_model()
    b = make_batch(B=2)
    reduced = m.proposals.reduce(b["video"], b["video_mask"]).detach()
    W, valid = m.proposals.operators(T, torch.device("cpu"))
    from wsg.proposals import apply_sampling

    sampled = apply_sampling(reduced, W)  # [B, C, N, T, S+1]
    scales = list(SMALL["scales"]) + [1]
    N = SMALL["num_points"]
    for i in range(2):
        for t in range(T):
            for k, s in enumerate(scales):
                if t + s > T:
                    assert sampled[i, :, :, t, k].abs().max() == 0  # past the end: zero weights
                    continue
                pts = np.linspace(t, t + s - 1, N)
                for c in range(reduced.shape[-1]):
                    ref = np.interp(pts, np.arange(T), reduced[i, :, c].numpy())
                    np.testing.assert_allclose(sampled[i, c, :, t, k].numpy(), ref, rtol=1e-5, atol=1e-6)


def test_eq3_conv3d_is_linear_map_of_concatenated_points():
    """MARN Eq. 3: the (N x 1 x 1) Conv3d equals ReLU(A [x_1; ...; x_N] + b) per proposal."""
    m = make_model()
    g = torch.Generator().manual_seed(1)
    C, N = D // 2, SMALL["num_points"]
    sampled = torch.rand(2, C, N, T, 4, generator=g)
    out = m.proposals.summarise(sampled)
    w = m.proposals.conv3d.weight[:, :, :, 0, 0]  # [d, C, N]
    A = w.permute(0, 2, 1).reshape(w.shape[0], N * C)  # columns ordered point-major
    for i in range(2):
        for t in range(T):
            for k in range(4):
                x = sampled[i, :, :, t, k].T.reshape(-1)  # [x_1; ...; x_N]
                torch.testing.assert_close(out[i, t, k], torch.relu(A @ x + m.proposals.conv3d.bias))


def test_eq3_einsum_equals_nn_conv3d():
    """MARN Eq. 3: our einsum on the Conv3d's weights equals running the nn.Conv3d itself."""
    m = make_model()
    sampled = torch.rand(2, D // 2, SMALL["num_points"], T, 4)
    ref = torch.relu(m.proposals.conv3d(sampled))[:, :, 0].permute(0, 2, 3, 1)
    torch.testing.assert_close(m.proposals.summarise(sampled), ref)


def test_eq2_5_bins_endpoints_reach_the_clip_centres_of_bins():
    """MARN Eqs. 2, 5 with BMN's other convention ("bins"): points at bin centres."""
    m = make_model(endpoints="bins", scales=(4,), num_points=2)
    W, _ = m.proposals.operators(T, torch.device("cpu"))
    # proposal t=2, s=4: bins [2, 4) and [4, 6) -> centres at positions 2.5 and 4.5
    ref = torch.zeros(2, T)
    ref[0, 2] = ref[0, 3] = 0.5
    ref[1, 4] = ref[1, 5] = 0.5
    torch.testing.assert_close(W[2, 0], ref)


def test_avgpool_ablation_averages_all_clips_of_each_proposal():
    """MARN Table 3 "AvgPool" variant: each proposal is the plain mean of its clips."""
    A = average_matrix(T, [2, 3, 5])
    for t in range(T):
        for k, s in enumerate([2, 3, 5]):
            ref = torch.zeros(T)
            if t + s <= T:
                ref[t:t + s] = 1.0 / s
            torch.testing.assert_close(A[t, k], ref)
    m = make_model(proposal_pool="avg")
    b = make_batch(B=2)
    p = m.proposals(b["video"], b["video_mask"])
    red = m.proposals.reduce(b["video"], b["video_mask"])
    t, k, s = 4, 1, 3
    ref = torch.relu(m.proposals.pool_proj(red[:, t:t + s].mean(1)))
    torch.testing.assert_close(p["F_vp"][:, t, k], ref)
    torch.testing.assert_close(p["F_vc"][:, 7], torch.relu(m.proposals.pool_proj(red[:, 7])))


def test_proposal_validity_and_sparse_stride():
    """MARN Eq. 4 map: cells past the end are invalid and zero; stride s/4 skips starts."""
    m = make_model(scales=(2, 4, 8), stride_fraction=0.25)
    p = m.proposals(*(lambda b: (b["video"], b["video_mask"]))(make_batch(B=2)))
    ref = proposal_map(T, (2, 4, 8), 0.25).valid
    assert torch.equal(p["valid"][0], ref)
    assert not ref[1, 2] and ref[2, 2] and not ref[3, 2]  # scale 8 -> stride 2; start 3 past end anyway
    assert p["F_vp"][:, ~ref].abs().max() == 0


# ------------------------------------------------------------------ attention


def test_eq6_7_attention_matches_naive_convolution_and_masked_softmax():
    """MARN Eqs. 6-7: concat + tiled query, 1x1 conv, ReLU, 3x3 conv (zero pad), softmax on valid."""
    torch.manual_seed(0)
    att_mod = AttentionModule(feature_dim=3, query_dim=2, attention_dim=4, kernel=3)
    B, T_, S = 2, 5, 3
    feats = torch.rand(B, T_, S, 3)
    q = torch.rand(B, 2)
    valid = torch.rand(B, T_, S) > 0.3
    feats = feats * valid[..., None]
    att, logits = att_mod(feats, q, valid)
    w1, b1 = att_mod.conv1.weight[:, :, 0, 0], att_mod.conv1.bias
    w2, b2 = att_mod.conv2.weight[0], att_mod.conv2.bias
    hidden = torch.zeros(B, 4, T_ + 2, S + 2)  # zero-padded
    for i in range(B):
        for t in range(T_):
            for s in range(S):
                if valid[i, t, s]:
                    hidden[i, :, t + 1, s + 1] = torch.relu(w1 @ torch.cat([feats[i, t, s], q[i]]) + b1)
    for i in range(B):
        ref = torch.zeros(T_, S)
        for t in range(T_):
            for s in range(S):
                ref[t, s] = (w2 * hidden[i, :, t:t + 3, s:s + 3]).sum() + b2
        torch.testing.assert_close(logits[i], ref)
        e = torch.exp(ref[valid[i]] - ref[valid[i]].max())
        expect = torch.zeros(T_, S)
        expect[valid[i]] = e / e.sum()
        torch.testing.assert_close(att[i], expect)
    torch.testing.assert_close(att.flatten(1).sum(1), torch.ones(B))


def test_eq6_fuse_tiles_the_query():
    """MARN Eq. 6: every cell carries its own feature and the same query vector."""
    f = torch.rand(2, 4, 5, 3)
    q = torch.rand(2, 6)
    x = AttentionModule.fuse(f, q)
    assert x.shape == (2, 4, 5, 9)
    torch.testing.assert_close(x[..., :3], f)
    torch.testing.assert_close(x[1, 2, 4, 3:], q[1])


def test_eq11_clip_attention_depends_on_the_query():
    """MARN Eq. 11 (our reading, Eq. 7 structure): changing the query changes the clip attention.

    With the literal single linear Conv2d the query term is constant over clips and the
    softmax cancels it; this test would then fail.
    """
    m = make_model()
    with torch.no_grad():  # sharper than the near-uniform attention at init, so the effect is large
        m.clip_attention.conv2.weight.mul_(10.0)
    b = make_batch(B=2)
    o1 = m(b)
    b2 = dict(b, words=b["words"].flip(0), words_mask=b["words_mask"].flip(0))
    b2["video"] = b["video"]  # same videos, queries swapped
    o2 = m(b2)
    # A query term common to all clips would move every logit by the same amount, which the softmax
    # cancels: so the check is on the logits with their mean over clips removed (~2e-2 here; rounding
    # is ~1e-7), and on the attention itself (~2e-3; values ~0.1, rounding ~1e-8).
    d = o1["logits_c"] - o2["logits_c"]
    assert (d - d.mean(1, keepdim=True)).abs().max() > 1e-3
    assert (o1["att_c"] - o2["att_c"]).abs().max() > 1e-4
    torch.testing.assert_close(o1["att_c"].sum(1), torch.ones(2))


def test_eq11_as_printed_is_query_blind():
    """``clip_attention="one-layer"`` (Eq. 11 as printed, one 1 x 1 Conv2d): swapping the queries of a
    batch leaves the clip attention unchanged although the logits move, by a constant per video."""
    m = make_model(clip_attention="one-layer")
    assert m.clip_attention.conv1 is None and m.clip_attention.conv2.weight.shape == (1, 6 + 7, 1, 1)
    with torch.no_grad():
        m.clip_attention.conv2.weight.mul_(10.0)
    b = make_batch(B=2)
    o1 = m(b)
    o2 = m(dict(b, words=b["words"].flip(0), words_mask=b["words_mask"].flip(0)))
    d = o1["logits_c"] - o2["logits_c"]
    assert d.abs().max() > 1e-3  # the query does reach the logits ...
    torch.testing.assert_close(d, d[:, :1].expand_as(d))  # ... as one constant per video
    torch.testing.assert_close(o1["att_c"], o2["att_c"])  # which the softmax removes
    # by hand: logit_t = w_v . F_vc(t) + w_q . F_q + b
    w = m.clip_attention.conv2.weight[0, :, 0, 0]
    p = m.proposals(b["video"], b["video_mask"])
    _, q = m.query_encoder(b["words"], b["words_mask"])
    hand = p["F_vc"] @ w[:6] + (q @ w[6:])[:, None] + m.clip_attention.conv2.bias
    torch.testing.assert_close(o1["logits_c"], hand)


def test_separate_clip_conv1d_feeds_only_the_clip_branch():
    """``clip_reduce="separate"``: the clip features come from the clip branch's own Conv1d (checked
    by hand with the shared Conv3d on N copies of one clip), and the proposal features ignore it."""
    m = make_model(clip_reduce="separate")
    b = make_batch(B=2)
    p = m.proposals(b["video"], b["video_mask"])
    red_c = torch.relu(F.conv1d(b["video"].transpose(1, 2), m.proposals.clip_conv1d.weight,
                                m.proposals.clip_conv1d.bias, padding=1)).transpose(1, 2)
    w3 = m.proposals.conv3d.weight[:, :, :, 0, 0]  # [d, C, N]: the N "inclusive" points of a 1-clip proposal
    hand = torch.relu(torch.einsum("btc,dcn->btd", red_c, w3) + m.proposals.conv3d.bias)
    torch.testing.assert_close(p["F_vc"], hand)
    with torch.no_grad():
        m.proposals.clip_conv1d.weight.add_(1.0)
    p2 = m.proposals(b["video"], b["video_mask"])
    torch.testing.assert_close(p2["F_vp"], p["F_vp"])
    assert (p2["F_vc"] - p["F_vc"]).abs().max() > 1e-3
    shared = make_model()  # the default shares one Conv1d: the same weights give the same proposal map
    assert not hasattr(shared.proposals, "clip_conv1d")
    missing, unexpected = shared.load_state_dict(m.state_dict(), strict=False)
    assert not missing and unexpected == ["proposals.clip_conv1d.weight", "proposals.clip_conv1d.bias"]
    torch.testing.assert_close(shared.proposals(b["video"], b["video_mask"])["F_vp"], p["F_vp"])


def test_masked_softmax_all_invalid_row_is_zero():
    """Masked softmax helper of MARN Eq. 7: invalid entries get 0, an empty row gives zeros, not NaN."""
    out = masked_softmax(torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]),
                         torch.tensor([[True, False, True], [False, False, False]]))
    torch.testing.assert_close(out[0], torch.tensor([1 / (1 + math.e ** 2), 0.0, math.e ** 2 / (1 + math.e ** 2)]))
    assert torch.equal(out[1], torch.zeros(3))


def test_eq8_12_attend_is_weighted_sum():
    """MARN Eqs. 8, 12: the global feature is sum_cells att * feature (a loop)."""
    f = torch.rand(2, 3, 5, 4)
    a = torch.rand(2, 3, 5)
    out = attend(f, a)
    for i in range(2):
        ref = sum(a[i, t, s] * f[i, t, s] for t in range(3) for s in range(5))
        torch.testing.assert_close(out[i], ref)
    torch.testing.assert_close(attend(f[:, :, 0], a[..., 0]), (f[:, :, 0] * a[:, :, 0, None]).sum(1))


def test_forward_from_the_equations_in_order():
    """MARN Eqs. 1-8 and 11-12 end to end, written from the equations with the module's weights:
    Conv1d + ReLU (Eq. 1), sampling (Eqs. 2, 4-5), Conv3d + ReLU (Eq. 3), masking, the proposal
    attention (Eqs. 6-7) on the T x S map and the clip attention (Eq. 11, its own weights) on the
    T x 1 map, and the weighted sums (Eqs. 8, 12).

    The attention weights are sharpened (at init they are nearly uniform), so that exchanging the
    two attention modules, dropping a ReLU or the masking before Conv2d_2 moves the outputs by far
    more than rounding.
    """
    m = make_model()
    with torch.no_grad():
        for att in (m.attention, m.clip_attention):
            att.conv2.weight.mul_(10.0)
    b = strip_labels(make_batch())
    b["video_mask"][1, 7:] = False  # a shorter video: its tail cells are invalid
    out = m(b)
    P, N, scales = m.proposals, SMALL["num_points"], SMALL["scales"]
    vm = b["video_mask"]
    n = vm.sum(1)
    x = (b["video"] * vm[..., None]).transpose(1, 2)
    red = torch.relu(F.conv1d(x, P.conv1d.weight, P.conv1d.bias, padding=1)).transpose(1, 2) * vm[..., None]

    def proposal_features(W):  # Eqs. 2 (W from Eqs. 4-5) and 3: -> [B, T, S, d]
        sampled = torch.einsum("tsnu,buc->bcnts", W, red)
        return torch.relu(F.conv3d(sampled, P.conv3d.weight, P.conv3d.bias)[:, :, 0]).permute(0, 2, 3, 1)

    ends = torch.arange(T)[:, None] + torch.tensor(scales)[None]
    valid = proposal_map(T, scales).valid[None] & (ends[None] <= n[:, None, None])
    F_vp = proposal_features(sampling_matrix(T, scales, N)) * valid[..., None]
    F_vc = proposal_features(sampling_matrix(T, [1], N))[:, :, 0] * vm[..., None]
    _, F_q = m.query_encoder(b["words"], b["words_mask"])

    def attention(mod, feats, ok):  # Eqs. 6-7 (and 11): [B, T, S, d], [B, T, S] -> att, logits
        fused = torch.cat([feats, F_q[:, None, None, :].expand(*feats.shape[:3], -1)], -1).permute(0, 3, 1, 2)
        hidden = torch.relu(F.conv2d(fused, mod.conv1.weight, mod.conv1.bias)) * ok[:, None]
        logits = F.conv2d(hidden, mod.conv2.weight, mod.conv2.bias, padding=mod.conv2.padding)[:, 0]
        att = logits.masked_fill(~ok, float("-inf")).flatten(1).softmax(1).view_as(logits)
        return att, logits

    att_p, logits_p = attention(m.attention, F_vp, valid)
    att_c, logits_c = attention(m.clip_attention, F_vc[:, :, None], vm[..., None])
    torch.testing.assert_close(out["valid"], valid)
    torch.testing.assert_close(out["logits_p"][valid], logits_p[valid])
    torch.testing.assert_close(out["att_p"], att_p)
    torch.testing.assert_close(out["att_c"], att_c[..., 0])
    torch.testing.assert_close(out["global_p"], (att_p[..., None] * F_vp).sum((1, 2)))  # Eq. 8
    torch.testing.assert_close(out["global_c"], (att_c * F_vc).sum(1))  # Eq. 12
    # the two attention modules are not interchangeable here (else the check could not see a swap)
    assert (attention(m.clip_attention, F_vp, valid)[0] - att_p).abs().max() > 1e-2


# ------------------------------------------------------------------ reconstruction


def test_decoder_io_bos_eos_layout():
    """MARN Eq. 9 inputs: <bos> w1..wL -> w1..wL <eos>, hand-worked."""
    words = torch.tensor([[7, 8, 9], [5, 6, 0]])
    mask = words > 0
    inp, tgt, m = decoder_io(words, mask)
    bos, eos = Vocabulary.bos_id, Vocabulary.eos_id
    assert inp.tolist() == [[bos, 7, 8, 9], [bos, 5, 6, 0]]
    assert tgt.tolist() == [[7, 8, 9, eos], [5, 6, eos, 0]]
    assert m.tolist() == [[True] * 4, [True, True, True, False]]


def test_eq9_decoder_matches_lstmcell_loop():
    """MARN Eq. 9: h_m = LSTM([F_global; e_{m-1}], h_{m-1}), unrolled step by step."""
    m = make_model()
    rec = m.reconstructor
    g = torch.rand(2, SMALL["proposal_dim"])
    inputs = torch.tensor([[2, 5, 6, 7], [2, 9, 4, 0]])
    logits = rec(g, inputs)
    cell = torch.nn.LSTMCell(rec.lstm.input_size, rec.lstm.hidden_size)
    with torch.no_grad():
        cell.weight_ih.copy_(rec.lstm.weight_ih_l0)
        cell.weight_hh.copy_(rec.lstm.weight_hh_l0)
        cell.bias_ih.copy_(rec.lstm.bias_ih_l0)
        cell.bias_hh.copy_(rec.lstm.bias_hh_l0)
    h = c = torch.zeros(2, rec.lstm.hidden_size)
    for step in range(4):
        h, c = cell(torch.cat([g, rec.embedding(inputs[:, step])], -1), (h, c))
        torch.testing.assert_close(logits[:, step], rec.out(h))


def test_eq10_13_caption_loss_matches_loop():
    """MARN Eqs. 10, 13: -1/M sum_m log P(w_m), per query then batch mean (a loop)."""
    torch.manual_seed(0)
    logits = torch.randn(2, 4, V)
    tgt = torch.tensor([[5, 6, 7, 3], [8, 3, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]).bool()
    loss = caption_loss(logits, tgt, mask)
    per = []
    for i in range(2):
        lp = [torch.log_softmax(logits[i, j], -1)[tgt[i, j]] for j in range(4) if mask[i, j]]
        per.append(-sum(lp) / len(lp))
    torch.testing.assert_close(loss, sum(per) / 2)


def test_eq14_total_loss_and_branch_switch():
    """MARN Eq. 14: L = L_p + lambda L_c; without the clip branch L = L_p and no L_c term."""
    b = strip_labels(make_batch())
    m = make_model(clip_weight=0.3)
    total, parts = m.loss(b, m(b))
    assert all(v.ndim == 0 and not v.requires_grad for v in parts.values())  # no host sync per step
    assert total.item() == pytest.approx(float(parts["L_p"] + 0.3 * parts["L_c"]), rel=1e-5)
    m0 = make_model(clip_branch=False)
    total0, parts0 = m0.loss(b, m0(b))
    assert set(parts0) == {"L_p"} and total0.item() == pytest.approx(float(parts0["L_p"]), rel=1e-6)
    assert not hasattr(m0, "clip_attention")
    # L_p from the model equals decoding its own global feature by hand (Eqs. 9-10)
    out = m(b)
    inp, tgt, mask = decoder_io(b["words"], b["words_mask"])
    ref = caption_loss(m.reconstructor(out["global_p"], inp), tgt, mask)
    assert float(parts["L_p"]) == pytest.approx(ref.item(), rel=1e-5)


# ------------------------------------------------------------------ inference


def test_eq15_refine_hand_worked():
    """MARN Eq. 15: odd scale reads the middle clip, even scale averages the two middle clips."""
    att_p = torch.zeros(1, 6, 2)
    att_c = torch.tensor([[0.0, 0.1, 0.2, 0.3, 0.4, 0.0]])
    out = refine_scores(att_p, att_c, torch.tensor([3, 2]), epsilon=0.5)
    # (t=1, s=3): centre clip 2 -> 0.5 * 0.2 ; (t=2, s=2): centre between clips 2, 3 -> 0.5 * 0.25
    assert out[0, 1, 0].item() == pytest.approx(0.1)
    assert out[0, 2, 1].item() == pytest.approx(0.125)
    # loop over all cells
    for t in range(6):
        for k, s in enumerate([3, 2]):
            c = min(t + (s - 1) / 2, 5)
            lo, fr = int(math.floor(c)), c - math.floor(c)
            ref = 0.5 * ((1 - fr) * att_c[0, lo] + fr * att_c[0, min(lo + 1, 5)])
            assert out[0, t, k].item() == pytest.approx(ref.item())


def test_eq15_epsilon_zero_is_proposal_attention_only():
    """MARN Eq. 15 with eps = 0 (clip branch in training only) ranks by Att_p alone."""
    m = make_model()
    b = strip_labels(make_batch())
    out = m(b)
    s0 = m.scores(out, epsilon=0.0)
    torch.testing.assert_close(s0[out["valid"]], out["att_p"][out["valid"]])
    s1 = m.scores(out)
    ref = refine_scores(out["att_p"], out["att_c"], m.proposals.scales, 0.1)
    torch.testing.assert_close(s1[out["valid"]], ref[out["valid"]])


def test_predict_shape_range_sorted_and_valid():
    """predict: [B, K, 2] in [0, 1], scores sorted best-first, only valid map cells."""
    m = make_model().eval()
    b = strip_labels(make_batch())
    mom, sc = m.predict(b, top_k=7)
    assert mom.shape == (3, 7, 2) and sc.shape == (3, 7)
    assert (mom >= 0).all() and (mom <= 1).all() and (mom[..., 1] > mom[..., 0]).all()
    assert (sc[:, 1:] <= sc[:, :-1]).all() and torch.isfinite(sc).all()
    cand = proposal_map(T, SMALL["scales"])
    allowed = {tuple(x) for x in cand.moments[cand.valid].mul(T).round().long().tolist()}
    assert {tuple(x) for x in mom.reshape(-1, 2).mul(T).round().long().tolist()} <= allowed
    mom_all, _ = m.predict(b, top_k=10_000)  # capped at the number of valid cells
    assert mom_all.shape[1] == int(cand.valid.sum())


# ------------------------------------------------------------------ weak supervision, masking, gradients


def test_weak_model_runs_without_labels():
    """A weak model must never need `moment`: forward/loss/predict on a stripped batch."""
    m = make_model()
    assert m.supervision == "weak"
    b = strip_labels(make_batch())
    assert "moment" not in b
    total, _ = m.loss(b, m(b))
    total.backward()
    m.predict(b, top_k=3)


def test_padding_words_does_not_change_results():
    """Extra padded word columns change neither the attention nor the loss."""
    m = make_model()
    b = strip_labels(make_batch())
    b2 = dict(b, words=F.pad(b["words"], (0, 4)), words_mask=F.pad(b["words_mask"], (0, 4)))
    o1, o2 = m(b), m(b2)
    torch.testing.assert_close(o1["att_p"], o2["att_p"])
    torch.testing.assert_close(m.loss(b, o1)[0], m.loss(b2, o2)[0])


def test_padding_clips_does_not_change_results():
    """Padded clips (garbage features, mask False) change no valid score, no loss, no prediction."""
    m = make_model().eval()
    b = strip_labels(make_batch(B=2))
    g = torch.Generator().manual_seed(5)
    b2 = dict(b, video=torch.cat([b["video"], 9 * torch.rand(2, 4, D, generator=g)], 1),
              video_mask=torch.cat([b["video_mask"], torch.zeros(2, 4, dtype=torch.bool)], 1))
    o1, o2 = m(b), m(b2)
    assert torch.equal(o2["valid"][:, :T], o1["valid"]) and not o2["valid"][:, T:].any()
    torch.testing.assert_close(o2["att_p"][:, :T], o1["att_p"])
    torch.testing.assert_close(o2["att_c"][:, :T], o1["att_c"])
    torch.testing.assert_close(m.loss(b, o1)[0], m.loss(b2, o2)[0])
    p1, p2 = m.predict(b, 5), m.predict(b2, 5)
    torch.testing.assert_close(p1[0], p2[0])
    torch.testing.assert_close(p1[1], p2[1])


def test_shorter_video_in_batch_masks_its_tail():
    """A video with fewer real clips gets no proposal past its end; moments normalised by its length."""
    m = make_model().eval()
    b = strip_labels(make_batch(B=2))
    b["video_mask"] = b["video_mask"].clone()
    b["video_mask"][1, 6:] = False
    out = m(b)
    ends = torch.arange(T)[:, None] + torch.tensor(SMALL["scales"])[None]
    assert not out["valid"][1][ends > 6].any()
    assert out["att_p"][1][ends > 6].abs().max() == 0
    mom, _ = m.predict(b, top_k=4)
    assert (mom[1, :, 1] <= 1.0).all()
    with pytest.raises(ValueError):
        b["video_mask"][0, 2] = False  # a hole, not a prefix
        m(b)


@pytest.mark.parametrize("kw", [{}, {"clip_reduce": "separate"}])
def test_gradients_reach_every_parameter(kw):
    """Every parameter (both branches, shared Conv1d/Conv3d, encoder, decoder) gets a gradient, except
    the biases of the two Conv2d_2 (Eqs. 7, 11): one scalar added to every logit before the softmax
    cancels, so their gradient is zero up to rounding and a "non-zero" check on them would pass by
    rounding luck. Real gradients here are >= 1e-6, rounding ~1e-10: the line between is 1e-8."""
    m = make_model(**kw)
    b = strip_labels(make_batch())
    total, _ = m.loss(b, m(b))
    total.backward()
    grad = {n: 0.0 if p.grad is None else p.grad.abs().max().item() for n, p in m.named_parameters()}
    softmax_invariant = {"attention.conv2.bias", "clip_attention.conv2.bias"}
    missing = [n for n, g in grad.items() if n not in softmax_invariant and not g > 1e-8]
    assert not missing, missing
    assert all(grad[n] < 1e-8 for n in softmax_invariant), {n: grad[n] for n in softmax_invariant}


def test_gradcheck_loss_wrt_video_float64():
    """Finite differences (float64) of the whole loss (Eqs. 1-14) w.r.t. the clip features.

    Full mode: every input direction is checked (fast mode projects on one random
    direction and can miss a detached path, e.g. Eq. 8 reading detached features). A
    small video (7 clips x 4 channels) keeps the 56 finite differences cheap.
    """
    torch.manual_seed(0)
    m = build("marn", **{**SMALL, "video_dim": 4, "num_clips": 7}).double()
    b = strip_labels(make_batch(B=1, T_=7))
    video = b["video"][..., :4].double().requires_grad_(True)
    b["video_mask"] = torch.ones(1, 7, dtype=torch.bool)

    def f(v):
        bb = dict(b, video=v)
        return m.loss(bb, m(bb))[0]

    assert torch.autograd.gradcheck(f, (video,), eps=1e-6, atol=1e-5, fast_mode=False)


def test_sampling_matrix_memory_activitynet():
    """MARN Eq. 4 at the ActivityNet setting: W in R^{128 x 64 x 4 x 128} is 16 MiB in float32."""
    W = sampling_matrix(128, list(range(1, 65)), 4)
    assert W.shape == (128, 64, 4, 128)
    assert W.element_size() * W.nelement() == 16 * 2 ** 20


def test_config_validation():
    with pytest.raises(ValueError):
        MARNConfig(vocab_size=5, video_dim=8, num_clips=4, scales=(2, 6))
    with pytest.raises(ValueError):
        MARNConfig(vocab_size=5, video_dim=8, num_clips=10, proposal_pool="lstm")
    with pytest.raises(ValueError):
        MARNConfig(vocab_size=5, video_dim=8, num_clips=10, reduction=3)
    for bad in ({"clip_attention": "literal"}, {"clip_reduce": "own"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            MARNConfig(vocab_size=5, video_dim=8, num_clips=32, **bad)


# ------------------------------------------------------------------ wiring: each path, each term


def _leaves(m: MARN):
    """Hooks that replace F_vp, F_vc (proposal module) and F_q (query encoder) by leaf tensors.

    Returns the dict the leaves are written into and the two hook handles. The model's
    own graph above the leaves is left as it is, so the gradient the model's loss sends
    to each leaf can be compared with one computed from the equations.
    """
    leaves: dict = {}

    def prop_hook(module, inputs, out):
        leaves["F_vp"] = out["F_vp"].detach().requires_grad_(True)
        leaves["F_vc"] = out["F_vc"].detach().requires_grad_(True)
        leaves["valid"], leaves["clip_valid"] = out["valid"], out["clip_valid"]
        return dict(out, F_vp=leaves["F_vp"], F_vc=leaves["F_vc"])

    def query_hook(module, inputs, out):
        words, query = out
        leaves["F_q"] = query.detach().requires_grad_(True)
        return words, leaves["F_q"]

    return leaves, [m.proposals.register_forward_hook(prop_hook), m.query_encoder.register_forward_hook(query_hook)]


def _by_the_equations(m: MARN, b: dict, F_vp, F_vc, F_q, valid, clip_valid, detach: str = ""):
    """L_p and L_c from the paper's equations on the given features (Eqs. 6-14).

    ``detach`` names one path to cut (``"F_vp@8"``: Eq. 8's proposal features,
    ``"att_p@8"``: Eq. 8's attention, ``"F_q@11"``: the clip attention's query), to split
    a gradient into the contributions of its paths.
    """
    d = lambda x, name: x.detach() if detach == name else x  # noqa: E731
    inp, tgt, mask = decoder_io(b["words"], b["words_mask"])
    att_p, _ = m.attention(F_vp, F_q, valid)  # Eqs. 6-7
    g_p = attend(d(F_vp, "F_vp@8"), d(att_p, "att_p@8"))  # Eq. 8
    L_p = caption_loss(m.reconstructor(g_p, inp), tgt, mask)  # Eqs. 9-10
    att_c, _ = m.clip_attention(F_vc[:, :, None], d(F_q, "F_q@11"), clip_valid[..., None])  # Eq. 11
    g_c = attend(F_vc, att_c[..., 0])  # Eq. 12
    L_c = caption_loss(m.reconstructor(g_c, inp), tgt, mask)  # Eq. 13
    return L_p, L_c


def test_each_loss_term_against_its_equation_with_distinct_lambda():
    """MARN Eqs. 8-14, one term at a time: L_p and L_c of the model equal the equations.

    lambda = 0.37 (not 1), so a total that weights the wrong term, or decodes one branch's
    feature for both terms, fails.
    """
    m = make_model(clip_weight=0.37)
    b = strip_labels(make_batch())
    leaves, hooks = _leaves(m)
    out = m(b)
    total, parts = m.loss(b, out)
    for h in hooks:
        h.remove()
    L_p, L_c = _by_the_equations(m, b, leaves["F_vp"], leaves["F_vc"], leaves["F_q"], leaves["valid"],
                                 leaves["clip_valid"])
    assert parts["L_p"] == pytest.approx(L_p.item(), rel=1e-5)
    assert parts["L_c"] == pytest.approx(L_c.item(), rel=1e-5)
    assert abs(L_p.item() - L_c.item()) > 1e-4  # the two terms are distinguishable
    torch.testing.assert_close(total, L_p + 0.37 * L_c)
    # the global features are the query-free features under the attention (Eqs. 8, 12)
    torch.testing.assert_close(out["global_p"], attend(leaves["F_vp"], out["att_p"]))
    torch.testing.assert_close(out["global_c"], attend(leaves["F_vc"], out["att_c"]))


def test_gradient_paths_of_the_reconstruction_match_the_equations():
    """The gradient the loss sends to F_vp, F_vc and F_q equals the equations' graph, path by path.

    F_vp reaches the loss twice, through Eq. 8's weighted sum (the features the decoder
    reads) and through the attention (Eqs. 6-7); F_q reaches it through both attentions.
    Each path's share is computed separately by cutting the others, and each must be
    non-zero: a model that detaches the proposal features in Eq. 8, or gives the clip
    attention a detached query, keeps every shape and fails here.
    """
    m = make_model(clip_weight=0.37).double()
    b = strip_labels(make_batch())
    b["video"] = b["video"].double()
    leaves, hooks = _leaves(m)
    total, _ = m.loss(b, m(b))
    for h in hooks:
        h.remove()
    keys = ("F_vp", "F_vc", "F_q")
    got = torch.autograd.grad(total, [leaves[k] for k in keys])

    def grads(detach=""):
        L_p, L_c = _by_the_equations(m, b, *(leaves[k] for k in ("F_vp", "F_vc", "F_q", "valid", "clip_valid")),
                                     detach=detach)
        return torch.autograd.grad(L_p + 0.37 * L_c, [leaves[k] for k in keys], allow_unused=True)

    full = grads()
    for k, g_model, g_ref in zip(keys, got, full):
        torch.testing.assert_close(g_model, g_ref, msg=lambda s: f"d loss / d {k}: {s}")
    # F_vp: the Eq. 8 path (features) and the attention path both carry gradient
    via_features = full[0] - grads("F_vp@8")[0]
    via_attention = full[0] - grads("att_p@8")[0]
    assert via_features.abs().max() > 1e-6 and via_attention.abs().max() > 1e-6
    torch.testing.assert_close(via_features + via_attention, full[0])
    # F_q: the clip attention's share (Eq. 11 must read the query)
    via_clip = full[2] - grads("F_q@11")[2]
    assert via_clip.abs().max() > 1e-6
    # the clip branch's loss alone moves the query encoder (its query is not detached)
    m.zero_grad()
    out = m(b)
    inp, tgt, mask = decoder_io(b["words"], b["words_mask"])
    L_c = caption_loss(m.reconstructor(out["global_c"], inp), tgt, mask)
    L_c.backward()
    assert m.query_encoder.gru.weight_hh_l0.grad.abs().max() > 0
    assert all(p.grad is None or p.grad.abs().max() == 0 for p in m.attention.parameters())


def test_scores_and_predict_follow_eq15_with_the_configured_epsilon():
    """predict ranks by Att_p + eps Att_c (Eq. 15) with the config's eps (0.23 here), or an override."""
    m = make_model(epsilon=0.23).eval()
    b = strip_labels(make_batch())
    out = m(b)
    for eps, kwargs in ((0.23, {}), (0.0, {"epsilon": 0.0}), (2.0, {"epsilon": 2.0})):
        ref = refine_scores(out["att_p"], out["att_c"], m.proposals.scales, eps).masked_fill(~out["valid"], -1.0)
        vals, idx = ref.flatten(1).topk(6, dim=1)
        mom, sc = m.predict(b, top_k=6, **kwargs)
        torch.testing.assert_close(sc, vals)
        t, k = idx // len(SMALL["scales"]), idx % len(SMALL["scales"])
        s = torch.tensor(SMALL["scales"])[k]
        torch.testing.assert_close(mom, torch.stack([t / T, (t + s) / T], -1).float())


# ------------------------------------------------------------------ candidates and the scale rule


@pytest.mark.parametrize("kw", [{}, {"scales": (2, 4, 8), "stride_fraction": 0.25}])
def test_candidates_are_the_valid_map_cells_and_contain_every_prediction(kw):
    """candidates(): the valid cells of the map, [t, t + s] / T; every predicted moment is one of them."""
    m = make_model(**kw).eval()
    cand = m.candidates()
    scales = kw.get("scales", SMALL["scales"])
    ref = {(t, t + s) for t in range(T) for s in scales
           if t + s <= T and t % max(1, math.floor(s * kw.get("stride_fraction", 0) + 0.5) or 1) == 0}
    got = {tuple(x) for x in cand.mul(T).round().long().tolist()}
    assert got == ref and len(cand) == len(ref)
    assert cand.shape[1] == 2 and (cand >= 0).all() and (cand <= 1).all()
    mom, _ = m.predict(strip_labels(make_batch()), top_k=10_000)
    assert {tuple(x) for x in mom.reshape(-1, 2).mul(T).round().long().tolist()} == ref  # all, and only, these


def test_scales_from_lengths_hand_worked():
    """The chapter's scale rule: every integer scale from the lo- to the hi-quantile of the lengths."""
    lengths = torch.arange(1, 21, dtype=torch.float64)  # 1..20 clips of T = 32
    moments = torch.stack([torch.zeros(20, dtype=torch.float64), lengths / 32], 1)
    # quantiles of 1..20 (linear): 25 % -> 5.75, 95 % -> 19.05, 5 % -> 1.95
    assert scales_from_lengths(moments, 32) == tuple(range(6, 20))
    assert scales_from_lengths(moments, 32, 0.05, 0.95) == tuple(range(2, 20))
    assert scales_from_lengths(moments, 16, 0.0, 1.0) == tuple(range(1, 11))  # clamped to T: 0.5..10
    with pytest.raises(ValueError):
        scales_from_lengths(moments, 32, 0.9, 0.1)
