"""Builder of Chapter 5, ``notebooks/05_fsan.ipynb`` (FSAN).

The notebook is generated from this script and stored without outputs. Regenerate it with::

    python notebooks/src/05_fsan.py
"""
from __future__ import annotations

from nbbuild import Chapter

chapter = Chapter("05_fsan.ipynb", "ch5")
md, code = chapter.md, chapter.code

# ============================================================================ set-up
md(r'''
# FSAN: fine-grained semantic alignment

FSAN {cite}`fsan2021` grounds a query without any candidate moments. Trained on
(video, sentence) pairs only, it builds a **token-by-clip Semantic Alignment Map**
$\mathbf P \in [-1, 1]^{N_s \times N_v}$ (one row per word, one column per clip) and scores
*every* span of clips directly from that map. Four parts:

1. **Encoders** (section 3.1): words are embedded, mapped by a linear layer and encoded by a
   transformer {cite}`transformer2017` with learnable positions; clip features are pooled to
   $N_v$ clips and projected to the same width.
2. **Iterative Cross-modal Interaction Module, ICIM** (Eqs. 1-4): a stack of layers, each with
   cross-modal attention in both directions followed by inner-modal self-attention.
3. **Semantic alignment map** (Eq. 5) and the **span score** $SC_{s,e}$ (Eq. 8): the mean
   alignment inside the span minus the mean, over the clips outside, of their weakest word.
4. **Losses**: a video-level hinge on $S(V,S) = \max SC$ against a sentence of another video
   (Eqs. 6-7), and two span-weighted losses on the map (Eqs. 9-12), summed in Eq. 13.

At test time the spans are ranked by $SC$ (Eq. 8 as printed); training uses a variant of it with a
floor on the outside term, and the section *Decoding* below shows why the two must differ.
''')

code(r'''
# Colab set-up: installs wsg from the book's repository when it is not importable.
try:
    import wsg
except ImportError:
    %pip install -q "wsg-book @ git+https://github.com/wsg-book/wsg"
''', tags=["skip-execution", "nbval-skip", "remove-cell"])

code(r'''
import os  # DATASET, DATA_ROOT and FEATURES can also come from $WSG_DATASET, $WSG_DATA_ROOT, $WSG_FEATURES

PROFILE = None  # None: $WSG_PROFILE, else "full" with a GPU and "tiny" without
# a synthetic preset ("charades", "activitynet") or a real dataset ("charades-sta",
# "activitynet-captions", "tacos", "didemo"; see the how-to-run page for the files)
DATASET = os.environ.get("WSG_DATASET", "charades")
DATA_ROOT = os.environ.get("WSG_DATA_ROOT")  # real data: the folder of the annotation files
FEATURES = os.environ.get("WSG_FEATURES")  # real data: an HDF5 feature file or a folder of .npy files
EPOCHS = None  # None: the recipe's (wsg.recipes.get)
SEED = 0
PRESET = DATASET  # the name this parameter had before real data
''', tags=["parameters"])

code(r'''
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import nn

import wsg
import wsg.baselines
import wsg.data
import wsg.recipes
import wsg.viz
from wsg.models import build, strip_labels
from wsg.models.fsan import (AttentionBlock, MultiHeadAttention, SemanticAlignmentMap, inner_loss, matching_loss,
                             outer_loss, shared_token_mask, span_scores, span_weights, temporal_pool, video_score)
from wsg.train import Trainer, TrainConfig, evaluate, predict_all, set_seed

pd.set_option("display.precision", 1)
profile = wsg.get_profile(PROFILE)
RECIPE = wsg.recipes.get("fsan", DATASET, profile)  # every hyper-parameter, with its source
if profile.device == "cpu":
    torch.set_num_threads(1)  # small tensors: one thread avoids contention on a busy 2-core machine
print(wsg.describe_environment(profile))
''')


code(r'''
fig, ax = plt.subplots(figsize=(10, 3.2))
ax.set_axis_off(); ax.set_xlim(0, 10); ax.set_ylim(0, 3.2)
def box(x, y, w, h, text, color):
    ax.add_patch(plt.Rectangle((x, y), w, h, fc=color, ec="0.3", lw=1))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8)
def arrow(x0, y0, x1, y1):
    ax.annotate("", (x1, y1), (x0, y0), arrowprops=dict(arrowstyle="->", color="0.3"))
box(0.1, 2.1, 1.6, 0.8, "words\nembed + linear\n+ transformer", "#e9c46a")
box(0.1, 0.3, 1.6, 0.8, "clips\npool + linear\n+ positions", "#8ecae6")
box(2.3, 0.3, 2.2, 2.6, "ICIM x L\n\ncross-modal attention\n(Eqs. 1-4, both ways)\n\ninner-modal attention\n(same form)", "#d9ed92")
box(5.1, 1.0, 1.5, 1.2, "alignment map\nP  (Eq. 5)\nN_s x N_v", "#f4a261")
box(7.1, 1.9, 2.7, 0.9, "span scores SC_{s,e} (Eq. 8)\nprefix sums, all spans", "#e76f51")
box(7.1, 0.3, 2.7, 1.2, "S = max SC (Eq. 7), hinge (Eq. 6)\ninner / outer losses (Eqs. 9-12)\ntotal (Eq. 13)", "#cdb4db")
arrow(1.7, 2.5, 2.3, 2.2); arrow(1.7, 0.7, 2.3, 1.0); arrow(4.5, 1.6, 5.1, 1.6)
arrow(6.6, 1.8, 7.1, 2.3); arrow(6.6, 1.4, 7.1, 0.9)
ax.set_title("FSAN: the pipeline (equation numbers of the paper)", fontsize=10)
plt.show()
''', tags=["hide-input"])

md(r'''
## The data and the sizes

The book's synthetic Charades-like benchmark (chapter 1): every video holds 2-4 events that
share a verb or an object, each described by one query, so a query-blind model is at chance
among events. Clip features are resampled to $N_v = 32$ clips.

**Sizes.** The paper uses $d = 512$, 6 ICIM layers, dropout 0.1, Adam with learning rate
$10^{-4}$ and batch 128. The paper does not give the number of heads, the FFN width, the depth
of the language encoder, the alignment width $d_i$ or the hinge margin $\delta$; we take 8 heads
(4 in `tiny`), FFN $4d$, one language layer, $d_i = d$ and $\delta = 1$. In the `tiny` profile
(CPU) we shrink the model to $d = 64$, one ICIM layer and 64-d learned word embeddings (the
synthetic world has no GloVe vectors) and use a learning rate of $10^{-3}$; the `full` profile
keeps the paper's widths.
''')

code(r'''
bench = wsg.data.load_benchmark(DATASET, DATA_ROOT, FEATURES, profile, num_clips=RECIPE["num_clips"])
tiny = profile.name == "tiny"
SIZES = RECIPE["model"]  # the recipe's model settings
EPOCHS = EPOCHS or RECIPE["epochs"]
LR, BATCH = RECIPE["lr"], RECIPE["batch_size"]
display(wsg.recipes.table(RECIPE))
print(bench.model_kwargs(), {k: len(v) for k, v in bench.splits.items()}, SIZES, "epochs", EPOCHS)
batch = next(iter(bench.loader("train", 8)))
print({k: tuple(v.shape) for k, v in batch.items() if torch.is_tensor(v)})
''')

