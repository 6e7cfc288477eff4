"""Tests of WSRA (wsg.models.wsra): every equation against an independent computation."""
from __future__ import annotations

import math

import pytest
import torch

from wsg.models import build, strip_labels
from wsg.models.wsra import (
    WSRA,
    bag_of_words,
    CrossModalScorer,
    WSRAConfig,
    cross_video_loss,
    cross_video_pooling,
    didemo_windows,
    fore_background,
    instance_vas_loss,
    pseudo_positive_gate,
    referring_attention,
    referring_weights,
    text_similarity,
    top_last_k_mask,
    vas_loss,
    video_level_loss,
    window_scores,
)
from wsg.proposals import didemo_candidates, didemo_moments, proportional_windows

D, V = 12, 30


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def small(**kw) -> WSRA:
    """A tiny WSRA with all four terms of Eq. 11 on (the paper's weights; the default has w_bg = 0)."""
    cfg = dict(vocab_size=V, video_dim=D, num_clips=8, word_dim=8, text_hidden=8, hidden=8, phi_hidden=8,
               dropout=0.0, w_bg=0.1)
    cfg.update(kw)
    return build("wsra", **cfg)


def toy_batch(B: int = 6, T: int = 8, L: int = 5, seed: int = 0, pad_clips: bool = False) -> dict:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, L + 1, (B,), generator=g)
    words = torch.randint(4, V, (B, L), generator=g)
    words_mask = torch.arange(L)[None] < lengths[:, None]
    words = words * words_mask
    clips = torch.full((B,), T)
    if pad_clips:
        clips = torch.randint(3, T + 1, (B,), generator=g)
        clips[0] = T
    video_mask = torch.arange(T)[None] < clips[:, None]
    video = torch.rand(B, T, D, generator=g) * video_mask.unsqueeze(-1)
    return {
        "video": video, "video_mask": video_mask, "words": words, "words_mask": words_mask,
        "duration": torch.rand(B, generator=g) * 20 + 20, "video_idx": torch.tensor([0, 0, 1, 2, 3, 3, 4, 5][:B]),
        "query_idx": torch.arange(B), "video_id": [f"v{i}" for i in range(B)], "sentence": ["s"] * B,
        "moment": torch.tensor([[0.1, 0.4]]).repeat(B, 1),
    }


# --------------------------------------------------------------------------- Eq. 1 and Eq. 2


def test_referring_attention_matches_loop_and_masks():
    """WSRA Eq. 2: softmax over the valid snippets, against a loop; padding gets weight 0."""
    g = torch.Generator().manual_seed(1)
    s = torch.rand(3, 7, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5]).bool()
    for temp in (1.0, 0.25):
        a = referring_attention(s, mask, temp)
        for b in range(3):
            n = int(mask[b].sum())
            e = [math.exp(float(s[b, t]) / temp) for t in range(n)]
            ref = [x / sum(e) for x in e] + [0.0] * (7 - n)
            torch.testing.assert_close(a[b], torch.tensor(ref, dtype=torch.float64))


def test_printed_attention_is_at_most_e_to_one():
    """WSRA Eq. 2: a softmax of sigmoid scores in (0, 1) is never sharper than e : 1."""
    phi = torch.sigmoid(torch.randn(4, 16) * 20)
    a = referring_attention(phi, torch.ones(4, 16, dtype=torch.bool))
    ratio = a.max(1).values / a.min(1).values
    assert (ratio <= math.e + 1e-5).all()
    sharp = referring_attention(phi, torch.ones(4, 16, dtype=torch.bool), temperature=0.1)
    assert (sharp.max(1).values / sharp.min(1).values > 100).any()


def test_fore_background_matches_loop_and_ignores_padding():
    """WSRA Eq. 1: v_f = sum alpha v, v_b = sum (1 - alpha) v / (T - 1), T = valid snippets."""
    g = torch.Generator().manual_seed(2)
    v = torch.randn(2, 6, 3, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2]).bool()
    alpha = referring_attention(torch.randn(2, 6, generator=g, dtype=torch.float64), mask)
    v_f, v_b = fore_background(v, alpha, mask)
    for b in range(2):
        n = int(mask[b].sum())
        ref_f = sum(alpha[b, t] * v[b, t] for t in range(n))
        ref_b = sum((1 - alpha[b, t]) * v[b, t] for t in range(n)) / (n - 1)
        torch.testing.assert_close(v_f[b], ref_f)
        torch.testing.assert_close(v_b[b], ref_b)
    # garbage in padded snippets changes nothing
    v2 = v.clone()
    v2[1, 4:] = 1e3
    torch.testing.assert_close(fore_background(v2, alpha, mask)[1], v_b)


# --------------------------------------------------------------------------- the scorer phi


def test_scorer_equals_mlp_on_concatenation():
    """WSRA Eq. 2's phi: sigmoid(FC([v; t])), computed by broadcasting, equals the concatenation form."""
    torch.manual_seed(0)
    phi = CrossModalScorer(5, 4, hidden=6).double()
    v, t = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    W1 = torch.cat([phi.fc_v.weight, phi.fc_t.weight], dim=1)
    h = torch.relu(torch.cat([v, t], -1) @ W1.T + phi.fc_v.bias)
    ref = torch.sigmoid(h @ phi.fc_out.weight.T + phi.fc_out.bias).squeeze(-1)
    torch.testing.assert_close(phi(v, t), ref)
    # all (v_i, t_j) pairs at once
    pair = phi(v[:, None], t[None, :])
    torch.testing.assert_close(pair.diagonal(), ref)


