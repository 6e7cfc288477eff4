"""Builder of Chapter 2, ``notebooks/02_marn.ipynb`` (MARN).

The notebook is generated from this script and stored without outputs, so the chapter
can be reviewed and diffed as plain Python. Regenerate it with::

    python notebooks/src/02_marn.py
"""
from __future__ import annotations

from nbbuild import Chapter

chapter = Chapter("02_marn.ipynb", "ch2")
md, code = chapter.md, chapter.code

# ============================================================================ set-up

md(r'''
# MARN: multi-level attentional reconstruction

MARN {cite}`marn2020` learns to ground a query from (video, query) pairs alone, with
one idea: **attentional reconstruction**. Every candidate moment (proposal) of the
video gets an attention weight that depends on the query; the attention-weighted sum
of the proposals' *visual* features must be good enough for a decoder to rebuild the
query word by word. If the decoder can only succeed when the attention sits on the
part of the video the query describes, then minimising the reconstruction loss
teaches the attention to find that part, and at test time the proposals are simply
ranked by their attention. Training and inference use the very same scores, which
the authors stress as the difference from methods that score frames in training and
turn frame scores into moments by a heuristic at test time.

Three modules make this work, and a fourth refines it:

1. **Proposal module** (Eqs. 1-5): a Conv1d reduces the clip features; a fixed
   *sampling matrix*, borrowed from BMN {cite}`bmn2019`, reads every proposal of a
   start x scale map at $N$ points by linear interpolation, in one matrix product; a
   Conv3d summarises the $N$ points into one feature per proposal.
2. **Attention module** (Eqs. 6-8): each proposal feature is concatenated with the
   query feature of a GRU {cite}`gru2014`; two 2D convolutions over the map, the
   second with a 3 x 3 kernel so neighbouring proposals inform each other, give one
   score per proposal and a softmax over the map gives the attention.
3. **Reconstruction module** (Eqs. 9-10): an LSTM {cite}`lstm1997` decoder rebuilds
   the query from the attended feature, with teacher forcing.
4. **Multi-level extension** (Eqs. 11-15): the same with single clips instead of
   proposals; it shares the Conv3d and the decoder, adds its own loss, and at test
   time adds its attention at each proposal's centre to the proposal's score.

The figure shows the pipeline with the paper's equation numbers. The chapter then
derives every box and checks it against `wsg`, trains MARN on the synthetic benchmark,
evaluates it honestly next to blind baselines, looks at the attention maps and
reproduces the paper's ablations in reduced form.
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
import torch.nn.functional as F
from matplotlib.patches import FancyBboxPatch

import wsg
import wsg.baselines
import wsg.data
import wsg.recipes
import wsg.metrics
import wsg.proposals
import wsg.viz
from wsg.models import build, strip_labels
from wsg.models.marn import (PAPER_CHARADES_SCALES, AttentionModule, attend, caption_loss, decoder_io,
                             refine_scores, scales_from_lengths)
from wsg.train import Trainer, TrainConfig, evaluate, predict_all, set_seed

pd.set_option("display.precision", 1)
pd.set_option("display.width", 120)
profile = wsg.get_profile(PROFILE)
RECIPE = wsg.recipes.get("marn", DATASET, profile)  # every hyper-parameter, with its source
if profile.device == "cpu":
    # MARN's tensors are small: one CPU thread avoids the synchronisation cost of several
    # on a busy two-core machine
    torch.set_num_threads(1)
print(wsg.describe_environment(profile))
''')


code(r'''
def box(ax, x, y, w, h, text, color):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02", fc=color, ec="0.3"))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8)


def arrow(ax, x0, y0, x1, y1, text=""):
    ax.annotate("", (x1, y1), (x0, y0), arrowprops=dict(arrowstyle="->", color="0.3"))
    if text:
        ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.08, text, fontsize=7, ha="center")


fig, ax = plt.subplots(figsize=(12, 4.2))
ax.set_xlim(0, 12.2)
ax.set_ylim(0, 4.2)
ax.axis("off")
V, P, A, R = "#e9f5f2", "#e8ecf8", "#fdf0e1", "#f6e3e3"
box(ax, 0.05, 2.9, 1.4, 0.8, "clip features\n$F_v$ [T, $d_v$]", V)
box(ax, 1.75, 2.9, 1.5, 0.8, "Conv1d, k=3\n$d_v \\to d_v/r$ (Eq. 1)", V)
box(ax, 3.55, 2.9, 1.9, 0.8, "sampling matrix W\n[T, S, N, T] (Eqs. 2, 4, 5)", V)
box(ax, 5.75, 2.9, 1.7, 0.8, "Conv3d (N,1,1)\n$F_{vp}$ [T, S, $d_{vp}$] (Eq. 3)", V)
box(ax, 7.75, 2.9, 2.0, 0.8, "concat $F_q$; Conv2d, ReLU,\nConv2d 3x3; softmax (6-7)", P)
box(ax, 10.05, 2.9, 2.0, 0.8, "$F_p^{global} = \\sum Att_p F_{vp}$\n(Eq. 8)", P)
box(ax, 0.05, 0.3, 1.4, 0.8, "query words", A)
box(ax, 1.75, 0.3, 1.5, 0.8, "GRU\n$F_q$", A)
box(ax, 3.55, 1.55, 1.9, 0.8, "scale-1 sampling\n$W_c$ [T, 1, N, T]", V)
box(ax, 5.75, 1.55, 1.7, 0.8, "shared Conv3d\n$F_{vc}$ [T, $d_{vp}$]", V)
box(ax, 7.75, 1.55, 2.0, 0.8, "clip attention $Att_c$\n(Eq. 11)", P)
box(ax, 10.05, 1.55, 2.0, 0.8, "$F_c^{global}$ (Eq. 12)", P)
box(ax, 7.75, 0.2, 2.2, 0.8, "shared LSTM decoder (Eq. 9)\n$L = L_p + \\lambda L_c$ (10, 13, 14)", R)
box(ax, 10.25, 0.2, 1.85, 0.8, "test: rank by\n$Att_p + \\epsilon Att_c$ (15)", R)
arrow(ax, 1.45, 3.3, 1.75, 3.3)
arrow(ax, 3.25, 3.3, 3.55, 3.3)
arrow(ax, 5.45, 3.3, 5.75, 3.3)
arrow(ax, 7.45, 3.3, 7.75, 3.3)
arrow(ax, 9.75, 3.3, 10.05, 3.3)
arrow(ax, 3.25, 3.05, 3.55, 2.1)
arrow(ax, 5.45, 1.95, 5.75, 1.95)
arrow(ax, 7.45, 1.95, 7.75, 1.95)
arrow(ax, 9.75, 1.95, 10.05, 1.95)
arrow(ax, 1.45, 0.7, 1.75, 0.7)
arrow(ax, 3.25, 0.7, 7.9, 2.9)
ax.text(4.6, 1.25, "$F_q$ (tiled)", fontsize=7, rotation=22)
arrow(ax, 3.25, 0.6, 7.9, 1.55)
arrow(ax, 10.0, 2.9, 9.3, 1.0)
arrow(ax, 10.3, 1.55, 9.7, 1.0)
arrow(ax, 1.45, 0.45, 7.75, 0.45, "teacher forcing: <bos> w1 .. wL")
ax.set_title("MARN: the pipeline (equation numbers of the paper)", fontsize=10)
plt.show()
''', tags=["hide-input"])

# ============================================================================ data

md(r'''
## Data, sizes and the scale set

The chapter runs on the Charades-like synthetic benchmark of the book (Chapter 1):
every video holds two to four events that share a verb or an object, each described
by one query, so the words must be read to find the right event. Clip features are
resampled to $T = 32$ clips per video, the paper's Charades-STA setting (the
ActivityNet-like preset, `DATASET = "activitynet"`, uses 64).

**Scales.** The paper generates "6-scale proposals in the range of [6, 12]" on
Charades-STA with $T = 32$. Six integer scales in $[6, 12]$ starting at 6 are
$6, 7, \dots, 11$, Python's `range(6, 12)`, and that is how we read it (evenly spaced
non-integer lengths $6, 7.2, \dots, 12$ would not end on clip boundaries); it is the
default of `MARNConfig.scales`. In units of the video this is $19\,\%$ to $34\,\%$ of
its length, around the mean Charades-STA moment (8 s of 30 s, $27\,\%$). The scale set
is a property of the data, not of the method: the paper changes it for ActivityNet
(64 scales of 128 clips). Moments of the synthetic benchmark are spread more widely
than $[6, 11]$ clips, as the histogram below shows. We take every integer scale from
the **25th to the 95th percentile** of the training moments' lengths
(`wsg.models.marn.scales_from_lengths`, the rule the synthetic recipes use). Like the
paper's range, which sits around the mean Charades-STA moment, this uses the
*lengths* of the training labels (a dataset statistic, the same information the moment
prior below is built on), never their positions or their queries.

The rule was chosen on the **validation** split, by training MARN with three seeds
per candidate rule, and never by looking at the test split. The candidates were the
paper's range (19-34 % of the video), every scale from the 5th to the 95th percentile,
and from the 25th to the 95th. Why would the 5th percentile hurt although its map
contains more of the short moments? Reconstruction rewards *pure* visual features,
and a short proposal lying inside an event is purer than one covering it, so very
short scales attract the attention without being good answers (see the visualisation
section). The first table compares what each map *allows*: the best IoU any proposal
reaches with each validation moment (an upper bound for every ranking) and the moment
prior restricted to the map. What MARN *learns* with each map is measured after the
training section ("Seeds, budget and the scale set").
''')

