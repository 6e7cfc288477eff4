"""Tests of wsg.models.fsan (FSAN Eqs. 1-13) against independent computations."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from wsg.models import build, strip_labels
from wsg.models.fsan import (
    FSAN,
    AttentionBlock,
    FSANConfig,
    ICIMLayer,
    MultiHeadAttention,
    SemanticAlignmentMap,
    inner_loss,
    matching_loss,
    negative_index,
    outer_loss,
    shared_token_mask,
    span_scores,
    span_weights,
    spans_to_moments,
    temporal_pool,
    to_probability,
    video_score,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


TINY = dict(vocab_size=30, video_dim=12, num_clips=8, word_dim=16, d_model=16, heads=2, layers=2, dropout=0.0)


def _batch(B=4, T=8, L=5, D=12, seed=0, vocab=30):
    g = torch.Generator().manual_seed(seed)
    words = torch.randint(4, vocab, (B, L), generator=g)
    lengths = torch.tensor([L, L - 2, L - 1, 3][:B])
    words_mask = torch.arange(L)[None] < lengths[:, None]
    words = words * words_mask
    return {
        "video": torch.rand(B, T, D, generator=g), "video_mask": torch.ones(B, T, dtype=torch.bool),
        "words": words, "words_mask": words_mask, "duration": torch.full((B,), 30.0),
        "video_idx": torch.tensor([0, 0, 1, 2][:B]), "query_idx": torch.arange(B),
        "video_id": [f"v{i}" for i in range(B)], "sentence": ["x"] * B,
        "moment": torch.tensor([[0.1, 0.4]] * B),
    }


def _masks(B, Ns, Nv, seed=0):
    g = torch.Generator().manual_seed(seed)
    tok = torch.rand(B, Ns, generator=g) > 0.3
    tok[:, 0] = True
    n = torch.randint(2, Nv + 1, (B,), generator=g)
    n[0] = Nv
    clip = torch.arange(Nv)[None] < n[:, None]
    return tok, clip


# ----------------------------------------------------------------- Eqs. 1-4

def test_multihead_attention_matches_torch_and_naive_heads():
    """FSAN Eqs. 1-2: equals nn.MultiheadAttention (bias-free) and a per-head loop."""
    torch.manual_seed(0)
    d, m = 8, 2
    ma = MultiHeadAttention(d, m)
    ref = nn.MultiheadAttention(d, m, bias=False, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ma.q.weight, ma.k.weight, ma.v.weight]))
        ref.out_proj.weight.copy_(ma.out.weight)
    x, y = torch.randn(3, 4, d), torch.randn(3, 6, d)
    y_mask = torch.ones(3, 6, dtype=torch.bool)
    y_mask[1, 4:] = False
    out, att = ma(x, y, y_mask)
    expect, _ = ref(x, y, y, key_padding_mask=~y_mask)
    torch.testing.assert_close(out, expect)
    # naive: one head at a time, Eq. 1 literally, then Eq. 2
    heads = []
    for i in range(m):
        sl = slice(i * d // m, (i + 1) * d // m)
        Q, K, V = x @ ma.q.weight[sl].T, y @ ma.k.weight[sl].T, y @ ma.v.weight[sl].T
        logits = Q @ K.transpose(1, 2) / math.sqrt(d // m)
        logits = logits.masked_fill(~y_mask[:, None, :], float("-inf"))
        heads.append(logits.softmax(-1) @ V)
    torch.testing.assert_close(out, torch.cat(heads, -1) @ ma.out.weight.T)
    assert torch.all(att[1, :, :, 4:] == 0)  # masked keys get no weight


def test_attention_block_residual_layernorm_ffn():
    """FSAN Eqs. 3-4: X' = LN(MA(X,Y) + X), X'' = LN(FFN(X') + X')."""
    torch.manual_seed(1)
    blk = AttentionBlock(8, 2, 16, dropout=0.0)
    with torch.no_grad():  # distinct, non-identity LayerNorms: swapping norm1 and norm2 must show
        for ln in (blk.norm1, blk.norm2):
            ln.weight.normal_()
            ln.bias.normal_()
    x, y = torch.randn(2, 3, 8), torch.randn(2, 5, 8)
    out, _ = blk(x, y)
    a, _ = blk.attn(x, y)
    x1 = nn.functional.layer_norm(a + x, (8,), blk.norm1.weight, blk.norm1.bias)
    f = blk.ffn[3](torch.relu(blk.ffn[0](x1)))
    torch.testing.assert_close(out, nn.functional.layer_norm(f + x1, (8,), blk.norm2.weight, blk.norm2.bias))


def test_icim_layer_order_and_ablation_switches():
    """FSAN Eqs. 3-4: cross-modal both ways from the same inputs, then inner-modal; switches drop halves."""
    torch.manual_seed(2)
    layer = ICIMLayer(8, 2, 16, dropout=0.0)
    s, v = torch.randn(2, 4, 8), torch.randn(2, 6, 8)
    sm, vm = torch.ones(2, 4, dtype=torch.bool), torch.ones(2, 6, dtype=torch.bool)
    s2, v2, att = layer(s, v, sm, vm)
    sc, _ = layer.cross_s(s, v, vm)
    vc, _ = layer.cross_v(v, s, sm)  # from the ORIGINAL s, not sc
    torch.testing.assert_close(s2, layer.inner_s(sc, sc, sm)[0])
    torch.testing.assert_close(v2, layer.inner_v(vc, vc, vm)[0])
    assert att["s2v"].shape == (2, 2, 4, 6)
    no_cross = ICIMLayer(8, 2, 16, 0.0, cross=False)
    assert no_cross.cross_s is None and no_cross(s, v, sm, vm)[2] == {}
    no_inner = ICIMLayer(8, 2, 16, 0.0, inner=False)
    assert no_inner.inner_s is None
    with pytest.raises(ValueError):
        FSANConfig(**{**TINY, "cross_attention": False, "inner_attention": False})