def test_single_fc_scorer_is_query_blind_in_ranking():
    """WSRA Eq. 2: with a literal single FC layer, the snippet ranking cannot depend on the query.

    Checked on the logits, not on argsorts (which ties and rounding could flip): the literal layer
    moves every snippet's logit by the same query term, so the logits minus those of query 0 are
    constant over snippets (up to rounding, ~1e-7); the two-layer scorer's are not (by O(0.1)).
    """
    torch.manual_seed(0)
    v, t = torch.randn(10, 5), torch.randn(4, 3)

    def query_effect(scorer):  # [query, snippet]: change of each logit from query 0, minus its mean shift
        d = scorer.logits(v[None], t[:, None]) - scorer.logits(v[None], t[:1, None])
        return d - d.mean(1, keepdim=True)

    lin = CrossModalScorer(5, 3, hidden=0)
    torch.testing.assert_close(query_effect(lin), torch.zeros(4, 10), atol=1e-5, rtol=0)  # same order for all
    mlp = CrossModalScorer(5, 3, hidden=16)
    assert query_effect(mlp).abs().max() > 1e-1  # ~0.55 here


def test_video_embedding_order_and_masking():
    """Snippet embedding v_t: Linear -> ReLU -> temporal Conv1d (zero padding) -> ReLU -> LayerNorm,
    padded clips zeroed before the convolution and in the output; written from the equations.

    The LayerNorm has a random affine map, so moving it before the convolution, or dropping a ReLU,
    changes v by O(1).
    """
    torch.manual_seed(3)
    model = small(context_kernel=3)
    emb = model.video
    with torch.no_grad():
        emb.norm.weight.normal_()
        emb.norm.bias.normal_()
    batch = toy_batch(pad_clips=True)
    video, mask = batch["video"].clone(), batch["video_mask"]
    video[~mask] = 7.0  # garbage in the padded clips: must not reach the convolution
    assert not mask.all()
    m = mask[..., None].float()
    x = torch.relu(video @ emb.proj.weight.T + emb.proj.bias) * m
    xp = torch.nn.functional.pad(x, (0, 0, 1, 1))  # one zero snippet before and after
    conv = torch.stack([sum(xp[:, t + k] @ emb.conv.weight[:, :, k].T for k in range(3)) + emb.conv.bias
                        for t in range(x.shape[1])], 1)
    x = torch.relu(conv) * m
    mu, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=False, keepdim=True)
    ref = ((x - mu) / torch.sqrt(var + emb.norm.eps) * emb.norm.weight + emb.norm.bias) * m
    out = model(dict(batch, video=video), cross=False)
    torch.testing.assert_close(out["v"], ref, atol=1e-5, rtol=1e-5)
    # t is the GRU's final state; the per-video logits are phi(v_t, t) (Eq. 2's scorer)
    _, t = model.text(batch["words"], batch["words_mask"])
    torch.testing.assert_close(out["t"], t)
    torch.testing.assert_close(out["logits"], model.phi.logits(ref, t[:, None]), atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------- Eq. 3


def test_video_level_loss_value_and_pair_weights():
    """WSRA Eq. 3: value against the formula, and d/ds_p^i = -gamma w_i (pair weighting)."""
    g = torch.Generator().manual_seed(3)
    s_p = torch.rand(5, generator=g, dtype=torch.float64).requires_grad_()
    s_n = torch.rand(5, generator=g, dtype=torch.float64)
    m, gam = 0.2, 10.0
    loss = video_level_loss(s_p, s_n, m, gam)
    x = [gam * (float(s_n[i]) - float(s_p.detach()[i]) + m) for i in range(5)]
    ref = math.log(1 + sum(math.exp(xi) for xi in x))
    assert abs(float(loss.detach()) - ref) < 1e-12
    loss.backward()
    w = torch.tensor([math.exp(xi) for xi in x], dtype=torch.float64) / (1 + sum(math.exp(xi) for xi in x))
    torch.testing.assert_close(s_p.grad, -gam * w)
    # the most violating pair gets the largest weight
    assert int(s_p.grad.abs().argmax()) == int(torch.tensor(x).argmax())


def test_video_level_loss_gradcheck_and_stability():
    """WSRA Eq. 3: finite-difference gradient check; no overflow for large scale."""
    s = torch.rand(2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: video_level_loss(a[0], a[1], 0.3, 5.0), (s,))
    big = video_level_loss(torch.zeros(3), torch.ones(3), 0.2, 1000.0)
    assert torch.isfinite(big) and abs(float(big) - (1000 * 1.2 + math.log(3))) < 1e-2


# --------------------------------------------------------------------------- Eq. 4


def test_referring_weights_softmax_over_queries():
    """WSRA Eq. 4: beta^j_t(i) normalises over the batch's queries i for each snippet (j, t)."""
    g = torch.Generator().manual_seed(4)
    phi = torch.rand(3, 4, 5, generator=g, dtype=torch.float64)  # [video j, query i, snippet t]
    beta = referring_weights(phi)
    for j in range(3):
        for t in range(5):
            e = [math.exp(float(phi[j, i, t])) for i in range(4)]
            torch.testing.assert_close(beta[j, :, t], torch.tensor(e, dtype=torch.float64) / sum(e))
    qm = torch.tensor([[1, 1, 0, 1]] * 3).bool()
    beta = referring_weights(phi, qm)
    assert float(beta[:, 2].abs().max()) < 1e-12
    torch.testing.assert_close(beta.sum(1), torch.ones(3, 5, dtype=torch.float64))


# --------------------------------------------------------------------------- Eq. 5 and top/last-K


def naive_top_last(sim, vid, k_top, k_last, k_batch):
    B = sim.shape[0]
    out = torch.zeros(B, B, dtype=torch.bool)
    for i in range(B):
        cands = [j for j in range(B) if vid[j] != vid[i]]
        cands.sort(key=lambda j: -float(sim[i, j]))
        n = len(cands)
        kt, kl = (k_top, k_last) if k_batch is None else (
            int(math.floor(k_top * n / (k_batch - 1) + 0.5)), int(math.floor(k_last * n / (k_batch - 1) + 0.5)))
        for j in cands[kt:max(n - kl, kt)]:
            out[i, j] = True
    return out


def test_top_last_k_mask_against_sorting_loop():
    """WSRA Eq. 5 indicator (Sec. 3.2.1): drop the K most and K' least similar other-video queries."""
    g = torch.Generator().manual_seed(5)
    B = 12
    sim = torch.rand(B, B, generator=g)
    vid = torch.tensor([0, 0, 1, 2, 2, 2, 3, 4, 5, 6, 7, 7])
    for kt, kl, kb in [(3, 2, None), (1, 1, None), (0, 0, None), (3, 2, 42), (3, 2, 12)]:
        got = top_last_k_mask(sim, vid, kt, kl, kb)
        assert torch.equal(got, naive_top_last(sim, vid, kt, kl, kb)), (kt, kl, kb)
        same = vid[:, None] == vid[None, :]
        assert not (got & same).any()  # same video (incl. itself) never a negative


def test_top_last_k_paper_batch_and_hand_case():
    """WSRA Eq. 5 indicator: at the paper's batch of 42 distinct videos, K=3, K'=2 keep 36 negatives."""
    sim = torch.rand(42, 42)
    keep = top_last_k_mask(sim, torch.arange(42), 3, 2, 42)
    assert (keep.sum(1) == 36).all()
    # hand case: anchor 0's similarities 0.9, 0.8, 0.5, 0.1 -> drop top-1 and last-1
    sim = torch.tensor([[1.0, 0.9, 0.8, 0.5, 0.1]]).repeat(5, 1)
    keep = top_last_k_mask(sim, torch.arange(5), 1, 1, None)
    assert keep[0].tolist() == [False, False, True, True, False]


def test_vas_loss_against_loop():
    """WSRA Eq. 5: hinge of phi(v_f^i, t^j) over phi(v_f^i, t^i) on the kept pairs, averaged."""
    g = torch.Generator().manual_seed(6)
    s = torch.rand(5, 5, generator=g, dtype=torch.float64)
    neg = torch.rand(5, 5, generator=g) > 0.4
    neg.fill_diagonal_(False)
    total, count = 0.0, 0
    for i in range(5):
        for j in range(5):
            if neg[i, j]:
                total += max(0.0, 0.3 + float(s[i, j]) - float(s[i, i]))
                count += 1
    assert abs(float(vas_loss(s, neg, 0.3)) - total / count) < 1e-12
    assert float(vas_loss(s, torch.zeros(5, 5, dtype=torch.bool), 0.3)) == 0.0


# --------------------------------------------------------------------------- Eq. 6


def test_instance_vas_loss_against_loop():
    """WSRA Eq. 6: sum over snippets of max(0, m + w_- phi_- - w_+ phi_+), over kept (i, j) pairs."""
    g = torch.Generator().manual_seed(7)
    B, T = 4, 5
    s = torch.rand(B, B, T, generator=g, dtype=torch.float64)
    w = torch.rand(B, B, T, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1] * 5, [1] * 3 + [0] * 2, [1] * 5, [1] * 4 + [0]]).bool()
    neg = torch.tensor([[0, 1, 1, 0], [1, 0, 0, 1], [1, 1, 0, 1], [0, 0, 1, 0]]).bool()
    total, count = 0.0, 0
    for i in range(B):
        for j in range(B):
            if not neg[i, j]:
                continue
            count += 1
            for t in range(int(mask[i].sum())):
                total += max(0.0, 0.1 + float(w[i, j, t] * s[i, j, t]) - float(w[i, i, t] * s[i, i, t]))
    assert abs(float(instance_vas_loss(w, s, neg, mask, 0.1)) - total / count) < 1e-12
    wr = w.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a: instance_vas_loss(a, s, neg, mask, 0.1), (wr,))