code(r'''
bench = wsg.data.load_benchmark(DATASET, DATA_ROOT, FEATURES, profile, num_clips=RECIPE["num_clips"])
T = bench.num_clips
train_len = (bench.train_moments()[:, 1] - bench.train_moments()[:, 0]) * T  # lengths in clips
q05, q25, q50, q95 = torch.quantile(train_len, torch.tensor([0.05, 0.25, 0.5, 0.95])).tolist()
SCALES = wsg.recipes.model_config(RECIPE, bench)["scales"]  # synthetic: 25th..95th percentile, as below
print(bench.name, {split: len(df) for split, df in bench.splits.items()}, "queries; T =", T)
print(f"training moment lengths (clips): 5% {q05:.1f}, 25% {q25:.1f}, median {q50:.1f}, 95% {q95:.1f}")
print("paper's scales:", PAPER_CHARADES_SCALES, " ours:", SCALES)

fig, ax = plt.subplots(figsize=(7, 2.4))
ax.hist(train_len.numpy(), bins=np.arange(0, T + 1, 1), color="0.7", label="training moments")
ax.axvspan(min(PAPER_CHARADES_SCALES), max(PAPER_CHARADES_SCALES), color="tab:orange", alpha=0.25,
           label="paper: 6..11 clips of 32")
ax.axvspan(min(SCALES), max(SCALES), fc="none", ec="tab:blue", lw=2, label=f"ours: {min(SCALES)}..{max(SCALES)}")
ax.set_xlabel("moment length (clips)")
ax.set_ylabel("count")
ax.legend(fontsize=7)
plt.show()

val_gt = bench.moments("val")
paper_T = tuple(range(round(6 * T / 32), round(11 * T / 32) + 1))  # the paper's 19-34 % of the video
q05_95 = scales_from_lengths(bench.train_moments(), T, 0.05, 0.95)
rows = {}
for name, scales in [(f"paper {min(paper_T)}..{max(paper_T)}", paper_T),
                     (f"5th-95th percentile {min(q05_95)}..{max(q05_95)}", q05_95),
                     (f"ours (25th-95th) {min(SCALES)}..{max(SCALES)}", SCALES)]:
    pm = wsg.proposals.proposal_map(T, scales)
    cands = pm.moments[pm.valid]
    best = wsg.metrics.temporal_iou(val_gt[:, None], cands[None]).max(1).values
    prior = wsg.baselines.MomentPrior().fit(bench.train_moments(), cands)
    r = wsg.metrics.recall_at(prior.rank(len(val_gt)), val_gt, protocol="2d-tan")
    rows[name] = {"proposals": len(cands), "best IoU > 0.5 (%)": 100 * (best > 0.5).float().mean().item(),
                  "best IoU > 0.7 (%)": 100 * (best > 0.7).float().mean().item(),
                  "prior R@1,IoU=0.5": r["R@1,IoU=0.5"], "prior R@5,IoU=0.5": r["R@5,IoU=0.5"]}
maps = pd.DataFrame(rows).T
maps.index.name = "validation split"
display(maps)
''')

md(r'''
All three maps can represent almost every validation moment (the upper bound on R@1
at IoU 0.5 is above 95 %); ours is more precise at IoU 0.7 than the paper's, at the
price of more proposals to choose from.

**Sizes.** The paper reduces 4096-d C3D features by $r = 8$ and gives no other width.
In the `tiny` profile (CPU) we use $r = 4$ on our 128-d features (32 channels) and
widths of 64 for the proposal features, the attention, the GRU, the word embeddings
and the LSTM; the `full` profile uses $r = 2$, widths of 256 and 300-d word vectors
(the width of GloVe {cite}`glove2014`; the synthetic world has no GloVe vectors, so
they are learned). $N = 4$ sampling points, as in the paper.
''')

code(r'''
LR, BATCH = RECIPE["lr"], RECIPE["batch_size"]
EPOCHS = EPOCHS or RECIPE["epochs"]
CONFIG = wsg.recipes.model_config(RECIPE, bench, scales=SCALES)  # data fields + the recipe's model settings
EPSILON = CONFIG["epsilon"]  # the paper's eps: 0.1 on Charades-STA, 0.3 on ActivityNet Captions
WIDTHS = {k: CONFIG[k] for k in ("reduction", "proposal_dim", "attention_dim", "query_dim", "word_dim", "decoder_dim")}
display(wsg.recipes.table(RECIPE))
print("config:", CONFIG, "| lr:", LR, "| epochs:", EPOCHS)

toy_batch = strip_labels(next(iter(bench.loader("train", batch_size=4, seed=SEED))))
torch.manual_seed(SEED)
toy = build("marn", **{**CONFIG, "reduction": 8, "proposal_dim": 8, "attention_dim": 8, "query_dim": 8,
                       "word_dim": 8, "decoder_dim": 8})
print("toy batch:", {k: tuple(v.shape) for k, v in toy_batch.items() if torch.is_tensor(v)})
print("queries:", toy_batch["sentence"])
''')

# ============================================================================ Eq. 1

md(r'''
## The proposal module

### Reducing the clip features (Eq. 1)

A 1D convolution with kernel 3 maps each clip's feature and its two neighbours to
$d_v / r$ channels,

$$
\hat F_v = \operatorname{Conv1d}(F_v) \in \mathbb{R}^{T \times d_v / r},
$$

so that the sampling below, whose cost grows with the channel count, runs on a thin
tensor, and so that every reduced clip already sees a little temporal context. We put
a ReLU after it, as BMN does. Padded clips (when videos of different lengths share a
batch) are zeroed before the convolution, so they act exactly like its zero padding.
''')

code(r'''
reduced = toy.proposals.reduce(toy_batch["video"], toy_batch["video_mask"])
print("F_v:", tuple(toy_batch["video"].shape), "-> F_v hat:", tuple(reduced.shape))
conv = toy.proposals.conv1d
x = F.pad(toy_batch["video"], (0, 0, 1, 1))  # zero clip on each side
by_hand = torch.relu(conv.bias + sum(x[:, k:k + T] @ conv.weight[:, :, k].T for k in range(3)))
torch.testing.assert_close(reduced, by_hand)  # MARN Eq. 1
''')

# ============================================================================ Eqs. 2, 4, 5

md(r'''
### The sampling matrix (Eqs. 2, 4, 5)

Proposal $(t, k)$ of the map starts at clip $t$ and lasts $s_k$ clips. It is read at
$N$ points $t_n$, spread evenly over it, and the feature at a non-integer point is
the linear interpolation of its two neighbouring clips:

$$
W_{t,k,n}[i] = \begin{cases} 1 - \operatorname{dec}(t_n) & i = \lfloor t_n \rfloor \\
\operatorname{dec}(t_n) & i = \lfloor t_n \rfloor + 1 \\ 0 & \text{otherwise} \end{cases}
\qquad (\text{Eq. 5})
$$

with $\operatorname{dec}$ the fractional part. Stacking these weight vectors gives a
fixed tensor $W \in \mathbb{R}^{T \times S \times N \times T}$, which the paper also
writes as a matrix $W \in \mathbb{R}^{(T S) \times (N T)}$ (Eq. 4): one row block per
cell of the $T \times S$ proposal map. Sampling every proposal of every video in a
batch is then a single product (Eq. 2),

$$
F'_v = W \otimes \hat F_v \in \mathbb{R}^{T \times S \times N \times d_v / r}.
$$

Where exactly do the $N$ points sit? BMN's code has two conventions in circulation.
We use `"inclusive"`: $t_n = t + n\,\frac{s_k - 1}{N - 1}$, from the first to the last
clip of the proposal (clip $i$'s feature sits at position $i$). The other, `"bins"`,
cuts the proposal into $N$ bins and takes their centres. Proposals that run past the
end of the video ($t + s_k > T$) get all-zero weights and are masked everywhere
downstream. The matrix lives in `wsg.proposals.sampling_matrix`; the product in
`wsg.proposals.apply_sampling` (one `einsum`). Below: the full $(T S) \times (N T)$
matrix of a small example and one proposal's $N \times T$ block, then a check against
direct interpolation of every channel at every point.
''')