def test_forward_composes_encoders_icim_stack_and_alignment_map():
    """FSAN Sec. 3.1-3.2 and Eq. 5 wired in order: text encoder, video projection + positions, the ICIM
    layers in stack order (layer 0 first), then the alignment map; rebuilt from the model's parts.

    The LayerNorms get random affine maps, so each layer is far from the identity and a reversed
    stack, a skipped layer or the map read before the stack all move P by O(0.1).
    """
    torch.manual_seed(22)
    model = build("fsan", **{**TINY, "layers": 6}).eval()  # the paper's depth
    g = torch.Generator().manual_seed(23)
    with torch.no_grad():
        for mod in model.icim.modules():
            if isinstance(mod, nn.LayerNorm):
                mod.weight.copy_(1 + torch.randn(mod.weight.shape, generator=g))
                mod.bias.copy_(torch.randn(mod.bias.shape, generator=g))
    batch = strip_labels(_batch())
    out = model(batch, negatives=False)
    sm, vm = batch["words_mask"], batch["video_mask"]
    s0 = model.text(batch["words"], sm)[0]
    v0 = (batch["video"] @ model.video_proj.weight.T + model.video_proj.bias + model.video_pos) * vm[..., None]
    s, v = s0, v0
    for layer in model.icim:  # Eqs. 3-4, layer by layer
        s, v, att = layer(s, v, sm, vm)
    P = model.sap(s, v) * sm[:, :, None] * vm[:, None, :]  # Eq. 5
    torch.testing.assert_close(out["P"], P, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["attention"], att["s2v"].mean(1))  # the last layer's words -> clips
    # the layers are not interchangeable (else the check above could not see a reordered stack)
    s, v = s0, v0
    for layer in reversed(model.icim):
        s, v, _ = layer(s, v, sm, vm)
    assert (model.sap(s, v) * sm[:, :, None] - P).abs().max() > 1e-1


def test_temporal_pool_bins_and_identity():
    """Section 3.1 video encoder: pooling T clips into N_v contiguous bins."""
    x = torch.arange(12.0).view(1, 6, 2)
    mask = torch.ones(1, 6, dtype=torch.bool)
    pooled, pm = temporal_pool(x, mask, 3)
    torch.testing.assert_close(pooled, x.view(1, 3, 2, 2).mean(2))
    assert pm.all()
    same, _ = temporal_pool(x, mask, 6)
    torch.testing.assert_close(same, x)
    # a shorter video (4 real clips) into 3 bins: bins floor(j * 3 / 4) = 0, 0, 1, 2
    mask2 = torch.tensor([[True] * 4 + [False] * 2])
    p2, m2 = temporal_pool(x, mask2, 3)
    torch.testing.assert_close(p2[0], torch.stack([x[0, :2].mean(0), x[0, 2], x[0, 3]]))
    # fewer real clips than bins: trailing bins are padding
    p3, m3 = temporal_pool(x, torch.tensor([[True, True, False, False, False, False]]), 3)
    assert m3.tolist() == [[True, True, False]]


# ----------------------------------------------------------------- Eq. 5

def test_alignment_map_is_cosine_of_projections():
    """FSAN Eq. 5: P_ij = cos(W^s s_i, W^v v_j), in [-1, 1]."""
    torch.manual_seed(3)
    sap = SemanticAlignmentMap(6, 6, 4)
    s, v = torch.randn(2, 3, 6), torch.randn(2, 5, 6)
    P = sap(s, v)
    for b in range(2):
        for i in range(3):
            for j in range(5):
                a, c = sap.ws(s[b, i]), sap.wv(v[b, j])
                torch.testing.assert_close(P[b, i, j], torch.dot(a, c) / (a.norm() * c.norm()))
    assert P.abs().max() <= 1 + 1e-6


# ----------------------------------------------------------------- Eqs. 7-8

def _naive_sc(P, tok, clip):
    """Eq. 8 by the definition: a loop over spans, inner sums over tokens and clips."""
    B, Ns, Nv = P.shape
    SC = torch.full((B, Nv, Nv), float("-inf"), dtype=P.dtype)
    for b in range(B):
        toks = [i for i in range(Ns) if tok[b, i]]
        n = int(clip[b].sum())
        for s in range(n):
            for e in range(s, n):
                inside = sum(P[b, i, j] for i in toks for j in range(s, e + 1)) / (len(toks) * (e - s + 1))
                out = [j for j in range(n) if j < s or j > e]
                outside = sum(min(P[b, i, j] for i in toks) for j in out) / len(out) if out else 0.0
                SC[b, s, e] = inside - outside
    return SC


def test_span_scores_match_naive_loop():
    """FSAN Eq. 8: prefix-sum span scores equal the triple loop (padding words and clips included)."""
    torch.manual_seed(4)
    B, Ns, Nv = 3, 5, 7
    P = torch.rand(B, Ns, Nv, dtype=torch.float64) * 2 - 1
    tok, clip = _masks(B, Ns, Nv)
    SC, valid = span_scores(P, tok, clip)
    expect = _naive_sc(P, tok, clip)
    assert torch.equal(valid, torch.isfinite(expect))
    torch.testing.assert_close(SC[valid], expect[valid])
    assert torch.isinf(SC[~valid]).all()