# ============================================================================ modules
md(r'''
## The encoders (section 3.1)

**Language.** Word ids are embedded, mapped to $d_s$ by a linear layer, given learnable position
vectors and encoded by a transformer encoder: `wsg.text.TransformerTextEncoder` does exactly
this and returns context-aware token features $\mathbf S \in \mathbb R^{N_s \times d_s}$.

**Video.** Clip features are average-pooled over time into $N_v$ contiguous bins, projected to
$d_v = d_s$ and, at the input of the ICIM, given learnable position vectors (the paper adds them
"to the input of each modality"; the words got theirs in the language encoder).
''')

code(r'''
x = torch.arange(24.0).view(1, 12, 2)  # one video of 12 clips, 2-d features
pooled, pmask = temporal_pool(x, torch.ones(1, 12, dtype=torch.bool), 4)
print("12 clips -> 4 bins:", tuple(pooled.shape), pooled[0, :, 0].tolist())
torch.testing.assert_close(pooled, x.view(1, 4, 3, 2).mean(2))
set_seed(SEED)
toy = build("fsan", **bench.model_kwargs(), **SIZES).eval()
S = toy.encode_text(batch["words"], batch["words_mask"])
V, vmask = toy.encode_video(batch["video"], batch["video_mask"])
print("S:", tuple(S.shape), " V:", tuple(V.shape))
''')

md(r'''
## Multi-head attention and the ICIM (Eqs. 1-4)

For queries $X$ and keys/values $Y$, head $i$ computes

$$\mathbf A_i = \mathrm{softmax}\!\Big(\frac{(X W_i^Q)(Y W_i^K)^\top}{\sqrt{d_h}}\Big) Y W_i^V,
\qquad MA(X, Y) = (\mathbf A_1 \Vert \dots \Vert \mathbf A_m)\, W^M .$$
The paper writes $\sqrt d$; we scale by the head width $d_h = d/m$ as in the transformer it
builds on. One ICIM sub-layer is

$$X' = LN(MA(X, Y) + X), \qquad X'' = LN(FFN(X') + X'),$$
with $(X, Y) = (\mathbf S, \mathbf V)$ for the words (Eq. 3) and $(\mathbf V, \mathbf S)$ for the
clips (Eq. 4), both from the same inputs; then the same form with $Y = X$ (inner-modal
attention). We check `MultiHeadAttention` against PyTorch's own (bias-free) implementation.
''')

code(r'''
torch.manual_seed(0)
ma = MultiHeadAttention(16, 4)
ref = nn.MultiheadAttention(16, 4, bias=False, batch_first=True)
with torch.no_grad():
    ref.in_proj_weight.copy_(torch.cat([ma.q.weight, ma.k.weight, ma.v.weight]))
    ref.out_proj.weight.copy_(ma.out.weight)
X, Y = torch.randn(2, 5, 16), torch.randn(2, 9, 16)
out, att = ma(X, Y)
torch.testing.assert_close(out, ref(X, Y, Y)[0])  # FSAN Eqs. 1-2
blk = AttentionBlock(16, 4, 32, dropout=0.0)
Xpp, _ = blk(X, Y)
a, _ = blk.attn(X, Y)
X1 = blk.norm1(a + X)
torch.testing.assert_close(Xpp, blk.norm2(blk.ffn(X1) + X1))  # FSAN Eqs. 3-4
print("MA:", tuple(out.shape), " attention weights:", tuple(att.shape), " ICIM sub-layer:", tuple(Xpp.shape))
''')

md(r'''
## The semantic alignment map (Eq. 5)

After the ICIM, words and clips are projected to a common width $d_i$ and L2-normalised:

$$\mathbf P = Norm(W^s \mathbf S'') \cdot Norm(W^v \mathbf V'')^\top \in [-1, 1]^{N_s \times N_v},$$
$P_{ij}$ being the cosine between word $i$ and clip $j$.
''')

code(r'''
sap = SemanticAlignmentMap(16, 16, 8)
Ptoy = sap(X, Y)
a_, b_ = sap.ws(X[0, 1]), sap.wv(Y[0, 3])
torch.testing.assert_close(Ptoy[0, 1, 3], a_ @ b_ / (a_.norm() * b_.norm()))  # FSAN Eq. 5
print("P:", tuple(Ptoy.shape), f"range [{Ptoy.min():.2f}, {Ptoy.max():.2f}]")
''')

md(r'''
## Scoring every span with prefix sums (Eq. 8)

A span $[s, e]$ scores

$$SC_{s,e} = \frac{\sum_{i}\sum_{j=s}^{e} P_{ij}}{N_s (e-s+1)} - \frac{\sum_{j \notin [s,e]} \min_i P_{ij}}{N_v - (e-s+1)} .$$
Computed as printed, each of the $N_v(N_v+1)/2$ spans sums $O(N_s N_v)$ entries:
$O(N_s N_v^3)$ in all. But both terms are sums of **per-clip** quantities over a contiguous
range. With the column mean $c_j = \frac1{N_s}\sum_i P_{ij}$, the column minimum
$m_j = \min_i P_{ij}$ and their prefix sums $C_k = \sum_{j<k} c_j$, $M_k = \sum_{j<k} m_j$
(one pass over the map, $O(N_s N_v)$):

$$SC_{s,e} = \frac{C_{e+1} - C_s}{e-s+1} - \frac{M_{N_v} - (M_{e+1} - M_s)}{N_v - (e-s+1)},$$
$O(1)$ per span, $O(N_s N_v + N_v^2)$ in all. The whole-video span has no outside clip; we
set its outside term to 0. Below: the library against the equation evaluated span by span,
then the time of three implementations at $N_v = 64$ and $128$.
''')

code(r'''
def sc_loop(P):  # FSAN Eq. 8 span by span, one (unpadded) map [N_s, N_v]
    Ns, Nv = P.shape
    SC = torch.full((Nv, Nv), float("-inf"), dtype=P.dtype)
    colmin = P.min(0).values
    for s in range(Nv):
        for e in range(s, Nv):
            inside = P[:, s:e + 1].sum() / (Ns * (e - s + 1))
            out = torch.cat([colmin[:s], colmin[e + 1:]])
            SC[s, e] = inside - (out.sum() / out.numel() if out.numel() else 0.0)
    return SC

def sc_dense(P):  # all spans at once with an [N_v^2, N_v] membership mask: O(N_s N_v^3) work
    Ns, Nv = P.shape
    j = torch.arange(Nv)
    s, e = torch.meshgrid(j, j, indexing="ij")
    member = ((j >= s[..., None]) & (j <= e[..., None])).to(P.dtype)  # [Nv, Nv, Nv]
    inside = torch.einsum("sej,ij->se", member, P) / (Ns * member.sum(-1).clamp(min=1))
    nout = (Nv - member.sum(-1))
    outside = torch.einsum("sej,j->se", 1 - member, P.min(0).values) / nout.clamp(min=1)
    return (inside - outside).masked_fill(s > e, float("-inf"))

torch.manual_seed(1)
P = torch.rand(10, 16, dtype=torch.float64) * 2 - 1
ones = lambda n: torch.ones(1, n, dtype=torch.bool)
SC_lib, valid = span_scores(P[None], ones(10), ones(16))
torch.testing.assert_close(SC_lib[0][valid[0]], sc_loop(P)[valid[0]])  # FSAN Eq. 8
torch.testing.assert_close(SC_lib[0][valid[0]], sc_dense(P)[valid[0]])

def clock(f, repeat=3):
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter(); f(); best = min(best, time.perf_counter() - t0)
    return best

rows = []
for Nv in (64, 128):
    P = torch.rand(12, Nv) * 2 - 1
    t_loop = clock(lambda: sc_loop(P), repeat=1)
    t_dense = clock(lambda: sc_dense(P))
    t_prefix = clock(lambda: span_scores(P[None], ones(12), ones(Nv)))
    rows.append({"N_v": Nv, "spans": Nv * (Nv + 1) // 2, "loop (ms)": 1e3 * t_loop, "dense (ms)": 1e3 * t_dense,
                 "prefix sums (ms)": 1e3 * t_prefix, "speed-up vs loop": t_loop / t_prefix,
                 "speed-up vs dense": t_dense / t_prefix})
speed = pd.DataFrame(rows).set_index("N_v")
speed
''')