code(r'''
T_toy, scales_toy, N = 12, (2, 4, 6), 4
W_toy = wsg.proposals.sampling_matrix(T_toy, scales_toy, N)  # [T, S, N, T]
print("W:", tuple(W_toy.shape), "-> as a matrix (Eq. 4):", (T_toy * len(scales_toy), N * T_toy))

fig, axes = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw=dict(width_ratios=[1.6, 1]))
ax = axes[0]
ax.imshow(W_toy.permute(1, 0, 2, 3).reshape(len(scales_toy) * T_toy, N * T_toy), cmap="Blues", aspect="auto")
ax.set_xlabel("(point n, clip i): N x T columns")
ax.set_ylabel("(scale k, start t): S x T rows")
for k in range(1, len(scales_toy)):
    ax.axhline(k * T_toy - 0.5, color="0.5", lw=0.6)
for n in range(1, N):
    ax.axvline(n * T_toy - 0.5, color="0.5", lw=0.6)
ax.set_title("sampling matrix W (rows grouped by scale, columns by point)", fontsize=9)
t0, k0 = 3, 2  # proposal starting at clip 3, 6 clips long
ax = axes[1]
ax.imshow(W_toy[t0, k0], cmap="Blues", aspect="auto", vmin=0, vmax=1)
for n in range(N):
    for i in range(T_toy):
        if W_toy[t0, k0, n, i] > 0:
            ax.text(i, n, f"{W_toy[t0, k0, n, i]:.2f}", ha="center", va="center", fontsize=8)
ax.set_xlabel("clip i")
ax.set_ylabel("point n")
ax.set_yticks(range(N))
ax.set_xticks(range(T_toy))
ax.set_title(f"proposal t={t0}, s={scales_toy[k0]}: points at "
             f"{np.linspace(t0, t0 + scales_toy[k0] - 1, N).round(2).tolist()}",
             fontsize=9)
plt.tight_layout()
plt.show()

# check against direct interpolation (np.interp) of every channel at every point
feat = torch.randn(2, T_toy, 5)
sampled = wsg.proposals.apply_sampling(feat, W_toy)  # [B, C, N, T, S]
direct = torch.zeros_like(sampled)
for t in range(T_toy):
    for k, s in enumerate(scales_toy):
        if t + s <= T_toy:
            pts = np.linspace(t, t + s - 1, N)
            for b in range(2):
                for c in range(5):
                    direct[b, c, :, t, k] = torch.from_numpy(np.interp(pts, np.arange(T_toy), feat[b, :, c].numpy()))
torch.testing.assert_close(sampled, direct)  # MARN Eqs. 2, 4, 5
print("sampled features:", tuple(sampled.shape), "= direct interpolation; proposals past the end are zero:",
      bool(sampled[..., T_toy - 1, 1].abs().max() == 0))
''')

md(r'''
**Memory.** $W$ is dense: $T \cdot S \cdot N \cdot T$ numbers. At the paper's
Charades setting ($32 \times 6 \times 4 \times 32$) that is nothing, but at its
ActivityNet setting, $W \in \mathbb{R}^{128 \times 64 \times 4 \times 128}$ (we take
the 64 scales to be 1..64 clips; only their number matters here), it is
4.2 million floats, **16 MiB** in float32, almost all zeros (each row has at most two
non-zeros). The matrix product that applies it costs $B \cdot C \cdot N \cdot T \cdot S
\cdot T$ multiply-adds per batch: the price of doing the sampling with one dense
kernel call. Storing only each point's two clip indices and weights (a gather) would
need $T \cdot S \cdot N \cdot 2$ pairs, 64 times fewer numbers at $T = 128$. The
ActivityNet map also uses sparse starts: for scale $s$, only every
$\operatorname{round}(s/4)$-th start (`stride_fraction=0.25`).
''')

code(r'''
nbytes = wsg.proposals.sampling_matrix_nbytes(128, 64, 4)
t_build = time.perf_counter()
W_anet = wsg.proposals.sampling_matrix(128, list(range(1, 65)), 4, stride_fraction=0.25)
t_build = time.perf_counter() - t_build
assert W_anet.element_size() * W_anet.nelement() == nbytes == 16 * 2**20
valid_anet = wsg.proposals.proposal_map(128, list(range(1, 65)), 0.25).valid
print(f"W at T=128, S=64, N=4: {tuple(W_anet.shape)}, {nbytes / 2**20:.0f} MiB float32 "
      f"(built in {t_build:.2f} s); non-zeros: {100 * (W_anet != 0).float().mean():.2f} %")
print(f"valid proposals: dense stride {int(wsg.proposals.proposal_map(128, list(range(1, 65))).valid.sum())}, "
      f"sparse stride s/4 {int(valid_anet.sum())} of {128 * 64} cells")
del W_anet

fig, axes = plt.subplots(1, 2, figsize=(11, 2.6))
wsg.viz.heatmap(wsg.proposals.proposal_map(T, SCALES).valid.T.float(), ax=axes[0], xlabel="start clip t",
                ylabel="scale index k", title=f"our map: T={T}, scales {min(SCALES)}..{max(SCALES)} (valid cells)",
                cmap="Greys", colorbar=False, yticklabels=list(SCALES))
wsg.viz.heatmap(valid_anet.T.float(), ax=axes[1], xlabel="start clip t", ylabel="scale (clips)",
                title="ActivityNet-style: T=128, 64 scales, stride s/4", cmap="Greys", colorbar=False,
                xticklabels=16, yticklabels=8)
plt.tight_layout()
plt.show()
''')

# ============================================================================ Eq. 3

md(r'''
### Summarising each proposal (Eq. 3)

After permuting $F'_v$ to channels $\times\, N \times T \times S$, a 3D convolution with
kernel $(N \times 1 \times 1)$ collapses the point axis:

$$
F_{vp} = \operatorname{Conv3d}(F'_v) \in \mathbb{R}^{T \times S \times d_{vp}} .
$$

Its kernel covers all $N$ points of one proposal and nothing else, so it is a linear
map of the concatenated point features, the same for every proposal: unlike an
average, it can tell the beginning of a proposal from its end. (We apply it as an
`einsum` on the Conv3d's own weights, which gives the same numbers faster on a CPU;
the check below compares with `F.conv3d`.) The clip branch goes through the same
sampling machinery with a single scale of one clip, and the *same* Conv3d; with
`"inclusive"` points, all $N$ points of a one-clip proposal sit on the clip itself.
''')

code(r'''
out = toy.proposals(toy_batch["video"], toy_batch["video_mask"])
W_model, _ = toy.proposals.operators(T, torch.device("cpu"))  # [T, S + 1, N, T]: proposals + the clip column
sampled = wsg.proposals.apply_sampling(reduced, W_model)
conv3d = toy.proposals.conv3d
reference = torch.relu(F.conv3d(sampled, conv3d.weight, conv3d.bias))[:, :, 0].permute(0, 2, 3, 1)
torch.testing.assert_close(toy.proposals.summarise(sampled), reference)  # MARN Eq. 3
torch.testing.assert_close(out["F_vp"], reference[:, :, :-1] * out["valid"][..., None])
print("F_v' (sampled):", tuple(sampled.shape), " F_vp:", tuple(out["F_vp"].shape), " F_vc:", tuple(out["F_vc"].shape))
print("valid cells per video:", out["valid"].flatten(1).sum(1).tolist(), "of", T * len(SCALES))
''')

# ============================================================================ Eqs. 6-8

md(r'''
## The attention module (Eqs. 6-8)

Each proposal feature is concatenated with the query feature $F_q$ (the GRU's last
state), copied to every cell of the map (Eq. 6), and two 2D convolutions turn the
result into one score per cell, normalised by a softmax over the map (Eq. 7):

$$
F_a = \operatorname{Concat}\big(F_{vp}, \operatorname{Tile}(F_q)\big), \qquad
Att_p = \operatorname{Softmax}\Big(\operatorname{Conv2d}_2\big(\operatorname{ReLU}(\operatorname{Conv2d}_1(F_a))\big)\Big).
$$

$\operatorname{Conv2d}_1$ fuses each cell ($1 \times 1$, to $d_a$ channels);
$\operatorname{Conv2d}_2$ has a $3 \times 3$ kernel, so a proposal's score also
depends on its neighbours on the map: proposals that start one clip earlier or later,
or are one scale longer or shorter. The softmax runs over the *valid* cells only, and
the fused features of invalid cells are zeroed before $\operatorname{Conv2d}_2$, so
they look like the convolution's zero padding. The global feature is the attended sum
of the **query-free** proposal features (Eq. 8),

$$
F_p^{global} = \sum_{t,k} Att_p(t, k)\, F_{vp}(t, k) \in \mathbb{R}^{d_{vp}},
$$

not of $F_a$, which contains the query: otherwise the decoder could copy the query
and the attention would learn nothing.
''')

code(r'''
_, query = toy.query_encoder(toy_batch["words"], toy_batch["words_mask"])
att_p, logits_p = toy.attention(out["F_vp"], query, out["valid"])
print("F_q:", tuple(query.shape), " F_a:", tuple(AttentionModule.fuse(out["F_vp"], query).shape),
      " Att_p:", tuple(att_p.shape))

# Eqs. 6-7 from the equations: concat, 1x1 conv, ReLU, zero invalid cells, 3x3 conv, softmax over valid cells
att_mod = toy.attention
fused = torch.cat([out["F_vp"], query[:, None, None, :].expand(-1, T, len(SCALES), -1)], -1).permute(0, 3, 1, 2)
hidden = torch.relu(F.conv2d(fused, att_mod.conv1.weight, att_mod.conv1.bias)) * out["valid"][:, None]
scores = F.conv2d(hidden, att_mod.conv2.weight, att_mod.conv2.bias, padding=1)[:, 0]
scores = scores.masked_fill(~out["valid"], float("-inf"))
torch.testing.assert_close(att_p, torch.softmax(scores.flatten(1), 1).view_as(att_p))  # MARN Eqs. 6-7
torch.testing.assert_close(att_p.flatten(1).sum(1), torch.ones(4))
assert (att_p[~out["valid"]] == 0).all()
# Eq. 8: attention-weighted sum of the query-free proposal features
g = attend(out["F_vp"], att_p)
torch.testing.assert_close(g, (att_p[..., None] * out["F_vp"]).sum((1, 2)))  # MARN Eq. 8
print("F_p^global:", tuple(g.shape))
''')