# --------------------------------------------------------------------------- Eqs. 7-10


def test_cross_video_pooling_against_loop():
    """WSRA Eqs. 7-8: gamma = softmax_m cos(u_m, v_f); u_f = sum gamma u; u_b by complement weights."""
    g = torch.Generator().manual_seed(8)
    u = torch.randn(3, 6, 4, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] * 6]).bool()
    v_f = torch.randn(2, 4, generator=g, dtype=torch.float64)
    u_f, u_b, gamma = cross_video_pooling(u, mask, v_f)
    for i in range(2):
        for k in range(3):
            n = int(mask[k].sum())
            c = [float(torch.nn.functional.cosine_similarity(u[k, m], v_f[i], dim=0)) for m in range(n)]
            e = [math.exp(x) for x in c]
            gam = [x / sum(e) for x in e]
            torch.testing.assert_close(u_f[i, k], sum(gam[m] * u[k, m] for m in range(n)))
            torch.testing.assert_close(u_b[i, k], sum((1 - gam[m]) * u[k, m] for m in range(n)) / (n - 1))
            assert float(gamma[i, k, n:].abs().sum()) == 0.0


def test_pseudo_positive_gate_hand_case():
    """WSRA Eq. 10: lambda = 1 iff the queries' cosine exceeds tau, and the videos differ."""
    sim = torch.tensor([[1.0, 0.95, 0.9, 0.99], [0.95, 1.0, 0.2, 0.91],
                        [0.9, 0.2, 1.0, 0.3], [0.99, 0.91, 0.3, 1.0]])
    vid = torch.tensor([0, 1, 2, 0])
    gate = pseudo_positive_gate(sim, vid, 0.9)
    expected = torch.tensor([[0, 1, 0, 0], [1, 0, 0, 1], [0, 0, 0, 0], [0, 1, 0, 0]], dtype=gate.dtype)
    torch.testing.assert_close(gate, expected)


