"""Builder of Chapter 6, ``notebooks/06_fian.ipynb`` (FIAN, the fully-supervised reference).

The notebook is generated from this script and stored without outputs, so the
chapter can be reviewed and diffed as plain Python. Regenerate it with::

    python notebooks/src/06_fian.py
"""
from __future__ import annotations

from nbbuild import Chapter

chapter = Chapter("06_fian.ipynb", "ch6")
md, code = chapter.md, chapter.code

# ============================================================================ set-up

md(r'''
# FIAN: fine-grained iterative attention, the fully-supervised reference

The four methods before this chapter learn to ground a query without ever seeing
where its moment lies. FIAN {cite}`fian2020` is different: it is trained with
{term}`full supervision`, the start and end of the moment of every training query.
It is in the book as a **reference point**. Run on the same synthetic data as the
weakly-supervised methods, it shows how much the temporal labels are worth, and how
far the weak methods are from what those labels buy.

FIAN itself is a careful piece of cross-modal engineering, in three parts:

1. **Symmetric iterative attention.** Words attend to clips and clips to words, with
   multi-head attention whose output passes an information gate ("guided"
   attention, CGA). Two branches run in opposite orders: query to video then video to
   query, and video to query then query to video.
2. **Video-enhanced integration.** The two sentence-aware videos are fused with the
   two video-aware queries, after the queries are mapped from word positions to clip
   positions by a learned matrix, through a gate.
3. **Content-oriented localisation.** Candidate windows of several lengths slide over
   the fused sequence; one Conv1d per window length, whose kernel *is* the window,
   scores each candidate from all the features inside it and regresses offsets for
   its two boundaries. Training aligns the scores with the IoU of each candidate and
   regresses the boundaries of the good ones.

The figure shows the pipeline with the paper's equation numbers; the chapter derives
each box, checks each equation against `wsg`, trains FIAN, evaluates it, opens it
up, takes it apart, and finally puts it next to the weakly-supervised methods.
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
import dataclasses
import importlib
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
import wsg.models
import wsg.text
import wsg.viz
from wsg.models import strip_labels
from wsg.models.fian import alignment_loss, boundary_loss, window_layout
from wsg.train import Trainer, TrainConfig, evaluate, set_seed

pd.set_option("display.precision", 1)
pd.set_option("display.width", 120)
profile = wsg.get_profile(PROFILE)
RECIPE = wsg.recipes.get("fian", DATASET, profile)  # every hyper-parameter, with its source
print(wsg.describe_environment(profile))
''')


code(r'''
def box(ax, x, y, w, h, text, color):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02", fc=color, ec="0.3"))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8.5)


def arrow(ax, x0, y0, x1, y1):
    ax.annotate("", (x1, y1), (x0, y0), arrowprops=dict(arrowstyle="->", color="0.3"))


fig, ax = plt.subplots(figsize=(12, 4.2))
ax.set_xlim(0, 12)
ax.set_ylim(0, 4.2)
ax.axis("off")
box(ax, 0.1, 3.0, 1.9, 0.9, "words -> embedding\n-> BiGRU (Eqs. 1-3)\nQ [n_q, d_h]", "#fdf0e1")
box(ax, 0.1, 0.3, 1.9, 0.9, "clips -> FC -> self-att.\n-> BiGRU\nV [n_v, d_h]", "#e9f5f2")
box(ax, 2.6, 3.0, 2.3, 0.9, "Q1 = Enc(Q, V)\nV1 = Enc(V, Q1)  (Eq. 9)", "#e8ecf8")
box(ax, 2.6, 0.3, 2.3, 0.9, "V2 = Enc(V, Q)\nQ2 = Enc(Q, V2)  (Eq. 10)", "#e8ecf8")
box(ax, 2.6, 1.65, 2.3, 0.9, "Enc = LN(FFN(CGA(.)))\nCMA (4-5) + gate (6)\nFFN (7), encoder (8)", "#f2f2f2")
box(ax, 5.5, 1.4, 2.4, 1.4, "video-enhanced\nintegration\nQ1, Q2 -> n_v rows (11)\nconcat (12), gate r (13)\nM = LN(V + r Q) (14)", "#e8ecf8")
box(ax, 8.5, 1.4, 1.6, 1.4, "BiGRU over M\nConv1d per window\n(kernel = window,\nstride = w / 8)", "#f6e3e3")
box(ax, 10.4, 2.4, 1.5, 1.0, "confidence cs_j\n-> alignment loss\n(Eqs. 15-16)", "#f6e3e3")
box(ax, 10.4, 0.8, 1.5, 1.0, "offsets d_j\n-> boundary loss\n(Eq. 17)", "#f6e3e3")
arrow(ax, 2.0, 3.45, 2.6, 3.45)
arrow(ax, 2.0, 0.75, 2.6, 0.75)
arrow(ax, 2.0, 3.2, 2.6, 1.0)
arrow(ax, 2.0, 1.0, 2.6, 3.2)
arrow(ax, 4.9, 3.45, 5.5, 2.5)
arrow(ax, 4.9, 0.75, 5.5, 1.7)
arrow(ax, 7.9, 2.1, 8.5, 2.1)
arrow(ax, 10.1, 2.4, 10.4, 2.8)
arrow(ax, 10.1, 1.8, 10.4, 1.3)
ax.text(10.45, 0.35, "joint loss (Eq. 18)", fontsize=8.5)
ax.set_title("FIAN: the pipeline (equation numbers of the paper)", fontsize=10)
plt.show()
''', tags=["hide-input"])

# ============================================================================ data

md(r'''
## Data and sizes

The chapter runs on the Charades-like synthetic benchmark of the book (Chapter 1):
32 clips per video, two to four events per video that share a verb or an object,
one query per event, so the words must be read to tell the events apart. FIAN
reads the `moment` of each training query; the evaluation never shows it to the
model.

The paper's widths (Charades-STA): every BiGRU 512 wide, 4 attention heads,
GloVe {cite}`glove2014` word vectors (300-d), batch size 64, Adam {cite}`adam2015` at
$4 \cdot 10^{-4}$. The `full` profile uses these widths (word vectors are learned:
the synthetic world has no GloVe). The `tiny` profile (CPU) uses $d_h = 64$, 64-d word
embeddings and 4 heads (FFN width $4 d_h = 256$), batch size 64, and a larger
learning rate, $2 \cdot 10^{-3}$, because it trains for only a few epochs.
''')

code(r'''
bench = wsg.data.load_benchmark(DATASET, DATA_ROOT, FEATURES, profile, num_clips=RECIPE["num_clips"])
WIDTHS = RECIPE["model"]  # the recipe's model settings (widths; on real data also windows, stride, alpha)
LR, BATCH = RECIPE["lr"], RECIPE["batch_size"]
EPOCHS = EPOCHS or RECIPE["epochs"]
display(wsg.recipes.table(RECIPE))
print(bench.name, {split: len(df) for split, df in bench.splits.items()}, "queries")
print("data fields:", bench.model_kwargs(), "| widths:", WIDTHS, "| lr:", LR, "| epochs:", EPOCHS)

toy_batch = next(iter(bench.loader("train", batch_size=4, seed=SEED)))
torch.manual_seed(SEED)
toy = wsg.models.build("fian", **bench.model_kwargs(), word_dim=16, hidden=16, heads=2).eval()
print("toy batch:", {k: tuple(v.shape) for k, v in toy_batch.items() if torch.is_tensor(v)})
print("queries:", toy_batch["sentence"])
''')