def test_span_scores_hand_worked():
    """FSAN Eq. 8 on a 1 x 3 toy map: P = [1, 0, -1]."""
    P = torch.tensor([[[1.0, 0.0, -1.0]]])
    SC, valid = span_scores(P, torch.ones(1, 1, dtype=torch.bool), torch.ones(1, 3, dtype=torch.bool))
    # [0,0]: 1 - (0 - 1)/2 = 1.5 ; [0,1]: 0.5 - (-1) = 1.5 ; [0,2]: 0 - 0 ; [2,2]: -1 - 0.5 = -1.5
    assert SC[0, 0, 0].item() == pytest.approx(1.5)
    assert SC[0, 0, 1].item() == pytest.approx(1.5)
    assert SC[0, 0, 2].item() == pytest.approx(0.0)
    assert SC[0, 2, 2].item() == pytest.approx(-1.5)
    assert video_score(SC).item() == pytest.approx(1.5)


def test_padding_never_changes_scores():
    """FSAN Eqs. 7-8: values at padded words/clips are ignored."""
    torch.manual_seed(5)
    P = torch.rand(2, 4, 6) * 2 - 1
    tok, clip = _masks(2, 4, 6, seed=1)
    SC, _ = span_scores(P, tok, clip)
    P2 = P.clone()
    P2[~tok[:, :, None].expand_as(P)] = 9.0
    P2[~clip[:, None, :].expand_as(P)] = -9.0
    SC2, _ = span_scores(P2, tok, clip)
    torch.testing.assert_close(SC, SC2)
    torch.testing.assert_close(video_score(SC), video_score(SC2))


def test_video_score_is_max_over_valid_spans():
    """FSAN Eq. 7: S(V, S) = max over spans of SC."""
    P = torch.rand(3, 4, 5) * 2 - 1
    tok, clip = _masks(3, 4, 5, seed=2)
    SC, valid = span_scores(P, tok, clip)
    for b in range(3):
        assert video_score(SC)[b] == SC[b][valid[b]].max()


# ----------------------------------------------------------------- Eq. 6

def test_negative_index_draws_another_video():
    """FSAN Eq. 6: the negative sentence describes a different video; none when impossible."""
    vid = torch.tensor([0, 0, 1, 1, 2])
    for seed in range(5):
        idx, has = negative_index(vid, torch.Generator().manual_seed(seed))
        assert has.all() and (vid[idx] != vid).all()
    idx, has = negative_index(torch.tensor([3, 3]))
    assert not has.any() and idx.tolist() == [0, 1]


def test_shared_token_mask():
    """FSAN Eq. 6: tokens of S^- that also occur in S are masked (padding never counts)."""
    words = torch.tensor([[5, 6, 7, 0]])
    wm = words > 0
    neg = torch.tensor([[7, 8, 5, 0]])
    nm = neg > 0
    assert shared_token_mask(words, wm, neg, nm).tolist() == [[True, False, True, False]]
    # a padded 0 in S never matches a padded 0 in S^-
    assert not shared_token_mask(words, wm, torch.tensor([[0, 0, 0, 0]]), torch.zeros(1, 4, dtype=torch.bool)).any()


def test_matching_loss_hinge_and_gradient_direction():
    """FSAN Eq. 6: max(0, delta - S + S^-); minimising raises S and lowers S^-."""
    pos = torch.tensor([0.9, 0.1, 0.5], requires_grad=True)
    neg = torch.tensor([0.1, 0.3, 0.5], requires_grad=True)
    has = torch.tensor([True, True, False])
    loss = matching_loss(pos, neg, 0.5, has)
    # pair 0: max(0, 0.5 - 0.8) = 0 ; pair 1: 0.5 - 0.1 + 0.3 = 0.7 ; pair 2: no negative
    assert loss.item() == pytest.approx(0.35)
    loss.backward()
    assert pos.grad.tolist() == pytest.approx([0.0, -0.5, 0.0])
    assert neg.grad.tolist() == pytest.approx([0.0, 0.5, 0.0])
    assert matching_loss(pos, neg, 0.5, torch.zeros(3, dtype=torch.bool)).item() == 0.0


# ----------------------------------------------------------------- Eqs. 9-12

def _naive_inner_outer(P, tok, clip, w):
    """Our reading of Eqs. 9-12, span by span."""
    B, Ns, Nv = P.shape
    p = (P + 1) / 2
    li = lo = 0.0
    for b in range(B):
        toks = [i for i in range(Ns) if tok[b, i]]
        n = int(clip[b].sum())
        for s in range(n):
            for e in range(s, n):
                inner = -sum(torch.log(p[b, i, s:e + 1].mean()) for i in toks) / len(toks)
                out = [j for j in range(n) if j < s or j > e]
                outer = (-sum(torch.log(1 - min(p[b, i, j] for i in toks)) for j in out) / len(out)) if out else 0.0
                li = li + w[b, s, e] * inner
                lo = lo + w[b, s, e] * outer
    return li / B, lo / B