def test_cross_video_loss_value():
    """WSRA Eq. 9: value of the intended hinge against the formula, averaged over gated pairs."""
    g = torch.Generator().manual_seed(9)
    u_f, u_b = torch.randn(2, 3, 4, generator=g, dtype=torch.float64), torch.randn(2, 3, 4, generator=g,
                                                                                    dtype=torch.float64)
    v_f = torch.randn(2, 4, generator=g, dtype=torch.float64)
    gate = torch.tensor([[0, 1, 1], [1, 0, 0]], dtype=torch.float64)
    cos = torch.nn.functional.cosine_similarity
    vals = [max(0.0, 0.5 + float(cos(u_b[i, k], v_f[i], dim=0)) - float(cos(u_f[i, k], v_f[i], dim=0)))
            for i, k in [(0, 1), (0, 2), (1, 0)]]
    assert abs(float(cross_video_loss(u_f, u_b, v_f, gate, 0.5)) - sum(vals) / 3) < 1e-12
    assert float(cross_video_loss(u_f, u_b, v_f, torch.zeros(2, 3, dtype=torch.float64), 0.5)) == 0.0


@pytest.mark.parametrize("direction, sign", [("intended", 1.0), ("printed", -1.0)])
def test_cross_video_loss_direction(direction, sign):
    """WSRA Eq. 9: a gradient step on the intended form pulls u_f towards v_f; the printed form pushes it away."""
    g = torch.Generator().manual_seed(10)
    v_f = torch.randn(1, 6, generator=g, dtype=torch.float64)
    u_f = torch.randn(1, 1, 6, generator=g, dtype=torch.float64).requires_grad_()
    u_b = torch.randn(1, 1, 6, generator=g, dtype=torch.float64)
    gate = torch.ones(1, 1, dtype=torch.float64)
    loss = cross_video_loss(u_f, u_b, v_f, gate, margin=2.0, direction=direction)  # margin 2: hinge active
    (grad,) = torch.autograd.grad(loss, u_f)
    cos = lambda a: float(torch.nn.functional.cosine_similarity(a.reshape(-1), v_f.reshape(-1), dim=0))
    before = cos(u_f.detach())
    after = cos(u_f.detach() - 1e-2 * grad)
    assert sign * (after - before) > 1e-4  # ~1e-3 here; float64 rounding is ~1e-16
    # the directional derivative of cos(u_f, v_f) along -grad has the same sign
    u = u_f.detach().clone().requires_grad_()
    c = torch.nn.functional.cosine_similarity(u.reshape(-1), v_f.reshape(-1), dim=0)
    (dc,) = torch.autograd.grad(c, u)
    assert sign * float((dc * -grad).sum()) > 1e-2  # ~0.1 here


# --------------------------------------------------------------------------- inference helpers


def test_window_scores_against_numeric_integration():
    """Inference: attention mass inside a window by prefix sums equals a fine numeric integral."""
    g = torch.Generator().manual_seed(11)
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3]).bool()
    alpha = referring_attention(torch.randn(2, 8, generator=g, dtype=torch.float64), mask)
    wins = torch.tensor([[0.0, 0.3], [0.13, 0.57], [0.5, 1.0], [0.9, 1.0]], dtype=torch.float64)
    got_in = window_scores(alpha, mask, wins, "inside")
    got_c = window_scores(alpha, mask, wins, "contrast")
    grid = (torch.arange(200000, dtype=torch.float64) + 0.5) / 200000
    for b in range(2):
        n = int(mask[b].sum())
        dens = alpha[b, (grid * n).long().clamp(max=n - 1)] * n
        for k, (s, e) in enumerate(wins.tolist()):
            inside = ((grid >= s) & (grid < e)).double()
            mass = float((dens * inside).mean())
            assert abs(float(got_in[b, k]) - mass / (e - s)) < 1e-3
            assert abs(float(got_c[b, k]) - (mass / (e - s) - (1 - mass) / (1 - (e - s)))) < 1e-3