# ============================================================================ Eqs. 1-3

md(r'''
## Encoding the query and the video (Eqs. 1-3)

Each word $q_i$ is embedded and read by a bidirectional GRU {cite}`gru2014`; the
representation of word $i$ concatenates the two directions,

$$
h_i^f = \mathrm{GRU}^f_q(q_i, h_{i-1}^f), \qquad h_i^b = \mathrm{GRU}^b_q(q_i, h_{i+1}^b), \qquad
h_i^q = [h_i^f; h_i^b] \quad \text{(Eqs. 1-3)}.
$$

(The paper prints $h_{i-1}^b$ in Eq. 2; a backward GRU reads from the end, so its
previous state is that of word $i + 1$.) The video side has no equation: the clip
features pass a fully-connected layer to width $d_h$, one multi-head self-attention
layer {cite}`transformer2017` with a residual connection and LayerNorm, and a BiGRU.
Both GRUs read only the real words and clips (packed sequences), so padding cannot
leak in through the backward direction. The check: the forward half of the last
real word and the backward half of the first word are the two final states of the
GRU, and padded positions are zero.
''')

code(r'''
words, wmask = toy_batch["words"], toy_batch["words_mask"]
Q = toy.query_encoder(words, wmask)
V = toy.video_encoder(toy_batch["video"], toy_batch["video_mask"])
print("Q = h^q:", tuple(Q.shape), " V = h^v:", tuple(V.shape))
half = Q.shape[-1] // 2
lengths = wmask.sum(1)
_, final = toy.query_encoder.encoder(words, wmask)  # the GRU's final states [fwd; bwd]
torch.testing.assert_close(Q[torch.arange(4), lengths - 1, :half], final[:, :half])
torch.testing.assert_close(Q[:, 0, half:], final[:, half:])
assert torch.all(Q[~wmask] == 0)
''')

# ============================================================================ Eqs. 4-5

md(r'''
## Cross-modal multi-head attention (Eqs. 4-5)

The attention takes its queries from one modality and its keys and values from the
other. With $n$ heads of width $d_k = d_h / n$,

$$
\mathrm{Att}_i(Q, V) = \operatorname{softmax}\!\left(\frac{Q W_i^Q (V W_i^K)^\top}{\sqrt{d_k}}\right) V W_i^V \quad \text{(Eq. 4)},
\qquad
\mathrm{CMA}(Q, V) = \operatorname{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_n)\, W^O \quad \text{(Eq. 5)}.
$$

Each head compares the two sequences in its own projected space, which is the
paper's argument against a single soft attention. Masked keys (padded words or
clips) get zero weight. The check computes every head from the equations with
explicit weight slices and compares with the library.
''')

code(r'''
cma = toy.iterative.qv_query.attention.cma  # the CMA inside the first encoder of Eq. 9
out, attn = cma(Q, V, toy_batch["video_mask"])
n, dk = cma.heads, cma.d_k
heads = []
for i in range(n):  # one head at a time, straight from Eq. 4
    sl = slice(i * dk, (i + 1) * dk)
    s = (Q @ cma.w_q.weight[sl].T) @ (V @ cma.w_k.weight[sl].T).transpose(1, 2) / math.sqrt(dk)
    heads.append(torch.softmax(s, dim=-1) @ (V @ cma.w_v.weight[sl].T))
reference = torch.cat(heads, dim=-1) @ cma.w_o.weight.T  # Eq. 5
torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-5)
print("CMA(Q, V):", tuple(out.shape), " attention:", tuple(attn.shape), "= [B, heads, words, clips]")
''')

# ============================================================================ Eq. 6

md(r'''
## The information gate: guided attention (Eq. 6)

Some heads may pick up noise. CGA filters the attended information with a gate that
looks at both the attending element and what it attended to, in the style of
"attention on attention" (AoA):

$$
\mathrm{CGA}(Q, V) = \sigma\big(W_q^g Q + W_v^g\, \mathrm{CMA}(Q, V) + b^g\big) \odot \big(W_q^i Q + W_v^i\, \mathrm{CMA}(Q, V) + b^i\big) \quad \text{(Eq. 6)}.
$$

The paper shares the projections, $W_q^g = W_q^i$ and $W_v^g = W_v^i$. Written with
$z = W_q Q + W_v\, \mathrm{CMA}(Q, V)$ this is $\sigma(z + b^g) \odot (z + b^i)$: the gate
and the information are the same linear map, differing only by their biases. So a
channel passes in proportion to its own (shifted) value, a smooth, learned
rectifier (with $b^g = b^i$ it is the SiLU $z\,\sigma(z)$). The check recomputes
Eq. 6 and confirms there are exactly two $d_h \times d_h$ matrices besides the CMA.
''')

code(r'''
cga = toy.iterative.qv_query.attention
with torch.no_grad():
    cga.b_g.normal_()  # non-zero biases, so the check sees them
    cga.b_i.normal_()
out, _ = cga(Q, V, toy_batch["video_mask"])
att, _ = cga.cma(Q, V, toy_batch["video_mask"])
z = Q @ cga.w_q.weight.T + att @ cga.w_v.weight.T
torch.testing.assert_close(out, torch.sigmoid(z + cga.b_g) * (z + cga.b_i))
gate_params = {name: tuple(p.shape) for name, p in cga.named_parameters() if not name.startswith("cma.")}
print("gate parameters (shared projections):", gate_params)
assert sorted(gate_params) == ["b_g", "b_i", "w_q.weight", "w_v.weight"]
with torch.no_grad():
    cga.b_g.zero_()
    cga.b_i.zero_()
''')

# ============================================================================ Eqs. 7-8

md(r'''
## The cross-modal encoder (Eqs. 7-8)

As in a Transformer encoder, the attended information is followed by a position-wise
feed-forward network,

$$
\mathrm{FFN}(X) = \max(0, X W^{(1)} + b^{(1)}) W^{(2)} + b^{(2)} \quad \text{(Eq. 7)}, \qquad
\mathrm{Encoder}(Q, V) = \mathrm{FFN}(\mathrm{CGA}(Q, V)) \quad \text{(Eq. 8)}.
$$

The paper says it leaves out of Eq. 8 the shortcut connections and the LayerNorm
that its Fig. 4(b) draws. We put them back in the usual post-LN form:

$$
X = \mathrm{LN}(Q + \mathrm{CGA}(Q, V)), \qquad \mathrm{Encoder}(Q, V) = \mathrm{LN}(X + \mathrm{FFN}(X)).
$$

The output has one row per element of $Q$: it is "$Q$ made aware of $V$". The same
block with the roles swapped, $\mathrm{Encoder}(V, Q)$, makes a query-aware video.
''')

