"""Tests of wsg.models.vlanet: every equation against an independent computation."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from wsg.models import build, strip_labels
from wsg.models.vlanet import (
    CHARADES_VIDEO_FRAMES, LOCALISE_RULES, CascadedAttention, DenseAttention, VLAFunction, VLANet, VLANetConfig, contrastive_loss,
    didemo_groups, segment_groups, select_surrogates, window_means,
)
from wsg.proposals import didemo_candidates, didemo_moments

VOCAB, VDIM, T = 20, 12, 16


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def small(**kw) -> VLANet:
    cfg = dict(vocab_size=VOCAB, video_dim=VDIM, num_clips=T, word_dim=8, hidden=8, dim=8)
    cfg.update(kw)
    torch.manual_seed(0)
    return build("vlanet", **cfg)


def make_batch(B: int = 6, L: int = 5, seed: int = 0, t: int = T) -> dict:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, L + 1, (B,), generator=g)
    lengths[0] = L
    words = torch.randint(4, VOCAB, (B, L), generator=g)
    words_mask = torch.arange(L)[None] < lengths[:, None]
    words = words * words_mask
    return {
        "video": torch.rand(B, t, VDIM, generator=g),
        "video_mask": torch.ones(B, t, dtype=torch.bool),
        "words": words, "words_mask": words_mask,
        "duration": torch.full((B,), 30.0),
        "video_idx": torch.tensor([0, 0, 1, 2, 3, 3][:B]),
        "query_idx": torch.arange(B),
        "video_id": [f"v{i}" for i in range(B)], "sentence": ["s"] * B,
        "moment": torch.tensor([[0.1, 0.4]] * B),
    }


# ----------------------------------------------------------------------------- Eq. 1


def test_eq1_query_states_unit_norm_and_final_state():
    """VLANet Eq. 1: every real word state is a unit vector, pads are zero, w_M is the last real state."""
    m = small()
    b = make_batch()
    q, last = m.encode_query(b["words"], b["words_mask"])
    norms = q.norm(dim=-1)
    torch.testing.assert_close(norms[b["words_mask"]], torch.ones(int(b["words_mask"].sum())))
    assert (norms[~b["words_mask"]] == 0).all()
    lengths = b["words_mask"].sum(1)
    at_last = q[torch.arange(len(lengths)), lengths - 1]
    torch.testing.assert_close(last, at_last, atol=1e-5, rtol=1e-5)


def test_eq1_padding_words_do_not_change_query():
    """VLANet Eq. 1: extra padding columns leave Q (real positions) and w_M unchanged."""
    m = small()
    b = make_batch()
    q, last = m.encode_query(b["words"], b["words_mask"])
    pad_w = torch.cat([b["words"], torch.zeros(6, 3, dtype=torch.long)], 1)
    pad_m = torch.cat([b["words_mask"], torch.zeros(6, 3, dtype=torch.bool)], 1)
    q2, last2 = m.encode_query(pad_w, pad_m)
    torch.testing.assert_close(q2[:, :5], q)
    torch.testing.assert_close(last2, last)


# ----------------------------------------------------------------------------- Eq. 2


def test_eq2_paper_groups_in_our_units():
    """VLANet Eq. 2: 176/208/240-frame windows, stride 8 on a 715.2-frame video -> K = 60 groups, L = 3."""
    win = segment_groups()
    assert win.shape == (3, 60, 2)
    lengths = win[..., 1] - win[..., 0]
    torch.testing.assert_close(lengths[:, 0], torch.tensor([176.0, 208.0, 240.0]) / CHARADES_VIDEO_FRAMES)
    assert torch.equal(win[0, :, 0], win[2, :, 0])  # a group shares its start
    torch.testing.assert_close(win[0, 1, 0] - win[0, 0, 0], torch.tensor(8.0 / CHARADES_VIDEO_FRAMES))
    assert win.max() <= 1.0 and win[2, -1, 1] > 1 - 8.0 / CHARADES_VIDEO_FRAMES  # last group nearly flush
    # hand case: windows 2 and 4 of 10 frames, stride 1 -> starts 0..6 (7 groups)
    small_win = segment_groups((2, 4), 1, 10)
    assert small_win.shape == (2, 7, 2)
    torch.testing.assert_close(small_win[1, 6], torch.tensor([0.6, 1.0]))
    torch.testing.assert_close(small_win[0, 6], torch.tensor([0.6, 0.8]))
    with pytest.raises(ValueError):
        segment_groups((20,), 1, 10)


def test_eq2_window_means_hand_case():
    """VLANet Eq. 2: the mean of the covered clips, partial clips weighted by their covered part."""
    video = torch.tensor([[[1.0], [2.0], [3.0], [4.0]]])
    win = torch.tensor([[[0.125, 0.625], [0.0, 1.0], [0.25, 0.5]]])  # clip coords [0.5, 2.5], [0, 4], [1, 2]
    out = window_means(video, None, win)
    torch.testing.assert_close(out[0, :, 0], torch.tensor([2.0, 2.5, 2.0]))


def test_eq2_window_means_match_naive_loop_and_ignore_padding():
    """VLANet Eq. 2: prefix-sum means equal a loop over clips (float64); padded clips are never read."""
    g = torch.Generator().manual_seed(1)
    B, Tm, D = 3, 9, 4
    video = torch.randn(B, Tm, D, generator=g, dtype=torch.float64)
    lengths = torch.tensor([9, 7, 5])
    mask = torch.arange(Tm)[None] < lengths[:, None]
    s = torch.rand(B, 5, generator=g, dtype=torch.float64) * 0.7
    e = s + 0.05 + torch.rand(B, 5, generator=g, dtype=torch.float64) * (1 - s - 0.05)
    win = torch.stack([s, e], -1)
    out = window_means(video, mask, win)
    for b in range(B):
        Tb = int(lengths[b])
        for j in range(5):
            a, z = win[b, j, 0].item() * Tb, win[b, j, 1].item() * Tb
            acc = torch.zeros(D, dtype=torch.float64)
            for i in range(Tb):
                acc += max(0.0, min(z, i + 1) - max(a, i)) * video[b, i]
            torch.testing.assert_close(out[b, j], acc / (z - a))
    # garbage in the padded clips changes nothing
    noisy = torch.where(mask[..., None], video, torch.full_like(video, 1e6))
    torch.testing.assert_close(window_means(noisy, mask, win), out)


def test_eq2_window_means_gradcheck():
    """VLANet Eq. 2: finite-difference gradient of the window means w.r.t. the clip features."""
    g = torch.Generator().manual_seed(2)
    video = torch.randn(2, 6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    win = torch.tensor([[[0.1, 0.55], [0.3, 1.0]]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda v: window_means(v, None, win), (video,), fast_mode=False)


def test_eq2_proposals_are_unit_and_equal_projected_means():
    """VLANet Eq. 2: p_lk = normalise(FC(mean)) and projecting the clips first is the same."""
    m = small()
    b = make_batch()
    win, _ = m.proposal_windows(b)
    p = m.encode_proposals(b["video"], b["video_mask"], win)
    assert p.shape == (6, m.num_scales, m.num_groups, 8)
    torch.testing.assert_close(p.norm(dim=-1), torch.ones(p.shape[:-1]))
    ref = F.normalize(m.video_proj(window_means(b["video"], b["video_mask"], win)), dim=-1)
    torch.testing.assert_close(p, ref, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- Eqs. 3-6


def test_eqs3_6_selection_matches_loop():
    """VLANet Eqs. 3-6: per group, the scale with the largest p_lk . w_M; s_k = p_{l'k}."""
    g = torch.Generator().manual_seed(3)
    B, L, K, D = 2, 3, 5, 4
    P = F.normalize(torch.randn(B, L, K, D, generator=g), dim=-1)
    w = F.normalize(torch.randn(3, D, generator=g), dim=-1)
    vi = torch.tensor([0, 1, 1])
    valid = torch.ones(1, L, K, dtype=torch.bool)
    valid[0, 1, 2] = False
    s, choice, sim = select_surrogates(P, w, valid, vi)
    assert s.shape == (3, K, D) and choice.shape == (3, K) and sim.shape == (3, L, K)
    for n in range(3):
        for k in range(K):
            scores = [float(P[vi[n], l, k] @ w[n]) if valid[0, l, k] else -math.inf for l in range(L)]
            best = max(range(L), key=lambda l: scores[l])
            assert int(choice[n, k]) == best
            torch.testing.assert_close(s[n, k], P[vi[n], best, k])
            assert sim[n, 1, 2] == -math.inf


def test_eqs3_6_only_selected_proposals_receive_gradient():
    """VLANet Eqs. 3-6: gradient reaches the selected p_{l'k} and no other proposal, nor w_M."""
    g = torch.Generator().manual_seed(4)
    P = F.normalize(torch.randn(2, 3, 6, 4, generator=g), dim=-1).requires_grad_(True)
    w = F.normalize(torch.randn(2, 4, generator=g), dim=-1).requires_grad_(True)
    s, choice, _ = select_surrogates(P, w, torch.ones(1, 3, 6, dtype=torch.bool))
    (s * torch.randn(s.shape, generator=g)).sum().backward()
    selected = F.one_hot(choice, 3).transpose(1, 2).bool()  # [B, L, K]
    assert (P.grad[selected].abs().sum(-1) > 0).all()
    assert (P.grad[~selected] == 0).all()
    assert w.grad is None or (w.grad == 0).all()  # the argmax passes no gradient to the query


# ----------------------------------------------------------------------------- Eqs. 7-8


def test_eq7_vla_function_matches_loop_sum_and_mean():
    """VLANet Eq. 7: E(x_n, Y) = sum_m tanh(W1 x_n . W2 y_m) over valid y_m (or their mean)."""
    torch.manual_seed(5)
    x, y = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    ymask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    for reduce in ("sum", "mean"):
        f = VLAFunction(4, 6, reduce)
        out = f(x, y, ymask)
        for b in range(2):
            for n in range(3):
                vals = [torch.tanh(f.w1.weight @ x[b, n] @ (f.w2.weight @ y[b, m])) for m in range(5) if ymask[b, m]]
                ref = sum(vals) / (len(vals) if reduce == "mean" else 1)
                torch.testing.assert_close(out[b, n], ref)


def test_eq8_weights_scale_each_element():
    """VLANet Eq. 8: the softmax over the N elements scales row n of X: A(X, Y)_n = a_n x_n (x N for 'count')."""
    torch.manual_seed(6)
    x, y = torch.randn(2, 4, 3), torch.randn(2, 5, 3)
    xm = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    ym = torch.ones(2, 5, dtype=torch.bool)
    for scale in ("none", "count"):
        att = DenseAttention(3, scale=scale)
        out, a = att(x, y, xm, ym)
        assert out.shape == x.shape  # N x D, not the 1 x D a row-times-matrix product would give
        e = att.vla(x, y, ym)
        for b in range(2):
            n = int(xm[b].sum())
            ref_a = torch.softmax(e[b, :n], 0)
            torch.testing.assert_close(a[b, :n], ref_a)
            gain = ref_a * (n if scale == "count" else 1)
            torch.testing.assert_close(out[b, :n], gain[:, None] * x[b, :n])
            assert (out[b, n:] == 0).all() and (a[b, n:] == 0).all()
        torch.testing.assert_close(a.sum(-1), torch.ones(2))


def test_eq8_uniform_attention_is_identity_under_count_scale():
    """VLANet Eq. 8: with W1 = 0 the weights are uniform, so the 'count' form returns X unchanged."""
    att = DenseAttention(3, scale="count")
    torch.nn.init.zeros_(att.vla.w1.weight)
    x, y = torch.randn(1, 4, 3), torch.randn(1, 2, 3)
    out, a = att(x, y, torch.ones(1, 4, dtype=torch.bool), torch.ones(1, 2, dtype=torch.bool))
    torch.testing.assert_close(out, x)
    torch.testing.assert_close(a, torch.full((1, 4), 0.25))


def test_eqs7_8_gradcheck():
    """VLANet Eqs. 7-8: finite-difference gradients of the dense attention (float64)."""
    torch.manual_seed(7)
    att = DenseAttention(3, 2, reduce="sum").double()
    x = torch.randn(1, 4, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(1, 3, 3, dtype=torch.float64, requires_grad=True)
    xm, ym = torch.tensor([[1, 1, 1, 0]], dtype=torch.bool), torch.tensor([[1, 1, 0]], dtype=torch.bool)
    assert torch.autograd.gradcheck(lambda a, b: att(a, b, xm, ym)[0], (x, y), fast_mode=False)


# ----------------------------------------------------------------------------- Eqs. 9-12


def test_eqs9_12_cascade_order():
    """VLANet Eqs. 9-12: V<-A(V,V), Q<-A(Q,Q), then V<-A(V,Q), Q<-A(Q,V), V<-A(V,Q), composed by hand."""
    torch.manual_seed(8)
    cca = CascadedAttention(4, steps=3)
    with torch.no_grad():  # sharper than at init (nearly uniform = nearly the identity), see sharp()
        for p in cca.parameters():
            p.mul_(4.0)
    v, q = torch.randn(2, 5, 4), torch.randn(2, 3, 4)
    vm, qm = torch.ones(2, 5, dtype=torch.bool), torch.tensor([[1, 1, 1], [1, 1, 0]], dtype=torch.bool)
    v_out, q_out, weights = cca(v, q, vm, qm)
    v1, a1 = cca.v2v(v, v, vm, vm)
    q1, _ = cca.q2q(q, q, qm, qm)
    v2, a2 = cca.cross[0](v1, q1, vm, qm)
    q2, _ = cca.cross[1](q1, v2, qm, vm)
    v3, a3 = cca.cross[2](v2, q2, vm, qm)
    torch.testing.assert_close(v_out, v3)
    torch.testing.assert_close(q_out, q2)
    assert len(weights) == 3
    for got, ref in zip(weights, (a1, a2, a3)):
        torch.testing.assert_close(got, ref)
    # every step moves V by O(0.1) and the order matters, so the composition above pins it: the
    # cross steps from the pre-self-attention V, Q, or Eq. 12 before Eq. 11, end elsewhere
    v_no_self, _ = cca.cross[0](v, q, vm, qm)
    q_first, _ = cca.cross[0](q1, v1, qm, vm)
    assert (v2 - v1).abs().max() > 1e-1 and (v1 - v).abs().max() > 1e-1
    assert (v_no_self - v2).abs().max() > 1e-1 and (q_first - q2).abs().max() > 1e-1
    # ablations: no self-attention / no cross-attention
    no_self = CascadedAttention(4, self_attention=False, steps=1)
    assert no_self.v2v is None and len(no_self(v, q, vm, qm)[2]) == 1
    v0, q0, w0 = CascadedAttention(4, steps=0, self_attention=False)(v, q, vm, qm)
    assert torch.equal(v0, v) and torch.equal(q0, q) and w0 == []


# ----------------------------------------------------------------------------- Eq. 13


def test_eq13_compact_vector_and_similarity():
    """VLANet Eq. 13: v_comp = sum of the valid elements (/N under 'count'); c = E(v_comp, Q)."""
    for scale in ("none", "count"):
        m = small(attention_scale=scale)
        v = torch.randn(2, 4, 8)
        vm = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
        q, qm = torch.randn(2, 3, 8), torch.ones(2, 3, dtype=torch.bool)
        v_comp, c = m.similarity(v, q, vm, qm)
        for b in range(2):
            n = int(vm[b].sum())
            ref = v[b, :n].sum(0) / (n if scale == "count" else 1)
            torch.testing.assert_close(v_comp[b], ref)
            ref_c = torch.tanh((m.vla_out.w1.weight @ ref) @ (m.vla_out.w2.weight @ q[b].T)).mean()
            torch.testing.assert_close(c[b], ref_c)


# ----------------------------------------------------------------------------- Eq. 14


def test_eq14_hinge_loss_hand_case_and_loop():
    """VLANet Eq. 14: max(0, Delta - c+ + c-) averaged over the valid negative pairs."""
    c_pos = torch.tensor([1.0, 0.2])
    c_neg = torch.tensor([[9.0, 0.3], [0.1, 9.0]])
    mask = torch.tensor([[False, True], [True, False]])
    # pairs: (0,1): max(0, 0.5 - 1 + 0.3) = 0; (1,0): max(0, 0.5 - 0.2 + 0.1) = 0.4
    torch.testing.assert_close(contrastive_loss(c_pos, c_neg, mask, 0.5), torch.tensor(0.2))
    g = torch.Generator().manual_seed(9)
    cp, cn = torch.randn(5, generator=g), torch.randn(5, 5, generator=g)
    mk = torch.rand(5, 5, generator=g) > 0.4
    terms = [max(0.0, 0.3 - cp[i].item() + cn[i, j].item()) for i in range(5) for j in range(5) if mk[i, j]]
    assert contrastive_loss(cp, cn, mk, 0.3).item() == pytest.approx(sum(terms) / len(terms), abs=1e-6)
    assert contrastive_loss(cp, cn, torch.zeros(5, 5, dtype=torch.bool), 0.3).item() == 0.0


def test_eq14_negatives_are_other_videos_and_equal_swapped_pairs():
    """VLANet Eq. 14: c(V_i, Q_j) of a negative pair is the whole network run on that pair; same video_idx is no negative."""
    m = small(negatives="all")
    m.eval()
    b = make_batch()
    out = m(b)
    c_neg, mask = m.negative_pairs(b, out)
    assert torch.equal(mask, b["video_idx"][:, None] != b["video_idx"][None, :])
    i, j = 2, 4
    swapped = {**b, "words": b["words"][[j]], "words_mask": b["words_mask"][[j]], "video": b["video"][[i]],
               "video_mask": b["video_mask"][[i]], "duration": b["duration"][[i]]}
    torch.testing.assert_close(m(swapped)["c"][0], c_neg[i, j], atol=1e-5, rtol=1e-5)
    # random negatives: one per positive, from another video, equal to the matching entry of "all"
    m.config.negatives = "random"
    for seed in range(3):
        torch.manual_seed(seed)
        c1, mk1 = m.negative_pairs(b, out)
        assert c1.shape == (6, 1) and mk1.all()
        hits = torch.isclose(c1, c_neg, atol=1e-5) & mask  # which query of another video it used
        assert hits.any(1).all()


# ----------------------------------------------------------------------------- the model


def test_forward_loss_predict_without_labels():
    """Weak supervision: forward, loss and predict work on a batch without `moment` and never ask for it."""

    class NoLabels(dict):
        def __getitem__(self, key):
            if key in ("moment", "times"):
                raise AssertionError(f"VLANet looked at the label {key!r}")
            return super().__getitem__(key)

        def get(self, key, default=None):
            if key in ("moment", "times"):
                raise AssertionError(f"VLANet looked at the label {key!r}")
            return super().get(key, default)

    m = small()
    b = NoLabels(strip_labels(make_batch()))
    out = m(b)
    loss, parts = m.loss(b, out)
    assert torch.isfinite(loss) and set(parts) == {"contrastive", "c_pos", "c_neg"}
    moments, scores = m.predict(b, top_k=7)
    assert moments.shape == (6, 7, 2) and scores.shape == (6, 7)
    assert (moments >= 0).all() and (moments <= 1).all() and (moments[..., 0] < moments[..., 1]).all()
    assert (scores[:, :-1] >= scores[:, 1:]).all()
    big, _ = m.predict(b, top_k=1000)
    assert big.shape[1] == m.num_groups


def test_predict_ranks_by_cumulative_video_attention():
    """Rule 'product': surrogate windows ranked by the renormalised product of every video-side attention weight."""
    m = small(localise="product")
    b = make_batch()
    out = m(b)
    prod = torch.stack(out["video_weights"]).prod(0)
    torch.testing.assert_close(out["video_attention"], prod / prod.sum(-1, keepdim=True))
    moments, scores = m.predict(b, top_k=5)
    order = out["video_attention"].argsort(dim=1, descending=True)[:, :5]
    torch.testing.assert_close(scores, out["video_attention"].gather(1, order))
    torch.testing.assert_close(moments, out["moments"].gather(1, order[..., None].expand(-1, -1, 2)))
    # each surrogate window is its group's chosen scale
    chosen = out["windows"][torch.arange(6)[:, None], out["choice"], torch.arange(m.num_groups)[None]]
    torch.testing.assert_close(out["moments"], chosen)


def sharp(**kw) -> VLANet:
    """A small model in eval mode whose attention and alignment weights are scaled up x4.

    At initialisation the dense attentions are nearly uniform, so the cascade barely moves
    V and Q; sharper weights make every step visible, so a check can tell them apart.
    """
    m = small(**kw)
    with torch.no_grad():
        for p in [*m.cca.parameters(), *m.vla_out.parameters()]:
            p.mul_(4.0)
    return m.eval()


def recompute(m: VLANet, b: dict) -> dict:
    """The positive-pair forward pass rebuilt from the model's parts, step by step (no ``_pairs``)."""
    q, q_last = m.encode_query(b["words"], b["words_mask"])
    win, valid = m.proposal_windows(b)
    props = m.encode_proposals(b["video"], b["video_mask"], win)
    s, choice, _ = select_surrogates(props, q_last, valid)  # Eqs. 3-6
    vm = torch.ones(s.shape[:2], dtype=torch.bool)
    v1, a9 = m.cca.v2v(s, s, vm, vm)  # Eq. 9
    q1, _ = m.cca.q2q(q, q, b["words_mask"], b["words_mask"])  # Eq. 10
    v2, a11 = m.cca.cross[0](v1, q1, vm, b["words_mask"])  # Eq. 11
    q2, _ = m.cca.cross[1](q1, v2, b["words_mask"], vm)  # Eq. 12
    v3, a11b = m.cca.cross[2](v2, q2, vm, b["words_mask"])  # Eq. 11 again
    v_comp = v3.mean(1)  # Eq. 13 under 'count': the sum / N
    c = m.vla_out(v_comp[:, None], q2, b["words_mask"])[:, 0]
    return {"q": q, "q_last": q_last, "s": s, "choice": choice, "weights": (a9, a11, a11b), "v_att": v3,
            "q_att": q2, "v_comp": v_comp, "c": c}


def test_eq13_model_uses_the_attended_query_and_video():
    """VLANet Eq. 13 at model level: c = E(v_comp, Q) with V and Q *after* the cascade (Eqs. 9-12).

    Rebuilt from the parts; c from the pre-cascade query (or the pre-cascade surrogates) must
    differ, so the check can tell the two apart.
    """
    m = sharp()
    b = make_batch()
    out, ref = m(b), recompute(m, b)
    torch.testing.assert_close(out["q_att"], ref["q_att"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["v_comp"], ref["v_comp"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["c"], ref["c"], atol=1e-5, rtol=1e-5)
    wrong_q = m.vla_out(ref["v_comp"][:, None], ref["q"], b["words_mask"])[:, 0]
    wrong_v = m.vla_out(ref["s"].mean(1)[:, None], ref["q_att"], b["words_mask"])[:, 0]
    assert (wrong_q - ref["c"]).abs().max() > 1e-2 and (wrong_v - ref["c"]).abs().max() > 1e-2


def test_loss_is_eq14_on_whole_network_pairs_with_the_configured_margin():
    """VLANet Eq. 14 at model level: loss = mean hinge(margin - c(V_i, Q_i) + c(V_i, Q_j)), j another video.

    An unusual margin (0.37) catches a hard-coded one; c of each pair comes from a separate
    forward pass on that (video, query) pair.
    """
    m = small(negatives="all", margin=0.37)
    m.eval()
    b = make_batch()
    out = m(b)
    loss, parts = m.loss(b, out)
    terms = []
    for i in range(6):
        own = m({**b, **{k: b[k][[i]] for k in ("video", "video_mask", "words", "words_mask", "duration")}})["c"][0]
        for j in range(6):
            if b["video_idx"][i] == b["video_idx"][j]:
                continue
            pair = {"video": b["video"][[i]], "video_mask": b["video_mask"][[i]], "duration": b["duration"][[i]],
                    "words": b["words"][[j]], "words_mask": b["words_mask"][[j]]}
            terms.append((0.37 - own + m(pair)["c"][0]).clamp(min=0))
    torch.testing.assert_close(loss, torch.stack(terms).mean(), atol=1e-5, rtol=1e-5)
    assert parts["contrastive"] == pytest.approx(loss.item())
    assert parts["c_pos"] == pytest.approx(out["c"].mean().item(), abs=1e-6)


def test_gradient_flows_through_the_negative_pairs():
    """Eq. 14's negative term must train the network too: c(V_i, Q_j) carries gradient to the encoders."""
    b = make_batch()
    for negatives in ("all", "random"):
        m = small(negatives=negatives)
        torch.manual_seed(0)
        c_neg, mask = m.negative_pairs(b, m(b))
        grads = torch.autograd.grad((c_neg * mask).sum(), [*m.text.gru.parameters(), m.video_proj.weight,
                                                           m.vla_out.w1.weight])
        assert all(g.abs().sum() > 0 for g in grads), negatives


def test_localisation_rules_against_their_definitions():
    """Every test-time rule (LOCALISE_RULES) equals its definition, computed from the rebuilt pass."""
    m = sharp()
    b = make_batch()
    out, ref = m(b), recompute(m, b)
    a9, a11, a11b = ref["weights"]
    norm = lambda w: w / w.sum(-1, keepdim=True)  # noqa: E731
    expected = {
        "product": norm(a9 * a11 * a11b),
        "cross": norm(a11 * a11b),
        "self": a9,
        "select": (ref["s"] * ref["q_last"][:, None]).sum(-1),  # Eq. 3 cosine of the chosen window
    }
    # E(s_k, Q) and E(V_k, Q) with the W of Eq. 13, mean of tanh over the valid words, by loops
    for rule, elems in (("align", ref["s"]), ("align-attended", ref["v_att"])):
        e = torch.zeros(6, m.num_groups)
        W1, W2 = m.vla_out.w1.weight, m.vla_out.w2.weight
        for i in range(6):
            words = ref["q_att"][i, b["words_mask"][i]]
            e[i] = torch.tanh((elems[i] @ W1.T) @ (words @ W2.T).T).mean(-1)
        expected[rule] = e
    assert set(expected) == set(LOCALISE_RULES)
    for rule, ref_score in expected.items():
        torch.testing.assert_close(m.localisation_scores(out, rule), ref_score, atol=1e-5, rtol=1e-4, msg=rule)
        m.config.localise = rule
        moments, scores = m.predict(b, top_k=4)
        order = ref_score.argsort(dim=1, descending=True)[:, :4]
        torch.testing.assert_close(moments, out["moments"].gather(1, order[..., None].expand(-1, -1, 2)), msg=rule)
    # the rules really differ on this batch (otherwise the checks above could not tell them apart)
    tops = {rule: expected[rule].argmax(1) for rule in expected}
    assert len({tuple(t.tolist()) for t in tops.values()}) >= 4
    with pytest.raises(ValueError, match="localise"):
        VLANetConfig(VOCAB, VDIM, T, localise="attention")


def test_default_rule_is_the_validation_choice():
    """The config default is the rule chosen on validation (scripts/vlanet_rules.py): E(s_k, Q)."""
    assert VLANetConfig(VOCAB, VDIM, T).localise == "align"


def test_rules_without_their_weights_are_uniform():
    """'cross' with cross_steps=0 and 'self' without Eqs. 9-10 have no weights: every surrogate ties."""
    b = make_batch()
    for kw, rule in (({"cross_steps": 0}, "cross"), ({"self_attention": False}, "self")):
        m = small(**kw)
        scores = m.localisation_scores(m(b), rule)
        torch.testing.assert_close(scores, torch.full_like(scores, 1.0 / m.num_groups))


def test_candidates_are_every_window_and_contain_every_prediction():
    """candidates(): all L x K windows (180 in the paper's setting); predict's top-1 is always one of them."""
    m = small()
    cands = m.candidates()
    assert cands.shape == (m.num_scales * m.num_groups, 2) == (180, 2)
    torch.testing.assert_close(cands, segment_groups().reshape(-1, 2))
    for rule in LOCALISE_RULES:
        m.config.localise = rule
        for seed in range(2):
            top, _ = m.predict(make_batch(seed=seed), top_k=3)
            dist = (top[:, :, None, :] - cands[None, None]).abs().amax(-1)  # [B, 3, 180]
            assert (dist.amin(-1) < 1e-6).all(), rule
    d = small(candidates="didemo")
    torch.testing.assert_close(d.candidates(), didemo_moments(30.0))
    top, _ = d.predict(make_batch(), top_k=21)
    assert ((top[:, :, None, :] - d.candidates()[None, None]).abs().amax(-1).amin(-1) < 1e-6).all()


def test_model_gradcheck_full_mode():
    """End to end (float64, full-mode gradcheck): c depends smoothly on the clip features and word states."""
    m = small(word_dim=4, hidden=4, dim=4).double()
    m.eval()
    b = make_batch(B=2, L=3, t=6)
    video = b["video"].double().requires_grad_(True)

    def c_of(v):
        return m({**b, "video": v})["c"]

    assert torch.autograd.gradcheck(c_of, (video,), fast_mode=False, atol=1e-5)


def test_gradients_reach_every_parameter():
    """Every trainable parameter gets a gradient from Eq. 14 (all negatives, and one random negative)."""
    m = small(negatives="all")
    b = make_batch()
    loss, _ = m.loss(b, m(b))
    loss.backward()
    for name, p in m.named_parameters():
        # above rounding: a mathematically vanishing gradient still gets ~1e-10; real ones are >= 1e-5
        assert p.grad is not None and p.grad.abs().max() > 1e-8, name
    m = small()
    torch.manual_seed(1)
    loss, _ = m.loss(b, m(b))
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().max() > 1e-8 for p in m.parameters())


def test_padding_never_changes_results():
    """Padding words and padded clips change neither c, the attention nor the predictions."""
    m = small()
    m.eval()
    b = make_batch()
    ref = m(b)
    padded = dict(b)
    padded["words"] = torch.cat([b["words"], torch.zeros(6, 4, dtype=torch.long)], 1)
    padded["words_mask"] = torch.cat([b["words_mask"], torch.zeros(6, 4, dtype=torch.bool)], 1)
    padded["video"] = torch.cat([b["video"], torch.randn(6, 5, VDIM) * 100], 1)
    padded["video_mask"] = torch.cat([b["video_mask"], torch.zeros(6, 5, dtype=torch.bool)], 1)
    out = m(padded)
    torch.testing.assert_close(out["c"], ref["c"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["video_attention"], ref["video_attention"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(m.predict(padded, 5)[0], m.predict(b, 5)[0])


def test_without_surrogate_selection_attends_all_proposals():
    """Table 3 'w/o surrogate': all K*L proposals reach the attention and are ranked."""
    m = small(surrogate=False)
    b = make_batch()
    out = m(b)
    assert out["video_attention"].shape == (6, m.num_groups * m.num_scales)
    assert out["moments"].shape == (6, m.num_groups * m.num_scales, 2)
    loss, _ = m.loss(b, out)
    loss.backward()
    assert m.predict(b, 10)[0].shape == (6, 10, 2)


def test_didemo_candidates_option():
    """DiDeMo: 6 start-chunk groups x 6 lengths hold the 21 moments; rankings are permutations of 21."""
    win, valid = didemo_groups(torch.tensor([30.0, 22.0]))
    assert int(valid[0].sum()) == 21 and int(valid[1].sum()) == 20  # (5, 5) lies wholly past 22 s
    ref = didemo_moments(30.0)
    for idx, (i, j) in enumerate(didemo_candidates()):
        torch.testing.assert_close(win[0, j - i, i], ref[idx])
    m = small(candidates="didemo")
    b = make_batch()
    b["duration"] = torch.tensor([30.0, 22.0, 30.0, 28.0, 40.0, 30.0])
    ranks = m.rank_didemo(b)
    assert ranks.shape == (6, 21)
    assert torch.equal(ranks.sort(1).values, torch.arange(21).expand(6, 21))
    out = m(b)
    top_moment = torch.tensor(didemo_candidates())[ranks[:, :6]]
    chosen_len = out["choice"]  # surrogate of group k has length choice + 1 chunks
    for r in range(6):  # the first ranked candidates are surrogates
        i, j = top_moment[r, 0].tolist()
        if out["valid"][r, j - i, i]:
            assert int(chosen_len[r, i]) == j - i
    moments, scores = m.predict(b, top_k=21)
    assert moments.shape == (6, 21, 2)
    loss, _ = m.loss(b, out)
    assert torch.isfinite(loss)


def test_config_validation():
    """Bad settings fail early with the field named."""
    with pytest.raises(ValueError, match="attention_scale"):
        VLANetConfig(VOCAB, VDIM, T, attention_scale="x")
    with pytest.raises(ValueError, match="negatives"):
        VLANetConfig(VOCAB, VDIM, T, negatives="some")
    with pytest.raises(ValueError, match="video"):
        small()(dict(make_batch(), video=torch.rand(6, T, VDIM + 1)))