def test_didemo_windows_match_proposals():
    """Inference: the 21 DiDeMo candidates per video equal wsg.proposals.didemo_moments."""
    dur = torch.tensor([30.0, 27.5, 22.0, 40.0], dtype=torch.float64)
    got = didemo_windows(dur)
    for b, d in enumerate(dur.tolist()):
        torch.testing.assert_close(got[b].float(), didemo_moments(d, num_segments=6))


# --------------------------------------------------------------------------- the model


def test_model_loss_is_weighted_sum_eq11():
    """WSRA Eq. 11: total = w_bg L_bg + w_crov L_crov + w_vas L_vas + w_ins L_ins-vas."""
    torch.manual_seed(0)
    model = small(tau=-1.0, top_k=0, last_k=0, k_batch=None, w_bg=0.3, w_crov=0.7, w_vas=0.2, w_ins=1.5)
    batch = strip_labels(toy_batch())
    total, parts = model.loss(batch, model(batch))
    assert set(parts) == {"bg", "vas", "ins_vas", "crov"} and all(v > 0 for v in parts.values())
    ref = 0.3 * parts["bg"] + 0.7 * parts["crov"] + 0.2 * parts["vas"] + 1.5 * parts["ins_vas"]
    assert abs(float(total.detach()) - ref) < 1e-5
    model.config.w_crov = 0.0
    total2, parts2 = model.loss(batch, model(batch))
    assert parts2["crov"] == 0.0 and abs(float(total2.detach()) - (ref - 0.7 * parts["crov"])) < 1e-5


def test_model_terms_match_functions():
    """WSRA Eqs. 1-6: the model's terms equal the functions applied to its own tensors."""
    torch.manual_seed(0)
    model = small(top_k=1, last_k=1, k_batch=None, tau=2.0).eval()
    batch = strip_labels(toy_batch())
    with torch.no_grad():
        out = model(batch)
    c = model.config
    t, v, mask = out["t"], out["v"], out["mask"]
    vid = batch["video_idx"]
    # Eq. 2 per video with its own query, and cross-pairings agree with the diagonal
    for i in range(len(vid)):
        a = referring_attention(model.phi(v[i], t[i].expand(v.shape[1], -1)), mask[i], c.temperature)
        torch.testing.assert_close(out["alpha"][i], a)
    neg = top_last_k_mask(model.similarity(batch, out), vid, 1, 1, None)
    with torch.no_grad():
        _, parts = model.loss(batch, out)
        s = torch.stack([torch.stack([model.phi(out["v_f"][i], t[j]) for j in range(len(vid))])
                         for i in range(len(vid))])
        bg = video_level_loss(model.phi(out["v_f"], t), model.phi(out["v_b"], t), c.margin, c.scale)
    assert abs(parts["vas"] - float(vas_loss(s, neg, c.margin))) < 1e-6
    assert abs(parts["bg"] - float(bg)) < 1e-6
    assert parts["crov"] == 0.0  # tau = 2: no pseudo-positive


def test_gradients_reach_every_parameter():
    """WSRA Eq. 11: with all four losses on, every trainable parameter gets a non-zero gradient."""
    torch.manual_seed(0)
    model = small(tau=-1.0, context_kernel=3, top_k=0, last_k=0, k_batch=None, attention="logit")
    batch = strip_labels(toy_batch())
    total, _ = model.loss(batch, model(batch))
    total.backward()
    for name, p in model.named_parameters():
        if name == "text.embed.weight":
            used = torch.unique(batch["words"][batch["words_mask"]])
            assert p.grad[used].abs().sum(1).gt(1e-8).all(), name  # above rounding (~1e-10), see below
        else:
            # above rounding: a mathematically vanishing gradient still gets ~1e-10; real ones are >= 1e-5
            assert p.grad is not None and p.grad.abs().max() > 1e-8, name


def test_padding_clips_and_words_change_nothing():
    """WSRA Eqs. 1-2, 11: padded snippets and padded words never change attention, loss or ranking."""
    torch.manual_seed(0)
    model = small(tau=-1.0, top_k=0, last_k=0, k_batch=None).eval()
    batch = strip_labels(toy_batch(pad_clips=True))
    out = model(batch)
    total, _ = model.loss(batch, out)
    moments, scores = model.predict(batch, top_k=7)
    noisy = dict(batch)
    noisy["video"] = batch["video"] + 50.0 * (~batch["video_mask"]).unsqueeze(-1)
    extra = torch.randint(4, V, (batch["words"].shape[0], 3))
    noisy["words"] = torch.cat([batch["words"], extra], 1)
    noisy["words_mask"] = torch.cat([batch["words_mask"], torch.zeros_like(extra, dtype=torch.bool)], 1)
    out2 = model(noisy)
    torch.testing.assert_close(out2["alpha"], out["alpha"])
    torch.testing.assert_close(model.loss(noisy, out2)[0], total)
    m2, s2 = model.predict(noisy, top_k=7)
    torch.testing.assert_close(m2, moments)
    torch.testing.assert_close(s2, scores)
    assert float(out["alpha"].detach()[~batch["video_mask"]].abs().sum()) == 0.0


class NoLabels(dict):
    """A batch that fails loudly if anyone asks for a label."""

    def __getitem__(self, key):
        if key in ("moment", "times"):
            raise AssertionError(f"weak model read label {key!r}")
        return super().__getitem__(key)

    def get(self, key, default=None):
        if key in ("moment", "times"):
            raise AssertionError(f"weak model read label {key!r}")
        return super().get(key, default)