code(r'''
enc = toy.iterative.qv_query
out, _ = enc(Q, V, toy_batch["video_mask"])
ffn = enc.ffn
x = F.layer_norm(Q + enc.attention(Q, V, toy_batch["video_mask"])[0], (Q.shape[-1],),
                 enc.norm1.weight, enc.norm1.bias)
ffn_x = torch.relu(x @ ffn.lin1.weight.T + ffn.lin1.bias) @ ffn.lin2.weight.T + ffn.lin2.bias  # Eq. 7
reference = F.layer_norm(x + ffn_x, (Q.shape[-1],), enc.norm2.weight, enc.norm2.bias)  # Eq. 8
torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-5)
print("Encoder(Q, V):", tuple(out.shape), "(one row per word)")
''')

# ============================================================================ Eqs. 9-10

md(r'''
## Symmetric iterative attention (Eqs. 9-10)

Two branches use four encoders (same structure, separate weights):

$$
Q^{(1)} = \mathrm{Encoder}(Q, V), \quad V^{(1)} = \mathrm{Encoder}(V, Q^{(1)}) \quad \text{(Eq. 9)}, \qquad
V^{(2)} = \mathrm{Encoder}(V, Q), \quad Q^{(2)} = \mathrm{Encoder}(Q, V^{(2)}) \quad \text{(Eq. 10)}.
$$

In the first branch the words first look at the video ("where should I look?") and
the clips then attend to those video-informed words; in the second the clips first
attend to the plain words and the words then look at the query-aware video. Each
branch yields a sentence-aware video ($V^{(1)}$, $V^{(2)}$, $n_v \times d_h$) and a
video-aware query ($Q^{(1)}$, $Q^{(2)}$, $n_q \times d_h$). The attention maps of all
four encoders are kept for the visualisations below.
''')

code(r'''
it = toy.iterative(Q, V, wmask, toy_batch["video_mask"])
for key in ("Q1", "V1", "V2", "Q2", "attn_Q1", "attn_V1", "attn_V2", "attn_Q2"):
    print(f"{key:8s}", tuple(it[key].shape))
vmask = toy_batch["video_mask"]
q1 = toy.iterative.qv_query(Q, V, vmask)[0]
torch.testing.assert_close(it["V1"], toy.iterative.qv_video(V, q1, wmask)[0])  # Eq. 9
v2 = toy.iterative.vq_video(V, Q, wmask)[0]
torch.testing.assert_close(it["Q2"], toy.iterative.vq_query(Q, v2, vmask)[0])  # Eq. 10
''')

# ============================================================================ Eqs. 11-14

md(r'''
## Video-enhanced integration (Eqs. 11-14)

The two video-aware queries carry information the videos lack, but they have $n_q$
rows (words) and the videos $n_v$ rows (clips). FIAN maps word positions to clip
positions with a learned matrix per branch,

$$
\hat{Q}^{(1)} = W_1 Q^{(1)} + b_1, \qquad \hat{Q}^{(2)} = W_2 Q^{(2)} + b_2, \qquad W_k \in \mathbb{R}^{n_v \times n_q} \quad \text{(Eq. 11)},
$$

concatenates by columns, gates and normalises:

$$
\hat{V} = [V^{(1)}, V^{(2)}], \quad \hat{Q} = [\hat{Q}^{(1)}, \hat{Q}^{(2)}] \quad \text{(Eq. 12)}, \qquad
r = \sigma(\hat{Q} W^r + b^r) \quad \text{(Eq. 13)}, \qquad
M = \mathrm{LayerNorm}(\hat{V} + r \odot \hat{Q}) \quad \text{(Eq. 14)}.
$$

**Eq. 11 fixes the query length.** $W_k$ has $n_q$ columns, so every query must have
the same number of word rows. We pad (with zero rows, after Eqs. 9-10) or cut every
query to `max_words` $= 30$ words inside the model, the same cut `wsg.data` applies
when it reads the sentences, so no word of a batch is ever dropped (our synthetic
queries have at most 7 words; Charades-STA sentences rarely exceed 20). Padded rows
are zeroed, so they add nothing. The paper gives $b_k \in \mathbb{R}^{n_q}$, which does
not fit an $n_v \times d_h$ result; we use one bias per clip, $b_k \in \mathbb{R}^{n_v}$.
The check recomputes Eq. 11 by zero-padding to 30 rows and multiplying by $W_1$, and
then Eqs. 12-14.
''')

code(r'''
vei = toy.integration
print("max_words (n_q) =", toy.config.max_words, "| W_1:", tuple(vei.proj[0].weight.shape), "= [n_v, n_q]")
q_pad = torch.zeros(4, toy.config.max_words, Q.shape[-1])
q_pad[:, : words.shape[1]] = it["Q1"] * wmask[..., None]  # zero rows for padded words
q_hat1 = vei.proj[0].weight @ q_pad + vei.proj[0].bias[:, None]  # Eq. 11, [B, n_v, d_h]
torch.testing.assert_close(vei.project(it["Q1"], wmask, 0), q_hat1, atol=1e-5, rtol=1e-5)

M, r = vei([it["V1"], it["V2"]], [it["Q1"], it["Q2"]], wmask)
v_hat = torch.cat([it["V1"], it["V2"]], -1)  # Eq. 12
q_hat = torch.cat([q_hat1, vei.project(it["Q2"], wmask, 1)], -1)
r_ref = torch.sigmoid(q_hat @ vei.gate.weight.T + vei.gate.bias)  # Eq. 13
torch.testing.assert_close(r, r_ref, atol=1e-5, rtol=1e-5)
torch.testing.assert_close(M, F.layer_norm(v_hat + r_ref * q_hat, (v_hat.shape[-1],), vei.norm.weight, vei.norm.bias),
                           atol=1e-5, rtol=1e-5)  # Eq. 14
print("M:", tuple(M.shape), "= [B, n_v, 2 d_h]")
''')

# ============================================================================ localisation

md(r'''
## Content-oriented localisation

Anchor-based methods score every window length from the feature of a single time
step. FIAN scores each candidate window from *all* the features inside it: after a
BiGRU over $M$ (giving $\hat{M}$), a `Conv1d` whose kernel size is the window length
$\theta_k$ and whose stride is $\theta_s$ = window minus overlap visits exactly the
windows $[j \theta_s, j \theta_s + \theta_k)$, and its output at step $j$ is a linear
function of the whole window. Two distinct convolutions per window length give the
confidence $cs_j$ (through a sigmoid) and the offsets
$\hat\delta_j = (\hat\delta^s_j, \hat\delta^e_j)$ of the two boundaries.

**The paper's windows on our clips.** On Charades-STA the paper uses 64 clips,
windows of 16, 24, 32 and 40 clips and a stride of 1/8 of the window. These are the
fractions 1/4, 3/8, 1/2 and 5/8 of the video. We keep the fractions on our 32 clips
(8, 12, 16, 20 clips) and the stride of 1/8, rounded half up to whole clips (a
convolution stride is an integer): 1, 2, 2 and 3 clips. That gives 50 candidates per
video, close to the paper's 53.
''')