def test_inner_outer_losses_match_naive_loop():
    """FSAN Eqs. 9-12 (our reading) equal a span-by-span loop."""
    torch.manual_seed(6)
    B, Ns, Nv = 2, 4, 6
    P = (torch.rand(B, Ns, Nv, dtype=torch.float64) * 1.8 - 0.9)
    tok, clip = _masks(B, Ns, Nv, seed=3)
    SC, valid = span_scores(P, tok, clip)
    for w in (span_weights(SC, valid, "softmax", 0.5), span_weights(SC, valid, "centred")):
        li, lo = _naive_inner_outer(P, tok, clip, w)
        torch.testing.assert_close(inner_loss(P, tok, w), li)
        torch.testing.assert_close(outer_loss(P, tok, clip, w), lo)


def test_span_weights_nonnegative_detached():
    """FSAN Eqs. 10 and 12: our weights are >= 0, zero off the valid spans and carry no gradient;
    softmax(SC / tau) sums to 1; centred [SC - mean SC]_+ / n vanishes on a flat map."""
    P = (torch.rand(2, 3, 5) * 2 - 1).requires_grad_()
    tok, clip = _masks(2, 3, 5, seed=4)
    SC, valid = span_scores(P, tok, clip)
    w = span_weights(SC, valid, "softmax", 0.2)
    assert not w.requires_grad
    assert (w >= 0).all() and (w[~valid] == 0).all()
    torch.testing.assert_close(w.flatten(1).sum(1), torch.ones(2))
    torch.testing.assert_close(w[0][valid[0]], (SC[0][valid[0]].detach() / 0.2).softmax(0))
    c = span_weights(SC, valid)
    assert not c.requires_grad and (c >= 0).all() and (c[~valid] == 0).all()
    for b in range(2):
        v = SC[b][valid[b]].detach()
        torch.testing.assert_close(c[b][valid[b]], (v - v.mean()).clamp(min=0) / v.numel())
    flat = torch.zeros(1, 4, 4)
    assert span_weights(flat, torch.ones(1, 4, 4, dtype=torch.bool).triu()).abs().sum() == 0
    with pytest.raises(ValueError):
        span_weights(SC, valid, "uniform")


def test_span_scores_outside_floor_matches_naive():
    """FSAN Eq. 8 with our rectified outside term: max(min_i P_ij, 0), against the span loop."""
    torch.manual_seed(14)
    P = torch.rand(2, 4, 6, dtype=torch.float64) * 2 - 1
    tok, clip = _masks(2, 4, 6, seed=6)
    SC, valid = span_scores(P, tok, clip, outside_floor=0.0)
    # the naive loop on a map whose column minima are floored: only the minimum matters outside
    B, Ns, Nv = P.shape
    for b in range(B):
        toks = [i for i in range(Ns) if tok[b, i]]
        n = int(clip[b].sum())
        for s in range(n):
            for e in range(s, n):
                inside = P[b][toks][:, s:e + 1].mean()
                out = [max(P[b][toks][:, j].min().item(), 0.0) for j in range(n) if j < s or j > e]
                expect = inside - (sum(out) / len(out) if out else 0.0)
                assert SC[b, s, e].item() == pytest.approx(expect.item())
    # anti-alignment: printed Eq. 8 picks the complement of a negative event, the floor does not
    anti = torch.tensor([[[-1.0, -1.0, -1.0, 0.5, 0.5, 0.5, 0.5, 0.5]]])
    one, eight = torch.ones(1, 1, dtype=torch.bool), torch.ones(1, 8, dtype=torch.bool)
    printed, _ = span_scores(anti, one, eight)
    assert printed[0].flatten().argmax().item() == 3 * 8 + 7 and video_score(printed).item() == pytest.approx(1.5)
    floored, _ = span_scores(anti, one, eight, outside_floor=0.0)
    assert video_score(floored).item() == pytest.approx(0.5)


def test_loss_gradients_point_the_right_way():
    """FSAN Eqs. 9-12: the inner loss raises P inside the weighted span, the outer loss lowers the
    weakest token of the clips outside; the printed Eq. 11 would do the opposite."""
    P = (torch.rand(1, 3, 6, dtype=torch.float64) * 1.6 - 0.8).requires_grad_()
    tok = torch.ones(1, 3, dtype=torch.bool)
    clip = torch.ones(1, 6, dtype=torch.bool)
    w = torch.zeros(1, 6, 6, dtype=torch.float64)
    w[0, 2, 3] = 1.0  # all the weight on span [2, 3]
    inner_loss(P, tok, w).backward()
    g = P.grad[0]
    assert (g[:, 2:4] < 0).all()  # descent raises P inside
    assert (g[:, [0, 1, 4, 5]] == 0).all()
    P.grad = None
    outer_loss(P, tok, clip, w).backward()
    g = P.grad[0]
    weakest = P[0].argmin(0)
    for j in range(6):
        if j in (2, 3):
            assert (g[:, j] == 0).all()
        else:
            assert g[weakest[j], j] > 0  # descent lowers the weakest token of an outside clip
            assert (g[:, j].abs().sum() == g[weakest[j], j].abs())
    # the printed Eq. 11, -mean log(min P) on positive P, has the opposite sign
    Q = P.detach().abs().clamp(min=0.1).requires_grad_()
    printed = -torch.log(Q[0].amin(0)[[0, 1, 4, 5]]).mean()
    printed.backward()
    assert (Q.grad[0].sum(0)[[0, 1, 4, 5]] < 0).all()  # descent would RAISE the outside minimum


