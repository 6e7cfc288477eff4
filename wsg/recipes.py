"""Recipes: every method's hyper-parameters per dataset and profile, in one place.

A recipe is what a chapter, Chapter 6's comparison and the command line need to train
one method on one dataset::

    recipe = wsg.recipes.get("fian", "activitynet-captions", "full")
    bench = wsg.data.load_benchmark("activitynet-captions", root, features, num_clips=recipe["num_clips"])
    model = wsg.models.build("fian", **wsg.recipes.model_config(recipe, bench))
    trainer = Trainer(model, wsg.recipes.train_config(recipe, seed=0))

``get`` returns a plain dict:

=============== ===========================================================================
``model``       config overrides for :func:`wsg.models.build` (the data fields
                ``vocab_size``, ``video_dim``, ``num_clips`` come from the benchmark)
``lr``          AdamW learning rate
``epochs``      training epochs (the best epoch is then selected on the validation split)
``batch_size``  training batch size
``num_clips``   clips per video the benchmark resamples to (``None``: the loader's default)
``protocol``    evaluation protocol of :func:`wsg.metrics.recall_at`
``sources``     for every value above (model fields as ``"model.<name>"``): where it comes
                from -- ``"paper (<where>)"``, ``"ours (<why>)"`` or ``"tuned on validation"``
=============== ===========================================================================

**Datasets.** ``"charades"`` and ``"activitynet"`` are the synthetic presets
(:func:`wsg.data.load_synthetic`); ``"charades-sta"``, ``"activitynet-captions"``,
``"tacos"`` and ``"didemo"`` are the real benchmarks (:func:`wsg.data.load_benchmark`).
**Profiles.** ``"tiny"`` (CPU, minutes) and ``"full"`` (GPU). The synthetic recipes are
the settings the chapters use. A real-data recipe takes the paper's values where the
paper gives them for that dataset; its ``tiny`` profile keeps the dataset's structure
(clips, windows, strides, heads, loss weights) with the tiny widths, for smoke runs on
a CPU. Every value is defined once, here.

Word vectors: MARN, VLANet, FSAN and FIAN embed words with GloVe but none states the
width (MARN's are "pre-trained on Common Crawl"); WSRA uses GPT-2 sentence features
(its Sec. 4). The recipes' ``word_dim=300`` in ``full`` is ours (the width of GloVe's
Common Crawl vectors), and the embeddings are learned unless a GloVe file is given to
the model (a separate option).
"""
from __future__ import annotations

import copy
from typing import Any

import torch

METHODS = ("marn", "wsra", "vlanet", "fsan", "fian")
SYNTHETIC = ("charades", "activitynet")
REAL = ("charades-sta", "activitynet-captions", "tacos", "didemo")
DATASETS = SYNTHETIC + REAL
PROFILES = ("tiny", "full")
#: recipe entries that are not model-config fields (``windows``: see :func:`model_config`)
TRAIN_FIELDS = ("lr", "epochs", "batch_size", "num_clips", "protocol", "windows")
#: the window rules of :func:`model_config`: the recipe's windows, or windows read off the validation moments
WINDOW_RULES = ("recipe", "validation")

OURS = "ours"
CHAPTER = "ours (the method's chapter, synthetic data)"
NOT_GIVEN = "ours (the paper does not give it)"
Spec = dict[str, tuple[Any, str]]  # name -> (value, source); model fields are prefixed "model."


def _m(source: str, **fields) -> Spec:
    """Model fields with one source."""
    return {f"model.{k}": (v, source) for k, v in fields.items()}


def _t(source: str, **fields) -> Spec:
    """Training/data fields with one source."""
    return {k: (v, source) for k, v in fields.items()}


_WSRA_BG = ("tuned on validation (Chapter 3: Eq. 3 off, three seeds, both presets; the paper "
            "sets Eq. 11's alpha, the L_bg weight, to 0.1 for DiDeMo only, Sec. 4.1)")
_MARN_N = ("paper (MARN Sec. 4.2: N = 4 sampling points on both of its datasets, from W in R^{32x6x4x32} "
           "and R^{128x64x4x128})")
_FIAN_HIDDEN = ("paper (FIAN Sec. 4.3: 'Hidden dimension of all bi-directional GRUs is set as 512'; "
                "its FC also reduces the video features to 512)")