@pytest.mark.parametrize("candidates", ["proportional", "didemo"])
def test_weak_batch_and_predict_contract(candidates):
    """WSRA Eq. 11 and inference: works without labels; predict shape, range and order."""
    torch.manual_seed(0)
    model = small(candidates=candidates)
    assert model.supervision == "weak"
    batch = NoLabels(strip_labels(toy_batch()))
    total, parts = model.loss(batch, model(batch))
    assert torch.isfinite(total)
    model.eval()
    moments, scores = model.predict(batch, top_k=10)
    K = 10 if candidates == "proportional" else 10
    assert moments.shape == (6, K, 2) and scores.shape == (6, K)
    assert (moments >= 0).all() and (moments <= 1).all() and (moments[..., 0] <= moments[..., 1]).all()
    assert (scores[:, :-1] >= scores[:, 1:]).all()
    all_m, _ = model.predict(batch, top_k=1000)
    n = len(proportional_windows()) if candidates == "proportional" else 21
    assert all_m.shape[1] == n


def test_config_validation_and_build():
    """WSRA config: unknown choices are refused; the paper's loss weights except Eq. 3 (off, chosen on validation)."""
    with pytest.raises(ValueError):
        WSRAConfig(vocab_size=5, video_dim=4, num_clips=8, attention="cosine")
    with pytest.raises(ValueError):
        WSRAConfig(vocab_size=5, video_dim=4, num_clips=8, crov_direction="sideways")
    m = build("wsra", vocab_size=V, video_dim=D, num_clips=8)
    c = m.config
    assert (c.w_bg, c.w_crov, c.w_vas, c.w_ins, c.tau, c.top_k, c.last_k) == (0.0, 0.1, 0.1, 1.0, 0.9, 3, 2)
    assert isinstance(m, WSRA) and m.video.norm is not None
    assert small(norm=False).video.norm is None


def test_text_similarity_sources():
    """WSRA Eqs. 5, 10: the similarity is the cosine of bag-of-words counts, or of detached sentence vectors."""
    torch.manual_seed(0)
    batch = strip_labels(toy_batch())
    model = small()
    out = model(batch)
    sim = model.similarity(batch, out)
    counts = torch.zeros(6, V)
    for i in range(6):
        for w in batch["words"][i][batch["words_mask"][i]].tolist():
            counts[i, w] += 1
    torch.testing.assert_close(bag_of_words(batch["words"], batch["words_mask"], V), counts)
    ref = torch.tensor([[float(torch.dot(counts[i], counts[j]) / counts[i].norm() / counts[j].norm())
                         for j in range(6)] for i in range(6)])
    torch.testing.assert_close(sim, ref)
    model.config.text_similarity = "sentence"
    sim = model.similarity(batch, out)
    assert not sim.requires_grad
    torch.testing.assert_close(sim, text_similarity(out["t"]).detach())


def test_rank_didemo_is_a_permutation_matching_predict():
    """Inference on DiDeMo: rank_didemo permutes the 21 candidates in predict's order."""
    torch.manual_seed(0)
    model = small(candidates="didemo").eval()
    batch = strip_labels(toy_batch())
    ranking = model.rank_didemo(batch)
    assert ranking.shape == (6, 21)
    assert torch.equal(ranking.sort(1).values, torch.arange(21).expand(6, 21))
    moments, _ = model.predict(batch, top_k=21)
    cands = didemo_windows(batch["duration"].double()).float()
    torch.testing.assert_close(moments, cands.gather(1, ranking.unsqueeze(-1).expand(6, 21, 2)))


# --------------------------------------------------------------------------- the full window (issue 11)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_window_with_no_outside_scores_zero_contrast(dtype):
    """Inference: a window covering the whole video has no outside; its contrast is exactly 0, not +-1/eps."""
    g = torch.Generator().manual_seed(12)
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3, [1] * 8]).bool()
    alpha = referring_attention(torch.randn(3, 8, generator=g, dtype=torch.float64) * 3, mask).to(dtype)
    one = torch.tensor(1.0, dtype=dtype)
    wins = torch.tensor([[0.0, 1.0], [0.0, float(one - torch.finfo(dtype).eps)], [0.0, 0.999], [0.001, 1.0]],
                        dtype=dtype)
    got = window_scores(alpha, mask, wins, "contrast")
    assert torch.equal(got[:, :2], torch.zeros(3, 2, dtype=dtype))
    # a real (1e-3) outside is scored as printed, against the density of the snippet it leaves out
    for b in range(3):
        n = int(mask[b].sum())
        a = alpha[b].double()
        last, first = float(a[n - 1]) * n, float(a[0]) * n  # densities of the end / start snippets
        ref_end = (1 - 0.001 * last) / 0.999 - last
        ref_start = (1 - 0.001 * first) / 0.999 - first
        tol = 1e-3 if dtype == torch.float32 else 1e-9
        assert abs(float(got[b, 2]) - ref_end) < tol and abs(float(got[b, 3]) - ref_start) < tol
    # uniform attention: every window has contrast 0
    uni = mask.to(dtype) / mask.sum(1, keepdim=True)
    grid = torch.tensor([[0.0, 1.0], [0.2, 0.7], [0.0, 0.5], [0.5, 1.0]], dtype=dtype)
    torch.testing.assert_close(window_scores(uni, mask, grid), torch.zeros(3, 4, dtype=dtype), atol=1e-5, rtol=0)