md(r'''
The Python loop pays interpreter overhead on every span; the dense version is vectorised but
does $O(N_s N_v^3)$ work and builds an $N_v^3$ mask, so its cost grows eightfold when $N_v$
doubles. The prefix sums do two cumulative sums and one $N_v \times N_v$ subtraction.
(Timings are from the machine that ran this page; under load they vary, the ordering does not.)

## Matching: the video-level hinge (Eqs. 6-7)

The matching score of a video and a sentence is the best span score, $S(V,S) = \max_{s,e} SC_{s,e}$
(Eq. 7), and the hinge pushes it above the score of a non-matching sentence $S^-$ by a margin:

$$\mathcal L^t = \max\big(0,\ \delta - S(V,S) + S(V,S^-)\big).$$
$S^-$ is drawn at random from the batch among the queries of **other** videos (queries of the
same video are not negatives). Words that both sentences share are masked out of the map
of $S^-$ (the paper). We mask them out of **both** maps for the hinge; the section on the
paper's problems below shows why.
''')

code(r'''
words = torch.tensor([[5, 6, 7, 8]]); neg_words = torch.tensor([[9, 6, 10, 0]])
shared = shared_token_mask(words, words > 0, neg_words, neg_words > 0)
print("shared tokens of S^-:", shared.tolist())
pos, neg = torch.tensor([0.8, 0.2]), torch.tensor([0.5, -0.5])
by_hand = (torch.clamp(1.0 - pos + neg, min=0)).mean()  # FSAN Eq. 6 with delta = 1
torch.testing.assert_close(matching_loss(pos, neg, 1.0), by_hand)
SCt, vt = span_scores(torch.tensor([[[1.0, 0.0, -1.0]]]), ones(1), ones(3))
assert video_score(SCt).item() == SCt[vt].max().item()  # FSAN Eq. 7
print("L^t =", round(by_hand.item(), 3))
''')

md(r'''
## The inner and outer losses (Eqs. 9-13): as printed, and as we read them

The paper adds two losses on the map, weighted by span confidence $SC_{s,e}$:

$$\mathcal L^i_{s,e} = -\frac1{N_s}\sum_i \sigma\Big(\sum_{j=s}^{e} P_{ij}\Big), \quad
\mathcal L^i = \sum_{s,e} SC_{s,e}\,\mathcal L^i_{s,e}, \qquad
\mathcal L^o_{s,e} = -\frac{\sum_{j\notin[s,e]} \log(\min_i P_{ij})}{N_v-(e-s+1)}, \quad
\mathcal L^o = \sum_{s,e} SC_{s,e}\,\mathcal L^o_{s,e},$$
and $\mathcal L = \lambda_1 \mathcal L^t + \lambda_2 \mathcal L^i + \lambda_3 \mathcal L^o$ with
$\lambda = 1/3$ each (Eq. 13). Read one at a time:

1. **Eq. 9 is well defined and points the right way**: $\sigma$ is defined everywhere and
   minimising $-\sigma(\sum_j P_{ij})$ raises $P$ inside the span, as the text says. Its one
   weakness is practical: $\sigma$ of a *sum* over up to $N_v$ cosines saturates on long spans
   (a span of 10 clips at $P = 0.5$ gives $\sigma(5) = 0.993$ and a gradient of 0.007).
2. **Eq. 11 is broken.** $P$ is a cosine in $[-1, 1]$; $\log(\min_i P_{ij})$ is undefined as soon
   as a clip's weakest word is negative, which is the normal case for an outside clip. And where
   it is defined, *minimising* $-\log(\min P)$ **raises** $\min P$: the printed outer loss
   increases the outside response the text says it suppresses.
3. **The weights $SC_{s,e}$ can be negative.** A negative weight turns "promote" into "suppress"
   (for Eq. 9) and makes a log-loss unbounded below (for any log reading of Eq. 11).

The next cell shows 1, 2 and 3 numerically.
''')

code(r'''
Pp = torch.tensor([[0.6, -0.3, 0.2]], requires_grad=True)  # one word, three outside clips
printed = -torch.log(Pp.min(0).values).mean()
print("printed Eq. 11 with a negative cosine:", printed.item())  # nan
Pq = torch.tensor([[0.6, 0.3, 0.2]], requires_grad=True)
(-torch.log(Pq.min(0).values).mean()).backward()
print("gradient of printed Eq. 11:", Pq.grad.tolist(), "-> a descent step RAISES the outside response")
assert math.isnan(printed.item()) and (Pq.grad < 0).all()
Pi = torch.tensor([[0.2, -0.4], [0.1, 0.3]], requires_grad=True)  # two words, a span of two clips
eq9 = -torch.sigmoid(Pi.sum(1)).mean()  # FSAN Eq. 9 as printed
eq9.backward()
print("gradient of printed Eq. 9:", [[round(g, 3) for g in r] for r in Pi.grad.tolist()],
      "-> a descent step raises P inside: the right direction")
assert (Pi.grad < 0).all() and torch.isfinite(eq9)
print("sigma saturation on a 10-clip span at P = 0.5: gradient", round(torch.sigmoid(torch.tensor(5.0)).item()
      * (1 - torch.sigmoid(torch.tensor(5.0)).item()), 4))
for w in (1.0, -1.0):  # a log-loss with a negative weight has no minimum
    print(f"weight {w:+.0f}: w * -log(p) at p = 1e-3, 1e-6:", [round(w * -math.log(v), 1) for v in (1e-3, 1e-6)])
''')

md(r'''
**Our reading.** Map the cosine to an alignment probability $p_{ij} = (P_{ij} + 1)/2 \in [0, 1]$ and use

$$\mathcal L^i_{s,e} = -\frac1{N_s}\sum_i \log\Big(\frac1{e-s+1}\sum_{j=s}^{e} p_{ij}\Big), \qquad
\mathcal L^o_{s,e} = -\frac{1}{N_v-(e-s+1)}\sum_{j\notin[s,e]} \log\big(1 - \min_i p_{ij}\big),$$
weighted by $w_{s,e} = [SC_{s,e} - \overline{SC}]_+ / n_{\text{spans}}$ with the gradient stopped:
non-negative, zero for a flat (untrained) map and concentrated on the best spans of a confident
one, which is the behaviour the paper describes ("at the beginning the weight varies a little").
The inner loss raises every word's alignment inside the confident spans, as printed Eq. 9 does;
we take the log of the span *mean* rather than $\sigma$ of the sum so that long spans do not
saturate and the two losses have the same form (a choice, not a repair). The outer loss lowers
the weakest word of each outside clip towards "unrelated", the direction of the paper's text. Both are computed for all spans with prefix sums over clips. We check them
against the formulas evaluated span by span, and check the direction of their gradients.
''')