# The synthetic presets share FIAN's Charades-STA values (heads, batch): one text says so for both.
_FIAN_HEADS = "paper (FIAN Sec. 4.3: 4 heads on Charades-STA; 8 on ActivityNet Captions, as the ActivityNet-like preset)"
_FIAN_BATCH = ("paper (FIAN Sec. 4.3: 64 on Charades-STA and TACoS; the tiny runs keep it on the ActivityNet-like "
               "preset too, whose tiny training split is small; full takes the paper's 128)")

# ------------------------------------------------------------------ synthetic (the chapters)
# Base recipes on the synthetic Charades-like preset; "activitynet" differs only where listed
# in _SYNTHETIC_ANET. Values are those the chapters used before this module existed.
_SYNTHETIC: dict[str, dict[str, Spec]] = {
    "marn": {
        "tiny": {**_m(CHAPTER, reduction=4, proposal_dim=64, attention_dim=64, query_dim=64, word_dim=64,
                      decoder_dim=64),
                 **_m(_MARN_N, num_points=4),
                 **_m("paper (MARN Sec. 4.2: 0.1 on Charades-STA)", epsilon=0.1),
                 **_t(CHAPTER, lr=3e-3, batch_size=32),
                 **_t("tuned on validation (3 seeds, results/marn_scales_history.csv: the seed-mean R@1 climbs "
                      "past epoch 16; wsg.experiments.plateau_budget puts the plateau at 24 of the 30 run)",
                      epochs=30)},
        "full": {**_m(CHAPTER, reduction=2, proposal_dim=256, attention_dim=256, query_dim=256,
                      decoder_dim=256),
                 **_m("ours (MARN Sec. 4.2 uses GloVe 'pre-trained on Common Crawl' but gives no width; "
                      "300, learned here)", word_dim=300),
                 **_m(_MARN_N, num_points=4),
                 **_m("paper (MARN Sec. 4.2: 0.1 on Charades-STA)", epsilon=0.1),
                 **_t(CHAPTER, lr=1e-3, epochs=40, batch_size=32)},
    },
    "wsra": {
        "tiny": {**_m(CHAPTER, word_dim=64, text_hidden=64, hidden=128, phi_hidden=64),
                 **_m(_WSRA_BG, w_bg=0.0),
                 **_t(CHAPTER + " (10x the paper's 1e-4, Sec. 3.4; the two compared on validation over 3 seeds in "
                        "results/departures.csv)", lr=1e-3),
                 **_t(CHAPTER, epochs=12, batch_size=32)},
        "full": {**_m(CHAPTER, word_dim=300, text_hidden=256, hidden=256, phi_hidden=256),
                 **_m(_WSRA_BG, w_bg=0.0),
                 **_t(CHAPTER + " (10x the paper's 1e-4, Sec. 3.4; the two compared on validation over 3 seeds in "
                        "results/departures.csv)", lr=1e-3),
                 **_t(CHAPTER, epochs=30, batch_size=64)},
    },
    "vlanet": {
        "tiny": {**_m(CHAPTER, word_dim=64, hidden=64, dim=64), **_t(CHAPTER, lr=1e-3, epochs=10, batch_size=32)},
        "full": {**_m(CHAPTER, word_dim=300, hidden=256, dim=256), **_t(CHAPTER, lr=1e-3, epochs=30, batch_size=64)},
    },
    "fsan": {
        "tiny": {**_m(CHAPTER, word_dim=64, d_model=64, heads=4, layers=1),
                 **_t(CHAPTER, lr=1e-3, epochs=10, batch_size=32)},
        "full": {**_m("paper (FSAN Sec. 4.2: hidden dimensions 512)", d_model=512),
                 **_m("paper (FSAN Sec. 3.2: ICIM is a stack of 6 layers)", layers=6),
                 **_m("ours (FSAN Sec. 3.1 embeds tokens with GloVe but gives no width; 300, learned here)",
                      word_dim=300),
                 **_m(NOT_GIVEN, heads=8),
                 **_t("paper (FSAN Sec. 4.2: Adam, initial learning rate 0.0001)", lr=1e-4),
                 **_t(CHAPTER, epochs=30, batch_size=64)},
    },
    "fian": {
        "tiny": {**_m(CHAPTER, word_dim=64, hidden=64),
                 **_m(_FIAN_HEADS, heads=4),
                 **_t(CHAPTER + "; larger than the paper's Charades-STA 4e-4 (Sec. 4.3) for a short run", lr=2e-3),
                 **_t(CHAPTER, epochs=15),
                 **_t(_FIAN_BATCH, batch_size=64)},
        "full": {**_m(_FIAN_HIDDEN, hidden=512),
                 **_m("ours (FIAN Sec. 3.2 embeds words with GloVe but gives no width; 300, learned here)",
                      word_dim=300),
                 **_m(_FIAN_HEADS, heads=4),
                 **_t("paper (FIAN Sec. 4.3: 4e-4 on Charades-STA; 8e-4 on the ActivityNet-like preset, as on "
                      "ActivityNet Captions)", lr=4e-4),
                 **_t(CHAPTER, epochs=40),
                 **_t(_FIAN_BATCH, batch_size=64)},
    },
}
_SYNTHETIC_ANET: dict[str, Spec] = {
    "fian": {**_m("paper (FIAN Sec. 4.3, ActivityNet Captions: alpha 0.001, 8 heads, stride 1/4 of the window)",
                  alpha=0.001, heads=8, stride_fraction=0.25)},
    "marn": {**_m("paper (MARN Sec. 4.2: 0.3 on ActivityNet Captions)", epsilon=0.3),
             **_t("ours (30 epochs, as on the Charades-like preset: at 12 the validation R@1 was still "
                  "climbing; the best epoch is chosen on validation)", epochs=30)},
}