def test_loss_finite_difference_gradients():
    """FSAN Eqs. 8-12: autograd agrees with finite differences (float64 gradcheck)."""
    torch.manual_seed(7)
    P = (torch.rand(2, 3, 5, dtype=torch.float64) * 1.6 - 0.8).requires_grad_()
    tok, clip = _masks(2, 3, 5, seed=5)
    w = span_weights(*span_scores(P.detach(), tok, clip), "softmax", 0.3)
    assert torch.autograd.gradcheck(lambda x: inner_loss(x, tok, w), (P,), fast_mode=False)
    assert torch.autograd.gradcheck(lambda x: outer_loss(x, tok, clip, w), (P,), fast_mode=False)
    # the span scores (away from ties of the per-clip minimum, which random values avoid)
    valid = span_scores(P.detach(), tok, clip)[1]
    assert torch.autograd.gradcheck(lambda x: span_scores(x, tok, clip)[0][valid], (P,), fast_mode=False)
    assert torch.autograd.gradcheck(lambda x: span_scores(x, tok, clip, 0.0)[0][valid], (P,), fast_mode=False)


# ----------------------------------------------------------------- the model, Eq. 13

def test_total_loss_is_weighted_sum():
    """FSAN Eq. 13: L = l1 L^t + l2 L^i + l3 L^o with lambda = 1/3 each by default."""
    torch.manual_seed(8)
    model = build("fsan", **TINY)
    assert model.config.lambdas == pytest.approx((1 / 3,) * 3)
    batch = strip_labels(_batch())
    model.train()
    out = model(batch)
    total, parts = model.loss(batch, out)
    assert all(v.ndim == 0 and not v.requires_grad for v in parts.values())  # no host sync per step
    assert total.item() == pytest.approx(float(parts["matching"] + parts["inner"] + parts["outer"]) / 3, rel=1e-5)
    m2 = build("fsan", **TINY, lambdas=(1.0, 0.0, 0.0))
    m2.load_state_dict(model.state_dict())
    m2.train()
    t2, p2 = m2.loss(batch, out)
    assert t2.item() == pytest.approx(float(p2["matching"]), rel=1e-5)


def test_gradients_reach_every_parameter():
    """FSAN Eq. 13: one backward step reaches every learnable parameter."""
    torch.manual_seed(9)
    model = build("fsan", **TINY)
    model.train()
    batch = strip_labels(_batch())
    total, _ = model.loss(batch, model(batch))
    total.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()
               or not p.grad.abs().max() > 1e-8]  # above rounding (~1e-10); real ones are >= 1e-5
    # the <pad> embedding row is zero by design; every other parameter must learn
    assert missing == [], missing


def test_weak_model_never_needs_labels():
    """FSAN forward/loss/predict work without `moment` (weak supervision)."""
    torch.manual_seed(10)
    model = build("fsan", **TINY)
    assert model.supervision == "weak"
    batch = strip_labels(_batch())
    assert "moment" not in batch
    model.train()
    total, parts = model.loss(batch, model(batch))
    assert torch.isfinite(total) and set(parts) == {"matching", "inner", "outer"}
    model.eval()
    moments, scores = model.predict(batch, top_k=7)
    assert moments.shape == (4, 7, 2) and scores.shape == (4, 7)


def test_predict_shape_range_sorted_and_matches_sc():
    """FSAN inference: spans ranked by SC (Eq. 8), best first, as [s/N, (e+1)/N] moments."""
    torch.manual_seed(11)
    model = build("fsan", **TINY, decode="floored").eval()
    batch = strip_labels(_batch())
    moments, scores = model.predict(batch, top_k=50)
    assert moments.shape == (4, 36, 2)  # 8 clips -> 36 spans < 50
    assert (moments >= 0).all() and (moments <= 1).all() and (moments[..., 0] < moments[..., 1]).all()
    assert (scores[:, 1:] <= scores[:, :-1]).all()
    out = model(batch)
    SC = out["SC"]
    s = (moments[..., 0] * 8).round().long()
    e = (moments[..., 1] * 8).round().long() - 1
    torch.testing.assert_close(scores, SC[torch.arange(4)[:, None], s, e])
    torch.testing.assert_close(scores[:, 0], out["score"])
    torch.testing.assert_close(spans_to_moments(torch.tensor([[9]]), 8, torch.tensor([8])),
                               torch.tensor([[[1 / 8, 2 / 8]]]))


def test_model_padding_invariance():
    """FSAN forward: padded words and padded clips never change the map, scores or predictions."""
    torch.manual_seed(12)
    model = build("fsan", **TINY).eval()
    batch = strip_labels(_batch())
    out = model(batch)
    # garbage in the padded word slots, and two extra padded clips of garbage
    b2 = dict(batch)
    b2["words"] = torch.where(batch["words_mask"], batch["words"], torch.full_like(batch["words"], 7))
    b2["words"] = torch.cat([b2["words"], torch.full((4, 2), 9)], 1)
    b2["words_mask"] = torch.cat([batch["words_mask"], torch.zeros(4, 2, dtype=torch.bool)], 1)
    out2 = model(b2)
    torch.testing.assert_close(out2["SC"], out["SC"])
    torch.testing.assert_close(out2["P"][:, :5][batch["words_mask"]], out["P"][batch["words_mask"]])
    # a video of 6 real clips padded to 8 scores like the same 6 clips alone (pool_clips = 6 world)
    m6 = build("fsan", **{**TINY, "num_clips": 6}).eval()
    m6.load_state_dict({k: (v[:6] if k == "video_pos" else v) for k, v in model.state_dict().items()})
    short = dict(batch, video=batch["video"][:, :6], video_mask=batch["video_mask"][:, :6])
    padded = dict(batch, video=torch.cat([batch["video"][:, :6], torch.rand(4, 2, 12) * 5], 1),
                  video_mask=torch.arange(8)[None].expand(4, 8) < 6)
    a, b = m6(short), model(padded)
    torch.testing.assert_close(b["SC"][:, :6, :6], a["SC"])
    assert not b["valid"][:, 6:].any() and not b["valid"][:, :, 6:].any()
    torch.testing.assert_close(model.predict(padded, 21)[0], m6.predict(short, 21)[0])