code(r'''
torch.manual_seed(2)
Ns, Nv = 3, 6
P = (torch.rand(1, Ns, Nv, dtype=torch.float64) * 1.6 - 0.8).requires_grad_()
tok, clip = torch.ones(1, Ns, dtype=torch.bool), torch.ones(1, Nv, dtype=torch.bool)
SC, valid = span_scores(P.detach(), tok, clip)
w = span_weights(SC, valid)
p = (P + 1) / 2
Li = Lo = 0.0
for s in range(Nv):
    for e in range(s, Nv):
        Li = Li + w[0, s, e] * -torch.log(p[0, :, s:e + 1].mean(1)).mean()  # our Eq. 9
        out = [j for j in range(Nv) if j < s or j > e]
        if out:
            Lo = Lo + w[0, s, e] * -torch.log(1 - p[0][:, out].min(0).values).mean()  # our Eq. 11
torch.testing.assert_close(inner_loss(P, tok, w), Li)  # FSAN Eqs. 9-10
torch.testing.assert_close(outer_loss(P, tok, clip, w), Lo)  # FSAN Eqs. 11-12
assert (w >= 0).all() and not w.requires_grad
# gradient directions with all the weight on span [2, 3]
w1 = torch.zeros_like(w); w1[0, 2, 3] = 1.0
g_in, = torch.autograd.grad(inner_loss(P, tok, w1), P)
g_out, = torch.autograd.grad(outer_loss(P, tok, clip, w1), P)
assert (g_in[0, :, 2:4] < 0).all()  # descent raises P inside
weakest = P[0].argmin(0)
outside = [0, 1, 4, 5]
assert (g_out[0, weakest[outside], outside] > 0).all()  # descent lowers the weakest word outside
print("inner:", round(Li.item(), 4), " outer:", round(Lo.item(), 4))
''')

code(r'''
model = build("fsan", **bench.model_kwargs(), **SIZES)
tb = strip_labels(next(iter(bench.loader("train", 16))))  # a weak model never sees `moment`
model.train()
out = model(tb)
total, parts = model.loss(tb, out)
lam = model.config.lambdas
torch.testing.assert_close(total.item(), lam[0] * parts["matching"] + lam[1] * parts["inner"] + lam[2] * parts["outer"],
                           rtol=1e-5, atol=1e-6)  # FSAN Eq. 13
print("lambdas", lam, {k: round(v, 4) for k, v in parts.items()})
''')

# ============================================================================ training
md(r'''
## Training

The shared trainer (`wsg.train.Trainer`) strips the temporal labels from every training batch
(FSAN is weakly supervised), evaluates on the **validation** split after each epoch and keeps
the epoch with the best validation R@1, IoU=0.5, ranking spans with the model's decode rule
(`decode="printed"`, chosen on validation in the next section).
''')

code(r'''
set_seed(SEED)
model = build("fsan", **bench.model_kwargs(), **SIZES)
trainer = Trainer(model, TrainConfig(epochs=EPOCHS, lr=LR, seed=SEED))
t0 = time.perf_counter()
history = trainer.fit(bench.loader("train", BATCH, seed=SEED), bench.loader("val", 64))
print(f"{time.perf_counter() - t0:.0f} s in all, {history['train_seconds'].mean():.1f} s per epoch; "
      f"selected epoch {trainer.best_epoch}")
wsg.viz.training_curves(history)
plt.show()
''')

md(r'''
## Decoding: which span score ranks at test time

Training scores spans with a **floor** on the outside term of Eq. 8, $\max(\min_i P_{ij}, 0)$
(`rectify=True`, the section on the paper's problems says why the hinge needs it). Used at test
time too, that floor collapses the answer. On a trained map the weakest word of almost every clip
is negative, inside the event as well as outside (some word of the query is unrelated to any single
clip), so the floored outside term is 0 for nearly every span and $SC$ reduces to the inside
mean, whose maximum is the single clip with the best column mean. Eq. 8 **as printed** keeps the
*relative* weakest responses: an event clip's weakest word is less negative than a background
clip's, so leaving the event out of the outside set lowers the outside mean and the best span
covers the event. The decode rule is a config field (`decode`, see `wsg.models.fsan.DECODE_RULES`);
the paper ranks by $SC$ as printed ("the moment with the highest score $SC_{s,e}$ is selected").
We compare the two rules on the **validation** split with the *same* trained weights, next to
diagnostics of the map itself. (The weights were selected with the default rule, `"printed"`;
the multi-seed study below lets each rule select its own epoch.)
''')

code(r'''
from wsg.models.fsan import DECODE_RULES

val_loader = bench.loader("val", 64)

@torch.no_grad()
def map_diagnostics(m, loader):
    """Column means of P inside / outside the ground truth, the share of clips whose weakest word is
    negative, the share of queries whose best clip lies in the ground truth, the span-weight sum."""
    m.eval()
    rows = []
    for b in loader:
        gt = b["moment"]
        out = m(strip_labels(b), negatives=False)
        n = out["clip_mask"].sum(1)
        centre = (torch.arange(out["P"].shape[2])[None] + 0.5) / n[:, None]
        inside = (centre >= gt[:, :1]) & (centre <= gt[:, 1:]) & out["clip_mask"]
        outside = ~inside & out["clip_mask"]
        tm = out["token_mask"][:, :, None]
        col_mean = (out["P"] * tm).sum(1) / tm.sum(1)
        col_min = out["P"].masked_fill(~tm, float("inf")).amin(1)
        best = col_mean.masked_fill(~out["clip_mask"], -2).argmax(1)
        rows.append(dict(mean_in=col_mean[inside].mean().item(), mean_out=col_mean[outside].mean().item(),
                         neg_min_in=(col_min[inside] < 0).float().mean().item(),
                         neg_min_out=(col_min[outside] < 0).float().mean().item(),
                         best_in=inside[torch.arange(len(best)), best].float().mean().item(),
                         wsum=span_weights(out["SC"], out["valid"]).flatten(1).sum(1).mean().item()))
    d = pd.DataFrame(rows).mean()
    return pd.Series({"column mean of P inside the ground truth": d.mean_in,
                      "column mean of P outside": d.mean_out,
                      "clips inside whose weakest word is negative (%)": 100 * d.neg_min_in,
                      "clips outside whose weakest word is negative (%)": 100 * d.neg_min_out,
                      "queries whose best clip is inside the ground truth (%)": 100 * d.best_in,
                      "span weights per video, sum (Eqs. 10/12)": d.wsum})

def by_rule(m, loader):
    rows, keep = {}, m.config.decode
    try:
        for rule in DECODE_RULES:
            m.config.decode = rule
            pred = predict_all(m, loader, top_k=50)
            r = wsg.metrics.recall_at(pred["moments"], pred["gt"], protocol="2d-tan")
            r["median top-1 length (% of video)"] = 100 * (pred["moments"][:, 0, 1]
                                                         - pred["moments"][:, 0, 0]).median().item()
            rows[f'decode="{rule}"'] = r
    finally:
        m.config.decode = keep
    return pd.DataFrame(rows).T

diag = map_diagnostics(model, val_loader)
print(diag.round(3).to_string())
decode_val = by_rule(model, val_loader)
decode_val.index.name = "validation split, protocol 2d-tan"
decode_val.round(1)
''')