md(r'''
**The clip branch, and a flaw in Eq. 11 as printed.** The clip branch scores single
clips with $Att_c = \operatorname{Softmax}(\operatorname{Conv2d}(\operatorname{Concat}
(F_{vc}, \operatorname{Tile}(F_q))))$, one convolution. A single linear layer on a
concatenation is a sum, $w_v^\top F_{vc}(t) + w_q^\top F_q + b$, whose query term is
the same for every clip; the softmax removes any constant, so the clip attention
would not depend on the query at all. The cell below shows it numerically. We
therefore give the clip branch the same two-layer structure as Eq. 7 (its own
weights); the ReLU between the layers lets the query change which clips score high.
''')

code(r'''
torch.manual_seed(0)
F_vc = torch.rand(1, T, 8)
q1, q2 = torch.randn(1, 8), torch.randn(1, 8)
literal = torch.nn.Linear(16, 1)  # Eq. 11 read literally: one linear map of [F_vc; F_q]
att_1 = torch.softmax(literal(torch.cat([F_vc, q1[:, None].expand(-1, T, -1)], -1))[..., 0], -1)
att_2 = torch.softmax(literal(torch.cat([F_vc, q2[:, None].expand(-1, T, -1)], -1))[..., 0], -1)
torch.testing.assert_close(att_1, att_2)  # the query changes nothing
ours = AttentionModule(8, 8, 16, 3)
a1, _ = ours(F_vc[:, :, None], q1, torch.ones(1, T, 1, dtype=torch.bool))
a2, _ = ours(F_vc[:, :, None], q2, torch.ones(1, T, 1, dtype=torch.bool))
print(f"literal Eq. 11: max |Att_c(q1) - Att_c(q2)| = {(att_1 - att_2).abs().max():.1e}; "
      f"ours: {(a1 - a2).abs().max():.1e}")
assert (a1 - a2).abs().max() > 1e-4
''')

# ============================================================================ Eqs. 9-10

md(r'''
## The reconstruction module (Eqs. 9-10)

An LSTM rebuilds the query from the global feature. At step $m$ it reads the
global feature and the embedding of the previous word, and predicts the next word
with a linear layer (Eq. 9, teacher forcing):

$$
h_m = \operatorname{LSTM}\big(\operatorname{Concat}(F_p^{global}, e_{m-1}),\ h_{m-1}\big), \qquad
P(w_m \mid \cdot) = \operatorname{softmax}(U h_m + c),
$$

with inputs `<bos>` $w_1 \dots w_L$ and targets $w_1 \dots w_L$ `<eos>` (so
$M = L + 1$ targets), the global feature concatenated to *every* input (our reading
of the paper's $\operatorname{Concat}(F_p^{global}, h_{m-1}, e_{m-1})$: the LSTM
carries $h_{m-1}$ itself) and a zero initial state. The decoder shares the word
embeddings of the query encoder. The loss is the captioning loss (Eq. 10),

$$
L_p^{cap} = -\frac{1}{M} \sum_{m=1}^{M} \log P\big(w_m \mid F_p^{global}, w_1, \dots, w_{m-1}\big),
$$

averaged over the queries of a batch. Teacher forcing means the decoder always sees
the true previous words, so its language model predicts the function words by
itself; what it needs from the video are the verb and the object, which are exactly
what tells the events of a video apart.
''')

code(r'''
vocab = bench.vocab
inputs, targets, tmask = decoder_io(toy_batch["words"], toy_batch["words_mask"])
print("query:  ", toy_batch["sentence"][0])
print("inputs: ", [vocab.itos[i] for i in inputs[0][tmask[0]].tolist()])
print("targets:", [vocab.itos[i] for i in targets[0][tmask[0]].tolist()])

logits = toy.reconstructor(g, inputs)  # [B, M, V]
print("decoder logits:", tuple(logits.shape))
# Eq. 10 from the equation: -1/M sum_m log P(w_m), then the mean over queries
logp = torch.log_softmax(logits, -1).gather(-1, targets[..., None])[..., 0]
by_hand = torch.stack([-logp[b][tmask[b]].mean() for b in range(4)]).mean()
torch.testing.assert_close(caption_loss(logits, targets, tmask), by_hand)  # MARN Eq. 10
print(f"L_p = {by_hand.item():.3f} (log |V| = {math.log(len(vocab)):.3f} for an untrained decoder)")
''')

# ============================================================================ Eqs. 11-15

md(r'''
## The multi-level extension (Eqs. 11-15)

The clip branch repeats the recipe on single clips: features $F_{vc}$ from a
one-clip-scale sampling matrix and the shared Conv3d, the clip attention $Att_c$
(Eq. 11, with the two-layer fix above), the global feature $F_c^{global} = \sum_t
Att_c(t) F_{vc}(t)$ (Eq. 12) and the same captioning loss $L_c^{cap}$ through the
*shared* LSTM (Eq. 13). The two branches are trained together (Eq. 14),

$$
L^{cap} = L_p^{cap} + \lambda L_c^{cap},
$$

with $\lambda = 1$ (the paper does not give it). At test time the clip attention at
the centre of a proposal is added to its score (Eq. 15),

$$
Att'_p(i) = Att_p(i) + \epsilon\, Att_c(j), \qquad j = T_i + \tfrac{1}{2} S_i ,
$$

with $\epsilon = 0.1$ (the paper's Charades value; 0.3 for the ActivityNet-like preset). $T_i + S_i/2$ is a time, not
always a clip: we read $Att_c$ at position $t + (s - 1)/2$ in clip coordinates with
the interpolation of Eq. 5, which is the middle clip for an odd scale and the mean
of the two middle clips for an even one. Note that $Att_p$ sums to one over all
valid cells (a few hundred) and $Att_c$ over the $T$ clips, so a clip's attention is
roughly ten times larger than a proposal's, and $\epsilon = 0.1$ makes the two
terms comparable.
''')

code(r'''
model_out = toy(toy_batch)
total, parts = toy.loss(toy_batch, model_out)
inputs2 = inputs.repeat(2, 1)
both = toy.reconstructor(torch.cat([model_out["global_p"], model_out["global_c"]]), inputs2)
L_p = caption_loss(both[:4], targets, tmask)
L_c = caption_loss(both[4:], targets, tmask)  # MARN Eq. 13: same decoder, clip-level global feature
torch.testing.assert_close(total, L_p + toy.config.clip_weight * L_c)  # MARN Eq. 14
print({k: round(v, 3) for k, v in parts.items()}, "total", round(total.item(), 3))

# Eq. 15 from the equation, cell by cell, against the vectorised library function
att_p, att_c = model_out["att_p"], model_out["att_c"]
refined = refine_scores(att_p, att_c, toy.proposals.scales, 0.1)
for b in range(2):
    for t in range(T):
        for k, s in enumerate(SCALES):
            if t + s <= T:
                centre = t + (s - 1) / 2
                a_c = att_c[b, int(centre)] if s % 2 else 0.5 * (att_c[b, int(centre)] + att_c[b, int(centre) + 1])
                torch.testing.assert_close(refined[b, t, k], att_p[b, t, k] + 0.1 * a_c)  # MARN Eq. 15
print("mean Att_p over valid cells:", att_p[model_out["valid"]].mean().item(), " mean Att_c:", att_c.mean().item())
''')

# ============================================================================ training

md(r'''
## Training

The trainer of `wsg` removes the temporal labels from every training batch before
MARN sees it (MARN is weakly supervised: its `loss` uses only the video and the
words), evaluates on the *validation* split after each epoch and keeps the epoch
with the best validation R@1 at IoU 0.5. Adam with learning rate `LR`, gradient
norm clipped at 5, batches of 32 queries.
''')

code(r'''
set_seed(SEED)
model = build("marn", **CONFIG)
print(f"MARN: {sum(p.numel() for p in model.parameters()):,} parameters")
train_loader = bench.loader("train", batch_size=BATCH, seed=SEED)
val_loader = bench.loader("val", batch_size=64)
test_loader = bench.loader("test", batch_size=64)
trainer = Trainer(model, TrainConfig(epochs=EPOCHS, lr=LR, seed=SEED, protocol="2d-tan"))
t_fit = time.perf_counter()
history = trainer.fit(train_loader, val_loader)
t_fit = time.perf_counter() - t_fit
print(f"{EPOCHS} epochs in {t_fit:.0f} s ({history['train_seconds'].mean():.1f} s of training per epoch), "
      f"selected epoch {trainer.best_epoch} on validation")
wsg.viz.training_curves(history, keys=["loss", "L_p", "L_c"])
plt.show()
''')

# ============================================================================ seeds, budget, scales

md(r'''
## Seeds, budget and the scale set (validation, three seeds)

One training run is one draw: the same settings with another seed can land many
points away. Anything this chapter *compares* (scale sets, ablations, the $\epsilon$
of Eq. 15) is therefore measured over three seeds, each seeded before the model is
built, trained for 30 epochs (the validation curves below show why: they are still
rising at the chapter's own budget) and selected on the validation split. These runs
take too long for the chapter itself, so `scripts/marn_experiments.py` writes them to
`results/marn_*.csv` (regenerate with the commands in its docstring) and the cells
below read them. Every number is the mean $\pm$ the standard deviation over the
seeds; the test split is not read for any of these choices.
''')