code(r'''
T = bench.num_clips
rows = []
for name, n_clips in [("paper (Charades-STA)", 64), ("ours (synthetic)", T)]:
    sizes, strides = window_layout(n_clips)
    counts = [(n_clips - w) // s + 1 for w, s in zip(sizes, strides)]
    rows.append({"clips": n_clips, "windows (clips)": sizes, "strides (clips)": strides,
                 "candidates per size": counts, "candidates": sum(counts)})
display(pd.DataFrame(rows, index=["paper (Charades-STA)", "ours (synthetic)"]))
print("model candidates:", toy.num_candidates)
assert toy.num_candidates == rows[1]["candidates"] == 50

fig, ax = plt.subplots(figsize=(9, 3.2))
y = 0
for w, s in zip(toy.sizes, toy.strides):  # plotting only
    for start in range(0, T - w + 1, s):
        ax.plot([start, start + w], [y, y], color=plt.cm.viridis(toy.sizes.index(w) / 4), lw=2)
        y += 1
ax.set_xlim(0, T)
ax.set_xlabel("clip")
ax.set_ylabel("candidate j")
ax.set_title(f"the {toy.num_candidates} candidate windows (kernels {toy.sizes}, strides {toy.strides})", fontsize=10)
plt.show()

# the first window of the second size is one dot product of the Conv1d kernel with its clips
out_toy = toy(toy_batch)
f = wsg.models.fian._bigru(toy.localizer.gru, out_toy["M"], toy_batch["video_mask"])  # M_hat [B, T, d_h]
w, s = toy.sizes[1], toy.strides[1]
j = (T - toy.sizes[0]) // toy.strides[0] + 1  # index of that candidate in the flat list
conv = toy.localizer.score[1]
manual = torch.einsum("bwc,cw->b", f[:, :w], conv.weight[0]) + conv.bias[0]
torch.testing.assert_close(out_toy["logits"][:, j], manual, atol=1e-5, rtol=1e-5)
''')

# ============================================================================ losses

md(r'''
## The losses (Eqs. 15-18)

Let $o_j$ be the IoU of candidate $j$ (the window before regression) with the ground
truth. Candidates with $o_j > \tau = 0.55$ are positives, the others negatives,
counted over the whole batch ($N_{pos}$, $N_{neg}$). The **alignment loss** is a
cross-entropy with the IoU as a soft target, averaged *separately* over the two
groups, so the few positives weigh as much as the many negatives:

$$
\mathcal{L}_j = o_j \log cs_j + (1 - o_j) \log(1 - cs_j) \quad \text{(Eq. 15)}, \qquad
\mathcal{L}_{align} = \sum_{z \in \{pos, neg\}} -\frac{1}{N_z} \sum_{j \in z} \mathcal{L}_j \quad \text{(Eq. 16)}.
$$

The **boundary loss** regresses, on the positives only, the offsets
$\delta^s_j = s - \hat{s}_j$ and $\delta^e_j = e - \hat{e}_j$ from the candidate's
boundaries to the ground truth (in clips), with the smooth-L1 function $R_1$:

$$
\mathcal{L}_b = \frac{1}{N_{pos}} \sum_{j \in pos} R_1(\hat\delta^s_j - \delta^s_j) + R_1(\hat\delta^e_j - \delta^e_j) \quad \text{(Eq. 17)},
\qquad \mathcal{L} = \mathcal{L}_{align} + \alpha\, \mathcal{L}_b \quad \text{(Eq. 18)},
$$

with $\alpha = 0.005$ on Charades-STA. The cell computes all three from the equations
with explicit loops over queries and candidates, and compares with `FIAN.loss`.
''')

code(r'''
total, parts = toy.loss(toy_batch, out_toy)
total = total.detach()
cs = out_toy["scores"].detach()
offsets = out_toy["offsets"].detach()
tau, alpha = toy.config.tau, toy.config.alpha
pos_sum = neg_sum = b_sum = 0.0
n_pos = n_neg = 0
for b in range(4):  # explicit loops, straight from the equations
    gs, ge = (toy_batch["moment"][b] * T).tolist()
    for j, (s, e) in enumerate(toy.windows.tolist()):
        o = max(0.0, min(e, ge) - max(s, gs)) / (max(e, ge) - min(s, gs))
        L_j = o * torch.log(cs[b, j]) + (1 - o) * torch.log(1 - cs[b, j])  # Eq. 15
        if o > tau:
            pos_sum, n_pos = pos_sum + L_j, n_pos + 1
            err = offsets[b, j] - torch.tensor([gs - s, ge - e])
            b_sum = b_sum + F.smooth_l1_loss(err, torch.zeros(2), reduction="sum")  # the two R_1 terms
        else:
            neg_sum, n_neg = neg_sum + L_j, n_neg + 1
l_align = -pos_sum / max(n_pos, 1) - neg_sum / max(n_neg, 1)  # Eq. 16
l_b = b_sum / max(n_pos, 1)  # Eq. 17
print(f"positives {n_pos}, negatives {n_neg}; L_align {float(l_align):.4f}, L_b {float(l_b):.4f}; library {parts}")
torch.testing.assert_close(torch.as_tensor(l_align), torch.tensor(parts["align"]), atol=1e-5, rtol=1e-5)
torch.testing.assert_close(torch.as_tensor(l_b), torch.tensor(parts["boundary"]), atol=1e-5, rtol=1e-5)
torch.testing.assert_close(total, l_align + alpha * l_b, atol=1e-5, rtol=1e-5)  # Eq. 18
''')

md(r'''
**How many positives does a query get?** With windows of at least 8 of 32 clips and
$\tau = 0.55$, a ground truth shorter than $0.55 \times 8 = 4.4$ clips has no
positive candidate at all: the boundary loss never sees it and its best-matching
windows are trained only through their soft targets. The paper's windows (16 of 64
clips) have the same floor on Charades-STA. The count over the training split:
''')

code(r'''
train_gt = bench.train_moments() * T
iou_all = wsg.metrics.temporal_iou(toy.windows[None], train_gt[:, None, :])  # [N, K]
n_positive = (iou_all > tau).sum(1)
print(f"positives per training query: mean {n_positive.float().mean():.1f}, "
      f"none for {100 * (n_positive == 0).float().mean():.1f} % of the queries; "
      f"best window IoU: mean {iou_all.max(1).values.mean():.2f}")
''')

# ============================================================================ training

md(r'''
## Training

One `Trainer` serves every chapter. FIAN declares `supervision = "full"`, so the
trainer passes it the training batches *with* their `moment` (for the weak methods it
strips them). After each epoch the model is evaluated on the **validation** split and
the weights of the best epoch by validation R@1, IoU=0.5 are kept. The optimiser is
AdamW (no weight decay, i.e. Adam) at the learning rate stated above.
''')

code(r'''
set_seed(SEED)
model = wsg.models.build("fian", **bench.model_kwargs(), **WIDTHS)
print(model.config)
print(f"{sum(p.numel() for p in model.parameters()):,} parameters, {model.num_candidates} candidates per video")
trainer = Trainer(model, TrainConfig(epochs=EPOCHS, lr=LR, seed=SEED, protocol="2d-tan"))
start = time.perf_counter()
history = trainer.fit(bench.loader("train", BATCH, seed=SEED), bench.loader("val", 64))
train_seconds = time.perf_counter() - start
print(f"{train_seconds:.0f} s in all, {history['train_seconds'].mean():.1f} s per training epoch "
      f"on {wsg.train.choose_device(None)}; selected epoch {trainer.best_epoch}")
wsg.viz.training_curves(history, keys=["loss", "align", "boundary"])
plt.show()
''')