code(r'''
# what this run shows, on validation (one seed; the multi-seed study follows)
printed_row, floored_row = decode_val.loc['decode="printed"'], decode_val.loc['decode="floored"']
assert diag["column mean of P inside the ground truth"] > diag["column mean of P outside"]  # the map is good
assert floored_row["median top-1 length (% of video)"] < printed_row["median top-1 length (% of video)"]
assert printed_row["R@1,IoU=0.5"] > floored_row["R@1,IoU=0.5"]
''')

md(r'''
**Across seeds and presets.** The comparison above is one seed. `scripts/fsan_experiments.py
--study decode` trains 3 seeds on each synthetic preset with the chapter's tiny settings; after
every epoch the same weights are evaluated on validation under each rule, and each rule keeps its
own best epoch. It also records the *swing*: the range of the validation R@1,IoU=0.5 over epochs
3 to the last, which earlier versions of this chapter attributed to unstable training. The
table reads the stored results (`results/fsan_decode.csv`, generated by the script, never typed):
mean ± std over seeds; test numbers were read once, after the choice.
''')

code(r'''
from pathlib import Path

RESULTS = next(p for p in (Path("results"), Path("../results")) if (p / "fsan_decode.csv").exists())
store = pd.read_csv(RESULTS / "fsan_decode.csv")

def mean_std(df, cols, by):
    g = df.groupby(by)[cols]
    out = g.mean().round(1).astype(str) + " ± " + g.std().round(1).astype(str)
    return out.assign(seeds=g.size())

COLS = ["val_R@1,IoU=0.5", "val_R@1,IoU=0.3", "val_mIoU", "swing_range", "epoch", "test_R@1,IoU=0.5", "test_mIoU"]
mean_std(store, COLS, ["preset", "variant", "decode"])
''')

code(r'''
m = store.groupby(["preset", "variant", "decode"])["val_R@1,IoU=0.5"].agg(["mean", "std", "size"])
for preset in ("charades", "activitynet"):
    pr, fl = m.loc[(preset, "weights / n_spans", "printed")], m.loc[(preset, "weights / n_spans", "floored")]
    assert pr["size"] >= 3 and fl["size"] >= 3
    # the validation choice: printed Eq. 8 at inference, by more than the seeds' spread, on both presets
    assert pr["mean"] - fl["mean"] > pr["std"] + fl["std"], (preset, pr, fl)
    # span weights that sum to 1 (8-10x stronger map losses) lose on validation, on both presets
    su = m.loc[(preset, "weights sum to 1", "printed")]
    assert pr["mean"] - su["mean"] > pr["std"] + su["std"], (preset, pr, su)
''')

md(r'''
**The scale of the span weights.** Divided by the number of spans, a video's centred weights sum
to about 0.1 on trained maps (the diagnostics above), so the map losses enter Eq. 13 with an
effective $\lambda_{2,3}$ about ten times below the nominal 1/3. Normalising them to sum to 1
(`weight_norm="sum"`, the "weights sum to 1" rows) is a tenfold larger $\lambda_{2,3}$, and it
loses on validation on both presets by far more than the seed spread: the map losses then
dominate the hinge and the map turns into a pattern that satisfies them (the floored rule, which
reads the map most directly, drops to ~0). We keep `weight_norm="spans"`: the small effective
$\lambda$ is what validation prefers, not an accident we left in.
''')

md(r'''
**Does the epoch-to-epoch swing go away?** Per run of the stored study (default weights), the
mean absolute change of the validation R@1,IoU=0.5 from one epoch to the next (epochs 3 on)
under each rule, next to the same for the share of queries whose best clip lies inside the
ground truth (does the model find the *event*?), and the median top-1 length under each rule.
''')

code(r'''
hist = pd.read_csv(RESULTS / "fsan_decode_history.csv")
CLIPS = {"charades": 32, "activitynet": 64}  # the tiny presets' clip grids
rows = []
for (preset, variant, seed), g in hist[hist["variant"] == "weights / n_spans"].groupby(["preset", "variant", "seed"]):
    g = g.sort_values("epoch").iloc[2:]
    step = lambda col: g[col].diff().abs().mean()
    one_clip = 1 / CLIPS[preset] + 1e-6
    rows.append({"preset": preset, "seed": seed,
                 "|step| R@1 printed": step("val_printed_R@1,IoU=0.5"),
                 "|step| R@1 floored": step("val_floored_R@1,IoU=0.5"),
                 "|step| best clip inside gt": step("val_best_clip_inside_gt"),
                 "best clip inside gt, last epoch (%)": g["val_best_clip_inside_gt"].iloc[-1],
                 "epochs with a one-clip floored top-1 (%)": 100 * (g["val_top1_length_floored"] <= one_clip).mean(),
                 "printed top-1 length, min-max (clips)": f"{g['val_top1_length_printed'].min() * CLIPS[preset]:.0f}"
                                                        f"-{g['val_top1_length_printed'].max() * CLIPS[preset]:.0f}",
                 "span-weight sum per video, mean": g["val_weight_sum_spans"].mean()})
swings = pd.DataFrame(rows).set_index(["preset", "seed"])
swings.round(2)
''')

code(r'''
# the floor collapses the top-1 to one clip at every epoch of every run
assert (swings["epochs with a one-clip floored top-1 (%)"] == 100).all()
# the event is found more steadily than the boundaries: the best-clip hit moves less than R@1
assert (swings["|step| best clip inside gt"] < swings["|step| R@1 printed"]).all()
# ...and the swing of R@1 does NOT go away with the printed rule
assert swings["|step| R@1 printed"].mean() >= swings["|step| R@1 floored"].mean()
''')

md(r'''
So the decode rule and the swing are separate matters. The floored rule answers one clip at
every epoch of every run, while the map finds the event in 64-89 % of validation queries at the
last epoch: that is the collapse, and the printed rule repairs it (about +20 points of R@1,IoU=0.5
on both presets, well outside the seed spread). The epoch-to-epoch swing, on the other hand,
does **not** go away on our data: with the printed rule R@1 still moves by 5-9 points per epoch,
while the share of queries whose best clip lies in the ground truth moves less in every run. What
still swings is the *length* of the printed top-1 (its median over validation ranges over
several clips from one epoch to the next, column "printed top-1 length"): boundaries, not the
event. Selecting the epoch on validation is what keeps a bad epoch out of the test numbers.
''')

md(r'''
## Evaluation

Test split, protocol "2d-tan" (greedy NMS at 0.5 keeping 5 moments; a hit is IoU $>$ m), model
selected on the validation split. The blind baselines rank the same candidate set (all spans of
the clip grid) without looking at the query: uniformly at random, or by how often training
moments fall on each span (the moment-frequency prior).
''')