code(r'''
import wsg.experiments

RESULTS = wsg.experiments.find_store("charades").parent  # the repository's results/ folder
PAPER_EPS = {"charades": 0.1, "activitynet": 0.3}
STUDY_PRESET = DATASET if DATASET in PAPER_EPS else "charades"  # the studies run on the synthetic presets
KEY = "R@1,IoU=0.5"


def mean_std(df, by, metrics, split="val"):
    # mean +- std over seeds, one row per group, as text (and the raw means for asserts)
    g = df.groupby(by, sort=False)
    out = pd.DataFrame({"seeds": g.size()})
    for m in metrics:
        mu, sd = g[f"{split}_{m}"].mean(), g[f"{split}_{m}"].std(ddof=1)
        out[f"{split} {m}"] = [f"{a:.1f} ± {b:.1f}" for a, b in zip(mu, sd)]
    return out


scale_runs = pd.read_csv(RESULTS / "marn_scales.csv")
scale_hist = pd.read_csv(RESULTS / "marn_scales_history.csv")
runs = scale_runs[(scale_runs.preset == STUDY_PRESET) & (scale_runs.epsilon == PAPER_EPS[STUDY_PRESET])]
table_scales = mean_std(runs, ["variant", "scales"], ["R@1,IoU=0.5", "R@1,IoU=0.7", "R@5,IoU=0.5", "mIoU"])
table_scales["selected epoch"] = runs.groupby(["variant", "scales"], sort=False)["best_epoch"].agg(
    lambda e: ", ".join(str(x) for x in e))
table_scales.index.names = [f"scale rule ({STUDY_PRESET}, 30 epochs)", "scales"]
display(table_scales)
scale_means = runs.groupby("variant")[f"val_{KEY}"].agg(["mean", "std", "min", "max"])
print(scale_means.round(1))

hist = scale_hist[scale_hist.preset == STUDY_PRESET]
fig, axes = plt.subplots(1, hist.variant.nunique(), figsize=(4 * hist.variant.nunique(), 2.8), sharey=True,
                         squeeze=False)
for ax, (variant, h) in zip(axes[0], hist.groupby("variant", sort=False)):
    for seed, hs in h.groupby("seed"):
        ax.plot(hs.epoch, hs[f"val_{KEY}"], lw=1, label=f"seed {seed}")
    ax.axvline(EPOCHS, color="0.6", ls="--", lw=1)
    ax.set_title(f"{variant} ({h.scales.iloc[0]})", fontsize=9)
    ax.set_xlabel("epoch")
axes[0, 0].set_ylabel(f"val {KEY}")
axes[0, 0].legend(fontsize=7)
plt.suptitle(f"validation curves per seed (dashed: this chapter's {EPOCHS} epochs)", fontsize=10)
plt.tight_layout()
plt.show()
''')

md(r'''
The 25th-95th percentile rule has the best validation mean on every metric. We call
two rules *separated* on a metric when their intervals mean $\pm$ std over the seeds do
not overlap, and *within noise* otherwise. Against the 5th-95th percentile rule the
chosen one is separated at R@1, IoU 0.5: adding the shortest scales hurts, as the
purity argument above predicts. Against the paper's range the two are within noise at
R@1, IoU 0.5 (the paper's range has the largest spread of the three: one of its seeds
stays far below the others), but separated at IoU 0.7 and at R@5, where the wider map
can place boundaries the narrower range cannot represent. We therefore keep the
25th-95th percentile rule, and say that three seeds do not separate it from the
paper's range at IoU 0.5. The curves also show that the runs have not converged at
16 epochs (the budget of the earlier versions of this chapter): most select a later
epoch, and several their last one of 30. The cell below checks each of these statements on the stored runs.
''')

code(r'''
CHOSEN, PAPER_RULE, LOW_RULE = "25th-95th percentile", "paper 6..11 (scaled)", "5th-95th percentile"
cols = [f"val_{m}" for m in ("R@1,IoU=0.5", "R@1,IoU=0.7", "R@5,IoU=0.5", "mIoU")]
by_rule = runs.groupby("variant")
mu, sd = by_rule[cols].mean(), by_rule[cols].std(ddof=1)
separated = (mu.loc[CHOSEN] - sd.loc[CHOSEN]) > (mu + sd)  # the chosen rule's interval lies above the other's
print("separated from the chosen rule (mean ± std intervals do not overlap):")
display(separated.drop(CHOSEN))
assert (by_rule.size() >= 3).all(), "every rule is measured with three seeds or more"
assert (mu.idxmax() == CHOSEN).all(), "the chosen rule has the best validation mean on every metric"
if STUDY_PRESET == "charades":
    assert separated.loc[LOW_RULE, f"val_{KEY}"], "the 5th-95th percentile rule is separated at IoU 0.5"
    assert not separated.loc[PAPER_RULE, f"val_{KEY}"], "the paper's range is within noise at IoU 0.5"
    assert separated.loc[PAPER_RULE, ["val_R@1,IoU=0.7", "val_R@5,IoU=0.5"]].all()
    assert sd.loc[PAPER_RULE, f"val_{KEY}"] == sd[f"val_{KEY}"].max()
    assert (runs.best_epoch > 16).mean() >= 2 / 3 and (runs.best_epoch == 30).any()
if DATASET == STUDY_PRESET:  # the chapter's own map is the one the stored runs chose
    assert runs.loc[runs.variant == CHOSEN, "scales"].iloc[0] == f"{min(SCALES)}..{max(SCALES)}"
''')

md(r'''
### Where the seed-to-seed spread comes from

The table below follows every stored run (the scale study, the ablation, and the
reference trained with a three times smaller learning rate, `results/marn_lr.csv`)
through its validation curve. It answers the question of where the seed noise comes
from, one suspect at a time:

* **Epochs.** The largest effect. At 16 epochs (the budget of the earlier versions of
  this chapter) the three reference seeds agree closely, but they are far from done:
  from there to 30 epochs they gain
  more than twenty points each on average, and they fan out while they climb. A
  comparison of two variants at a short budget measures how *fast* each learns (the
  $1 \times 1$ variant, for instance, leads at the short budget and is behind at 30
  epochs); the stored runs are compared at 30 epochs for this reason.
* **$\epsilon$ of Eq. 15.** Not a cause: on the same weights, switching the clip term
  on or off moves R@1 by less than a point on average (a few at most), while the
  seeds of the reference differ several times more.
* **The clip branch.** Not a cause: without it the spread is *larger* (one seed of
  "multi-level off" ends far below the others).
* **Learning rate.** With a three times smaller step the three seeds agree closely,
  but at 30 epochs they are still at the level the reference reached at half that
  budget: the small step slows the climb rather than removing the fan-out, which we
  could not follow further within the budget of these runs.
* **Capacity.** Not measured here (wider models were left out of the stored runs for
  time); it remains a suspect.

Across all runs the training loss at the selected epoch is *negatively* correlated
with validation R@1: the seeds that ground better also reconstruct better, so the
objective does prefer the right event; a seed that stays low has not found it within
the budget, which is an optimisation (not an objective) failure. One run of the
chapter is one draw from this spread, which is why its single-seed numbers are shown
next to the stored three-seed means, never alone.
''')

code(r'''
SHORT = 16  # the budget of the earlier versions of this chapter
abl_hist = pd.read_csv(RESULTS / "marn_ablation_history.csv")
all_hist = pd.concat([scale_hist[scale_hist.preset == "charades"], abl_hist,
                      pd.read_csv(RESULTS / "marn_lr_history.csv")])
budget_rows = []
for (variant, seed), h in all_hist.groupby(["variant", "seed"], sort=False):
    h = h.set_index("epoch")
    best = int(h[f"val_{KEY}"].idxmax())
    budget_rows.append({"variant": variant, "seed": seed, "selected epoch (of 30)": best,
                        f"best val R@1 in {SHORT} epochs": h.loc[:SHORT, f"val_{KEY}"].max(),
                        "best val R@1 in 30 epochs": h[f"val_{KEY}"].max(),
                        "training loss at the selected epoch": h.loc[best, "loss"],
                        "training loss at epoch 30": h["loss"].iloc[-1]})
budget = pd.DataFrame(budget_rows).set_index(["variant", "seed"])
display(budget.round(2))
by_variant = budget.groupby("variant", sort=False)
spread = by_variant["best val R@1 in 30 epochs"].agg(lambda x: x.max() - x.min())
gain = (budget["best val R@1 in 30 epochs"] - budget[f"best val R@1 in {SHORT} epochs"])
loss_spread = by_variant["training loss at the selected epoch"].agg(lambda x: x.max() - x.min())
corr = np.corrcoef(budget["training loss at the selected epoch"], budget["best val R@1 in 30 epochs"])[0, 1]
# eps of Eq. 15: the change within a seed (same weights) against the spread between seeds
eps_runs = scale_runs[scale_runs.preset == "charades"].pivot_table(
    index=["variant", "seed"], columns="epsilon", values=f"val_{KEY}")
eps_effect = (eps_runs[0.1] - eps_runs[0.0]).abs()
print(f"seed spread (max - min of val {KEY}, 30 epochs), per variant:", spread.round(1).to_dict())
print(f"gain from {SHORT} to 30 epochs: mean {gain.mean():.1f}, range {gain.min():.1f} .. {gain.max():.1f} points")
print(f"|eps = 0.1 vs eps = 0| on the same weights: mean {eps_effect.mean():.1f}, max {eps_effect.max():.1f} points")
print(f"training-loss spread between seeds at the selected epoch: {loss_spread.round(2).to_dict()}")
print(f"correlation of the training loss and val R@1 across runs: {corr:.2f}")

lr_runs = pd.read_csv(RESULTS / "marn_lr.csv")
lr_val = lr_runs[lr_runs.epsilon == PAPER_EPS["charades"]][f"val_{KEY}"]
ref_budget = budget.loc[REF_NAME := "25th-95th percentile"]
print(f"lr 1e-3 (3 seeds, 30 epochs): val {KEY} {lr_val.mean():.1f} ± {lr_val.std(ddof=1):.1f}; "
      f"reference at {SHORT} epochs {ref_budget[f'best val R@1 in {SHORT} epochs'].mean():.1f}, at 30 "
      f"{ref_budget['best val R@1 in 30 epochs'].mean():.1f} ± {ref_budget['best val R@1 in 30 epochs'].std(ddof=1):.1f}")
assert gain.loc[REF_NAME].mean() > 20, "the reference gains > 20 points from 16 to 30 epochs"
assert ref_budget[f"best val R@1 in {SHORT} epochs"].std(ddof=1) < ref_budget["best val R@1 in 30 epochs"].std(ddof=1)
assert eps_effect.mean() < 1 and eps_effect.max() < spread[REF_NAME] / 2, "eps moves R@1 less than the seeds do"
assert spread["multi-level off"] > spread[REF_NAME], "without the clip branch the seeds spread more"
short, full = f"best val R@1 in {SHORT} epochs", "best val R@1 in 30 epochs"
one_by_one = budget.groupby("variant")[[short, full]].mean()
assert one_by_one.loc["Conv2d_2 1 x 1 instead of 3 x 3", short] > one_by_one.loc[REF_NAME, short]
assert one_by_one.loc["Conv2d_2 1 x 1 instead of 3 x 3", full] < one_by_one.loc[REF_NAME, full]
assert lr_val.std(ddof=1) < ref_budget[full].std(ddof=1) and lr_val.mean() < ref_budget[full].mean() - 10
assert abs(lr_val.mean() - ref_budget[short].mean()) < 5  # lr 1e-3 at 30 epochs ~ the reference at 16
assert corr < 0, "lower training loss goes with higher validation R@1"
''')