md(r'''
The curves show the usual two phases of grounding models: first the model learns
what an event looks like (the boundary loss drops, validation recall reaches about
the one-in-three of picking *an* event), then it learns which event the words
describe, and the alignment loss falls further.
''')

# ============================================================================ evaluation

md(r'''
## Evaluation

Test numbers follow the **"2d-tan" protocol** (greedy NMS at 0.5 over the ranked
list, a hit when IoU > m, strictly), with the model selected on the validation split.
Next to FIAN are the {term}`blind baselines <blind baseline>` of Chapter 1, which
never look at the query (a random ranking and the {term}`moment-frequency prior`), and
then the controls table the weak chapters use: chance among events, the swapped-query
control, and the blind rankings over FIAN's own windows. A prior is a low bar for a
model that sees the boundaries in training; the informative rows are chance among
events (did it find *this* event?) and the swapped query (does its answer follow the
words?).
''')

code(r'''
test = evaluate(model, bench.loader("test", 64), protocol="2d-tan")
blind = wsg.baselines.blind_baselines(bench, split="test", protocol="2d-tan")
prior = blind.loc["prior"]
table = wsg.viz.results_table({"FIAN (ours, synthetic, full supervision)": test,
                               "random": blind.loc["random"].to_dict(), "moment prior": prior.to_dict()},
                              protocol="2d-tan")
display(table)
import wsg.controls

controls = wsg.controls.table(model, bench, "test", "2d-tan", name="FIAN")
display(controls.round(1))
words_gain = controls.attrs["words gain R@1,IoU=0.5"]
print(f"FIAN R@1,IoU=0.5 = {test['R@1,IoU=0.5']:.1f} vs chance among events "
      f"{controls.loc['events', 'R@1,IoU=0.5']:.1f}; words gain {words_gain:.1f} points (one seed)")
if PRESET in ("charades", "activitynet") and profile.name == "tiny":
    assert test["R@1,IoU=0.5"] > controls.loc["events", "R@1,IoU=0.5"] + 20
    assert controls.loc["swapped query", "R@1,IoU=0.5"] <= test["R@1,IoU=0.5"] / 3
''')

md(r'''
For reference, the **paper's own numbers on real data** (Charades-STA with I3D
features, ActivityNet Captions with C3D features). A hit is "IoU larger than m"
with NMS, as in the 2D-TAN protocol; the paper does not say how the epoch was chosen
(Charades-STA has no validation split). They cannot be compared with the synthetic
numbers above: different data, features and, possibly, selection.
''')

code(r'''
paper_charades = pd.DataFrame(
    {"R@1,IoU=0.5": [23.63, 54.44, 58.55], "R@1,IoU=0.7": [8.89, 33.43, 37.72],
     "R@5,IoU=0.5": [58.92, 74.43, 87.80], "R@5,IoU=0.7": [29.52, 58.08, 63.52]},
    index=["CTRL", "SCDM", "FIAN"])
paper_charades.index.name = "paper's Table 3: Charades-STA (real data, as reported)"
paper_anet = pd.DataFrame(
    {"R@1,IoU=0.3": [47.43, 63.61, 64.10], "R@1,IoU=0.5": [29.01, 43.40, 47.90], "R@1,IoU=0.7": [10.34, 23.88, 29.81],
     "R@5,IoU=0.3": [75.32, 80.54, 87.59], "R@5,IoU=0.5": [59.17, 67.95, 77.64], "R@5,IoU=0.7": [37.54, 50.73, 59.66]},
    index=["CTRL", "CMIN", "FIAN"])
paper_anet.index.name = "paper's Table 1: ActivityNet Captions (real data, as reported)"
display(paper_charades, paper_anet)
''')

# ============================================================================ visualisation

md(r'''
## What the model attends to

**Attention maps of the two branches.** For a test query, the four maps (averaged over
heads): in the query-video branch (Eq. 9), the words attending to the clips
($Q^{(1)}$) and the clips attending to the video-aware words ($V^{(1)}$); in the
video-query branch (Eq. 10), the clips attending to the words ($V^{(2)}$) and the
words attending to the query-aware clips ($Q^{(2)}$). The green box marks the
ground-truth clips. Two queries of the same video are shown: the maps change with the
words.
''')

code(r'''
test_batch = next(iter(bench.loader("test", 64)))
model.eval()
with torch.no_grad():
    vis = model(test_batch)  # forward only (no loss): the labels are used for the plots, not by the model
ranked, ranked_scores = model.predict(strip_labels(test_batch), top_k=model.num_candidates)
regressed = model.regressed(vis)
video_idx = test_batch["video_idx"]
shared = next(v for v in video_idx.unique() if int((video_idx == v).sum()) >= 2)
examples = (video_idx == shared).nonzero().flatten()[:2].tolist()
examples += [i for i in range(len(video_idx)) if video_idx[i] != shared][:2]


def gt_clips(i):
    return [float(x) * T for x in test_batch["moment"][i]]


def draw_attention(i, axes):
    words = wsg.text.tokenize(test_batch["sentence"][i])
    L = int(test_batch["words_mask"][i].sum())
    gs, ge = gt_clips(i)
    xt = [str(t) if t % 4 == 0 else "" for t in range(T)]
    maps = [("attn_Q1", "Eq. 9: words -> clips (Q1)"), ("attn_V1", "Eq. 9: clips -> words (V1)"),
            ("attn_V2", "Eq. 10: clips -> words (V2)"), ("attn_Q2", "Eq. 10: words -> clips (Q2)")]
    for ax, (key, title) in zip(axes, maps):
        a = vis[key][i].mean(0)  # mean over heads
        if key in ("attn_Q1", "attn_Q2"):  # [words, clips]
            wsg.viz.heatmap(a[:L], ax=ax, xlabel="clip", ylabel="word", boxes=[((gs, ge), (0, L), "GT")],
                            xticklabels=xt, yticklabels=words[:L], title=title, colorbar=False)
        else:  # [clips, words]: shown transposed, clips along x as well
            wsg.viz.heatmap(a[:, :L].T, ax=ax, xlabel="clip", ylabel="word", boxes=[((gs, ge), (0, L), "GT")],
                            xticklabels=xt, yticklabels=words[:L], title=title, colorbar=False)


fig, axes = plt.subplots(len(examples), 4, figsize=(17, 2.6 * len(examples)))
for row, i in zip(axes, examples):
    draw_attention(i, row)
    row[0].set_ylabel(f"{test_batch['sentence'][i]}\nword", fontsize=8)
plt.tight_layout()
plt.show()
''')

md(r'''
**Candidate windows before and after boundary regression.** For the same queries,
the top three candidates after NMS (0.5, as in the evaluation), each drawn twice: the
window as the convolution saw it, and the moment after its predicted offsets are
applied. The grey curve is the confidence of the candidates of the smallest window
size, placed at their centres: where FIAN thinks the query is.
''')