# ------------------------------------------------------------------ real data
_STRUCTURE = "structure (all profiles)"
_GLOVE = ("ours (the paper embeds words with GloVe but gives no width; 300, learned unless a GloVe file "
          "is given)")
_FULL_EPOCHS = "ours (the paper does not give it; the best epoch is selected on validation)"

# Per method and dataset: settings that shape the model to the dataset (every profile) ...
_REAL_STRUCTURE: dict[str, dict[str, Spec]] = {
    "marn": {
        "charades-sta": {**_t("paper (MARN Sec. 4.2: T = 32 on Charades-STA)", num_clips=32),
                         **_m("paper (MARN Sec. 4.2: six scales in [6, 12], read as 6..11)", scales=tuple(range(6, 12))),
                         **_m("paper (MARN Sec. 4.2: eps = 0.1 on Charades-STA; N = 4 from its W in R^{32x6x4x32})",
                              epsilon=0.1, num_points=4),
                         **_m("paper (MARN Sec. 4.2: r = 8 on Charades-STA, where it reduces 4096-d C3D to 512 "
                              "channels; on 1024-d I3D features r = 8 gives 128)", reduction=8)},
        "activitynet-captions": {
            **_t("paper (MARN Sec. 4.2: T = 128 on ActivityNet Captions)", num_clips=128),
            **_m("paper (MARN Sec. 4.2: 64 scales; read as 1..64 clips, ours)", scales=tuple(range(1, 65))),
            **_m("paper (MARN Sec. 4.2: dynamic stride s/4)", stride_fraction=0.25),
            **_m("paper (MARN Sec. 4.2: 0.3 on ActivityNet Captions)", epsilon=0.3),
            **_m(_MARN_N, num_points=4),
            **_m("ours (the paper's r = 32 is for 4096-d C3D: 128 channels; the common 500-d PCA C3D "
                 "features take r = 4: 125 channels)", reduction=4)},
        "tacos": {**_t("ours (long videos, as MARN's ActivityNet setting)", num_clips=128),
                  **_m("ours (TACoS moments are short: 1..32 of 128 clips)", scales=tuple(range(1, 33))),
                  **_m("ours (MARN's ActivityNet sparse stride)", stride_fraction=0.25),
                  **_m("ours (MARN's Charades value; TACoS is not in the paper)", epsilon=0.1),
                  **_m(_MARN_N, num_points=4),
                  **_m("ours (4096-d C3D as in MARN's ActivityNet setting: r = 32, 128 channels)", reduction=32)},
        "didemo": {**_t("ours (6 five-second chunks: the map is then exactly the 21 DiDeMo moments)", num_clips=6),
                   **_m("ours (1..6 chunks)", scales=tuple(range(1, 7))),
                   **_m("ours (MARN's Charades value; DiDeMo is not in the paper)", epsilon=0.1),
                   **_m(_MARN_N, num_points=4),
                   **_m("ours (4096-d VGG: r = 32, 128 channels as in the paper's ActivityNet Captions setting)",
                        reduction=32)},
    },
    "wsra": {
        "charades-sta": {**_t(NOT_GIVEN, num_clips=32),
                         **_m("paper (WSRA Sec. 4.2: windows of 20-50 % of the video, 80 % overlap)",
                              candidates="proportional", window_fractions=(0.2, 0.3, 0.4, 0.5), window_overlap=0.8),
                         **_m("ours (the paper's DiDeMo weights, Sec. 4.1; it gives none for Charades-STA, whose "
                              "Sec. 4.2 defers details to a supplement not available here)",
                              w_bg=0.1, w_crov=0.1, w_vas=0.1, w_ins=1.0)},
        "activitynet-captions": {**_t(NOT_GIVEN, num_clips=64),
                                 **_m("ours (WSRA's Charades-STA windows; ActivityNet is not in the paper)",
                                      candidates="proportional", window_fractions=(0.2, 0.3, 0.4, 0.5),
                                      window_overlap=0.8),
                                 **_m("ours (the paper's DiDeMo weights, Sec. 4.1)", w_bg=0.1, w_crov=0.1, w_vas=0.1,
                                      w_ins=1.0)},
        "tacos": {**_t(NOT_GIVEN, num_clips=128),
                  **_m("ours (short TACoS moments; TACoS is not in the paper)", candidates="proportional",
                       window_fractions=(0.05, 0.1, 0.2, 0.3), window_overlap=0.8),
                  **_m("ours (the paper's DiDeMo weights, Sec. 4.1)", w_bg=0.1, w_crov=0.1, w_vas=0.1, w_ins=1.0)},
        "didemo": {**_t("ours (one clip per 5-second chunk)", num_clips=6),
                   **_m("paper (WSRA Sec. 4.1: the 21 DiDeMo moments)", candidates="didemo"),
                   **_m("paper (WSRA Sec. 4.1, for DiDeMo: delta = 1 and alpha = lambda = gamma = 0.1; its lambda is "
                        "Eq. 11's beta, the L_crov weight w_crov)",
                        w_bg=0.1, w_crov=0.1, w_vas=0.1, w_ins=1.0),
                   **_m("paper (WSRA Sec. 4.1 and Fig. 5, DiDeMo validation: top K = 3, last K = 2 at batch 42)",
                        top_k=3, last_k=2, k_batch=42)},
    },
    "vlanet": {
        "charades-sta": {**_t(NOT_GIVEN, num_clips=32),
                         **_m("paper (VLANet Sec. 4.3 and Table 3: windows 176/208/240 frames, stride 8)",
                              window_frames=(176.0, 208.0, 240.0), stride_frames=8.0)},
        "activitynet-captions": {**_t(NOT_GIVEN, num_clips=64),
                                 **_m("ours (VLANet's Charades-STA windows as fractions of the video)",
                                      window_frames=(176.0, 208.0, 240.0), stride_frames=8.0)},
        "tacos": {**_t(NOT_GIVEN, num_clips=128),
                  **_m("ours (VLANet's Charades-STA windows as fractions of the video)",
                       window_frames=(176.0, 208.0, 240.0), stride_frames=8.0)},
        "didemo": {**_t("ours (one clip per 5-second chunk)", num_clips=6),
                   **_m("paper (VLANet Sec. 4.1: the 21 possible DiDeMo moments)", candidates="didemo")},
    },
    "fsan": {
        "charades-sta": {**_t(NOT_GIVEN, num_clips=32)},
        "activitynet-captions": {**_t(NOT_GIVEN, num_clips=64)},
        "tacos": {**_t(NOT_GIVEN, num_clips=128)},
        "didemo": {**_t("ours (6 chunks: FSAN's spans are then the 21 DiDeMo moments)", num_clips=6)},
    },
    "fian": {
        "charades-sta": {**_t("paper (FIAN Sec. 4.3: 64 clips on Charades-STA)", num_clips=64),
                         **_m("paper (FIAN Sec. 4.3: kernels 16/24/32/40 of 64, stride 1/8 on Charades-STA)",
                              window_fractions=(0.25, 0.375, 0.5, 0.625), stride_fraction=0.125),
                         **_m("paper (FIAN Sec. 4.3, Charades-STA: alpha 0.005, 4 heads, tau 0.55)",
                              alpha=0.005, heads=4, tau=0.55)},
        "activitynet-captions": {
            **_t("paper (FIAN Sec. 4.3: 200 clips on ActivityNet Captions)", num_clips=200),
            **_m("paper (FIAN Sec. 4.3: kernels 16/32/64/96/128/160/192, stride 1/4 on ActivityNet Captions)",
                 window_sizes=(16, 32, 64, 96, 128, 160, 192), stride_fraction=0.25),
            **_m("paper (FIAN Sec. 4.3, ActivityNet Captions: alpha 0.001, 8 heads, tau 0.55)",
                 alpha=0.001, heads=8, tau=0.55)},
        "tacos": {**_t("paper (FIAN Sec. 4.3: 200 clips on TACoS)", num_clips=200),
                  **_m("paper (FIAN Sec. 4.3: kernels 8/16/32/64, stride 1/8 on TACoS)",
                       window_sizes=(8, 16, 32, 64), stride_fraction=0.125),
                  **_m("paper (FIAN Sec. 4.3, TACoS: alpha 0.005, 8 heads, tau 0.55)",
                       alpha=0.005, heads=8, tau=0.55)},
        "didemo": {**_t("ours (one clip per 5-second chunk; DiDeMo is not in the paper)", num_clips=6),
                   **_m("ours (every span of 1..6 chunks: the 21 DiDeMo moments)",
                        window_sizes=(1, 2, 3, 4, 5, 6), stride_fraction=None),
                   **_m("ours (FIAN's Charades-STA values)", alpha=0.005, heads=4, tau=0.55)},
    },
}