def test_negatives_mask_shared_tokens_in_both_maps():
    """FSAN Eq. 6 in the model: the negative is another video's query; shared tokens are masked
    in P^- (as printed) and, by default, in P too; a pair with no token left has no loss."""
    torch.manual_seed(13)
    batch = strip_labels(_batch())
    batch["words"][3] = batch["words"][0]  # query 3 (video 2) repeats query 0 (video 0)
    batch["words_mask"][3] = batch["words_mask"][0]
    for mode in ("both", "negative", "none"):
        model = build("fsan", **TINY, mask_shared_tokens=mode).train()
        torch.manual_seed(0)
        out = model(batch)
        neg = out["neg_index"]
        assert (batch["video_idx"][neg] != batch["video_idx"]).all()
        w, m = batch["words"], batch["words_mask"]
        shared_neg = shared_token_mask(w, m, w[neg], m[neg])
        shared_pos = shared_token_mask(w[neg], m[neg], w, m)
        expect_neg = m[neg] & ~shared_neg if mode != "none" else m[neg]
        expect_pos = m & ~shared_pos if mode == "both" else m
        assert torch.equal(out["neg_token_mask"], expect_neg)
        assert torch.equal(out["pos_token_mask"], expect_pos)
        SCp, _ = span_scores(out["P"], expect_pos, out["clip_mask"], 0.0)
        torch.testing.assert_close(out["score_pos"], video_score(SCp))
        SCn, _ = span_scores(out["P_neg"], expect_neg, out["clip_mask"], 0.0)
        has = expect_neg.any(1) & expect_pos.any(1)
        assert torch.equal(out["has_negative"], has)
        torch.testing.assert_close(out["score_neg"][has], video_score(SCn)[has])
    # with an identical sentence as the negative nothing is left to compare
    model = build("fsan", **TINY).train()
    for seed in range(20):
        torch.manual_seed(seed)
        out = model(batch)
        if out["neg_index"][0] == 3:
            assert not out["has_negative"][0]
            break
    else:
        pytest.fail("query 0 never drew query 3 as its negative")


def test_config_validation_and_build():
    """FSANConfig: paper defaults (6 layers, d=512, dropout 0.1, lambda = 1/3) and clear errors."""
    cfg = FSANConfig(vocab_size=10, video_dim=4, num_clips=8)
    assert (cfg.layers, cfg.d_model, cfg.dropout) == (6, 512, 0.1)
    with pytest.raises(ValueError):
        FSANConfig(vocab_size=10, video_dim=4, num_clips=8, d_model=10, heads=3)
    with pytest.raises(ValueError):
        FSANConfig(vocab_size=10, video_dim=4, num_clips=8, mask_shared_tokens="yes")
    model = build("fsan", **TINY)
    assert isinstance(model, FSAN)
    with pytest.raises(ValueError):
        model(dict(_batch(), video=torch.rand(4, 8, 5)))


# ----------------------------------------------------------------- wiring: inference rule and candidates

def test_decode_rules_rank_by_their_own_eq8_and_training_keeps_the_floor():
    """FSAN Eq. 8 at inference: decode="printed" ranks by Eq. 8 as printed (no floor),
    decode="floored" by the training score; the training score (hinge, span weights) keeps the
    floor whatever the decode rule."""
    torch.manual_seed(15)
    batch = strip_labels(_batch())
    ref = build("fsan", **TINY)
    assert ref.config.decode == "printed"  # the default, chosen on the validation split
    for rule, floor in (("printed", None), ("floored", 0.0)):
        model = build("fsan", **TINY, decode=rule).eval()
        model.load_state_dict(ref.state_dict())
        out = model(batch, negatives=False)
        torch.testing.assert_close(out["SC"], span_scores(out["P"], batch["words_mask"], out["clip_mask"], 0.0)[0])
        expect = span_scores(out["P"], batch["words_mask"], out["clip_mask"], floor)[0]
        torch.testing.assert_close(model.decode_scores(out), expect)
        moments, scores = model.predict(batch, top_k=36)
        top, idx = expect.flatten(1).topk(36, dim=1)
        torch.testing.assert_close(scores, top)
        torch.testing.assert_close(moments, spans_to_moments(idx, 8, torch.full((4,), 8)))
    # the two rules differ on this map by far more than rounding (otherwise the test could not tell
    # them apart); compared on the valid spans, the others are -inf under both
    out = ref.eval()(batch, negatives=False)
    printed, floored = ref.decode_scores(out, "printed"), ref.decode_scores(out, "floored")
    finite = torch.isfinite(printed)
    assert torch.equal(finite, torch.isfinite(floored))
    assert (printed[finite] - floored[finite]).abs().max() > 1e-1
    with pytest.raises(ValueError):
        ref.decode_scores(out, "inside")
    with pytest.raises(ValueError):
        FSANConfig(vocab_size=10, video_dim=4, num_clips=8, decode="best")
    with pytest.raises(ValueError):
        FSANConfig(vocab_size=10, video_dim=4, num_clips=8, weight_norm="max")