code(r'''
def top_candidates(i, n=3):
    keep = wsg.metrics.nms(regressed[i], vis["scores"][i], 0.5, top_k=n)
    return keep


def draw_regression(i, ax):
    keep = top_candidates(i)
    preds, labels, scores = [], [], []
    for r, j in enumerate(keep.tolist()):  # at most three candidates: plotting only
        preds += [(model.windows[j] / T).tolist(), regressed[i, j].tolist()]
        labels += [f"#{r + 1} window", f"#{r + 1} regressed"]
        scores += [float(vis["scores"][i, j])] * 2
    n_small = (T - model.sizes[0]) // model.strides[0] + 1
    curve = torch.zeros(T)
    centres = ((model.windows[:n_small].mean(1))).long().clamp(max=T - 1)
    curve[centres] = vis["scores"][i, :n_small]
    wsg.viz.timeline(test_batch["moment"][i].tolist(), preds, scores, curve=curve.numpy(), ax=ax,
                     title=test_batch["sentence"][i], labels=labels)


fig, axes = plt.subplots(len(examples), 1, figsize=(9, 2.6 * len(examples)))
for ax, i in zip(axes, examples):
    draw_regression(i, ax)
plt.tight_layout()
plt.show()

top1 = vis["scores"].argmax(1)
iou_window = wsg.metrics.temporal_iou(model.windows[top1] / T, test_batch["moment"])
iou_regressed = wsg.metrics.temporal_iou(regressed[torch.arange(len(top1)), top1], test_batch["moment"])
print(f"top-1 IoU on this batch: window {iou_window.mean():.3f} -> regressed {iou_regressed.mean():.3f}")
''')

md(r'''
An explorer over the test batch (in a live notebook; the static page shows the first
query).
''')

code(r'''
def render(i):
    fig = plt.figure(figsize=(17, 5.2))
    grid = fig.add_gridspec(2, 4, height_ratios=[1, 1.1])
    draw_attention(i, [fig.add_subplot(grid[0, k]) for k in range(4)])
    draw_regression(i, fig.add_subplot(grid[1, :]))
    plt.tight_layout()


_ = wsg.viz.explorer(len(test_batch["sentence"]), render)
''')

# ============================================================================ ablations

md(r'''
## Ablations: reduced Tables 4 and 6

The paper's Table 4 replaces the guided attention by plain soft attention
("FIAN-Soft") or by multi-head attention without the gate ("FIAN-CMA"); its Table 6
varies the stride of the windows. We retrain each variant with the same seed for a
few epochs (fewer than the main run, so the paper's configuration is retrained under
the same short budget) and report the test split under the same protocol, the epoch
chosen on validation.

* **Table 4, reduced**: the attention block of all four encoders is soft attention
  (one head, no projections), CMA (Eqs. 4-5 without the gate) or CGA (Eq. 6, the
  paper). Unlike the paper's FIAN-Soft and FIAN-CMA, which also drop to a single
  video-query encoder, we keep the symmetric architecture, so only the attention
  changes.
* **Table 6, reduced**: strides of 1 clip, and of 1/8 (the paper's), 1/4 and 1/2 of
  the window (rounded half up to whole clips).

Short runs on small data are noisy. FIAN's training has the two phases seen in the
curves above, and in the `tiny` profile (6 epochs) the variants are compared while
they are leaving the first phase, so the tables say mostly *how soon* each variant
learns to read the query; a later take-off by an epoch moves R@1 by ten points or
more. Differences of that size are within what another seed would change; the `full`
profile trains each variant longer.
''')

code(r'''
ABL_EPOCHS = {"tiny": 6, "full": 15}[profile.name]


curves = {}  # validation R@1, IoU=0.5 per epoch of every variant


def short_run(name, epochs=ABL_EPOCHS, **change):
    """Train a FIAN variant from the same seed; test metrics + candidates + seconds per epoch."""
    set_seed(SEED)
    variant = wsg.models.build("fian", **bench.model_kwargs(), **{**WIDTHS, **change})
    tr = Trainer(variant, TrainConfig(epochs=epochs, lr=LR, seed=SEED, progress=False))
    hist = tr.fit(bench.loader("train", BATCH, seed=SEED), bench.loader("val", 64))
    curves[name] = hist.set_index("epoch")["val_R@1,IoU=0.5"]
    row = evaluate(variant, bench.loader("test", 64), protocol="2d-tan")
    return {**row, "candidates": variant.num_candidates, "s / epoch": hist["train_seconds"].mean()}


runs = {}
for name, change in {"soft attention": {"attention": "soft"}, "CMA (no gate)": {"attention": "cma"},
                     "CGA (paper)": {}}.items():  # a handful of variants
    runs[name] = short_run(name, **change)
table4 = pd.DataFrame(runs).T
table4.index.name = f"attention ({ABL_EPOCHS} epochs, 2d-tan, test)"
display(table4.round(1))

strides = {}
for name, frac in {"1 clip": None, "1/4 window": 0.25, "1/2 window": 0.5}.items():
    strides[name] = short_run(name, stride_fraction=frac)
strides["1/8 window (paper)"] = runs["CGA (paper)"]
curves["1/8 window (paper)"] = curves["CGA (paper)"]
table6 = pd.DataFrame(strides).T.loc[["1 clip", "1/8 window (paper)", "1/4 window", "1/2 window"]]
table6.index.name = f"stride ({ABL_EPOCHS} epochs, 2d-tan, test)"
display(table6.round(1))
for name, tab in [("attention", table4), ("stride", table6)]:
    print(f"best {name} variant by test R@1, IoU=0.5 in this run: {tab['R@1,IoU=0.5'].idxmax()}")

fig, axes = plt.subplots(1, 2, figsize=(11, 3), sharey=True)
for ax, tab, title in [(axes[0], table4, "attention (Table 4)"), (axes[1], table6, "stride (Table 6)")]:
    for name in tab.index:  # a handful of variants
        ax.plot(curves[name].index, curves[name].values, marker=".", label=name)
    ax.set_xlabel("epoch")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
axes[0].set_ylabel("validation R@1, IoU=0.5 (%)")
plt.tight_layout()
plt.show()
''')

md(r'''
The validation curves show what the short tables hide: every variant sits near the
one-in-three level of "some event" for a few epochs, then climbs once it has learnt
to read the query. Where a variant's curve leaves that plateau earlier, its row in the
table is higher; whether it would stay higher after a full training is a question for
the `full` profile (or for several seeds), not for these runs.

The paper's own ablation numbers (TACoS, real data, as reported; R@n at IoU 0.1, 0.3,
0.5), to read next to ours:
''')

code(r'''
paper_t4 = pd.DataFrame({"R@1,IoU=0.1": [34.97, 36.82, 39.55], "R@1,IoU=0.3": [27.53, 29.27, 33.87],
                         "R@1,IoU=0.5": [21.64, 23.05, 28.58], "R@5,IoU=0.5": [32.52, 34.61, 39.16]},
                        index=["FIAN-Soft", "FIAN-CMA", "FIAN"])
paper_t4.index.name = "paper's Table 4 (TACoS, real data)"
paper_t6 = pd.DataFrame({"R@1,IoU=0.1": [37.45, 39.55, 37.01, 38.43], "R@1,IoU=0.3": [29.83, 33.87, 30.32, 31.40],
                         "R@1,IoU=0.5": [21.09, 28.58, 25.84, 25.37], "R@5,IoU=0.5": [29.90, 39.16, 37.89, 41.81]},
                        index=["1", "1/8 window", "1/4 window", "1/2 window"])
paper_t6.index.name = "paper's Table 6 (TACoS, real data)"
display(paper_t4, paper_t6)
''')

# ============================================================================ weak vs full