# ... and the training settings and widths of the full profile (tiny keeps the synthetic tiny ones).
_REAL_FULL: dict[str, dict[str, Spec]] = {
    "marn": {
        "*": {**_m(NOT_GIVEN + "; MARNConfig defaults", proposal_dim=512, query_dim=512, attention_dim=512,
                   decoder_dim=512),
              **_m(_GLOVE, word_dim=300), **_t(NOT_GIVEN, lr=1e-3, batch_size=32), **_t(_FULL_EPOCHS, epochs=30)},
    },
    "wsra": {
        "*": {**_m(NOT_GIVEN + "; WSRAConfig defaults", text_hidden=256, hidden=256, phi_hidden=256),
              **_m("ours (300-d word vectors, learned unless a GloVe file is given; the paper uses GPT-2 "
                   "sentence features, Sec. 4)", word_dim=300),
              **_t("paper (WSRA Sec. 3.4: Adam, constant learning rate 1e-4)", lr=1e-4),
              **_t("paper (WSRA Sec. 4.1 and Fig. 5: batch 42 in its DiDeMo top/last-K experiment; "
                   "the other datasets keep it)", batch_size=42), **_t(_FULL_EPOCHS, epochs=30)},
    },
    "vlanet": {
        "*": {**_m(NOT_GIVEN + "; VLANetConfig defaults", hidden=256, dim=256), **_m(_GLOVE, word_dim=300),
              **_t(NOT_GIVEN, lr=1e-3, batch_size=64), **_t(_FULL_EPOCHS, epochs=30)},
    },
    "fsan": {
        "*": {**_m("paper (FSAN Sec. 4.2: hidden dimensions 512, dropout 0.1, 'for all datasets')", d_model=512,
                   dropout=0.1),
              **_m("paper (FSAN Sec. 3.2: ICIM is a stack of 6 layers)", layers=6),
              **_m("paper (FSAN Sec. 4.2: the loss weights of Eq. 13 set to 1/3 equally)",
                   lambdas=(1 / 3, 1 / 3, 1 / 3)),
              **_m(NOT_GIVEN, heads=8), **_m(_GLOVE, word_dim=300),
              **_t("paper (FSAN Sec. 4.2: Adam at 1e-4, batch 128 'for all datasets', i.e. ActivityNet Captions "
                   "and DiDeMo)", lr=1e-4, batch_size=128),
              **_t(_FULL_EPOCHS, epochs=30)},
    },
    "fian": {
        "*": {**_m(_FIAN_HIDDEN, hidden=512), **_m(_GLOVE, word_dim=300),
              **_t(_FULL_EPOCHS, epochs=40)},
        "charades-sta": _t("paper (FIAN Sec. 4.3: Adam, Charades-STA)", lr=4e-4, batch_size=64),
        "activitynet-captions": _t("paper (FIAN Sec. 4.3: Adam, ActivityNet Captions)", lr=8e-4, batch_size=128),
        "tacos": _t("paper (FIAN Sec. 4.3: Adam, TACoS)", lr=4e-4, batch_size=64),
        "didemo": _t("ours (FIAN's Charades-STA values)", lr=4e-4, batch_size=64),
    },
}
# ... and in full, the ActivityNet-like preset takes the paper's ActivityNet Captions training settings
_SYNTHETIC_ANET_FULL: dict[str, Spec] = {
    "fian": _t("paper (FIAN Sec. 4.3: Adam at 8e-4, batch 128 on ActivityNet Captions)", lr=8e-4, batch_size=128),
}
_REAL_TINY_EPOCHS = "ours (a CPU smoke run on real data)"