code(r'''
test = evaluate(model, bench.loader("test", 64), protocol="2d-tan")
blind = wsg.baselines.blind_baselines(bench, split="test", protocol="2d-tan")
table = pd.DataFrame({"FSAN (ours)": test, **{k: blind.loc[k] for k in blind.index}}).T
prior = blind.loc["prior"]
table
''')

md(r'''
**The controls** (issue 10's yardstick): the same model asked another query of the same video
(swapped query), chance among events, and the random and prior rankings over FSAN's *own*
candidates (`model.candidates()`: every span of the clip grid).
''')

code(r'''
# the control table of the evidence standard (this chapter's one seed)
import wsg.controls
controls = wsg.controls.table(model, bench, "test", "2d-tan")
controls.round(1)
''')

md(r'''
**The bar, on three seeds.** One run is an anecdote (this chapter's own run is one seed), so
the book's bar is checked on the results store (`results/tiny-<preset>.csv`, written by
`python -m wsg.experiments fsan --datasets charades activitynet --blind`): FSAN's mean test
R@1,IoU=0.5 over three seeds must beat the best query-blind control (chance among events,
FSAN trained on one-token sentences, the prior over all spans) and its swapped-query R@1 must
be at most a third of its true R@1.
''')

code(r'''
import wsg.experiments

if DATASET in ("charades", "activitynet") and profile.name == "tiny":
    bar, verdict = wsg.experiments.strong_bar("fsan", bench, model.candidates(), dataset=DATASET)
    display(bar.round(1))
    print(wsg.experiments.describe_bar(verdict, "FSAN"))
    assert verdict["beats_blind"] and verdict["words_read"], verdict
else:
    print("the results store holds tiny synthetic runs; for this setting run `python -m wsg.experiments` first")
''')

md(r'''
**The paper's own numbers, on real data** (not comparable with the synthetic table above;
ActivityNet Captions, C3D features, R@1 / R@5 at IoU 0.1 / 0.3 / 0.5, as reported in the paper's
Table 3):
''')

code(r'''
paper = pd.DataFrame({
    "R@1,IoU=0.1": [78.45, 71.48, 38.23], "R@1,IoU=0.3": [55.11, 47.23, 18.64], "R@1,IoU=0.5": [29.43, 29.22, 7.63],
    "R@5,IoU=0.1": [92.59, 90.88, 75.74], "R@5,IoU=0.3": [76.79, 71.45, 52.78], "R@5,IoU=0.5": [63.32, 55.69, 24.49],
}, index=["FSAN (paper)", "SCN (as reported by the paper)", "Random (as reported by the paper)"])
paper.index.name = "paper, ActivityNet Captions (real data)"
paper
''')

# ============================================================================ visualisation
md(r'''
## What the model aligns: the alignment map (the paper's Fig. 3)

For test queries we draw $\mathbf P$ (rows: words, columns: clips) with the ground-truth span
(white) and the top-1 predicted span (red) boxed, like the paper's Fig. 3.
''')

code(r'''
model.eval()
test_batch = next(iter(bench.loader("test", 16)))
with torch.no_grad():
    tout = model(strip_labels(test_batch), negatives=False)
    tmom, tsc = model.predict(strip_labels(test_batch), top_k=5)
N = bench.num_clips

def render(q, ax=None):
    n_words = int(test_batch["words_mask"][q].sum())
    toks = bench.vocab.decode(test_batch["words"][q][:n_words]).split()
    gt = test_batch["moment"][q] * N
    pr = tmom[q, 0] * N
    ax = wsg.viz.heatmap(tout["P"][q, :n_words], ax=ax, xlabel="clip", yticklabels=toks, cmap="magma",
                         boxes=[((gt[0].item(), gt[1].item()), (0, n_words), "ground truth"),
                                ((pr[0].item(), pr[1].item()), (0, n_words), "FSAN top-1")],
                         title=test_batch["sentence"][q], vmin=-1, vmax=1)
    return ax

fig, axes = plt.subplots(2, 2, figsize=(13, 6))
for q, ax in zip(range(4), axes.flat):
    render(q, ax)
plt.tight_layout(); plt.show()
''')

code(r'''
def render_item(i):
    fig, axes = plt.subplots(1, 2, figsize=(13, 2.8), gridspec_kw=dict(width_ratios=[3, 2]))
    render(i, axes[0])
    wsg.viz.timeline(test_batch["moment"][i].tolist(), tmom[i].tolist(), tsc[i].tolist(),
                     curve=tout["attention"][i].mean(0).numpy() if "attention" in tout else None, ax=axes[1],
                     title="top-5 spans (before NMS); grey: words -> clips attention")

wsg.viz.explorer(len(test_batch["sentence"]), render_item)
''')

# ============================================================================ Fig. 4
md(r'''
## mIoU against video length (the paper's Fig. 4), ActivityNet-like preset

The paper reports that FSAN degrades only mildly on longer videos. We train a short run on the
ActivityNet-like synthetic preset (60-240 s videos, 64 clips) and plot each test query's IoU
against the video's duration, with the mIoU per duration bin. (In `tiny` this is a short run:
the absolute level is low; the question is the trend.)
''')

code(r'''
anet = wsg.data.load_synthetic("activitynet", profile)
set_seed(SEED)
anet_model = build("fsan", **anet.model_kwargs(), **SIZES)
ANET_EPOCHS = 4 if tiny else 20
anet_trainer = Trainer(anet_model, TrainConfig(epochs=ANET_EPOCHS, lr=LR, seed=SEED, progress=False))
anet_trainer.fit(anet.loader("train", BATCH, seed=SEED), anet.loader("val", 64))
pred = predict_all(anet_model, anet.loader("test", 64), top_k=5)
iou = wsg.metrics.temporal_iou(pred["moments"][:, 0], pred["gt"]).numpy()
dur = pred["duration"].numpy()
bins = np.linspace(dur.min(), dur.max() + 1e-6, 6)
which = np.clip(np.digitize(dur, bins) - 1, 0, len(bins) - 2)
per_bin = pd.DataFrame({"k": which, "bin": [f"{bins[k]:.0f}-{bins[k + 1]:.0f} s" for k in which], "IoU": iou})
summary = per_bin.sort_values("k").groupby("bin", sort=False)["IoU"].agg(["count", "mean"])
summary = summary.rename(columns={"mean": "mIoU"})
fig, ax = plt.subplots(figsize=(7, 3))
ax.scatter(dur, 100 * iou, s=6, color="tab:blue", alpha=0.4, label="query")
centres = (bins[:-1] + bins[1:]) / 2
means = [100 * iou[which == k].mean() if (which == k).any() else np.nan for k in range(len(centres))]
ax.plot(centres, means, "o-", color="tab:red", label="mIoU per bin")
ax.set_xlabel("video duration (s)"); ax.set_ylabel("IoU of the top-1 (%)"); ax.legend(fontsize=8)
ax.set_title("FSAN on the ActivityNet-like preset: IoU vs video length", fontsize=10)
plt.show()
(summary.assign(mIoU=100 * summary["mIoU"]))
''')

# ============================================================================ ablation
md(r'''
## A reduced Table 4: which parts matter?

The paper's Table 4 removes the losses on the map (Eqs. 9-12), the cross-modal attention, or
the inner-modal attention of the ICIM. We train each variant with the same short schedule and
seed as a fresh full model, and report test numbers (model selected on validation). This is
**one seed**: the seed-to-seed spread of the full model in the stored study above (the ± of the
"printed" rows) is several points of R@1, so one seed cannot separate variants whose
difference is of that size. Read the table as what one short run did, not as a ranking of
the parts.
''')