def test_didemo_full_video_never_wins_on_non_uniform_attention():
    """Inference on DiDeMo: (0, 5) of a 30-s video scores 0, below the chunk with above-uniform attention.

    The six chunks partition the video, so unless attention is exactly uniform one chunk
    has mean density above 1 and a positive contrast: the whole video can never rank
    first (before the fix it ranked first for most queries of an untrained model).
    """
    g = torch.Generator().manual_seed(13)
    B, T = 64, 32
    mask = torch.ones(B, T, dtype=torch.bool)
    alpha = referring_attention(torch.rand(B, T, generator=g) * 0.1, mask)  # nearly uniform, like Eq. 2
    wins = didemo_windows(torch.full((B,), 30.0, dtype=torch.float64)).float()
    scores = window_scores(alpha, mask, wins)
    full = didemo_candidates().index((0, 5))
    assert torch.equal(scores[:, full], torch.zeros(B))
    assert (scores.argmax(1) != full).all()
    assert (scores.max(1).values > 0).all()


def test_untrained_model_does_not_prefer_the_whole_video():
    """Inference on DiDeMo: an untrained model ranks (0, 5) first for no query of 30-s videos."""
    torch.manual_seed(0)
    model = small(candidates="didemo").eval()
    batch = strip_labels(toy_batch())
    batch["duration"] = torch.full((6,), 30.0)
    ranking = model.rank_didemo(batch)
    assert (ranking[:, 0] != didemo_candidates().index((0, 5))).all()


# --------------------------------------------------------------------------- candidates()


@pytest.mark.parametrize("kind", ["proportional", "didemo"])
def test_candidates_are_what_predict_ranks(kind):
    """Inference: candidates() is the [K, 2] set predict ranks; every top-1 is one of them."""
    torch.manual_seed(0)
    model = small(candidates=kind).eval()
    cands = model.candidates()
    assert cands.ndim == 2 and cands.shape[1] == 2 and (cands >= 0).all() and (cands <= 1).all()
    if kind == "proportional":
        torch.testing.assert_close(cands, proportional_windows())
    else:
        torch.testing.assert_close(cands, didemo_moments(30.0, num_segments=6))
    batch = strip_labels(toy_batch())
    if kind == "didemo":  # the candidate set is that of a 30-s video
        batch["duration"] = torch.full((6,), 30.0)
    moments, _ = model.predict(batch, top_k=len(cands))
    assert moments.shape[1] == len(cands)
    hit = (moments[:, :, None, :] - cands[None, None]).abs().amax(-1).lt(1e-6).any(-1)
    assert hit.all()
    # predict ranks every candidate exactly once
    assert torch.equal(hit.sum(1), torch.full((6,), len(cands)))


# --------------------------------------------------------------------------- wiring (issue 11)


def _phi_loop(model, v, t, i, j, n):
    """phi(v^i_s, t^j) for the n valid snippets of video i, computed one snippet at a time."""
    return torch.stack([model.phi(v[i, s], t[j]) for s in range(n)])


def _independent_terms(model, batch, out):
    """Every loss term of WSRA Eq. 11 recomputed from v, t by loops over the printed formulas."""
    c = model.config
    v, t, mask = out["v"], out["t"], out["mask"]
    vid = batch["video_idx"]
    B = v.shape[0]
    n = mask.sum(1).tolist()
    phi = [[_phi_loop(model, v, t, i, j, n[i]) for j in range(B)] for i in range(B)]  # video i, query j

    logit = [[torch.stack([model.phi.logits(v[i, s], t[j]) for s in range(n[i])]) for j in range(B)]
             for i in range(B)]
    source = phi if c.attention == "sigmoid" else logit  # what Eq. 2 softmaxes
    alpha = [[torch.softmax(source[i][j] / c.temperature, 0) for j in range(B)] for i in range(B)]
    v_f = torch.stack([sum(alpha[i][i][s] * v[i, s] for s in range(n[i])) for i in range(B)])
    v_b = torch.stack([sum((1 - alpha[i][i][s]) * v[i, s] for s in range(n[i])) / (n[i] - 1) for i in range(B)])
    neg = top_last_k_mask(model.similarity(batch, out), vid, c.top_k, c.last_k, c.k_batch)
    # Eq. 3
    x = [c.scale * (float(model.phi(v_b[i], t[i])) - float(model.phi(v_f[i], t[i])) + c.margin) for i in range(B)]
    bg = math.log(1 + sum(math.exp(xi) for xi in x))
    # Eq. 5
    pairs = [(i, j) for i in range(B) for j in range(B) if neg[i, j]]
    vas = sum(max(0.0, c.margin + float(model.phi(v_f[i], t[j])) - float(model.phi(v_f[i], t[i])))
              for i, j in pairs) / max(len(pairs), 1)
    # Eq. 6: video i's snippets, its own query i (+) against negative query j (-)
    ins = 0.0
    for i, j in pairs:
        if c.ins_weights == "alpha":
            w_pos, w_neg = alpha[i][i], alpha[i][j]
        else:  # Eq. 4: softmax over the batch's queries at each snippet of video i
            e = torch.stack([torch.exp(phi[i][k]) for k in range(B)])
            w_pos, w_neg = e[i] / e.sum(0), e[j] / e.sum(0)
        ins += float(torch.clamp(c.margin + w_neg * phi[i][j] - w_pos * phi[i][i], min=0).sum())
    ins /= max(len(pairs), 1)
    # Eqs. 7-10, corrected direction: pull u_f towards v_f
    cos = torch.nn.functional.cosine_similarity
    sim = model.similarity(batch, out)
    crov, count = 0.0, 0
    for i in range(B):
        for k in range(B):
            if not (float(sim[i, k]) > c.tau and vid[i] != vid[k]):
                continue
            gam = torch.softmax(torch.stack([cos(v[k, m], v_f[i], dim=0) for m in range(n[k])]) / c.crov_temperature, 0)
            u_f = sum(gam[m] * v[k, m] for m in range(n[k]))
            u_b = sum((1 - gam[m]) * v[k, m] for m in range(n[k])) / (n[k] - 1)
            crov += max(0.0, c.margin + float(cos(u_b, v_f[i], dim=0)) - float(cos(u_f, v_f[i], dim=0)))
            count += 1
    crov /= max(count, 1)
    return {"bg": bg, "vas": vas, "ins_vas": ins, "crov": crov}, alpha, count