def _check(key: str, dataset: str, profile) -> tuple[str, str, str]:
    key = str(key).strip().lower()
    if key not in METHODS:
        raise ValueError(f"unknown method {key!r}; known: {', '.join(METHODS)}")
    dataset = str(dataset).strip().lower()
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)} "
                         f"(synthetic presets: {', '.join(SYNTHETIC)}; real: {', '.join(REAL)})")
    name = getattr(profile, "name", profile)  # a wsg.Profile or its name
    name = str(name).strip().lower()
    if name not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    return key, dataset, name


def get(key: str, dataset: str = "charades", profile="tiny") -> dict:
    """The recipe of method ``key`` on ``dataset`` in ``profile`` (see the module docstring).

    Args:
        key: one of :data:`METHODS`.
        dataset: one of :data:`DATASETS` (synthetic presets or real benchmarks).
        profile: ``"tiny"``, ``"full"`` or a :class:`wsg.Profile`.

    Returns:
        A fresh dict (safe to modify): ``model``, ``lr``, ``epochs``, ``batch_size``,
        ``num_clips``, ``protocol``, ``sources``, plus ``key``, ``dataset``, ``profile``.

    Raises:
        ValueError: unknown method, dataset or profile (the message lists the known ones).
    """
    key, dataset, profile = _check(key, dataset, profile)
    spec: Spec = {"num_clips": (None, "ours (the loader's default: 32 Charades-like, 64 ActivityNet-like)"),
                  "protocol": ("2d-tan", "ours (the book's default protocol; see book/evaluation_protocols.md)")}
    if dataset in SYNTHETIC:
        spec.update(_SYNTHETIC[key][profile])
        if dataset == "activitynet":
            spec.update(_SYNTHETIC_ANET.get(key, {}))
            if profile == "full":
                spec.update(_SYNTHETIC_ANET_FULL.get(key, {}))
    else:
        spec.update(_SYNTHETIC[key]["tiny"])  # the tiny widths; replaced below in full
        if profile == "tiny":
            spec["epochs"] = (3, _REAL_TINY_EPOCHS)
        else:
            spec.update(_REAL_FULL[key].get("*", {}))
            spec.update(_REAL_FULL[key].get(dataset, {}))
        spec.update(_REAL_STRUCTURE[key][dataset])
    recipe: dict = {"key": key, "dataset": dataset, "profile": profile, "model": {}, "sources": {}}
    for name, (value, source) in spec.items():
        if name.startswith("model."):
            recipe["model"][name[len("model."):]] = copy.deepcopy(value)
        else:
            recipe[name] = value
        recipe["sources"][name] = source
    return recipe


