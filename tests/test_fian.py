"""Tests of FIAN (wsg.models.fian): every module and loss against an independent computation."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from wsg.models import build, strip_labels, supervision_of
from wsg.models.fian import (
    FIAN, ContentOrientedLocalizer, CrossModalAttention, CrossModalEncoder, FeedForward, FIANConfig,
    GuidedAttention, QueryEncoder, SoftAttention, SymmetricIterativeAttention, VideoEncoder,
    VideoEnhancedIntegration, alignment_loss, boundary_loss, window_layout,
)
from wsg.proposals import sliding_windows

T, D, V = 16, 12, 30


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def small_config(**kw) -> FIANConfig:
    base = dict(vocab_size=V, video_dim=D, num_clips=T, max_words=8, word_dim=8, hidden=16, heads=2, dropout=0.0)
    base.update(kw)
    return FIANConfig(**base)


def make_batch(B: int = 3, L: int = 5, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([L, max(1, L - 2), max(1, L - 3)] * B)[:B]
    words = torch.randint(4, V, (B, L), generator=g)
    mask = torch.arange(L)[None] < lengths[:, None]
    words = words * mask
    start = torch.rand(B, generator=g) * 0.5
    end = start + 0.2 + 0.3 * torch.rand(B, generator=g)
    return {"video": torch.randn(B, T, D, generator=g), "video_mask": torch.ones(B, T, dtype=torch.bool),
            "words": words, "words_mask": mask, "duration": torch.full((B,), 30.0),
            "video_idx": torch.arange(B), "query_idx": torch.arange(B),
            "video_id": [f"v{i}" for i in range(B)], "sentence": ["x"] * B,
            "moment": torch.stack([start, end.clamp(max=1.0)], 1)}


def model(**kw) -> FIAN:
    torch.manual_seed(0)
    return FIAN(small_config(**kw)).eval()


# --------------------------------------------------------------------------- encoders


def _gru_step(cell_w, x, h):
    """One GRU step written out from PyTorch's documented equations (r, z, n gates)."""
    w_ih, w_hh, b_ih, b_hh = cell_w
    gi, gh = x @ w_ih.T + b_ih, h @ w_hh.T + b_hh
    ir, iz, inn = gi.chunk(3, -1)
    hr, hz, hn = gh.chunk(3, -1)
    r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
    n = torch.tanh(inn + r * hn)
    return (1 - z) * n + z * h