def test_candidates_are_the_spans_predict_ranks():
    """GroundingModel.candidates: all N(N+1)/2 spans [s/N, (e+1)/N]; every prediction is one of them."""
    torch.manual_seed(16)
    model = build("fsan", **TINY).eval()
    cand = model.candidates()
    expect = torch.tensor([[s / 8, (e + 1) / 8] for s in range(8) for e in range(s, 8)])
    torch.testing.assert_close(cand, expect)
    moments, _ = model.predict(strip_labels(_batch()), top_k=36)
    hit = (moments[:, :, None, :] - cand[None, None]).abs().amax(-1).amin(-1)
    assert (hit < 1e-6).all()
    # pooled: a model with pool_clips=4 ranks the 10 spans of 4 bins
    pooled = build("fsan", **TINY, pool_clips=4).eval()
    assert pooled.candidates().shape == (10, 2)
    m4, _ = pooled.predict(strip_labels(_batch()), top_k=10)
    assert ((m4[:, :, None, :] - pooled.candidates()[None, None]).abs().amax(-1).amin(-1) < 1e-6).all()


def test_span_lengths_restrict_what_inference_ranks():
    """``span_lengths=(2, 3)``: predict returns exactly the best 2- and 3-clip spans by Eq. 8 (a naive
    loop over spans), candidates are those spans, training scores are unchanged; a video shorter than
    the shortest length returns its whole length."""
    torch.manual_seed(11)
    free = build("fsan", **TINY).eval()
    torch.manual_seed(11)
    model = build("fsan", **TINY, span_lengths=(2, 3)).eval()
    batch = strip_labels(_batch())
    out, out_free = model(batch), free(batch)
    torch.testing.assert_close(out["SC"], out_free["SC"])  # training is unchanged
    full = free.decode_scores(out_free).detach()
    moments, scores = model.predict(batch, top_k=50)
    assert moments.shape == (4, 7 + 6, 2)  # 8 clips: seven 2-clip and six 3-clip spans
    for b in range(4):  # naive: the allowed spans, by their Eq. 8 score
        allowed = sorted(((float(full[b, s_, e_]), s_, e_) for s_ in range(8) for e_ in range(s_ + 1, min(s_ + 3, 8))),
                         reverse=True)
        torch.testing.assert_close(scores[b], torch.tensor([a[0] for a in allowed]))
        torch.testing.assert_close(moments[b, 0], torch.tensor([allowed[0][1] / 8, (allowed[0][2] + 1) / 8]))
    cand = model.candidates()
    assert len(cand) == 13 and set(((cand[:, 1] - cand[:, 0]) * 8).round().tolist()) == {2.0, 3.0}
    short = dict(batch, video_mask=batch["video_mask"].clone())
    short["video_mask"][0, 1:] = False  # one real clip
    m_short, _ = model.predict(short, top_k=5)
    torch.testing.assert_close(m_short[0, 0], torch.tensor([0.0, 1.0]))  # its one clip, the whole video
    with pytest.raises(ValueError, match="span_lengths"):
        build("fsan", **TINY, span_lengths=(3, 2))


# ----------------------------------------------------------------- wiring: Eq. 6 negatives and Eq. 13

def test_negative_pass_reads_the_negative_sentence_with_the_same_video():
    """FSAN Eq. 6: P^- is the map of (the SAME video, the sampled sentence S^-), as a separate
    eval pass on that pair computes it; its score moves only through P^-."""
    torch.manual_seed(17)
    model = build("fsan", **TINY).train()  # dropout 0: train and eval passes agree
    batch = strip_labels(_batch())
    torch.manual_seed(3)
    out = model(batch)
    neg = out["neg_index"]
    assert (neg != torch.arange(4)).any()
    swapped = dict(batch, words=batch["words"][neg], words_mask=batch["words_mask"][neg])
    alone = model(swapped, negatives=False)
    torch.testing.assert_close(out["P_neg"], alone["P"])
    torch.testing.assert_close(out["P"], model(batch, negatives=False)["P"])
    # the negative map differs from the positive one where the sentences differ (by O(0.1) on cosines
    # in [-1, 1]; rounding is ~1e-6), so the checks above can tell P^- from P
    other = neg != torch.arange(4)
    assert (out["P_neg"][other] - out["P"][other]).abs().max() > 1e-1
    # score_neg is Eq. 7-8 on P^- with the negative token mask (floor of training)
    SCn, _ = span_scores(out["P_neg"], out["neg_token_mask"], out["clip_mask"], 0.0)
    has = out["has_negative"]
    torch.testing.assert_close(out["score_neg"][has], video_score(SCn)[has])