code(r'''
ABL_EPOCHS = 4 if tiny else 15
variants = {
    "full model": {},
    "w/o SAP losses (lambda = 1, 0, 0)": dict(lambdas=(1.0, 0.0, 0.0)),
    "w/o cross-modal attention": dict(cross_attention=False),
    "w/o inner-modal attention": dict(inner_attention=False),
}
abl = {}
for name, change in variants.items():
    set_seed(SEED)
    m = build("fsan", **bench.model_kwargs(), **{**SIZES, **change})
    Trainer(m, TrainConfig(epochs=ABL_EPOCHS, lr=LR, seed=SEED, progress=False)).fit(
        bench.loader("train", BATCH, seed=SEED), bench.loader("val", 64))
    abl[name] = evaluate(m, bench.loader("test", 64), protocol="2d-tan")
ablation = pd.DataFrame(abl).T
ablation
''')

md(r'''
The same four variants over 3 seeds (`scripts/fsan_experiments.py --study ablation`, stored in
`results/fsan_ablation.csv`; same schedule, each run selected on validation, test read once),
mean ± std:
''')

code(r'''
abl_store = pd.read_csv(RESULTS / "fsan_ablation.csv")
abl_cols = ["val_R@1,IoU=0.5", "test_R@1,IoU=0.3", "test_R@1,IoU=0.5", "test_R@5,IoU=0.5", "test_mIoU"]
abl_ms = mean_std(abl_store, abl_cols, ["variant"]).loc[list(variants)]
abl_ms
''')

code(r'''
a = abl_store.groupby("variant")["val_R@1,IoU=0.5"].agg(["mean", "std", "size"])
full, no_sap = a.loc["full model"], a.loc["w/o SAP losses (lambda = 1, 0, 0)"]
assert (a["size"] >= 3).all()
# at this schedule the map losses (at their effective lambda) cannot be separated from none
assert abs(full["mean"] - no_sap["mean"]) < full["std"] + no_sap["std"]
''')

md(r'''
Over 3 seeds, the full model and the model without the map losses are within noise of each other
at this schedule (on our data the hinge does the localising; the paper's Table 4 loses 3 points of
R@1,IoU=0.5 without them on ActivityNet Captions). Removing either half of the ICIM costs a few
points of mean R@1 in the stored runs, with spreads that overlap those of the full model on at
least one metric: read them as suggestive, not established.
''')