md(r'''
## With and without temporal labels

The point of this chapter for the book: the same synthetic data, the same clips and
queries, the same protocol; FIAN learns from the moments, the weakly-supervised
methods only from which query goes with which video. Each method runs with **its own
recipe** (`wsg.recipes.get(key, DATASET, profile)`: the model settings, learning rate,
batch size and epochs of its own chapter, each with its source), selects its epoch on
the validation split and is evaluated once on the test split under the 2D-TAN
protocol, with **three seeds** each, next to the same controls for all: its
swapped-query run, its query-blind variant (one-token sentences), and chance among
events. Training fifteen models (thirty with the blind variants) does not belong in a
chapter, so the table reads the results store, written by one command (printed
below) and checked by a test that re-runs a stored row.

In the `tiny` profile these are the small CPU widths of the recipes, not the papers'
widths (FSAN alone has 80 million parameters at its paper widths); the `full` profile
uses the recipes' larger widths (`python -m wsg.experiments ... --profile full`).
''')

code(r'''
import wsg.experiments

store_file = wsg.experiments.find_store(DATASET, profile.name)
if not store_file.exists():
    print(f"no results store for {DATASET}/{profile.name}: run "
          f"`python -m wsg.experiments marn wsra vlanet fsan fian --datasets {DATASET} --profile {profile.name} --blind`")
else:
    store = wsg.experiments.load_results(store_file)
    print("produced by:", store["command"].iloc[0])
    metrics = ["R@1,IoU=0.3", "R@1,IoU=0.5", "R@1,IoU=0.7", "R@5,IoU=0.5", "mIoU", "event hit"]
    rows, order = {}, ["fian", "wsra", "vlanet", "fsan", "marn"]
    for key in [k for k in order if k in set(store["method"])]:
        sup = "full" if key == "fian" else "weak"
        for variant, runs in store[store.method == key].groupby("variant"):
            label = f"{key.upper()} ({sup})" + ("" if variant == "words" else ", query-blind")
            rows[label] = {**{m: f"{runs[m].mean():.1f} ± {runs[m].std(ddof=1):.1f}" for m in metrics},
                           "swapped R@1,IoU=0.5": f"{runs['swapped R@1,IoU=0.5'].mean():.1f}",
                           "seeds": len(runs), "s / run": f"{runs['seconds'].mean():.0f}"}
    ev = wsg.baselines.blind_baselines(bench, "test", protocol="2d-tan").loc["events"]
    rows["chance among events"] = {m: f"{ev[m]:.1f}" for m in metrics if m in ev}
    comparison = pd.DataFrame(rows).T.fillna("")
    comparison.index.name = f"system ({bench.name}, 2d-tan, test, mean ± std over seeds)"
    display(comparison)

    words = store[store.variant == "words"]
    means = words.groupby("method")[["R@1,IoU=0.3", "R@1,IoU=0.5", "R@1,IoU=0.7"]].mean()
    stds = words.groupby("method")[["R@1,IoU=0.3", "R@1,IoU=0.5", "R@1,IoU=0.7"]].std(ddof=1)
    fig, ax = plt.subplots(figsize=(9, 3.2))
    x = np.arange(3)
    keys = [k for k in order if k in means.index]
    for i, key in enumerate(keys):
        ax.bar(x + (i - len(keys) / 2) * 0.15, means.loc[key], 0.15, yerr=stds.loc[key],
               color="tab:green" if key == "fian" else f"C{i}", label=key.upper(), capsize=2)
    ax.axhline(ev["R@1,IoU=0.5"], color="k", ls="--", lw=1, label="chance among events")
    ax.set_xticks(x, ["IoU 0.3", "IoU 0.5", "IoU 0.7"])
    ax.set_ylabel("test R@1 (%), mean ± std")
    ax.legend(fontsize=8, ncol=3)
    ax.set_title("the same data with (FIAN) and without (the rest) temporal labels", fontsize=10)
    plt.show()
    weak_means = means.drop(index="fian")
    for metric in means.columns:
        best = weak_means[metric].idxmax()
        gap = means.loc["fian", metric] - weak_means.loc[best, metric]
        noise = stds.loc["fian", metric] + stds.loc[best, metric]
        print(f"{metric}: FIAN {means.loc['fian', metric]:.1f}, best weak {best.upper()} "
              f"{weak_means.loc[best, metric]:.1f}: labels buy {gap:.1f} points (sum of the two stds {noise:.1f})")
        assert gap > noise, metric  # what labels buy is outside the seed noise at every IoU
    # FIAN's query-blind variant: labels without words are worth chance among events
    fian_blind = store[(store.method == "fian") & (store.variant == "query-blind")]
    if len(fian_blind):
        assert abs(fian_blind["R@1,IoU=0.5"].mean() - ev["R@1,IoU=0.5"]) < 3
''')

md(r'''
Read the table in two ways. **After a full training**, FIAN is the reference: the gap
between its row and the best weak row, printed above for each IoU threshold with the
seed noise next to it, is what the temporal labels are worth on this data. Two things
make the gap large, and larger at stricter IoU. The weak methods must discover *both*
what the query refers to and where an event begins and ends, from pairings alone;
FIAN is told the boundaries, and its boundary loss learns to snap a coarse window onto
them. And every synthetic video holds two to four events of the same kind, so a
method that finds "an event" but not "this event" is right about one time in three:
the weak losses must push past that level through the words only, while FIAN's
alignment loss names the wrong candidates directly. **FIAN's query-blind row** makes
the second point concrete: with every temporal label but no words, it lands on chance
among events: labels teach *where events are*, only words teach *which one*.

The `s / run` column is the price of three seeds' training on a CPU core in the
`tiny` profile (wall seconds per seed, including validation after every epoch).
''')


# ============================================================================ ambiguities

md(r'''
## Where the paper is ambiguous or wrong, and what we chose

* **Eq. 11 fixes the query length.** $W_k \in \mathbb{R}^{n_v \times n_q}$ only works
  for one $n_q$. We pad (zero rows) or cut every query to `max_words = 30` inside the
  model, the cut `wsg.data` already applies, and we zero padded rows, so padding
  never changes a result (tested). A consequence worth knowing: $W_k$ ties clip $t$
  to word *position* $l$, so the mapping means something only on average over
  sentences; word 5 of one query has nothing to do with word 5 of another.
* **The bias of Eq. 11** is printed as $b_k \in \mathbb{R}^{n_q}$; the result is
  $n_v \times d_h$, so we use $b_k \in \mathbb{R}^{n_v}$ (one per clip).
* **Eq. 2** prints $h^b_{i-1}$ for the backward GRU; it reads from the end, so the
  previous state is $h^b_{i+1}$.
* **Shared gate projections (Eq. 6).** Sharing $W^g = W^i$ leaves gate and information
  differing only by their biases: CGA becomes the smooth rectifier
  $\sigma(z + b^g) \odot (z + b^i)$ of one linear map $z$. We implement exactly that
  (tested).
* **Residuals and LayerNorm.** Eq. 8 omits them on purpose; Fig. 4(b) has them. We
  use the post-LN Transformer form around the CGA and around the FFN.
* **"Same architecture"** for the two branches: four encoders with separate weights.
* **Widths and unstated parts.** "Hidden dimension of all BiGRUs 512" is taken as the
  concatenated width $d_h$; the FFN width ($4 d_h$), the video self-attention (one
  multi-head layer) and dropout (none) are not stated.
* **Windows on 32 clips.** The paper's windows are fractions of its 64 clips; we keep
  the fractions (8/12/16/20 clips) and the 1/8 stride, rounded half up to whole clips
  (1/2/2/3), since a convolution stride is an integer.
* **Units of the offsets** are not given; we use clips (the paper's coordinates run
  from 1 to $n_v$) and smooth-L1 with $\beta$ = 1 clip. With Adam, $\alpha$ scales
  only how much the boundary loss shapes the *shared* layers: the offset convolutions
  receive gradient from $\mathcal{L}_b$ alone, and Adam's step does not depend on its
  scale.
* **Positives** are IoU *strictly* above $\tau$ ("larger than"), $N_{pos}$ and
  $N_{neg}$ are counted over the batch ("in total"); an empty group adds zero, and a
  query whose moment is shorter than $0.55$ of the smallest window has no positive.
* **Inference.** The paper ranks "candidate moments" by confidence and applies NMS;
  we rank the *regressed* candidates, clamp them to the video, and keep the unshifted
  window where the offsets would reverse it. NMS is the protocol's job (2D-TAN's: 0.5).
* **Evaluation and selection.** The paper does not say how the epoch was chosen;
  Charades-STA has no validation split. Here the epoch is chosen on validation.
''')