# ============================================================================ evaluation

md(r'''
## Evaluation

Test-split numbers under the "2d-tan" protocol (greedy NMS at 0.5 before R@5, a hit
when IoU > m), with the model selected on the validation split. Next to MARN, the two
blind baselines of Chapter 1: the random ranking and the moment-frequency prior,
which ranks moments by how often training moments fall on them and never sees the
query or the video. We give the prior both the default candidate set (every span of
the 32-clip grid) and MARN's own proposal map. A prior is a low bar on this data; the
controls below are the real one.
''')

code(r'''
test = evaluate(model, test_loader, protocol="2d-tan")
blind = wsg.baselines.blind_baselines(bench, "test", protocol="2d-tan")
pm = wsg.proposals.proposal_map(T, SCALES)
blind_map = wsg.baselines.blind_baselines(bench, "test", protocol="2d-tan", candidates=pm.moments[pm.valid])
rows = {"random (all spans)": blind.loc["random"].to_dict(), "prior (all spans)": blind.loc["prior"].to_dict(),
        "random (MARN's map)": blind_map.loc["random"].to_dict(),
        "prior (MARN's map)": blind_map.loc["prior"].to_dict(), "MARN (weak)": test}
table = wsg.viz.results_table(rows, protocol="2d-tan")
display(table)
prior_best = max(rows["prior (all spans)"]["R@1,IoU=0.5"], rows["prior (MARN's map)"]["R@1,IoU=0.5"])
print(f"MARN R@1,IoU=0.5 = {test['R@1,IoU=0.5']:.1f} vs best prior {prior_best:.1f} (one seed; the bar below uses three)")
''')

md(r'''
**The controls** (Chapter 1): the same trained model next to the swapped-query control
(each query replaced by another query of the same video: a model that reads the words
must lose its hits), chance among events and the blind rankings over MARN's own
proposal map (`model.candidates()`), with the *event hit* (the share of top-1 moments
whose centre lies in the ground truth): the yardstick of the book's evidence standard.
''')

code(r'''
import wsg.controls

controls = wsg.controls.table(model, bench, "test", "2d-tan")  # the control table of the evidence standard
display(controls.round(1))
''')

md(r'''
**The bar, on three seeds.** This chapter trains one seed, and MARN's seeds spread by
several points (the previous section), so the book's bar is checked on the results
store (`results/tiny-<preset>.csv`, written by
`python -m wsg.experiments marn --datasets charades activitynet --blind`): MARN's mean
test R@1,IoU=0.5 over three seeds must beat the best query-blind control (chance among
events, MARN trained on one-token sentences, the prior over MARN's own proposal map),
and its swapped-query R@1 must be at most a third of its true R@1.
''')

code(r'''
import wsg.experiments

if DATASET in ("charades", "activitynet") and profile.name == "tiny":
    bar, verdict = wsg.experiments.strong_bar("marn", bench, model.candidates(), dataset=DATASET)
    display(bar.round(1))
    print(wsg.experiments.describe_bar(verdict, "MARN"))
    assert verdict["beats_blind"] and verdict["words_read"], verdict
else:
    print("the results store holds tiny synthetic runs; for this setting run `python -m wsg.experiments` first")
''')

md(r'''
For reference, the numbers **the paper reports on the real datasets** (Charades-STA
with C3D features, Table 1; ActivityNet Captions, Table 2). They come from other data,
features and evaluation code (the paper does not say whether it applies NMS or which
IoU comparison it uses), so they are not comparable with the synthetic numbers above;
they show what the method reached where it was published.
''')

code(r'''
paper = pd.DataFrame(
    {"R@1,IoU=0.3": [20.12, 48.55, 48.04, 18.64, 47.01], "R@1,IoU=0.5": [10.50, 31.94, 31.74, 7.73, 29.95],
     "R@1,IoU=0.7": [3.39, 14.81, 13.71, np.nan, np.nan], "R@5,IoU=0.3": [68.42, 90.70, 89.01, 52.78, 72.02],
     "R@5,IoU=0.5": [37.57, 70.00, 72.17, 29.49, 57.49], "R@5,IoU=0.7": [14.98, 37.40, 37.58, np.nan, np.nan]},
    index=["Charades-STA: random", "Charades-STA: MARN", "Charades-STA: wMAN (weak, best prior work)",
           "ActivityNet Captions: random", "ActivityNet Captions: MARN"])
paper.index.name = "reported by the paper on REAL data (not comparable)"
display(paper)
''')

# ============================================================================ visualisation

md(r'''
## What MARN attends to

The proposal attention is a map over start clip x scale. Below, all the queries of
one test video: the same video, different words. The white box marks the proposal
that overlaps the ground truth best (the best any ranking over this map could do);
the red box marks MARN's top-1 proposal. Under each map, the timeline shows the
ground truth, the top-3 predictions and the clip-level attention $Att_c$ as a grey
curve.
''')

code(r'''
test_ds = bench.dataset("test")
test_df = bench.splits["test"].reset_index(drop=True)
cands = pm.moments  # [T, S, 2]


@torch.no_grad()
def analyse(indices):
    batch = wsg.data.collate([test_ds[i] for i in indices])
    view = strip_labels(batch)
    model.eval()
    out = model(view)
    moments, scores = model.predict(view, top_k=20)
    return batch["moment"], out, moments, scores


def draw(i, axes=None):
    gt, out, moments, scores = analyse([i])
    if axes is None:
        _, axes = plt.subplots(2, 1, figsize=(8, 4.6), gridspec_kw=dict(height_ratios=[2.2, 1]))
    iou = wsg.metrics.temporal_iou(cands, gt[0]).masked_fill(~pm.valid, -1)  # [T, S]
    t_best, k_best = divmod(int(iou.argmax()), len(SCALES))
    top = moments[0, 0] * T
    t_top = int(round(top[0].item()))
    k_top = SCALES.index(int(round((top[1] - top[0]).item())))
    att = out["att_p"][0].masked_fill(~out["valid"][0], float("nan")).T
    wsg.viz.heatmap(att, ax=axes[0], xlabel="start clip", ylabel="scale (clips)", yticklabels=list(SCALES),
                    boxes=[((t_best, t_best + 1), (k_best, k_best + 1), f"best-IoU cell ({iou.max():.2f})"),
                           ((t_top, t_top + 1), (k_top, k_top + 1), "MARN top-1")],
                    title=f'"{test_df.sentence[i]}"')
    kept = wsg.metrics.nms(moments[0], scores[0], 0.5, top_k=3)
    wsg.viz.timeline(gt[0].tolist(), moments[0][kept].tolist(), curve=out["att_c"][0].numpy(), ax=axes[1])
    return axes


video = test_df.groupby("video_id").size().sort_values(ascending=False).index[0]
queries = test_df.index[test_df.video_id == video].tolist()
fig, axes = plt.subplots(2, len(queries), figsize=(5.2 * len(queries), 5.2),
                         gridspec_kw=dict(height_ratios=[2.2, 1]), squeeze=False)
for j, i in enumerate(queries):
    draw(i, axes[:, j])
plt.tight_layout()
plt.show()
''')

md(r'''
The attention concentrates on one or a few regions of the map, and it moves between
the queries of one video when their words differ, although the video is the same. A
failure usually means that the attention sits on another event of the video, which by
construction shares the verb or the object with the target: one shared word pulled
it there. The next cell counts, over all pairs of test queries that describe the same
video, how often their top-1 proposals are different moments (IoU below 0.5 between
them); a query-blind model would give the same top-1 to both, every time. It then
asks how precise the extent is: over the whole test split it compares the top-1
proposal's length with the ground truth's, measures how far apart their centres are,
and counts how often the top-1 proposal lies inside the ground-truth moment (to within
one clip).
''')