# ============================================================================ discussion
md(r'''
## Where the paper is ambiguous or wrong, and what we chose

- **Eq. 1 scale.** Printed as $\sqrt d$; we use the head width $\sqrt{d/m}$ (the transformer's
  convention, identical to `torch.nn.MultiheadAttention`). Projections have no bias, as printed.
- **Unstated sizes.** Heads, FFN width, language-encoder depth, $d_i$ and the margin $\delta$ are
  not given (our values are in the config docstring and above).
- **Eq. 8, the whole-video span** has an empty outside (0/0): its outside term is 0.
- **Eq. 8 rewards anti-alignment in training.** The outside term counts a *negative* weakest
  response as evidence as strong as a positive one inside, so the hinge on $S(V,S) = \max SC$ can
  be satisfied by anti-alignment (Exercise 2). Trained weakly without a floor, the hinge collapsed
  on our data. For *training* we floor the outside term at 0 (`rectify=True`): a negative cosine
  counts as "unrelated", not as evidence.
- **...but not at inference.** The same floor at test time makes the outside term ~0 on a trained
  map (most clips' weakest word is negative) and the top-1 span collapses to one clip, although
  the map itself is good (section *Decoding*). We rank by Eq. 8 as printed (`decode="printed"`,
  the paper's rule), chosen on the validation split over 3 seeds on both presets
  (`results/fsan_decode.csv`). The epoch-to-epoch swing of the validation curve that an earlier
  version of this chapter put down to unstable training is reported there per rule.
- **Eq. 6, masking shared words only in $P^-$** changes *which* words the two maps contain: the
  positive keeps the frequent function words, the negative keeps only distinctive words. The model
  separated them by text alone (function words aligned with every clip, content words with none),
  a perfect video-level score with a map that ignores the video. We mask the shared words in
  **both** maps for the hinge (`mask_shared_tokens="both"`; `"negative"` is the printed version).
- **Eq. 11** is undefined or points the wrong way as printed, and the weights $SC$ of Eqs. 10/12
  can be negative (shown above). **Eq. 9** as printed is well defined and points the right way; we
  use the log of the span mean instead of $\sigma$ of the sum to avoid saturation on long spans
  and to give both losses one form (a choice we have not compared with the printed Eq. 9). Our
  reading maps $P$ to $p = (P+1)/2$, uses a log-likelihood of the span mean inside and of
  "unrelated" outside, and non-negative, gradient-stopped weights $[SC - \overline{SC}]_+$.
- **The scale of the span weights is an effective $\lambda$.** Divided by the number of spans,
  the centred weights of a video sum to $\overline{[SC - \overline{SC}]_+}$, about 0.02-0.15 over
  training (printed in the *Decoding* section), not 1: the map losses then enter Eq. 13 with an
  effective $\lambda_{2,3}$ roughly ten times below the nominal 1/3. `weight_norm="sum"` makes
  each video's weights sum to 1 (the scale of a softmax); on validation (3 seeds, both presets)
  it loses by far more than the seed spread, so we keep the small effective $\lambda$. A uniform weighting (e.g. a
  softmax of $SC$ at a high temperature) makes the two losses act on *every* span before the
  model knows anything, and on our data they then drove the map to a video-independent pattern
  that satisfies both; the centred weights switch them on only once $SC$ separates spans.
- **Negatives.** "Randomly sampled from the dataset" becomes a random query of another video
  in the same batch.
- **Inference.** Spans ranked by Eq. 8 as printed (`decode="printed"`), top-$k$ handed to the
  protocol's NMS; `model.candidates()` lists the spans ranked.

## Exercises

```{exercise} The cost of Eq. 8
:label: fsan-ex1
Count the additions needed by the printed Eq. 8 for all spans, and by the prefix-sum version.
At $N_s = 12$, for which $N_v$ does the printed version need a million times more?
```

```{solution} fsan-ex1
:class: dropdown
Printed: each span sums $N_s(e-s+1)$ entries inside and $N_v-(e-s+1)$ minima outside, about
$N_s N_v^3/6$ additions in all. Prefix sums: $O(N_s N_v)$ for the column statistics and their
cumulative sums, then a constant per span, about $N_s N_v + N_v^2/2$ in all. For $N_v \gg N_s$
the ratio is about $N_s N_v / 3$, i.e. $4 N_v$ at $N_s = 12$: a million-fold only near
$N_v \approx 2.5 \cdot 10^5$. The measured speed-ups above are larger than this count at small
$N_v$ because the loop also pays Python overhead per span; the asymptotic point is cubic against
quadratic.
```

```{exercise} Anti-detectors
:label: fsan-ex2
Build a toy map with one word and 8 clips where the word is $-1$ on clips 0-2 (its true event)
and $+0.5$ elsewhere. Which span does Eq. 8 choose as printed, and which with the outside term
floored at 0 (`span_scores(..., outside_floor=0.0)`)?
```

````{solution} fsan-ex2
:class: dropdown
Both rules choose the complement $[3, 7]$; what differs is its **score**. As printed,
$SC_{3,7} = 0.5 - (-1) = 1.5$: the anti-aligned clips 0-2, left outside, add a full point, so
absence is rewarded as evidence. With the floor, the floored minima are $(0, 0, 0, 0.5, \dots, 0.5)$:
$SC_{3,7} = 0.5 - 0 = 0.5$, and there is no tie, since any shorter span leaves some of clips 3-7
(floored minimum 0.5) outside, e.g. $SC_{3,6} = 0.5 - 0.5/4 = 0.375$. A map that is $+0.5$ on
*every* clip also scores 0.5 (the whole-video span), so under the floor anti-alignment earns the
hinge of Eq. 6 nothing over a map that ignores the video, while as printed it earns a whole point.
That is why training keeps the floor.

```python
anti = torch.tensor([[[-1.0] * 3 + [0.5] * 5]])
one, eight = torch.ones(1, 1, dtype=torch.bool), torch.ones(1, 8, dtype=torch.bool)
for floor in (None, 0.0):
    SC, _ = span_scores(anti, one, eight, outside_floor=floor)
    k = SC.flatten().argmax().item()
    print(floor, "best span", divmod(k, 8), "score", SC.max().item(), "SC[3,6] =", round(SC[0, 3, 6].item(), 3))
# None -> best (3, 7), 1.5 ; 0.0 -> best (3, 7), 0.5, SC[3,6] = 0.375
```
````

```{exercise} Shared-word masking
:label: fsan-ex3
Train a tiny model with `mask_shared_tokens="negative"` for three epochs and look at its
alignment map for a few test queries. Which words are aligned with every clip?
```

```{solution} fsan-ex3
:class: dropdown
Typically the frequent function words ("the", "a", "person") get $P \approx +1$ everywhere and
the content words $P \approx -1$ everywhere: the positive map always contains the function words,
the masked negative map never does, so the hinge is satisfied without looking at the video.
```

```{exercise} The floor at inference
:label: fsan-ex4
A query of two words over 6 clips; the event is clips 2-3. Word 1 ("open") is $+0.8$ on the
event and $-0.2$ elsewhere; word 2 ("door") is $-0.1$ on the event and $-0.6$ elsewhere. Which
span does Eq. 8 pick as printed, and which with the outside floor at 0? Why does the floor
collapse the answer to one clip on a trained map, and would the argmax clip still be inside the
event?
```

````{solution} fsan-ex4
:class: dropdown
Column means: $0.35$ on clips 2-3, $-0.4$ elsewhere; column minima: $-0.1$ on the event, $-0.6$
elsewhere. *As printed*, $SC_{2,3} = 0.35 - (-0.6) = 0.95$, while $SC_{2,2} = 0.35 - (-0.1 - 2.4)/5
= 0.35 + 0.5 = 0.85$ (leaving the event clip 3 outside raises the outside mean) and
$SC_{1,3} = (0.7 - 0.4)/3 + 0.6 = 0.70$: the event $[2, 3]$ wins. *With the floor*, every minimum is
negative, so the outside term is 0 for every span and $SC$ is the inside mean: $SC_{2,2} = SC_{3,3}
= SC_{2,3} = 0.35$, a three-way tie, and on a real map
(never exactly equal columns) the single best clip wins. The argmax clip is inside the event,
so the *event* is found, but a one-clip span of a 2-clip event has IoU 0.5 at best and much less
on longer events: R@1 at IoU 0.5 collapses although the map is right.

```python
P = torch.tensor([[[-0.2, -0.2, 0.8, 0.8, -0.2, -0.2], [-0.6, -0.6, -0.1, -0.1, -0.6, -0.6]]])
for floor in (None, 0.0):
    SC, _ = span_scores(P, torch.ones(1, 2, dtype=torch.bool), torch.ones(1, 6, dtype=torch.bool), floor)
    print(floor, divmod(SC.flatten().argmax().item(), 6), round(SC.max().item(), 3))
# None -> (2, 3) 0.95 ; 0.0 -> (2, 2) 0.35 (tied with (2, 3) and (3, 3))
```
````

```{exercise} The scale of the span weights
:label: fsan-ex5
With $w_{s,e} = [SC_{s,e} - \overline{SC}]_+ / n_{\text{spans}}$, what do a video's weights sum
to? Compute it for a map of 32 clips where $SC$ is $1$ on the 10 spans around the event and $0$ on
the other 518 spans. What does that do to $\lambda_2, \lambda_3$ of Eq. 13, and how would you decide
whether to normalise the weights to sum to 1?
```

````{solution} fsan-ex5
:class: dropdown
They sum to the mean of $[SC - \overline{SC}]_+$ over spans. Here $n = 528$, $\overline{SC} = 10/528
= 0.019$, and only the 10 event spans are above the mean: $\sum w = 10 \cdot 0.981 / 528 = 0.019$.
The map losses therefore enter Eq. 13 about 50 times weaker than their nominal $\lambda = 1/3$
(on our trained maps the sum is ~0.02-0.15, printed in the *Decoding* section). Normalising them
to sum to 1 (`weight_norm="sum"`) is the same as multiplying $\lambda_{2,3}$ by $1/\sum w$,
a change of hyper-parameter, not a repair: decide it like one, on the validation split over
several seeds (the stored study compares the two).

```python
SC = torch.zeros(1, 32, 32).masked_fill(~torch.ones(32, 32, dtype=torch.bool).triu(), float("-inf"))
event = [(s, e) for s in range(10, 14) for e in range(s, 14)][:10]
for s_, e_ in event:
    SC[0, s_, e_] = 1.0
valid = torch.isfinite(SC)
print(span_weights(SC, valid).sum().item(), span_weights(SC, valid, norm="sum").sum().item())  # 0.0186, 1.0
```
````

## Summary

FSAN replaces candidate moments by a token-by-clip alignment map and scores all
$O(N_v^2)$ spans from it in $O(N_s N_v + N_v^2)$ time with prefix sums. Trained weakly with a
video-level hinge, its score function and its map losses admit shortcuts that the paper does not
discuss: anti-alignment outside the span, a text-only separation created by masking shared words
on one side, and span-agnostic map losses. Training therefore floors the outside term of Eq. 8,
but inference must not: the floor collapses the top-1 to one clip of a correctly found event,
and Eq. 8 as printed, the paper's own decode rule, is what validation chooses. Only Eq. 11 of the
map losses is broken as printed; the scale of the span weights is an effective $\lambda$ and is
chosen like one. The chapter implements the method with documented repairs, measures it
against blind baselines and controls under a stated protocol, and reports the ablations as they
came out.

## References

FSAN {cite}`fsan2021`; the transformer {cite}`transformer2017`; GloVe {cite}`glove2014`; C3D
{cite}`c3d2015`; ActivityNet Captions {cite}`anetcaptions2017`, DiDeMo {cite}`didemo2017`; SCN
{cite}`scn2020`, WSLLN {cite}`wslln2019`, TGA {cite}`tga2019`, VLANet {cite}`vlanet2020`; the
evaluation protocol of 2D-TAN {cite}`2dtan2020`.
''')


if __name__ == "__main__":
    chapter.write()