@pytest.mark.parametrize("settings", [
    dict(),
    dict(temperature=0.5),
    dict(attention="logit", temperature=2.0),
    dict(ins_weights="beta", temperature=0.7),
])
def test_every_term_against_loops_from_v_and_t(settings):
    """WSRA Eqs. 1-11, model level: each of the four terms equals a loop over the printed formulas.

    Computed from the model's snippet and sentence vectors only (not from its attention,
    pooled features or cross tensors), so a wiring change that keeps shapes fails here:
    Eq. 6 with video and query swapped, the temperature dropped from the cross path, the
    fore/background swapped, Eq. 9's direction flipped, the wrong Eq. 6 weights.
    """
    torch.manual_seed(0)
    model = small(top_k=1, last_k=1, k_batch=None, tau=0.3, text_similarity="sentence", **settings).eval()
    batch = strip_labels(toy_batch(pad_clips=True))
    with torch.no_grad():
        out = model(batch)
        _, parts = model.loss(batch, out)
        ref, alpha, gated = _independent_terms(model, batch, out)
    assert gated > 0  # the cross-video term is exercised
    for name in ("bg", "vas", "ins_vas", "crov"):
        assert abs(parts[name] - ref[name]) < 1e-5 * max(1.0, abs(ref[name])), (name, parts[name], ref[name])
    n = batch["video_mask"].sum(1).tolist()
    for i in range(6):
        for j in range(6):
            torch.testing.assert_close(out["alpha_cross"][i, j, :n[i]], alpha[i][j])
    # the per-video attention (no cross path) uses the same temperature
    with torch.no_grad():
        att = model.attend(batch)
    torch.testing.assert_close(att["alpha"], out["alpha"])


def test_defaults_are_the_documented_ones():
    """WSRA config: the choices the chapter documents (printed Eq. 2, corrected Eq. 9, Eq. 6 with alpha)."""
    c = build("wsra", vocab_size=V, video_dim=D, num_clips=8).config
    assert c.w_bg == 0.0  # Eq. 3 off: chosen on validation (results/wsra_words_gain.csv)
    assert (c.attention, c.temperature, c.crov_direction, c.ins_weights, c.window_score, c.text_similarity,
            c.candidates, c.margin, c.scale) == ("sigmoid", 1.0, "intended", "alpha", "contrast", "bow",
                                                 "proportional", 0.2, 10.0)


@pytest.mark.parametrize("term", ["bg", "vas", "ins_vas", "crov"])
def test_each_term_alone_trains_scorer_text_and_video(term):
    """WSRA Eq. 11, gradient flow: every term on its own reaches the scorer, the text and the video encoders."""
    torch.manual_seed(0)
    weights = {"bg": "w_bg", "vas": "w_vas", "ins_vas": "w_ins", "crov": "w_crov"}
    cfg = {w: 0.0 for w in weights.values()}
    cfg[weights[term]] = 1.0
    model = small(tau=0.3, text_similarity="sentence", top_k=0, last_k=0, k_batch=None, **cfg)
    batch = strip_labels(toy_batch())
    total, parts = model.loss(batch, model(batch))
    assert parts[term] > 0 and all(v == 0.0 for k, v in parts.items() if k != term)
    total.backward()
    for group in ("phi.fc_v.weight", "phi.fc_t.weight", "phi.fc_out.weight", "text.", "video.proj.weight"):
        grads = [p.grad for name, p in model.named_parameters() if name.startswith(group)]
        assert grads and all(g is not None and g.abs().sum() > 0 for g in grads), (term, group)


def test_model_loss_gradcheck_full_mode():
    """WSRA Eq. 11: finite differences (full, not fast, gradcheck) of the loss w.r.t. the clip features."""
    torch.manual_seed(0)
    model = small(tau=0.3, text_similarity="sentence", top_k=1, last_k=1, k_batch=None, temperature=0.5).double()
    batch = strip_labels(toy_batch(B=4, T=5))
    base = batch["video"].double()
    direction = torch.randn(base.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    u = torch.zeros(base.shape[:2], dtype=torch.float64, requires_grad=True)  # one direction per snippet

    def f(x):
        b = dict(batch, video=base + x.unsqueeze(-1) * direction)
        return model.loss(b, model(b))[0]

    assert torch.autograd.gradcheck(f, (u,), fast_mode=False, atol=1e-5)