code(r'''
pred = predict_all(model, test_loader, top_k=1)
top1, gt = pred["moments"][:, 0], pred["gt"]
vid = torch.as_tensor(pd.factorize(test_df.video_id[pred["query_idx"].numpy()])[0])
pair = (vid[:, None] == vid[None, :]) & ~torch.eye(len(vid), dtype=torch.bool)
distinct = wsg.metrics.temporal_iou(top1[:, None], top1[None, :])[pair] < 0.5
print(f"pairs of queries of the same video with distinct top-1 moments: {100 * distinct.float().mean():.0f} % "
      f"(a query-blind model: 0 %)")
gt_len, top_len = (gt[:, 1] - gt[:, 0]) * T, (top1[:, 1] - top1[:, 0]) * T
centre_err = (top1.mean(1) - gt.mean(1)).abs() * T
inside = ((top1[:, 0] >= gt[:, 0] - 1 / T) & (top1[:, 1] <= gt[:, 1] + 1 / T)).float().mean().item()
hit = wsg.metrics.temporal_iou(top1, gt) > 0.5
at_min = (top_len.round() == min(SCALES)).float().mean().item()
corr = np.corrcoef(gt_len.numpy(), top_len.numpy())[0, 1]
print(f"median length ratio top-1 / ground truth: {(top_len / gt_len).median():.2f}; "
      f"correlation of the lengths: {corr:.2f}; top-1 on the smallest scale: {100 * at_min:.0f} %")
print(f"median |centre error|: {centre_err.median():.1f} clips; top-1 inside the moment: {100 * inside:.0f} %")
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
axes[0].scatter(gt_len, top_len, s=8, c=np.where(hit, "tab:green", "tab:red"), alpha=0.6)
axes[0].plot([0, T], [0, T], color="0.5", lw=1)
axes[0].set_xlabel("ground-truth length (clips)")
axes[0].set_ylabel("top-1 length (clips)")
axes[0].set_title("lengths (green: IoU > 0.5)", fontsize=10)
axes[1].hist(centre_err.numpy(), bins=np.arange(0, T / 2, 0.5), color="0.6")
axes[1].set_xlabel("|centre of top-1 - centre of ground truth| (clips)")
axes[1].set_title("centre error", fontsize=10)
plt.tight_layout()
plt.show()
''')

md(r'''
Two things stand out. The *location* is found for a good part of the queries: for
about half of them the top-1 centre lies within a few clips of the ground truth's,
while the others land elsewhere in the video, typically on one of its other events,
which by construction share the verb or the object with the target. The *extent* is
learned only loosely:
the predicted lengths follow the ground-truth lengths weakly, and a large share of the
top-1 proposals sits on the smallest scale of the map. Reconstruction explains both: the
decoder needs the verb and object features of the right event, and any proposal whose
features are dominated by that event provides them, a short one lying inside the event
as well as (or better than, being purer) one that covers it exactly. Nothing in the
loss asks for the full extent. This is why R@1 falls steeply from IoU 0.3 to 0.7, and
why the scale set matters (see the data section).
''')

code(r'''
wsg.viz.explorer(len(test_ds), lambda i: draw(i))
''')

# ============================================================================ ablation

md(r'''
## Ablations (reduced Tables 3-5)

The paper ablates the proposal representation (average pooling over all clips of the
proposal vs. sampling + Conv3d, its Table 3 rows 4 and 7), the receptive field of
$\operatorname{Conv2d}_2$ ($1 \times 1$ vs. $3 \times 3$, rows 1-2) and the
multi-level branch (off, in training only, in training and inference, Table 5). Each variant
is trained with three seeds for 30 epochs, like the reference (the scale study's
25th-95th percentile runs, the same settings and seeds), and selected on validation;
"train only" is the reference's weights evaluated with $\epsilon = 0$. The
average-pooling variant replaces sampling + Conv3d with the plain mean of the reduced
features over the proposal's clips followed by a linear map to $d_{vp}$ (the same
width, so the comparison isolates the representation). The runs come from
`results/marn_ablation.csv` (`scripts/marn_experiments.py --study ablation`); the
table gives mean $\pm$ std over the seeds on validation and, once the variants are
fixed, on test. No choice is made from the test columns.
''')

code(r'''
def evaluate_eps(m, epsilon, loader=None):
    # evaluate with another eps of Eq. 15 (0 = the clip branch is used in training only)
    old, m.config.epsilon = m.config.epsilon, epsilon
    try:
        return evaluate(m, loader or val_loader, protocol="2d-tan")
    finally:
        m.config.epsilon = old


REFERENCE = "25th-95th percentile"
abl_runs = pd.read_csv(RESULTS / "marn_ablation.csv")
ref_runs = scale_runs[(scale_runs.preset == "charades") & (scale_runs.variant == REFERENCE)]
ref_runs = ref_runs.assign(variant=np.where(ref_runs.epsilon == 0.0, "multi-level train only (eps = 0)",
                                            "MARN: Conv3d, 3 x 3, multi-level train + infer"))
ablation_runs = pd.concat([ref_runs[ref_runs.epsilon.isin([0.0, 0.1])],
                           abl_runs[abl_runs.epsilon.isin([0.0, 0.1]) & ((abl_runs.epsilon == 0.1) |
                                                                         (abl_runs.variant == "multi-level off"))]])
metrics = ["R@1,IoU=0.5", "R@1,IoU=0.7", "R@5,IoU=0.5"]
ablation_table = pd.concat([mean_std(ablation_runs, "variant", metrics, "val"),
                            mean_std(ablation_runs, "variant", metrics, "test").drop(columns="seeds")], axis=1)
ablation_table.index.name = "variant (charades, 30 epochs, 2d-tan, mean ± std)"
display(ablation_table)
abl = ablation_runs.groupby("variant", sort=False)[f"val_{KEY}"].agg(["mean", "std"])
print(abl.round(1))
''')

md(r'''
With three seeds and 30 epochs, the full model has the best validation mean, and
none of the paper's ablations is *separated* from it at R@1, IoU 0.5 (the rule of the
scale study: the intervals mean $\pm$ std overlap). Our reproduction points the same
way as the paper's Tables 3 and 5 (each piece helps a little) but cannot confirm any
single row: the differences are of the size of the seed noise. Switching the clip
term of Eq. 15 off at inference ("train only") moves R@1 by less than a point on the
same weights, as in the paper (32.07 vs 31.94). Without the clip branch in training the
spread over seeds is the largest of all. The cell below checks these statements.
''')

code(r'''
variants = ablation_runs.groupby("variant", sort=False)[f"val_{KEY}"]
a_mu, a_sd = variants.mean(), variants.std(ddof=1)
FULL = "MARN: Conv3d, 3 x 3, multi-level train + infer"
apart = (a_mu[FULL] - a_sd[FULL]) > (a_mu + a_sd)
print("separated from the full model at val", KEY, ":", apart.drop(FULL).to_dict())
assert (variants.size() >= 3).all(), "every variant has three seeds"
assert a_mu.idxmax() == FULL and not apart.drop(FULL).any()
assert abs(a_mu[FULL] - a_mu["multi-level train only (eps = 0)"]) < 1.0
assert a_sd.idxmax() == "multi-level off"
''')

md(r'''
The paper's own ablation on Charades-STA (its Tables 3 and 5, real data) for the same
comparisons, for reference:

| variant (paper, Charades-STA) | R@1 IoU=0.5 | R@1 IoU=0.7 | R@5 IoU=0.5 |
| --- | --- | --- | --- |
| Conv2d $1\times1$, AvgPool, Conv1d k=1 (row 1) | 20.10 | 7.94 | 47.17 |
| Conv2d $3\times3$, AvgPool, Conv1d k=1 (row 2) | 23.20 | 8.41 | 48.08 |
| AvgPool, Conv1d k=3 (row 4) | 26.89 | 12.63 | 57.17 |
| sampling + Conv3d (row 7 = multi-level off) | 32.00 | 14.39 | 55.44 |
| + multi-level in training only | 32.07 | 14.70 | 69.30 |
| + multi-level in training and inference | 31.94 | 14.81 | 70.00 |

On real data the paper finds that each piece helps a little and that the clip branch
mainly lifts R@5. Our reduced reproduction (three seeds each, 30 epochs, a small
synthetic benchmark) is the table above; a difference between two variants means
something only when it is larger than the spread of each over its seeds. Eq. 15
changes only the ranking, so "train only" and "train + infer" share their weights and
differ only through $\epsilon$.
''')

# ============================================================================ ambiguities