# ============================================================================ exercises

md(r'''
## Exercises

```{exercise} Counting candidates
:label: fian-ex1

A Conv1d with kernel $\theta_k$ and stride $\theta_s$ over $n_v$ clips produces
$\lfloor (n_v - \theta_k) / \theta_s \rfloor + 1$ outputs. Compute the number of
candidates of our 32-clip layout for strides of 1 clip, 1/4 and 1/2 of the window,
and check your numbers against the `candidates` column of the reduced Table 6.
Which stride gives the most precise windows *before* regression, and why did the
paper not choose it?
```

```{solution} fian-ex1
:class: dropdown

Windows 8/12/16/20 clips. Stride 1: 25 + 21 + 17 + 13 = 76. Stride 1/4 (2/3/4/5
clips): 13 + 7 + 5 + 3 = 28. Stride 1/2 (4/6/8/10): 7 + 4 + 3 + 2 = 16. Stride 1/8
(1/2/2/3): 25 + 11 + 9 + 5 = 50. Stride 1 places windows most densely, so the best
window is closest to any ground truth before regression. The paper found it worse
(its Table 6): many nearly identical windows are positives for the same query, their
soft targets and regression targets differ only slightly, and the paper argues that
this confuses the regression. Dense candidates also cost more.
```

```{exercise} Why two averages?
:label: fian-ex2

Eq. 16 averages the positives and the negatives separately. Write the gradient of
$\mathcal{L}_{align}$ with respect to the logit of one positive candidate when a
batch has 10 positives and 1000 negatives, and compare with a plain binary
cross-entropy averaged over all 1010 candidates. What would a model trained with the
plain average tend to predict?
```

```{solution} fian-ex2
:class: dropdown

With $cs_j = \sigma(x_j)$, $\partial(-\mathcal{L}_j)/\partial x_j = cs_j - o_j$. In
Eq. 16 a positive's gradient is $(cs_j - o_j)/10$, a negative's $(cs_j - o_j)/1000$:
the 10 positives together weigh as much as the 1000 negatives. With the plain
average every candidate gets $(cs_j - o_j)/1010$, so the positives are 1 % of the
signal and the easiest way to lower the loss is to predict low confidence
everywhere; ranking then depends on small differences among low scores.
```

```{exercise} One branch or two
:label: fian-ex3

Train `wsg.models.build("fian", ..., branches="qv")` and `branches="vq"` (the paper's
FIAN-QVMA and FIAN-VQMA) with the settings of the ablation cell (`short_run`), and
compare with the two-branch model. What changes in Eqs. 12-14 when there is only one
branch?
```

```{solution} fian-ex3
:class: dropdown

`short_run(branches="qv")` and `short_run(branches="vq")`. With one branch, Eq. 12
concatenates a single video and a single projected query, so $\hat V$, $\hat Q$, $r$
and $M$ are $n_v \times d_h$ instead of $n_v \times 2 d_h$, and $W^r$ is
$d_h \times d_h$. The paper reports both single branches below the full model on TACoS
(R@1, IoU=0.5: 25.54 and 24.81 against 28.58). On the synthetic data, with short
runs, expect differences of the order of the seed-to-seed noise.
```

```{exercise} The floor of the windows
:label: fian-ex4

The cell after the loss check counts the training queries that have no positive
candidate. Which moments are they? Propose two changes that would give every query a
positive, and say what each costs.
```

```{solution} fian-ex4
:class: dropdown

Moments shorter than $\tau$ times the smallest window, $0.55 \times 8 = 4.4$ clips
(and moments that fall between window positions for the larger sizes): their best
IoU with any window is at most $\ell / 8 < 0.55$. Either add a smaller window (e.g.
4 clips), which adds candidates (29 with stride 1) and makes short false alarms more
likely, or lower $\tau$, which makes poorer windows "positive" and gives the boundary
loss larger, noisier offsets to learn. A third option is to assign the best window of
every query as a positive whatever its IoU (as many detectors do), which the paper
does not do.
```
''')

# ============================================================================ summary

md(r'''
## Summary

* FIAN {cite}`fian2020` encodes query and video with BiGRUs, lets them attend to each
  other in two symmetric iterative branches of guided multi-head attention (CMA plus
  an information gate, inside Transformer-style encoders), fuses the two
  sentence-aware videos with the two video-aware queries through a gate, and scores
  and refines multi-scale windows with one Conv1d per window length.
* It is trained with the moments: an alignment loss with the IoU as soft target,
  averaged separately over positives and negatives, and a smooth-L1 boundary loss on
  the positives.
* Eq. 11 needs a fixed query length: we pad or cut to 30 words inside the model.
  Other gaps of the paper (biases, residuals, widths, units of the offsets) are
  filled and listed above.
* On the synthetic Charades-like benchmark, under the 2d-tan protocol with the epoch
  chosen on validation, FIAN far exceeds the blind baselines, and it sets the
  reference that the weakly-supervised methods of the previous chapters are measured
  against: the table "with and without temporal labels" gives the gap in numbers.

## References

FIAN {cite}`fian2020`; the components it builds on, the GRU {cite}`gru2014`, GloVe
{cite}`glove2014`, the Transformer's multi-head attention {cite}`transformer2017` and
Adam {cite}`adam2015`; its features, I3D {cite}`i3d2017` and C3D {cite}`c3d2015`; the
datasets Charades {cite}`charades2016` with Charades-STA {cite}`tall2017`, ActivityNet
Captions {cite}`anetcaptions2017` and TACoS {cite}`tacos2013`; the evaluation protocol
of 2D-TAN {cite}`2dtan2020`; and the weakly-supervised methods it is compared with,
MARN {cite}`marn2020`, WSRA {cite}`wsra2020`, VLANet {cite}`vlanet2020` and FSAN
{cite}`fsan2021`.
''')


if __name__ == "__main__":
    chapter.write()