def test_query_encoder_matches_hand_written_bigru():
    """FIAN Eqs. 1-3: h_i^q = [forward GRU state; backward GRU state] over the real words only."""
    torch.manual_seed(1)
    enc = QueryEncoder(V, 6, 10)
    b = make_batch(B=2, L=5)
    out = enc(b["words"], b["words_mask"])
    gru = enc.encoder.gru
    fw = [getattr(gru, f"{n}_l0") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    bw = [getattr(gru, f"{n}_l0_reverse") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    emb = enc.encoder.embed(b["words"])
    for i in range(2):
        n = int(b["words_mask"][i].sum())
        h = torch.zeros(5)
        fwd = []
        for t in range(n):
            h = _gru_step(fw, emb[i, t], h)
            fwd.append(h)
        h = torch.zeros(5)
        bwd = [None] * n
        for t in reversed(range(n)):
            h = _gru_step(bw, emb[i, t], h)
            bwd[t] = h
        expect = torch.stack([torch.cat([fwd[t], bwd[t]]) for t in range(n)])
        torch.testing.assert_close(out[i, :n], expect, atol=1e-5, rtol=1e-5)
        assert torch.all(out[i, n:] == 0)


def test_cross_modal_attention_matches_per_head_loop():
    """FIAN Eqs. 4-5: Concat_i softmax(Q W_i^Q (V W_i^K)^T / sqrt(d_k)) V W_i^V, then W^O."""
    torch.manual_seed(2)
    att = CrossModalAttention(8, 2)
    q, v = torch.randn(2, 3, 8), torch.randn(2, 5, 8)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    out, attn = att(q, v, mask)
    dk = 4
    for b in range(2):
        n = int(mask[b].sum())
        heads = []
        for i in range(2):
            sl = slice(i * dk, (i + 1) * dk)
            Wq, Wk, Wv = att.w_q.weight[sl], att.w_k.weight[sl], att.w_v.weight[sl]
            s = (q[b] @ Wq.T) @ (v[b, :n] @ Wk.T).T / math.sqrt(dk)
            a = torch.exp(s - s.max(1, keepdim=True).values)
            a = a / a.sum(1, keepdim=True)
            torch.testing.assert_close(attn[b, i, :, :n], a)
            heads.append(a @ (v[b, :n] @ Wv.T))
        expect = torch.cat(heads, -1) @ att.w_o.weight.T
        torch.testing.assert_close(out[b], expect, atol=1e-5, rtol=1e-5)
    assert torch.all(attn[1, :, :, 3:] == 0)


def test_cross_modal_attention_ignores_masked_keys():
    """FIAN Eqs. 4-5: values at masked key positions never change the output."""
    torch.manual_seed(3)
    att = CrossModalAttention(8, 4)
    q, v = torch.randn(1, 3, 8), torch.randn(1, 6, 8)
    mask = torch.tensor([[True, True, True, True, False, False]])
    v2 = v.clone()
    v2[:, 4:] = 100.0
    torch.testing.assert_close(att(q, v, mask)[0], att(q, v2, mask)[0])


def test_soft_attention_hand_case():
    """Table 4 'soft' variant: softmax(q v^T / sqrt(d)) v, no parameters."""
    q = torch.tensor([[[1.0, 0.0]]])
    v = torch.tensor([[[2.0, 0.0], [0.0, 2.0]]])
    out, attn = SoftAttention()(q, v, torch.ones(1, 2, dtype=torch.bool))
    w = torch.softmax(torch.tensor([2.0 / math.sqrt(2), 0.0]), 0)
    torch.testing.assert_close(attn[0, 0, 0], w)
    torch.testing.assert_close(out[0, 0], w[0] * v[0, 0] + w[1] * v[0, 1])
    assert len(list(SoftAttention().parameters())) == 0


def test_guided_attention_formula_and_shared_projections():
    """FIAN Eq. 6: sigmoid(W_q Q + W_v CMA + b^g) * (W_q Q + W_v CMA + b^i), projections shared."""
    torch.manual_seed(4)
    cga = GuidedAttention(8, 2)
    with torch.no_grad():
        cga.b_g.normal_()
        cga.b_i.normal_()
    q, v = torch.randn(2, 3, 8), torch.randn(2, 4, 8)
    mask = torch.ones(2, 4, dtype=torch.bool)
    out, _ = cga(q, v, mask)
    c, _ = cga.cma(q, v, mask)
    Wq, Wv = cga.w_q.weight, cga.w_v.weight
    gate = torch.sigmoid(q @ Wq.T + c @ Wv.T + cga.b_g)
    info = q @ Wq.T + c @ Wv.T + cga.b_i
    torch.testing.assert_close(out, gate * info)
    # sharing: besides the CMA, exactly two d x d matrices and two biases
    own = {n: p.shape for n, p in cga.named_parameters() if not n.startswith("cma.")}
    assert own == {"w_q.weight": (8, 8), "w_v.weight": (8, 8), "b_g": (8,), "b_i": (8,)}


def test_guided_attention_gradcheck():
    """FIAN Eqs. 4-6: autograd gradients of CGA agree with finite differences (float64)."""
    torch.manual_seed(5)
    cga = GuidedAttention(4, 2).double()
    q = torch.randn(1, 2, 4, dtype=torch.float64, requires_grad=True)
    v = torch.randn(1, 3, 4, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True, True, False]])
    assert torch.autograd.gradcheck(lambda a, b: cga(a, b, mask)[0], (q, v))


def test_feed_forward_formula():
    """FIAN Eq. 7: FFN(X) = max(0, X W1 + b1) W2 + b2."""
    torch.manual_seed(6)
    ffn = FeedForward(4, 7)
    x = torch.randn(2, 3, 4)
    expect = torch.clamp(x @ ffn.lin1.weight.T + ffn.lin1.bias, min=0) @ ffn.lin2.weight.T + ffn.lin2.bias
    torch.testing.assert_close(ffn(x), expect)