md(r'''
## Where the paper is ambiguous or wrong, and what we chose

* **Scale set.** "6-scale proposals in the range of [6, 12]" (Charades, $T = 32$) is
  read as the integers $6, \dots, 11$ (`range(6, 12)`), the config default. On the
  synthetic data, whose moments are spread more widely, the chapter uses every integer
  scale between the 25th and 95th percentiles of the training moments' lengths
  (`scales_from_lengths`), a rule chosen on the validation split over three seeds
  (section "Seeds, budget and the scale set"); the ActivityNet map (64 scales of 128
  clips, stride $s/4$) is available as `stride_fraction=0.25`.
* **Sampling points.** BMN {cite}`bmn2019` has two conventions; we place the $N$ points
  from the first to the last clip of a proposal (`endpoints="inclusive"`), so a valid
  proposal never reads past the video's end; `"bins"` (bin centres) is the
  alternative. Proposals past the end are masked in the attention's softmax, in the
  loss (they get zero attention) and at inference.
* **Clip branch.** "The number of scales is 1": the clip branch uses a one-clip scale
  on the same sampling builder and *shares* the Conv1d and the Conv3d (the paper says
  the Conv3d and the decoder are shared, and the shared Conv3d forces the same input
  channels).
* **Eq. 11 cannot use the query as printed**: a single linear Conv2d on the
  concatenation adds a per-query constant that the softmax removes. We use the Eq. 7
  structure (Conv2d, ReLU, Conv2d) for the clip attention, with its own weights.
* **Non-linearities and kernels.** ReLU after the Conv1d and the Conv3d (as in BMN);
  $\operatorname{Conv2d}_1$ is $1 \times 1$, $\operatorname{Conv2d}_2$ carries the
  ablated kernel, zero-padded.
* **Decoder conditioning (Eq. 9).** The global feature is concatenated to every input
  word embedding, the initial state is zero, and the decoder shares the query
  encoder's word embeddings; `<bos>`/`<eos>` frame the query.
* **Loss normalisation (Eq. 10) and $\lambda$ (Eq. 14).** Mean over the $M = L + 1$
  target tokens of a query, then over the batch; $\lambda = 1$. Eq. 14 writes
  $L_v^{cap}$ for the $L_p^{cap}$ of Eq. 10, a typo.
* **Eq. 15's centre** $T_i + S_i/2$ is a time; we interpolate the clip attention at
  the proposal's centre (the middle clip for an odd scale, the mean of the two middle
  clips for an even one).
* **Evaluation.** The paper does not state its NMS or IoU comparison; every number in
  this chapter follows the 2D-TAN protocol with model selection on a validation split.
''')

# ============================================================================ exercises

md(r'''
## Exercises

```{exercise} The cost of one matrix product
:label: marn-ex1
With $B = 32$ videos, $C = 32$ reduced channels, $N = 4$ points, $T = 128$ clips and
$S = 64$ scales, how many multiply-adds does Eq. 2 cost when done with the dense
matrix $W$, and how many when each point gathers its two neighbouring clips? Which
one would you use at ActivityNet scale, and why does MARN's choice still make sense?
```

```{solution} marn-ex1
:class: dropdown
Dense: $B \cdot C \cdot N \cdot T \cdot S \cdot T = 32 \cdot 32 \cdot 4 \cdot 128 \cdot 64
\cdot 128 \approx 4.3 \times 10^{9}$ multiply-adds. Gather: $B \cdot C \cdot N \cdot T
\cdot S \cdot 2 \approx 6.7 \times 10^{7}$, 64 times fewer ($T/2$). The gather is
cheaper in both memory and arithmetic; the dense product is one call to a highly
optimised matrix kernel with no index arithmetic, which on a GPU at $T = 32$ or $64$ is
fast enough that its simplicity wins. At $T = 128$ with 64 scales the gather (or a
sparse $W$) is the better engineering choice; the result is identical.
```

```{exercise} Asking for the whole event
:label: marn-ex2
The analysis above shows that reconstruction constrains *where* the event is much
better than *how long* it is. Propose an extra loss term, still weakly supervised,
that rewards an attention covering the whole event rather than a pure part of it.
What could go wrong with it on videos whose events are adjacent, as in the synthetic
benchmark?
```

```{solution} marn-ex2
:class: dropdown
One option is a *complement* term: build a second global feature from the proposals
the attention does not select (for instance, weights $1 - Att$ normalised, or the
clips outside the top proposal) and ask the decoder to reconstruct the query *badly*
from it, e.g. a hinge that keeps its captioning loss above that of the attended
feature by a margin. A proposal covering only part of the event leaves the rest of
the event in the complement, which then still reconstructs the query, so the loss
pushes the attention to take the whole event. (Later weakly-supervised methods use
such contrastive or complementary reconstructions.) With adjacent events the
complement always contains the other events, which share the verb or the object:
the margin must be loose enough that the complement is not asked to fail on words it
legitimately contains, and the term can push the attention to spill over the
boundaries into the neighbours if it is weighted too strongly.
```

```{exercise} A query-blind attention
:label: marn-ex3
Suppose the attention module ignored the query (drop $\operatorname{Tile}(F_q)$ from
Eq. 6). Using the construction of the synthetic benchmark (2-4 events per video,
sharing a verb or an object), argue what R@1 such a model could reach at best, and
what the reconstruction loss would converge to. Try it: subclass `MARN` so that the
attention modules receive a zero query feature, and train it for a few epochs.
```

```{solution} marn-ex3
:class: dropdown
A query-blind attention puts the same map on a video for all its queries, so the top-1
proposal is the same for every query of the video and can be right for at most one of
them: R@1 is at most chance among the events (about 1/3 on average), and in practice
lower, because the blind attention has no reason to prefer a whole event. The decoder
then receives the same feature for different queries and can only learn the mixture of
the video's verbs and objects, so the loss stays above that of the query-aware model by
roughly the entropy of choosing among the video's events for the verb and object words.
You do not need to write the subclass: `wsg.controls.query_blind(bench)` replaces every
query by one constant token, so MARN trained on it is exactly this model, and its
multi-seed test numbers are the "query-blind" row of the results store
(`python -m wsg.experiments marn --blind`), which the book's bar compares MARN with.
The swapped-query row of the control table above answers the same question from the
other side: a model that ignored the words would score the same there.
```

```{exercise} Eq. 15 and the two softmaxes
:label: marn-ex4
$Att_p$ is normalised over a few hundred cells and $Att_c$ over 32 clips. What happens
to the ranking when $\epsilon \to \infty$? Evaluate the trained model on the
validation split with $\epsilon \in \{0, 0.1, 1, 10\}$ (use `evaluate_eps`) and
explain the trend of R@1 and R@5. Is one seed enough to choose $\epsilon$?
```

```{solution} marn-ex4
:class: dropdown
With a very large $\epsilon$ the score of a proposal is dominated by the clip
attention at its centre: all proposals that share a centre get (nearly) the same
score, whatever their length, and the length is then decided by the small $Att_p$
differences among them. R@1 drops because the clip branch knows where the event is
but little about its extent. $\epsilon = 0.1$ keeps $Att_p$ in charge and uses $Att_c$
as a tie-breaker, which is the paper's intent. The cell below the exercises gives the
numbers for this chapter's model and, from the results store, for three seeds: R@1
falls clearly from $\epsilon = 1$ on, R@5 much less (NMS still keeps proposals of
several lengths around the best centres). Between $\epsilon = 0$ and $0.1$ the change
within a seed is far smaller than the spread between seeds: one seed cannot choose
$\epsilon$, and three do not separate these two values either.
```
''')

code(r'''
# Worked numbers for Exercise 4: eps of Eq. 15 on the same weights, validation split
eps_live = {f"eps = {e:g}": evaluate_eps(model, e) for e in (0.0, 0.1, 1.0, 10.0)}
display(wsg.viz.results_table(eps_live, protocol="2d-tan"))
ref = scale_runs[(scale_runs.preset == STUDY_PRESET) & (scale_runs.variant == REFERENCE)]
for m in ("R@1,IoU=0.5", "R@5,IoU=0.5"):
    grid = ref.pivot_table(index="seed", columns="epsilon", values=f"val_{m}")
    grid.loc["mean ± std"] = [f"{a:.1f} ± {b:.1f}" for a, b in zip(grid.mean(), grid.std(ddof=1))]
    grid.columns = [f"eps = {e:g}" for e in grid.columns]
    grid.index.name = f"val {m}, 3 seeds"
    display(grid)
''', tags=["hide-input"])

# ============================================================================ summary

md(r'''
## Summary

* MARN turns weak supervision into a reconstruction problem: the attention over a
  start x scale proposal map must select visual features from which an LSTM can
  rebuild the query, and the same attention ranks the proposals at test time.
* The proposal module reads every proposal at $N$ points with one fixed sampling
  matrix (Eqs. 2, 4, 5, in `wsg.proposals`) and summarises them with a Conv3d (Eq. 3);
  the matrix is dense and grows as $T^2 S N$ (16 MiB at the ActivityNet setting).
* Eq. 11 as printed would make the clip attention blind to the query; a two-layer
  fusion fixes it.
* On the synthetic benchmark MARN clearly beats the blind baselines, and its
  attention maps move with the words for a fixed video; its weakness is the extent
  of the moment, which reconstruction does not constrain.
* One run is one draw: with the same settings MARN's validation R@1 spans about ten
  points over three seeds, and it is still climbing at 16 epochs. The scale set (25th
  to 95th percentile of the training lengths), the 30-epoch budget of the stored runs
  and every ablation statement were measured over three seeds on the validation split;
  none of the paper's ablations is separated from the full model at that noise level.

## References

MARN {cite}`marn2020`; the sampling mechanism of BMN {cite}`bmn2019`; GRU
{cite}`gru2014`, LSTM {cite}`lstm1997`, GloVe {cite}`glove2014`, C3D {cite}`c3d2015`;
the datasets Charades {cite}`charades2016` with Charades-STA {cite}`tall2017` and
ActivityNet Captions {cite}`anetcaptions2017`; the weakly-supervised methods MARN
compares with, TGA {cite}`tga2019`, WSLLN {cite}`wslln2019`, SCN {cite}`scn2020`,
CTF {cite}`ctf2020` and wMAN {cite}`wman2019`; the evaluation protocol of 2D-TAN
{cite}`2dtan2020`.
''')


if __name__ == "__main__":
    chapter.write()