def test_loss_terms_against_their_functions_with_distinct_lambdas():
    """FSAN Eq. 13 with distinct lambdas: each term equals its function (Eq. 6, Eqs. 9-10,
    Eqs. 11-12) on the forward outputs, and the total weights each by its own lambda."""
    torch.manual_seed(18)
    lam = (0.5, 3.0, 7.0)
    for norm in ("spans", "sum"):
        model = build("fsan", **TINY, lambdas=lam, weight_norm=norm, margin=0.7).train()
        batch = strip_labels(_batch())
        torch.manual_seed(0)
        out = model(batch)
        total, parts = model.loss(batch, out)
        l_t = matching_loss(out["score_pos"], out["score_neg"], 0.7, out["has_negative"])
        SC, valid = span_scores(out["P"].detach(), batch["words_mask"], out["clip_mask"], 0.0)
        w = span_weights(SC, valid, "centred", norm=norm)
        assert w.sum() > 0
        l_i = inner_loss(out["P"], batch["words_mask"], w)
        l_o = outer_loss(out["P"], batch["words_mask"], out["clip_mask"], w)
        assert parts["matching"] == pytest.approx(l_t.item(), rel=1e-5)
        assert parts["inner"] == pytest.approx(l_i.item(), rel=1e-5)
        assert parts["outer"] == pytest.approx(l_o.item(), rel=1e-5)
        assert abs(l_i.item() - l_o.item()) > 1e-3 * max(l_i.item(), l_o.item())  # a swap would show
        expect = lam[0] * l_t + lam[1] * l_i + lam[2] * l_o
        assert total.item() == pytest.approx(expect.item(), rel=1e-5)


def test_each_term_reaches_the_paths_that_must_learn():
    """FSAN Eq. 13, one term at a time: the hinge reaches the text encoder through BOTH passes
    (S and S^-) and the video encoder; the map losses reach both encoders through P only,
    never through their (gradient-stopped) weights."""
    torch.manual_seed(19)
    batch = strip_labels(_batch())
    for k, name in enumerate(("matching", "inner", "outer")):
        lam = [0.0, 0.0, 0.0]
        lam[k] = 1.0
        model = build("fsan", **TINY, lambdas=tuple(lam)).train()
        torch.manual_seed(0)
        out = model(batch)
        total, _ = model.loss(batch, out)
        g_emb, g_vid, g_P = torch.autograd.grad(total, [model.text.embed.weight, model.video_proj.weight, out["P"]],
                                                retain_graph=True)
        assert g_emb.abs().sum() > 0 and g_vid.abs().sum() > 0, name
        if name == "matching":
            # the words of the negative sentences (and only they, among unshared tokens) get gradient
            # through the negative pass: zero the positive map's path and some still flows
            g_neg, = torch.autograd.grad(total, out["P_neg"], retain_graph=True)
            assert g_neg.abs().sum() > 1e-2  # ~1 here
            # the negative pass alone reaches the embeddings of the words S^- is scored on (its
            # unshared tokens). A set difference with the batch's words would be empty here: every
            # negative is a query of the same batch, so such a check would pass vacuously.
            has = out["has_negative"]
            assert has.any()
            g_emb_neg, = torch.autograd.grad(out["score_neg"][has].sum(), model.text.embed.weight, retain_graph=True)
            neg_tokens = batch["words"][out["neg_index"]][has][out["neg_token_mask"][has]].unique()
            assert len(neg_tokens) > 0 and (g_emb_neg[neg_tokens].abs().sum(1) > 1e-6).all()
        else:
            # Eqs. 10/12: the weights are pseudo-labels, so d total / dP is the loss with fixed weights
            w = span_weights(out["SC"].detach(), out["valid"])
            f = inner_loss if name == "inner" else (lambda P, t, w_: outer_loss(P, t, out["clip_mask"], w_))
            expect, = torch.autograd.grad(f(out["P"], batch["words_mask"], w), out["P"])
            torch.testing.assert_close(g_P, expect)


def test_span_weights_sum_normalisation():
    """FSAN Eqs. 10/12 weights: norm="sum" divides [SC - mean]_+ by its sum (1 per video, 0 when flat);
    norm="spans" by the number of spans (a mean)."""
    torch.manual_seed(20)
    SC = torch.randn(3, 5, 5, dtype=torch.float64)
    valid = torch.ones(5, 5, dtype=torch.bool).triu().expand(3, 5, 5).clone()
    valid[2, :, 3:] = False
    SC = SC.masked_fill(~valid, float("-inf"))
    ws = span_weights(SC, valid, norm="sum")
    wn = span_weights(SC, valid, norm="spans")
    for b in range(3):
        v = SC[b][valid[b]]
        c = (v - v.mean()).clamp(min=0)
        torch.testing.assert_close(ws[b][valid[b]], c / c.sum())
        torch.testing.assert_close(wn[b][valid[b]], c / v.numel())
    torch.testing.assert_close(ws.flatten(1).sum(1), torch.ones(3, dtype=torch.float64))
    flat = torch.zeros(1, 4, 4)
    assert span_weights(flat, torch.ones(1, 4, 4, dtype=torch.bool).triu(), norm="sum").abs().sum() == 0
    with pytest.raises(ValueError):
        span_weights(SC, valid, norm="max")


def test_map_losses_ignore_padded_words_and_clips():
    """FSAN Eqs. 9-12: values of P at padded words or clips never change the inner/outer losses."""
    torch.manual_seed(21)
    P = torch.rand(3, 4, 7, dtype=torch.float64) * 1.6 - 0.8
    tok, clip = _masks(3, 4, 7, seed=9)
    assert not clip.all()
    w = span_weights(*span_scores(P, tok, clip))
    P2 = P.clone()
    P2[~clip[:, None, :].expand_as(P)] = 0.99  # a padded clip "aligned" with everything
    P2[~tok[:, :, None].expand_as(P)] = -0.99
    torch.testing.assert_close(inner_loss(P2, tok, w), inner_loss(P, tok, w))
    torch.testing.assert_close(outer_loss(P2, tok, clip, w), outer_loss(P, tok, clip, w))