def train_config(recipe: dict, **overrides):
    """A :class:`wsg.train.TrainConfig` with the recipe's ``lr``, ``epochs`` and ``protocol``, and its
    profile's ``amp`` and ``max_minutes``.

    ``overrides`` are further TrainConfig fields (``seed``, ``checkpoint_dir``, ``epochs``, ...).
    """
    from wsg.profiles import get_profile
    from wsg.train import TrainConfig

    profile = get_profile(recipe["profile"])
    fields = {"lr": recipe["lr"], "epochs": recipe["epochs"], "protocol": recipe["protocol"],
              "amp": profile.amp, "max_minutes": profile.max_minutes}
    return TrainConfig(**{**fields, **overrides})


def marn_scales(moments: torch.Tensor, num_clips: int) -> tuple[int, ...]:
    """MARN proposal scales for a dataset without paper scales: lower quartile to 95th percentile
    of the given moments' lengths, in clips (:func:`wsg.models.marn.scales_from_lengths`).
    :func:`model_config` passes the *validation* moments: the scale set is a choice, made on
    validation like every other one; a weakly-supervised method never reads a training moment."""
    from wsg.models.marn import scales_from_lengths

    return scales_from_lengths(moments, num_clips)


def validation_windows(moments: torch.Tensor, count: int, num_clips: int) -> tuple[float, ...]:
    """``count`` window lengths (fractions of the video) that split the given moments' lengths into
    equal shares: the length quantiles at ``(i + 1/2) / count``, at least one clip long.

    Ours, not a paper's: VLANet's and WSRA's windows are fixed fractions of every video, set for
    Charades-STA; on a world whose moments are shorter or longer they cannot express its moments
    (their *candidate ceiling*, ``scripts/candidate_ceiling.py``). :func:`model_config` passes the
    **validation** moments, as for MARN's scales.
    """
    lengths = (moments[:, 1] - moments[:, 0]).double()
    levels = (torch.arange(count, dtype=torch.float64) + 0.5) / count
    return tuple(max(float(q), 1.0 / num_clips) for q in torch.quantile(lengths, levels))