def _layer_norm(x, ln):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias


def test_cross_modal_encoder_with_residuals_and_layernorm():
    """FIAN Eq. 8: Encoder(Q, V) = FFN(CGA(Q, V)) with post-LN shortcuts: LN(X + FFN(X)), X = LN(Q + CGA)."""
    torch.manual_seed(7)
    enc = CrossModalEncoder(8, 2, 16, "cga").eval()
    with torch.no_grad():
        for ln in (enc.norm1, enc.norm2):
            ln.weight.normal_()
            ln.bias.normal_()
    q, v = torch.randn(2, 3, 8), torch.randn(2, 5, 8)
    mask = torch.ones(2, 5, dtype=torch.bool)
    out, attn = enc(q, v, mask)
    c, a = enc.attention(q, v, mask)
    x = _layer_norm(q + c, enc.norm1)
    torch.testing.assert_close(out, _layer_norm(x + enc.ffn(x), enc.norm2), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(attn, a)


def test_video_encoder_fc_self_attention_residual_layernorm_bigru():
    """Sec. 3.2: x = FC(video), x = LN(x + MHA(x, x)), h_v = BiGRU(x), in that order, from the equations.

    The LayerNorm has a random affine map, so a dropped residual, the GRU moved before the
    self-attention or the attention fed another sequence all change the result by O(1).
    """
    torch.manual_seed(13)
    enc = VideoEncoder(5, 8, 2).eval()
    with torch.no_grad():
        enc.norm.weight.normal_()
        enc.norm.bias.normal_()
    video = torch.randn(2, 6, 5)
    full = torch.ones(2, 6, dtype=torch.bool)
    out = enc(video, full)
    x = video @ enc.fc.weight.T + enc.fc.bias
    att, _ = enc.self_attn(x, x, full)  # Eqs. 4-5 within the video: queries, keys and values all x
    x = _layer_norm(x + att, enc.norm)
    gru = enc.gru
    fw = [getattr(gru, f"{n}_l0") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    bw = [getattr(gru, f"{n}_l0_reverse") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    for i in range(2):
        h, fwd = torch.zeros(4), []
        for t in range(6):
            h = _gru_step(fw, x[i, t], h)
            fwd.append(h)
        h, bwd = torch.zeros(4), [None] * 6
        for t in reversed(range(6)):
            h = _gru_step(bw, x[i, t], h)
            bwd[t] = h
        expect = torch.stack([torch.cat([fwd[t], bwd[t]]) for t in range(6)])
        torch.testing.assert_close(out[i], expect, atol=1e-5, rtol=1e-5)
    # padded clips: masked out of the attention, packed out of the GRU (a video cut to its length)
    mask = full.clone()
    mask[1, 4:] = False
    padded = enc(video, mask)
    torch.testing.assert_close(padded[1, :4], enc(video[1:, :4], full[1:, :4])[0], atol=1e-5, rtol=1e-5)
    assert torch.all(padded[1, 4:] == 0)


@pytest.mark.parametrize("kind,cls", [("cga", GuidedAttention), ("cma", CrossModalAttention), ("soft", SoftAttention)])
def test_encoder_attention_variants(kind, cls):
    """FIAN Eq. 8 / Table 4: the encoder's attention block is CGA, CMA or soft attention as configured."""
    assert isinstance(CrossModalEncoder(8, 2, 16, kind).attention, cls)


def _perturb(weight, seed: int = 0) -> None:
    """Add N(0, 1) noise to a weight matrix in place: a change no following layer can undo
    (unlike a constant shift before a LayerNorm or a softmax, or a positive scale before a norm)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        weight.add_(torch.randn(weight.shape, generator=g))


def test_iterative_branches_order():
    """FIAN Eqs. 9-10: Q1 = Enc(Q, V), V1 = Enc(V, Q1); V2 = Enc(V, Q), Q2 = Enc(Q, V2)."""
    torch.manual_seed(8)
    sia = SymmetricIterativeAttention(8, 2, 16).eval()
    q, v = torch.randn(2, 4, 8), torch.randn(2, 6, 8)
    qm = torch.tensor([[True] * 4, [True, True, False, False]])
    vm = torch.ones(2, 6, dtype=torch.bool)
    out = sia(q, v, qm, vm)
    q1, _ = sia.qv_query(q, v, vm)
    v1, _ = sia.qv_video(v, q1, qm)
    v2, _ = sia.vq_video(v, q, qm)
    q2, _ = sia.vq_query(q, v2, vm)
    for k, ref in {"Q1": q1, "V1": v1, "V2": v2, "Q2": q2}.items():
        torch.testing.assert_close(out[k], ref)
    assert out["attn_Q1"].shape == (2, 2, 4, 6) and out["attn_V1"].shape == (2, 2, 6, 4)
    assert out["attn_V2"].shape == (2, 2, 6, 4) and out["attn_Q2"].shape == (2, 2, 4, 6)
    # V1 depends on the first Q-V encoder (iteration), V2 does not. The perturbation is a random
    # change of a weight matrix, which the LayerNorm after the FFN cannot undo: a constant shift
    # (e.g. lin2.bias + 1) is removed by that LayerNorm and leaves V1 unchanged up to rounding.
    _perturb(sia.qv_query.ffn.lin2.weight)
    out2 = sia(q, v, qm, vm)
    assert (out2["Q1"] - out["Q1"]).abs().max() > 1e-2  # rounding is ~1e-6
    assert (out2["V1"] - out["V1"]).abs().max() > 1e-2, "V1 = Enc(V, Q1) must read Q1"
    # the other branch runs the same operations on the same inputs: bitwise equal, no tolerance
    torch.testing.assert_close(out2["V2"], out["V2"], rtol=0, atol=0)
    torch.testing.assert_close(out2["Q2"], out["Q2"], rtol=0, atol=0)
    # and symmetrically: Q2 = Enc(Q, V2) reads the first encoder of Eq. 10, the Eq. 9 branch does not
    _perturb(sia.vq_video.ffn.lin2.weight)
    out3 = sia(q, v, qm, vm)
    assert (out3["V2"] - out2["V2"]).abs().max() > 1e-2
    assert (out3["Q2"] - out2["Q2"]).abs().max() > 1e-2, "Q2 = Enc(Q, V2) must read V2"
    torch.testing.assert_close(out3["V1"], out2["V1"], rtol=0, atol=0)
    torch.testing.assert_close(out3["Q1"], out2["Q1"], rtol=0, atol=0)


@pytest.mark.parametrize("branches,keys", [("qv", {"Q1", "V1"}), ("vq", {"V2", "Q2"})])
def test_single_branch(branches, keys):
    """FIAN Eqs. 9-10: a single-branch configuration computes only its own equation."""
    sia = SymmetricIterativeAttention(8, 2, 16, branches=branches)
    out = sia(torch.randn(1, 3, 8), torch.randn(1, 5, 8), torch.ones(1, 3, dtype=torch.bool),
              torch.ones(1, 5, dtype=torch.bool))
    assert {k for k in out if not k.startswith("attn_")} == keys


# --------------------------------------------------------------------------- integration


def test_query_projection_naive_loop_and_padding():
    """FIAN Eq. 11: Q_hat[v] = sum_l W[v, l] Q[l] + b[v], with Q padded with zeros to max_words."""
    torch.manual_seed(9)
    vei = VideoEnhancedIntegration(4, num_clips=6, max_words=5)
    q = torch.randn(2, 3, 4)
    mask = torch.tensor([[True, True, True], [True, True, False]])
    out = vei.project(q, mask, 0)
    W, b = vei.proj[0].weight, vei.proj[0].bias
    expect = torch.zeros(2, 6, 4)
    for i in range(2):
        for t in range(6):
            expect[i, t] = b[t]
            for l in range(3):
                if mask[i, l]:
                    expect[i, t] += W[t, l] * q[i, l]
    torch.testing.assert_close(out, expect)
    # extra padding (and garbage in padded rows) changes nothing
    q_pad = torch.cat([q, 50 * torch.ones(2, 2, 4)], 1)
    m_pad = torch.cat([mask, torch.zeros(2, 2, dtype=torch.bool)], 1)
    q_pad[1, 2] = 50.0
    torch.testing.assert_close(vei.project(q_pad, m_pad, 0), out)
    # longer than max_words: cut
    long = torch.randn(1, 7, 4)
    torch.testing.assert_close(vei.project(long, torch.ones(1, 7, dtype=torch.bool), 0),
                               vei.project(long[:, :5], torch.ones(1, 5, dtype=torch.bool), 0))


def test_integration_gate_and_layernorm():
    """FIAN Eqs. 12-14: V_hat = [V1, V2], Q_hat = [Q_hat1, Q_hat2], r = sigmoid(Q_hat W^r + b^r),
    M = LayerNorm(V_hat + r * Q_hat)."""
    torch.manual_seed(10)
    vei = VideoEnhancedIntegration(4, num_clips=6, max_words=5)
    v1, v2 = torch.randn(2, 6, 4), torch.randn(2, 6, 4)
    q1, q2 = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    mask = torch.ones(2, 3, dtype=torch.bool)
    m, r = vei([v1, v2], [q1, q2], mask)
    v_hat = torch.cat([v1, v2], -1)
    q_hat = torch.cat([vei.project(q1, mask, 0), vei.project(q2, mask, 1)], -1)
    r_ref = torch.sigmoid(q_hat @ vei.gate.weight.T + vei.gate.bias)
    torch.testing.assert_close(r, r_ref)
    torch.testing.assert_close(m, _layer_norm(v_hat + r_ref * q_hat, vei.norm), atol=1e-5, rtol=1e-5)
    assert m.shape == (2, 6, 8)


# --------------------------------------------------------------------------- localisation


def test_window_layout_scaled_from_the_paper():
    """Sec. 3.4 / 4.3: windows 16/24/32/40 of 64 clips with stride 1/8 -> 8/12/16/20 of 32 with 1/2/2/3."""
    assert window_layout(64) == ([16, 24, 32, 40], [2, 3, 4, 5])
    assert window_layout(32) == ([8, 12, 16, 20], [1, 2, 2, 3])
    assert window_layout(32, stride_fraction=None) == ([8, 12, 16, 20], [1, 1, 1, 1])
    assert window_layout(32, stride_fraction=0.5) == ([8, 12, 16, 20], [4, 6, 8, 10])
    assert window_layout(10, sizes=[4, 4, 20]) == ([4], [1])


def test_candidates_match_sliding_windows():
    """Sec. 3.4: the Conv1d outputs enumerate the windows [i s, i s + w) of wsg.proposals.sliding_windows."""
    m = model()
    ref = torch.cat([sliding_windows(T, [w], stride=s) for w, s in zip(m.sizes, m.strides)])
    torch.testing.assert_close(m.windows / T, ref)
    out = m(make_batch())
    assert out["logits"].shape == (3, m.num_candidates) and out["offsets"].shape == (3, m.num_candidates, 2)


def test_localizer_conv_is_window_content():
    """Sec. 3.4: each candidate's score is a linear function of all the features inside its window."""
    torch.manual_seed(11)
    loc = ContentOrientedLocalizer(6, 4, [3, 5], [2, 1])
    m = torch.randn(2, 8, 6)
    mask = torch.ones(2, 8, dtype=torch.bool)
    logits, offsets = loc(m, mask)
    f = torch.zeros(2, 8, 4)
    from wsg.models.fian import _bigru
    f = _bigru(loc.gru, m, mask)
    k = 0
    for j, (w, s) in enumerate([(3, 2), (5, 1)]):
        for start in range(0, 8 - w + 1, s):
            win = f[:, start:start + w]  # [B, w, C]
            sc = torch.einsum("bwc,cw->b", win, loc.score[j].weight[0]) + loc.score[j].bias[0]
            off = torch.einsum("bwc,ocw->bo", win, loc.offset[j].weight) + loc.offset[j].bias
            torch.testing.assert_close(logits[:, k], sc, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(offsets[:, k], off, atol=1e-5, rtol=1e-5)
            k += 1
    assert k == logits.shape[1]


# --------------------------------------------------------------------------- losses


def test_alignment_loss_hand_case():
    """FIAN Eqs. 15-16: positives (IoU > tau) and negatives averaged separately, IoU as soft target."""
    logits = torch.tensor([[0.0, 2.0, -1.0], [1.0, -2.0, 0.5]])
    iou = torch.tensor([[0.9, 0.6, 0.1], [0.55, 0.0, 0.7]])
    valid = torch.tensor([[True, True, True], [True, True, False]])
    cs = torch.sigmoid(logits)
    L = iou * torch.log(cs) + (1 - iou) * torch.log(1 - cs)
    # positives: (0,0) 0.9, (0,1) 0.6; 0.55 is not > 0.55; (1,2) is invalid
    pos = [(0, 0), (0, 1)]
    neg = [(0, 2), (1, 0), (1, 1)]
    expect = -sum(L[i, j] for i, j in pos) / 2 - sum(L[i, j] for i, j in neg) / 3
    torch.testing.assert_close(alignment_loss(logits, iou, valid, 0.55), expect)


def test_alignment_loss_gradcheck_and_empty_positives():
    """FIAN Eqs. 15-16: finite-difference gradient; with no positive the positive term is 0."""
    logits = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    iou = torch.rand(2, 4, dtype=torch.float64)
    valid = torch.ones(2, 4, dtype=torch.bool)
    assert torch.autograd.gradcheck(lambda x: alignment_loss(x, iou, valid, 0.5), (logits,))
    low = torch.full((2, 4), 0.2, dtype=torch.float64)
    ce = F.binary_cross_entropy_with_logits(logits, low)
    torch.testing.assert_close(alignment_loss(logits, low, valid, 0.55), ce)


def test_boundary_loss_naive_loop():
    """FIAN Eq. 17: (1/N_pos) sum over positives of smoothL1(start error) + smoothL1(end error)."""
    torch.manual_seed(12)
    pred, tgt = torch.randn(2, 5, 2) * 2, torch.randn(2, 5, 2) * 2
    pos = torch.tensor([[True, False, True, False, False], [False, False, False, True, False]])

    def r1(x):
        return 0.5 * x * x if abs(x) < 1 else abs(x) - 0.5

    total, n = 0.0, 0
    for b in range(2):
        for k in range(5):
            if pos[b, k]:
                total += r1(float(pred[b, k, 0] - tgt[b, k, 0])) + r1(float(pred[b, k, 1] - tgt[b, k, 1]))
                n += 1
    assert boundary_loss(pred, tgt, pos).item() == pytest.approx(total / n, rel=1e-5)
    assert boundary_loss(pred, tgt, torch.zeros_like(pos)).item() == 0.0
    p = pred.double().requires_grad_()
    assert torch.autograd.gradcheck(lambda x: boundary_loss(x, tgt.double(), pos), (p,))


def test_targets_and_joint_loss():
    """FIAN Eq. 18: L = L_align + alpha L_b, with IoU o_j and offsets delta from the ground truth (loop)."""
    m = model(alpha=0.3)
    b = make_batch()
    out = m(b)
    iou, delta = m.targets(b, out)
    for i in range(3):
        gs, ge = (b["moment"][i] * T).tolist()
        for k, (s, e) in enumerate(m.windows.tolist()):
            inter = max(0.0, min(e, ge) - max(s, gs))
            union = max(e, ge) - min(s, gs)
            assert iou[i, k].item() == pytest.approx(inter / union, abs=1e-5)
            assert delta[i, k].tolist() == pytest.approx([gs - s, ge - e], abs=1e-5)
    total, parts = m.loss(b, out)
    pos = out["valid"] & (iou > 0.55)
    expect = alignment_loss(out["logits"], iou, out["valid"], 0.55) + 0.3 * boundary_loss(out["offsets"], delta, pos)
    torch.testing.assert_close(total, expect)
    assert set(parts) >= {"align", "boundary"}


# --------------------------------------------------------------------------- the model


def test_forward_composes_the_modules_in_the_paper_order():
    """FIAN Eqs. 1-14 and Sec. 3.4 wired in order: encoders, Eq. 9 and Eq. 10 branches, integration
    with [V1, V2] / [Q1, Q2] in branch order, then the localiser; rebuilt from the model's parts."""
    m = model()
    b = make_batch()
    # sharper LayerNorms than the identity at init, so that every stage moves the result by O(1)
    g = torch.Generator().manual_seed(14)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.LayerNorm):
                mod.weight.copy_(1 + torch.randn(mod.weight.shape, generator=g))
                mod.bias.copy_(torch.randn(mod.bias.shape, generator=g))
    out = m(b)
    vm, wm = b["video_mask"], b["words_mask"]
    q = m.query_encoder(b["words"], wm)  # Eqs. 1-3
    v = m.video_encoder(b["video"], vm)  # Sec. 3.2
    it = m.iterative
    q1, a_q1 = it.qv_query(q, v, vm)  # Eq. 9
    v1, a_v1 = it.qv_video(v, q1, wm)
    v2, a_v2 = it.vq_video(v, q, wm)  # Eq. 10
    q2, a_q2 = it.vq_query(q, v2, vm)
    M, r = m.integration([v1, v2], [q1, q2], wm)  # Eqs. 11-14
    logits, offsets = m.localizer(M, vm)  # Sec. 3.4
    for key, ref in {"M": M, "r": r, "logits": logits, "offsets": offsets, "attn_Q1": a_q1, "attn_V1": a_v1,
                     "attn_V2": a_v2, "attn_Q2": a_q2}.items():
        torch.testing.assert_close(out[key], ref, atol=1e-5, rtol=1e-5, msg=lambda s, k=key: f"{k}: {s}")
    # the branches are not interchangeable here (else the check above could not see them swapped)
    M_swapped, _ = m.integration([v2, v1], [q2, q1], wm)
    assert (M_swapped - M).abs().max() > 1e-1


def test_registry_and_full_supervision():
    """FIAN is fully supervised: it is built by key and its loss needs the labels."""
    m = build("fian", **{k: v for k, v in vars(small_config()).items()})
    assert isinstance(m, FIAN) and supervision_of("fian") == "full" and m.supervision == "full"
    b = make_batch()
    with pytest.raises(KeyError, match="moment"):
        m.loss(strip_labels(b), m(strip_labels(b)))


def test_config_validation():
    """FIAN config: invalid widths/variants are refused, and Eq. 11's fixed n_v rejects other clip counts."""
    with pytest.raises(ValueError):
        small_config(hidden=15)
    with pytest.raises(ValueError):
        small_config(attention="dot")
    with pytest.raises(ValueError):
        small_config(branches="three")
    with pytest.raises(ValueError, match="num_clips"):
        model()(dict(make_batch(), video=torch.randn(3, T + 1, D)))


@pytest.mark.parametrize("kw", [{}, {"attention": "cma"}, {"attention": "soft"}, {"branches": "qv"},
                                {"branches": "vq"}])
def test_gradients_reach_every_parameter(kw):
    """FIAN Eqs. 1-18: every parameter receives a non-zero gradient from the joint loss."""
    m = model(**kw).train()
    b = make_batch(B=4)
    b["moment"] = torch.tensor([[0.0, 0.5], [0.25, 0.75], [0.5, 1.0], [0.125, 0.375]])  # positives at every size
    total, _ = m.loss(b, m(b))
    total.backward()
    # "non-zero" means above rounding: a parameter whose gradient vanishes mathematically (e.g. a
    # scalar added before a softmax) still gets ~1e-10 from rounding; real ones here are >= 1e-6
    missing = [n for n, p in m.named_parameters() if p.grad is None or not p.grad.abs().max() > 1e-8]
    assert not missing, missing


def test_padding_words_do_not_change_results():
    """Masking: extra padded word positions (with any id behind the mask) change nothing."""
    m = model()
    b = make_batch()
    out = m(b)
    b2 = dict(b)
    b2["words"] = torch.cat([b["words"], torch.full((3, 3), 7)], 1)
    b2["words_mask"] = torch.cat([b["words_mask"], torch.zeros(3, 3, dtype=torch.bool)], 1)
    out2 = m(b2)
    torch.testing.assert_close(out2["logits"], out["logits"])
    torch.testing.assert_close(out2["offsets"], out["offsets"])


def test_padding_clips_do_not_change_results():
    """Masking: features of padded clips never change the valid candidates; those reaching in are invalid."""
    m = model()
    b = make_batch()
    b["video_mask"][0, 12:] = False
    b["moment"][0] = torch.tensor([0.1, 0.6])
    out = m(b)
    b2 = dict(b)
    b2["video"] = b["video"].clone()
    b2["video"][0, 12:] = 99.0
    out2 = m(b2)
    valid = out["valid"]
    assert not valid[0].all() and valid[1:].all()
    torch.testing.assert_close(m.windows[~valid[0]][:, 1].min().item(), 13.0)
    torch.testing.assert_close(out2["logits"][valid], out["logits"][valid])
    torch.testing.assert_close(out2["offsets"][valid], out["offsets"][valid])
    moments, scores = m.predict(strip_labels(b), top_k=m.num_candidates)
    n_invalid = int((~valid[0]).sum())
    assert torch.all(scores[0, -n_invalid:] == -1.0) and torch.all(scores[0, :-n_invalid] >= 0)


def test_predict_shape_range_and_order():
    """Inference: regressed moments in [0, 1] with start < end, ranked by confidence, no labels needed."""
    m = model()
    b = strip_labels(make_batch())
    moments, scores = m.predict(b, top_k=10)
    assert moments.shape == (3, 10, 2) and scores.shape == (3, 10)
    assert torch.all(moments >= 0) and torch.all(moments <= 1) and torch.all(moments[..., 1] > moments[..., 0])
    assert torch.all(scores[:, :-1] >= scores[:, 1:])
    m_all, s_all = m.predict(b, top_k=1000)
    assert m_all.shape[1] == m.num_candidates
    out = m(b)
    best = out["scores"].argmax(1)
    torch.testing.assert_close(moments[:, 0], m.regressed(out)[torch.arange(3), best])


def test_candidates_are_the_unshifted_windows_predict_ranks():
    """With zero offsets, predict's moments are exactly rows of candidates()."""
    m = model()
    b = strip_labels(make_batch())
    cands = m.candidates()
    assert cands.shape == (m.num_candidates, 2) and torch.all(cands[:, 1] > cands[:, 0])
    torch.testing.assert_close(cands * T, m.windows.float())
    out = m(b)
    zero = {**out, "offsets": torch.zeros_like(out["offsets"])}
    torch.testing.assert_close(m.regressed(zero)[0], cands)


def test_regression_clamps_and_falls_back():
    """Inference: shifted windows are clamped to [0, 1]; a reversed window falls back to the candidate."""
    m = model()
    K = m.num_candidates
    offsets = torch.zeros(1, K, 2)
    offsets[0, 0] = torch.tensor([-5.0, 1.0])  # window [0, 4) -> [-5, 5] -> clamp [0, 5/16]
    offsets[0, 1] = torch.tensor([10.0, -10.0])  # reversed -> keep [1, 5]
    out = {"offsets": offsets, "lengths": torch.tensor([T])}
    r = m.regressed(out)
    s0, e0 = m.windows[0].tolist()
    s1, e1 = m.windows[1].tolist()
    torch.testing.assert_close(r[0, 0], torch.tensor([0.0, (e0 + 1.0) / T]))
    torch.testing.assert_close(r[0, 1], torch.tensor([s1 / T, e1 / T]))


def test_training_steps_reduce_the_loss():
    """FIAN Eq. 18: a few Adam steps on one batch lower the joint loss (the model can learn)."""
    m = model().train()
    b = make_batch(B=6)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    first = None
    for _ in range(25):
        total, _ = m.loss(b, m(b))
        first = total.item() if first is None else first
        opt.zero_grad()
        total.backward()
        opt.step()
    assert total.item() < 0.8 * first