def model_config(recipe: dict, bench, **changes) -> dict:
    """Everything :func:`wsg.models.build` needs: the benchmark's data fields + the recipe's model.

    MARN's scales, when the recipe has none (the synthetic presets), come from
    :func:`marn_scales` on the benchmark's **validation** moments (never the training split's:
    weak supervision). With ``recipe["windows"] == "validation"`` (an option of ours; default
    ``"recipe"``) VLANet's and WSRA's window lengths come from :func:`validation_windows` on the same
    moments, as many windows as the recipe has, and FSAN's decoded spans are limited to the range of
    :func:`marn_scales` (``FSANConfig.span_lengths``). ``changes`` override the result (ablations).

    Raises:
        ValueError: MARN without recipe scales (or validation windows) on a benchmark with no
            validation split; validation windows for a method without windows; an unknown rule.
    """
    config = {**bench.model_kwargs(), **copy.deepcopy(recipe["model"])}
    rule = recipe.get("windows", "recipe")
    if rule not in WINDOW_RULES:
        raise ValueError(f"recipe windows must be one of {WINDOW_RULES}, got {rule!r}")
    needs_val = (recipe["key"] == "marn" and "scales" not in config) or rule == "validation"
    if needs_val and "val" not in bench.splits:
        raise ValueError(f"{bench.name}: {recipe['key']}'s proposal lengths are chosen on the validation split, and "
                         f"this benchmark has none (splits {sorted(bench.splits)}); give them explicitly")
    if recipe["key"] == "marn" and "scales" not in config:
        config["scales"] = marn_scales(bench.moments("val"), bench.num_clips)
    if rule == "validation":
        from wsg.models.vlanet import VLANetConfig
        from wsg.models.wsra import WSRAConfig

        if recipe["key"] == "vlanet":
            count = len(config.get("window_frames", VLANetConfig.window_frames))
            frames = config.get("video_frames", VLANetConfig.video_frames)
            config["window_frames"] = tuple(f * frames for f in
                                            validation_windows(bench.moments("val"), count, bench.num_clips))
        elif recipe["key"] == "wsra":
            count = len(config.get("window_fractions", WSRAConfig.window_fractions))
            config["window_fractions"] = validation_windows(bench.moments("val"), count, bench.num_clips)
        elif recipe["key"] == "fsan":  # the shortest and longest of MARN's rule, in FSAN's pooled clips
            scales = marn_scales(bench.moments("val"), config.get("pool_clips") or config["num_clips"])
            config["span_lengths"] = (scales[0], scales[-1])
        else:
            raise ValueError(f"windows='validation' applies to VLANet, WSRA and FSAN, not {recipe['key']}")
    return {**config, **changes}


def table(recipe: dict):
    """The recipe as a DataFrame (setting, value, source), for a chapter to display."""
    import pandas as pd

    rows = [(name, recipe[name] if not name.startswith("model.") else recipe["model"][name[6:]], src)
            for name, src in recipe["sources"].items()]
    df = pd.DataFrame(rows, columns=["setting", "value", "source"]).set_index("setting")
    df["value"] = df["value"].map(repr)
    return df
