"""Builder of Chapter 1, ``notebooks/01_task_data_evaluation.ipynb``.

The notebook is generated from this script (and stored without outputs), so the
chapter can be reviewed and diffed as plain Python. Regenerate it with::

    python notebooks/src/01_task_data_evaluation.py
"""
from __future__ import annotations

from nbbuild import Chapter

chapter = Chapter("01_task_data_evaluation.ipynb", "ch1")
md, code = chapter.md, chapter.code

# ============================================================================ set-up

md(r'''
# The task, the data and honest evaluation

This chapter lays the ground for the five method chapters. It defines the task
and the two kinds of supervision, shows the four public benchmarks in their
file formats, introduces the synthetic benchmark that every chapter runs on by
default, and defines the metrics. It then shows, with numbers, how far the
evaluation protocol alone moves them, and which scores a method gets without
looking at the query at all. Each claim in the prose is checked by an `assert`
in the code next to it, so the chapter stops building if the library ever
stops supporting it.

The line printed by the set-up cells below says which `wsg` version, device and profile produced the
outputs on this page.
''')


code(r'''
# Colab set-up: installs wsg from the book's repository when it is not importable.
try:
    import wsg
except ImportError:
    %pip install -q "wsg-book @ git+https://github.com/wsg-book/wsg"
''', tags=["skip-execution", "nbval-skip", "remove-cell"])

code(r'''
PROFILE = None  # None: $WSG_PROFILE, else "full" with a GPU and "tiny" without
SEED = 0
''', tags=["parameters"])

code(r'''
import json
import shutil
import tempfile
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

import wsg
import wsg.baselines
import wsg.controls
import wsg.data
import wsg.experiments
import wsg.metrics
import wsg.models
import wsg.proposals
import wsg.text
import wsg.viz
from wsg.data.annotations import AnnotationRepairWarning, apply_moment_policies
from wsg.data.synthetic import TEMPLATES

pd.set_option("display.precision", 2)
pd.set_option("display.width", 120)
profile = wsg.get_profile(PROFILE)
print(wsg.describe_environment(profile))
''')


# ============================================================================ the task

md(r'''
## What temporal grounding is

A video is given as a sequence of clip features $V = (v_1, \dots, v_T)$, one
vector $v_t \in \mathbb{R}^D$ per short stretch of footage, and lasts $\tau$
seconds. A query is a sentence $Q = (w_1, \dots, w_L)$, such as "the person
opens the door". {term}`Temporal grounding` asks for the {term}`moment` of the
video the sentence describes: an interval $(\tau_s, \tau_e)$ in seconds, or
$g = (s, e) = (\tau_s / \tau, \tau_e / \tau)$ in normalised time. The task in
this form was introduced with TALL on Charades-STA {cite}`tall2017` and with
MCN on DiDeMo {cite}`didemo2017`.

Models do not answer with one interval but with a ranked list of candidate
moments:

$$
f_\theta(V, Q) = (p_1, p_2, \dots, p_K), \qquad p_k = (s_k, e_k),\quad 0 \le s_k < e_k \le 1,
$$

best first. The metrics below judge the first candidate ("R@1") or the first
$n$ ("R@$n$"). Every model in `wsg` returns such a list from
`predict(batch, top_k)`, as normalised moments of shape `[B, K, 2]`.
''')

md(r'''
## Weak versus full supervision

What separates the two settings is what the training split reveals:

| setting | a training example | at test time the model gets | it is scored against |
| --- | --- | --- | --- |
| full supervision | $(V, Q, g)$: video, query **and** moment | $(V, Q)$ | $g$ |
| weak supervision | $(V, Q)$: video and query only | $(V, Q)$ | $g$ |

Under {term}`weak supervision` a training pair only says that the sentence
describes something that happens *somewhere* in the video. Such pairs are much
cheaper to collect than boundaries, but the model now has to discover where the
words and the footage agree, through reconstruction (MARN {cite}`marn2020`),
attention with contrastive losses (WSRA {cite}`wsra2020`, VLANet
{cite}`vlanet2020`) or token-by-clip alignment (FSAN {cite}`fsan2021`). FIAN
{cite}`fian2020`, trained with boundaries, is the book's fully-supervised
reference point. Validation and test splits keep their moments in both
settings: without them grounding cannot be measured.

In `wsg` the split between the two is structural rather than a matter of
discipline. A batch is a dictionary, the moment is one of its keys, and the
trainer passes every training batch of a weakly-supervised model through
`wsg.models.strip_labels` (via `wsg.train.training_view`) before the model sees
it. The same function removes `query_idx`, the query's row in its table: it is
no temporal label, but where a video's queries are written in time order (as in
ActivityNet Captions' paragraphs) a row number says where the moment is, so only
the evaluator may keep it. Here is a real training batch of the synthetic
benchmark that we meet properly below.
''')

code(r'''
bench = wsg.data.load_synthetic("charades", profile, seed=SEED)
batch = next(iter(bench.loader("train", batch_size=4, seed=SEED)))
for key, value in batch.items():
    shape = tuple(value.shape) if torch.is_tensor(value) else f"list of {len(value)}"
    print(f"{key:11s} {shape}")
print("\nfirst query:", repr(batch["sentence"][0]), "-> moment", batch["moment"][0].numpy().round(3))

supervision = {key: wsg.models.supervision_of(key) for key in ["marn", "wsra", "vlanet", "fsan", "fian"]}
print("supervision:", supervision)

weak_view = wsg.models.strip_labels(batch)
print("removed for weak models:", sorted(set(batch) - set(weak_view)))
assert "moment" in batch and "moment" not in weak_view
assert set(weak_view) == set(batch) - {"moment", "query_idx"}
assert [k for k, s in supervision.items() if s == "full"] == ["fian"]
''')

# ============================================================================ real datasets

md(r'''
## The four benchmarks and their files

The methods of this book report results on four public benchmarks. The numbers
of video-sentence pairs below are those the papers report for the usual splits.

| benchmark | videos | pairs (train / val / test) | annotation format |
| --- | --- | --- | --- |
| Charades-STA {cite}`tall2017` | indoor scenes from Charades {cite}`charades2016`, about 30 s | 12,408 / (none) / 3,720 | TALL text lines; durations from the Charades csv |
| ActivityNet Captions {cite}`anetcaptions2017` | YouTube videos of ActivityNet {cite}`activitynet2015`, about two minutes | 37,417 / 17,505 / 17,031 | one json object per split |
| DiDeMo {cite}`didemo2017` | Flickr videos cut to at most 30 s | 33,005 / 4,180 / 4,021 | json list with every annotator's chunk pair |
| TACoS {cite}`tacos2013` | long cooking videos | 10,146 / 4,589 / 4,083 | json with frame indices and fps (2D-TAN's release) |

**Charades-STA.** Each line of `charades_sta_{train,test}.txt` reads
`VIDEOID START END##sentence`, with times in seconds. The video durations are
not in that file: they come from the `length` column of the Charades metadata,
`Charades_v1_{train,test}.csv`. There is no official validation split.

**ActivityNet Captions.** `train.json`, `val_1.json` and `val_2.json` map each
video id to its `duration`, a list of `timestamps` and the matching list of
`sentences`. Since the captions of the original test split are not public,
papers validate on `val_1` and test on `val_2`.

**DiDeMo.** `{train,val,test}_data.json` is a list of records. Videos are cut
into 5-second chunks and a moment is a pair of chunk indices $(i, j)$; each
record holds the `times` that four (occasionally more) annotators marked.

**TACoS.** In the json released with 2D-TAN {cite}`2dtan2020`, each video has
`num_frames`, `fps` and `timestamps` given as frame indices; seconds are
frames divided by fps.

**Features.** Nobody trains these models on pixels. Clip features are
extracted once with a pretrained network and shared: VGG {cite}`vgg2015`
features for Charades-STA were released with the 2D-TAN code and I3D
{cite}`i3d2017` features are also widely used; ActivityNet Captions uses the
C3D {cite}`c3d2015` features that accompany the ActivityNet challenge data,
reduced to 500 dimensions by PCA; DiDeMo's authors distribute VGG (RGB) and
optical-flow features with their LocalizingMoments code; TACoS uses C3D
features, distributed with the TALL and 2D-TAN code. `wsg.data` reads them from
one HDF5 file keyed by video id, or from a folder of `<video_id>.npy` files.

`wsg.data.read_annotations(dataset, root, split)` turns every format into the
same table: `video_id, duration, start, end, sentence` (seconds), plus a
`record` column naming the file and line each row came from. The cell below
writes a few made-up records in each real layout to a temporary folder and
reads them back.
''')

code(r'''
tmp = Path(tempfile.mkdtemp(prefix="wsg-ch1-"))

def write_charades(folder, lines):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "charades_sta_test.txt").write_text("\n".join(lines) + "\n")
    # the real csv has more columns; the reader needs `id` and `length`
    (folder / "Charades_v1_test.csv").write_text(
        "id,subject,scene,length\nAB12C,S01,Kitchen,30.04\nQX7PL,S02,Bedroom,21.5\n")

write_charades(tmp / "charades", [
    "AB12C 0.0 6.9##a person opens the fridge.",
    "AB12C 12.3 31.2##the person drinks from a cup.",  # ends after the video (30.04 s)
    "QX7PL 4.2 11.0##person sits down on the bed.",
])
(tmp / "activitynet").mkdir()
(tmp / "activitynet" / "val_2.json").write_text(json.dumps({
    "v_demo0001": {"duration": 82.73, "timestamps": [[0.0, 19.02], [17.37, 60.81]],
                   "sentences": [" A man stands on a ladder.", " He paints the wall with a roller."]}}))
(tmp / "didemo").mkdir()
(tmp / "didemo" / "test_data.json").write_text(json.dumps([
    {"video": "demo_flickr.mov", "num_segments": 6, "annotation_id": 1,
     "description": "the dog jumps into the water", "times": [[2, 2], [2, 2], [2, 3], [1, 2]]},
    {"video": "demo_flickr.mov", "num_segments": 6, "annotation_id": 2,
     "description": "the camera pans to the left", "times": [[4, 5], [5, 5], [4, 5], [4, 5]]}]))
(tmp / "tacos").mkdir()
(tmp / "tacos" / "test.json").write_text(json.dumps({
    "s13-d21.avi": {"num_frames": 5880, "fps": 29.4, "timestamps": [[294, 882], [1176, 2940]],
                    "sentences": ["The person takes out a cutting board.", "She slices the cucumber."]}}))

tables = {}
with warnings.catch_warnings(record=True):  # the Charades file has one repair, shown further down
    warnings.simplefilter("always")
    tables["charades-sta"] = wsg.data.read_annotations("charades-sta", tmp / "charades", "test")
for name in ["activitynet", "didemo", "tacos"]:
    tables[name] = wsg.data.read_annotations(name, tmp / name, "test")
for name, df in tables.items():
    print(f"--- {name}")
    cols = ["video_id", "duration", "start", "end", "sentence", "record"] + (["times"] if name == "didemo" else [])
    print(df[cols].to_string(index=False))

assert tables["tacos"]["start"].tolist() == [10.0, 40.0]  # frames / fps
assert tables["didemo"][["start", "end"]].values.tolist() == [[10.0, 15.0], [20.0, 30.0]]  # the most frequent pair
''')

md(r'''
Two details are worth a look. The TACoS frames $294$ and $882$ at $29.4$ fps
became $10$ s and $30$ s. The DiDeMo row keeps all four annotators in `times`
and uses the most frequent pair as `start, end`: the first query's $(2, 2)$ is
seconds $[10, 15]$. The official DiDeMo metrics use the full `times`, as shown
further down.

### Moments that end after the video

Real annotations contain moments that end after the video does (the Charades
csv and the sentence timestamps were made separately), and moments with
$\tau_s \ge \tau_e$. Codebases treat them differently, often silently. In `wsg`
the treatment is an argument of `read_annotations`, and every repair is counted
in `df.attrs["repairs"]` and announced by one `AnnotationRepairWarning`:

- `out_of_range="clip"` (the default, as 2D-TAN does) clips the moment to $[0, \tau]$;
- `"drop"` removes the query;
- `"keep"` keeps it as it is (counted, so it cannot go unnoticed);
- `"raise"` refuses the file.

Our Charades-STA file has one query ending at 31.2 s in a 30.04 s video:
''')

code(r'''
policy_rows = {}
for policy in ["clip", "drop", "keep"]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = wsg.data.read_annotations("charades-sta", tmp / "charades", "test", out_of_range=policy)
    message = [str(w.message) for w in caught if issubclass(w.category, AnnotationRepairWarning)]
    policy_rows[policy] = {"queries": len(df), "repairs": df.attrs["repairs"],
                           "end of the cup query": df.loc[df["sentence"].str.contains("cup"), "end"].tolist()}
    print(f"{policy}: {message[0][:110]}...")
display(pd.DataFrame(policy_rows).T)

assert policy_rows["clip"]["repairs"] == {"clipped_end": 1} and policy_rows["clip"]["end of the cup query"] == [30.04]
assert policy_rows["drop"]["repairs"] == {"dropped_out_of_range": 1} and policy_rows["drop"]["queries"] == 2
assert policy_rows["keep"]["repairs"] == {"kept_out_of_range": 1} and policy_rows["keep"]["end of the cup query"] == [31.2]
''')

md(r'''
Malformed input is never skipped. A line without the `##` separator, say, stops
the reader with a message that names the file and the line:
''')

code(r'''
write_charades(tmp / "broken", [
    "AB12C 0.0 6.9##a person opens the fridge.",
    "QX7PL 4.2 11.0 person sits down on the bed.",  # the '##' is missing
])
try:
    wsg.data.read_annotations("charades-sta", tmp / "broken", "test")
except ValueError as err:
    error = str(err)
    print("ValueError:", error)
else:
    raise AssertionError("a malformed line must not be read silently")
assert "charades_sta_test.txt:2" in error
shutil.rmtree(tmp)  # the made-up files are no longer needed
''')

# ============================================================================ synthetic world

md(r'''
## The synthetic world

Real features cannot be downloaded in a notebook on a laptop or in CI, so each
chapter runs by default on a synthetic benchmark. It is generated once,
cached, and written **in the real formats**, ActivityNet-style json and an HDF5
feature file, so it goes through the same readers as real data.

The generator is a small world of actions. An event is a (verb, object) pair
such as (open, door). Every verb and object has a hidden prototype vector; a
clip's feature is a fixed random non-linear map of the prototypes of the event
in progress (the verb part grows over the event), a per-video scene vector and
temporally correlated noise. Event boundaries are soft ramps rather than steps.
`load_events` lists every event with its verb, object, span and query.
''')

code(r'''
events = wsg.data.load_events(bench)
test_events = events[events["split"] == "test"]
video_id = test_events.groupby("video_id").size().loc[lambda s: s == 4].index[0]  # a video with 4 events
video_events = test_events[test_events["video_id"] == video_id].sort_values("start")
features = bench.features[video_id]  # [T_v, D], one row per second, as released (before resampling)
rate = bench.config.feature_rate
print(f"video {video_id}: {len(features)} clips x {features.shape[1]} dims, "
      f"{bench.splits['test'].set_index('video_id').loc[video_id, 'duration'].iloc[0]:.1f} s")
print(video_events[["verb", "object", "start", "end", "sentence"]].to_string(index=False))

boxes = [((s * rate, e * rate), (0, features.shape[1]), f"{v} {o}")
         for v, o, s, e in video_events[["verb", "object", "start", "end"]].itertuples(index=False)]
fig, ax = plt.subplots(figsize=(8, 3))
wsg.viz.heatmap(features.T, ax=ax, boxes=boxes, xlabel="clip (one per second)", ylabel="feature dimension",
                title=f"clip features of video {video_id}, events outlined", yticklabels=False, xticklabels=5)
plt.show()
''')

md(r'''
The four outlined events look alike: the same kind of sparse, non-negative
activity pattern, over the same scene and noise. Nothing in the features marks
one of them as *the* action of the video. That is on purpose.

### Moment lengths and positions

The generator has two presets. The Charades-like one makes videos of 20 to 40 s
whose moments cover on average about 27 % of the video; the ActivityNet-like
one makes videos of one to four minutes with moments of about 31 %, close to
the statistics of the real datasets. A third knob, `position_bias`, decides
where events sit: `"uniform"` spreads them over the video, `"start"` opens
every video with a longer first event, a crude copy of the real benchmarks'
tendency to put moments at the start of the video.
''')

code(r'''
bench_start = wsg.data.load_synthetic("charades", profile, position_bias="start", seed=SEED)
bench_anet = wsg.data.load_synthetic("activitynet", profile, seed=SEED)
benches = {"Charades-like, uniform": bench, "Charades-like, start bias": bench_start,
           "ActivityNet-like, uniform": bench_anet}

def moment_stats(b, split="train"):
    df = b.splits[split]
    return pd.DataFrame({"length": (df["end"] - df["start"]) / df["duration"],
                         "start": df["start"] / df["duration"]})

stats = {name: moment_stats(b) for name, b in benches.items()}
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
bins = np.linspace(0, 1, 26)
for name, st in stats.items():
    axes[0].hist(st["length"], bins=bins, histtype="step", lw=1.5, density=True, label=name)
    axes[1].hist(st["start"], bins=bins, histtype="step", lw=1.5, density=True, label=name)
axes[0].set_xlabel("moment length / video length")
axes[1].set_xlabel("moment start / video length")
axes[0].set_ylabel("density")
axes[1].legend(fontsize=8)
plt.tight_layout()
plt.show()

summary = pd.DataFrame({name: {"videos": b.splits["train"]["video_id"].nunique(),
                               "queries": len(b.splits["train"]),
                               "mean duration (s)": b.splits["train"]["duration"].mean(),
                               "mean length fraction": st["length"].mean(),
                               "starts at 0 (%)": 100 * (st["start"] < 0.01).mean()}
                        for (name, b), st in zip(benches.items(), stats.values())}).T
summary = summary.astype({"videos": int, "queries": int})
display(summary)

assert abs(stats["Charades-like, uniform"]["length"].mean() - 0.27) < 0.02
assert abs(stats["ActivityNet-like, uniform"]["length"].mean() - 0.31) < 0.02
assert summary.loc["Charades-like, start bias", "starts at 0 (%)"] > 25 > summary.loc["Charades-like, uniform", "starts at 0 (%)"]
''')

md(r'''
With the start bias, about a third of all moments (the first event of every
video) begin at the very first second, a regularity that a model can learn without understanding a single
word. We come back to it with the blind baselines.

### Queries

Each event is described by one sentence drawn from a handful of templates, in
the active and the passive voice, with function words around the content words:
''')

code(r'''
for template in TEMPLATES:
    print("  ", template)
print("\nsome training queries:")
for sentence in events.loc[events["split"] == "train", "sentence"].head(6):
    print("  ", sentence, "->", wsg.text.tokenize(sentence))
print(f"\nvocabulary (training split): {len(bench.vocab)} entries; "
      f"{bench.config.num_verbs} verbs x {bench.config.num_objects} objects in this profile's world")
''')

md(r'''
The verb appears in three surface forms ("opens", "opening", "opened"), the
object after "the" or "a", and the word order flips in the passive template.
A model therefore has to encode the sentence; it cannot look up a fixed
position.

### Distractors: why the words are needed

The events of one video are drawn from a $2 \times 2$ grid of two verbs and two
objects, for example (open, door), (open, box), (close, door), (close, box),
cut to the number of events. Every event therefore has a *distractor* in the
same video that shares its verb or its object. Grounding "opens the door"
needs both words: the verb alone leaves (open, box) in play, the object alone
leaves (close, door). The table compares readers that know the true verb and
object of every event (a perfect recogniser) but use only part of the query;
a reader that picks among the matching events at random has an expected
accuracy of $1/\#\text{matches}$.
''')

code(r'''
def expected_accuracy(ev, use_verb, use_object):
    acc = []
    for _, g in ev.groupby("video_id"):
        for verb, obj in zip(g["verb"], g["object"]):
            match = np.ones(len(g), bool)
            if use_verb:
                match &= (g["verb"] == verb).to_numpy()
            if use_object:
                match &= (g["object"] == obj).to_numpy()
            acc.append(1 / match.sum())
    return 100 * np.mean(acc)

readers = pd.Series({
    "no words (chance)": expected_accuracy(test_events, False, False),
    "verb only": expected_accuracy(test_events, True, False),
    "object only": expected_accuracy(test_events, False, True),
    "verb and object": expected_accuracy(test_events, True, True),
}, name="top-1 event accuracy (%)").round(1)
display(readers.to_frame())

has_distractor = [any((v2 == v) != (o2 == o) for v2, o2 in zip(g["verb"], g["object"]))
                  for _, g in events.groupby("video_id") for v, o in zip(g["verb"], g["object"])]
assert all(has_distractor)  # every event shares its verb or its object with another event of its video
assert readers["verb and object"] == 100 > max(readers["verb only"], readers["object only"])
''')

md(r'''
### What a query-blind rule can and cannot do

Suppose a model ignores the query and scores moments by what they look like:
the most active, the longest, the earliest. Whatever its rule, it gives every
query of a video the same answer. In the synthetic world every event of a video
is the target of exactly one query, and the events of a video do not overlap.

**At R@1 with IoU $\ge 0.5$ it is exactly at chance among events.** One
predicted span cannot overlap two disjoint events by more than half of each
union (the two intersections would add up to more than the span itself), so a
blind answer hits at most one of the video's $k_v$ events, i.e. at most one of
its $k_v$ queries. Over a split its R@1 is at most

$$
\frac{\sum_v 1}{\sum_v k_v} = \frac{\#\text{videos}}{\#\text{queries}},
$$

the accuracy of guessing one of the $k_v$ events uniformly at random, averaged
over queries. We call this **chance among events**: the rule that knows every
event of the video but not which query asks for which
(`wsg.baselines.events_chance`, the row `events` of the blind baselines).

**It can beat that number elsewhere**, so "chance among events" is a yardstick,
not a ceiling on every metric:

- at **IoU 0.3** one span that covers two adjacent short events can overlap
  *both* by more than 0.3, and so answer two queries of the video at once;
- at **R@5** a rule that lists the video's events hits every query: the events
  themselves are a perfect top 5 when a video has at most five.

The cell checks all three statements on the test split: three hand-made blind
rules pick the right event for exactly #videos/#queries of the queries, a rule
that merges the two closest events beats that at IoU 0.3, and the events listed
in any order reach R@5 = 100.
''')

code(r'''
durations = dict(zip(bench.splits["test"]["video_id"], bench.splits["test"]["duration"]))
blind_rules = {
    "most active (feature energy)": lambda f, s, e, d: f[int(s / d * len(f)):max(int(e / d * len(f)), int(s / d * len(f)) + 1)].mean(),
    "longest": lambda f, s, e, d: e - s,
    "earliest": lambda f, s, e, d: -s,
}
blind = {}
for name, rule in blind_rules.items():
    hits = 0
    for vid, g in test_events.groupby("video_id"):
        f = bench.features[vid]
        chosen = int(np.argmax([rule(f, s, e, durations[vid]) for s, e in zip(g["start"], g["end"])]))
        # the j-th query of the video targets event j; a blind rule gives every query the same answer
        hits += sum(chosen == j for j in range(len(g)))
    blind[name] = 100 * hits / len(test_events)
n_videos, n_queries = test_events["video_id"].nunique(), len(test_events)
chance = 100 * n_videos / n_queries
print(f"{n_videos} videos, {n_queries} queries: chance among events = {chance:.2f} %")

# a blind rule that answers every query of a video with the span covering its two closest events
test_table = bench.splits["test"]
gt_test_norm = bench.moments("test")
merged = []
for vid, g in test_table.groupby("video_id", sort=False):
    sp = np.sort(g[["start", "end"]].to_numpy() / g["duration"].to_numpy()[:, None], axis=0)
    j = int(np.argmin(sp[1:, 0] - sp[:-1, 1]))  # the smallest gap
    merged.append((g.index, (sp[j, 0], sp[j + 1, 1])))
merged_ranked = torch.zeros(len(test_table), 1, 2)
for rows, span in merged:
    merged_ranked[torch.tensor(rows.to_numpy())] = torch.tensor(span, dtype=torch.float32)
merge_r = wsg.metrics.recall_at(merged_ranked, gt_test_norm, ns=(1,), protocol="2d-tan")
events_r = wsg.metrics.recall_at(wsg.baselines.events_chance(test_table), gt_test_norm, protocol="2d-tan")
rows = {**{name: {"top-1 event accuracy": acc} for name, acc in blind.items()},
        "merge the two closest events": {"R@1,IoU=0.3": merge_r["R@1,IoU=0.3"], "R@1,IoU=0.5": merge_r["R@1,IoU=0.5"]},
        "events in random order (events chance)": {"R@1,IoU=0.3": events_r["R@1,IoU=0.3"],
                                                   "R@1,IoU=0.5": events_r["R@1,IoU=0.5"],
                                                   "R@5,IoU=0.7": events_r["R@5,IoU=0.7"]}}
display(pd.DataFrame(rows).T.round(1))
assert all(abs(acc - chance) < 1e-9 for acc in blind.values())
assert abs(chance - readers["no words (chance)"]) < 0.05
assert abs(events_r["R@1,IoU=0.5"] - chance) < 1e-9 and events_r["R@5,IoU=0.7"] == 100.0
assert merge_r["R@1,IoU=0.5"] <= chance + 1e-9 < merge_r["R@1,IoU=0.3"]  # blind beats chance at 0.3 only
''')

# ============================================================================ metrics

md(r'''
## Measuring a prediction

### Temporal IoU

The overlap of a predicted moment $p = (s_p, e_p)$ with the ground truth
$g = (s_g, e_g)$ is measured by their temporal intersection over union
({term}`IoU`):

$$
\operatorname{IoU}(p, g) =
\frac{\max\bigl(0,\ \min(e_p, e_g) - \max(s_p, s_g)\bigr)}{\max(e_p, e_g) - \min(s_p, s_g)} .
$$

The denominator is the span of the two intervals; it equals their union when
they overlap, and when they do not the numerator is zero anyway. Three cases
worked by hand, in seconds:

| $p$ | $g$ | intersection | span | IoU |
| --- | --- | --- | --- | --- |
| $(2, 7)$ | $(4, 10)$ | $7 - 4 = 3$ | $10 - 2 = 8$ | $0.375$ |
| $(0, 2)$ | $(3, 5)$ | $0$ | | $0$ |
| $(2, 4)$ | $(0, 8)$ | $2$ | $8$ | $0.25$ |
''')

code(r'''
iou = wsg.metrics.temporal_iou(torch.tensor([[2.0, 7.0], [0.0, 2.0], [2.0, 4.0]]),
                               torch.tensor([[4.0, 10.0], [3.0, 5.0], [0.0, 8.0]]))
print(iou)
assert torch.allclose(iou, torch.tensor([0.375, 0.0, 0.25]))
''')

md(r'''
### Recall at $n$ and mIoU

For $N$ queries with ranked predictions $(p_{q,1}, p_{q,2}, \dots)$:

$$
\text{R@}n,\text{IoU}{=}m = \frac{100}{N}\sum_{q=1}^{N} \mathbb{1}\Bigl[\max_{k \le n} \operatorname{IoU}(p_{q,k}, g_q) \ge m\Bigr],
\qquad
\text{mIoU} = \frac{100}{N}\sum_{q=1}^{N} \operatorname{IoU}(p_{q,1}, g_q).
$$

R@1,IoU=0.5 is the share of queries whose first answer overlaps the truth by at
least half; R@5 forgives four wrong guesses; mIoU rewards near misses that
the thresholds ignore. Three queries with three ranked guesses each, in seconds:

| query | $g$ | $p_1$ (IoU) | $p_2$ (IoU) | $p_3$ (IoU) |
| --- | --- | --- | --- | --- |
| 1 | $(0, 10)$ | $(0, 5)$ (0.5) | $(0, 9)$ (0.9) | $(20, 30)$ (0) |
| 2 | $(10, 20)$ | $(0, 10)$ (0) | $(12, 20)$ (0.8) | $(10, 14)$ (0.4) |
| 3 | $(4, 8)$ | $(4, 8)$ (1) | $(0, 4)$ (0) | $(3, 9)$ (0.667) |

By hand: R@1,IoU=0.5 counts queries 1 and 3, so $66.7$ %; R@1,IoU=0.7 counts only
query 3, $33.3$ %; R@2,IoU=0.7 counts all three ($0.9$, $0.8$, $1$), $100$ %;
mIoU is $(0.5 + 0 + 1)/3 = 50$ %.
''')

code(r'''
gt_toy = torch.tensor([[0.0, 10.0], [10.0, 20.0], [4.0, 8.0]])
ranked_toy = torch.tensor([[[0.0, 5.0], [0.0, 9.0], [20.0, 30.0]],
                           [[0.0, 10.0], [12.0, 20.0], [10.0, 14.0]],
                           [[4.0, 8.0], [0.0, 4.0], [3.0, 9.0]]])
plain = wsg.metrics.recall_at(ranked_toy, gt_toy, ns=(1, 2), ious=(0.5, 0.7), protocol="plain")
print({k: round(v, 2) for k, v in plain.items()})
hand = {"R@1,IoU=0.5": 200 / 3, "R@1,IoU=0.7": 100 / 3, "R@2,IoU=0.5": 100.0, "R@2,IoU=0.7": 100.0, "mIoU": 50.0}
assert all(abs(plain[k] - v) < 1e-9 for k, v in hand.items())
''')

md(r'''
Query 1 already hints at the trouble ahead. Its first guess has an IoU of
*exactly* $0.5$: a hit if the rule is $\ge 0.5$, a miss if it is $> 0.5$.

### The DiDeMo protocol

DiDeMo is scored differently {cite}`didemo2017`. A video is cut into six
5-second chunks and every moment is a chunk pair $(i, j)$, $0 \le i \le j \le 5$:
six single chunks and fifteen longer spans, **21 candidates** in all, and a
prediction is a ranking of all 21. IoU counts chunks, with inclusive ends:

$$
\operatorname{IoU}_{\text{chunk}}\bigl((i_p, j_p), (i_g, j_g)\bigr) =
\frac{\max\bigl(0, \min(j_p, j_g) + 1 - \max(i_p, i_g)\bigr)}{\max(j_p, j_g) + 1 - \min(i_p, i_g)} .
$$

Each query has several annotators $g^1, \dots, g^A$, usually four, and the
protocol keeps the three most favourable:
$r_q = \operatorname{mean}(\text{3 smallest ranks of the } g^a)$ and
$u_q = \operatorname{mean}(\text{3 largest } \operatorname{IoU}_{\text{chunk}}(p_1, g^a))$.
Then R@$n$ $= \frac{100}{N}\#\{q : r_q \le n\}$ and mIoU $= \frac{100}{N}\sum_q u_q$.

The consequence: $r_q \le 1$ needs **three annotators to agree** on the top-1
moment. Take two queries and rank, for both, $(1, 1)$ first and $(1, 2)$ second:

- query A, `times` $= [(1,1), (1,1), (1,2), (4,4)]$: ranks $1, 1, 2, \ge 3$, so
  $r_A = (1 + 1 + 2)/3 = 4/3$, a miss for R@1 and a hit for R@5, although the
  top-1 is the majority answer. $u_A = (1 + 1 + \tfrac12)/3 = 5/6$, since
  $(1,1)$ against $(1,2)$ is $\tfrac{1}{2}$;
- query B, `times` $= [(1,1), (1,1), (1,1), (3,4)]$: $r_B = 1$, $u_B = 1$.

So R@1 $= 50$ %, R@5 $= 100$ % and mIoU $= (5/6 + 1)/2 = 91.7$ %. No ranking can
ever give query A a hit at R@1.
''')

code(r'''
candidates = wsg.proposals.didemo_candidates()
print(len(candidates), "candidates:", candidates)
first = wsg.proposals.didemo_candidate_index([(1, 1), (1, 2)]).tolist()
ranking = first + [k for k in range(21) if k not in first]
times = [[(1, 1), (1, 1), (1, 2), (4, 4)],   # query A: only two annotators agree
         [(1, 1), (1, 1), (1, 1), (3, 4)]]   # query B: three agree
scores = wsg.metrics.didemo_scores([ranking, ranking], times)
print({k: round(v, 2) for k, v in scores.items()})
assert abs(scores["R@1"] - 50) < 1e-9 and abs(scores["R@5"] - 100) < 1e-9
assert abs(scores["mIoU"] - 100 * (5 / 6 + 1) / 2) < 1e-9
# query A alone: even with the majority moment ranked first, R@1 is 0
assert wsg.metrics.didemo_scores([ranking], times[:1])["R@1"] == 0
''')

# ============================================================================ protocols move numbers

md(r'''
## Protocol choices move numbers

"R@1,IoU=0.5" is not one number: the public codebases compute it differently
(see {doc}`../book/evaluation_protocols` for the details). `wsg.metrics.recall_at`
names three protocols:

- `"plain"`: no {term}`NMS`, a hit is $\operatorname{IoU} \ge m$;
- `"tall"`: the TALL script {cite}`tall2017`, greedy NMS at threshold $m - 0.05$ (a
  different candidate list for each $m$), a hit is $\operatorname{IoU} \ge m$;
- `"2d-tan"`: the 2D-TAN script {cite}`2dtan2020`, one greedy NMS at $0.5$ keeping
  five candidates, a hit is $\operatorname{IoU} > m$, **strictly**.

Greedy NMS walks down the ranked list and drops every candidate that overlaps
an already-kept one by more than the threshold. It never touches the first
candidate, so **it cannot change R@1**; it changes which candidates fill
places 2 to 5, and therefore R@5.

To see the size of these effects we score one fixed set of predictions under
all protocols. The predictor is made up: for each test query of the
Charades-like benchmark it draws ten guesses around the truth, each boundary
jittered by Gaussian noise of three clips, and lists them in the order drawn.
Predictions and ground truth are snapped to the 32-clip grid, as happens when
a 2D map's cells and annotation times fall on the same grid, so many IoUs are
exactly $0.3$, $0.5$ or $0.7$.
''')

code(r'''
T = bench.num_clips
gt_clips = torch.round(bench.dataset("test").moments.double() * T)
gt_clips[:, 1] = torch.maximum(gt_clips[:, 1], gt_clips[:, 0] + 1)  # at least one clip long
gen = torch.Generator().manual_seed(SEED)
guesses = torch.round(gt_clips[:, None, :] + 3.0 * torch.randn(len(gt_clips), 10, 2, generator=gen, dtype=torch.float64))
guesses = guesses.clamp(0, T)
guesses[..., 1] = torch.maximum(guesses[..., 1], guesses[..., 0] + 1)
guesses[..., 0] = torch.minimum(guesses[..., 0], guesses[..., 1] - 1)
guesses = guesses.clamp(0, T)
ranked, gt = guesses / T, gt_clips / T  # normalised, on the grid (i/32 is exact in binary)

top1_iou = wsg.metrics.temporal_iou(ranked[:, 0], gt)
on_threshold = {m: int((top1_iou == m).sum()) for m in (0.3, 0.5, 0.7)}
print(f"{len(gt)} queries; top-1 IoU exactly at the threshold: {on_threshold}")

kw = dict(ns=(1, 5), ious=(0.3, 0.5, 0.7))
table = wsg.metrics.protocol_table(ranked, gt, **kw)
table.index = ["plain (>=, no NMS)", "tall (>=, NMS m-0.05)", "2d-tan (>, NMS 0.5)"]
# the 2D-TAN hit rule with other NMS thresholds; a threshold of 1 suppresses nothing
for theta, label in [(1.0, "2d-tan rule, NMS off (>, no NMS)"), (0.4, "2d-tan rule, NMS 0.4 (code default)")]:
    table.loc[label] = wsg.metrics.recall_at(ranked, gt, protocol="2d-tan", nms_threshold=theta, **kw)
table.index.name = "protocol (same predictions)"
display(table.round(1))
''')

code(r'''
r1 = [c for c in table.columns if c.startswith("R@1")]
strict_no_nms, strict_05, strict_04 = (table.loc[k] for k in [
    "2d-tan rule, NMS off (>, no NMS)", "2d-tan (>, NMS 0.5)", "2d-tan rule, NMS 0.4 (code default)"])
plain_row, tall_row = table.loc["plain (>=, no NMS)"], table.loc["tall (>=, NMS m-0.05)"]

# 1. NMS never changes R@1 (nor mIoU): same hit rule, different NMS, same numbers
assert (plain_row[r1] == tall_row[r1]).all()
assert (strict_no_nms[r1] == strict_05[r1]).all() and (strict_05[r1] == strict_04[r1]).all()
assert table["mIoU"].nunique() == 1
# 2. strict '>' loses exactly the queries whose top-1 IoU sits on the threshold
loss = plain_row["R@1,IoU=0.5"] - strict_no_nms["R@1,IoU=0.5"]
assert abs(loss - 100 * on_threshold[0.5] / len(gt)) < 1e-9 and loss > 3
# 3. NMS moves R@5: for this predictor, whose guesses cluster around the truth, it lowers it
assert strict_04["R@5,IoU=0.7"] < strict_05["R@5,IoU=0.7"] < strict_no_nms["R@5,IoU=0.7"] - 10
print(f"'>' instead of '>=' costs {loss:.1f} points of R@1,IoU=0.5; NMS at 0.5 costs "
      f"{strict_no_nms['R@5,IoU=0.7'] - strict_05['R@5,IoU=0.7']:.1f} points of R@5,IoU=0.7")
''')

md(r'''
Nothing about the predictions changed between the rows, yet R@1,IoU=0.5 moves
by several points with the comparison operator alone, and R@5,IoU=0.7 by more
than ten with the NMS threshold. The NMS effect has a sign that depends on the
model: here the ten guesses are near-duplicates around the truth, so NMS throws
good guesses away; for a model whose top guesses are near-copies of one *wrong*
moment, NMS removes the redundant copies, lets other guesses into the top five,
and R@5 goes up (exercise 4 below builds such a case). Either way, **two R@5 numbers are
comparable only under the same NMS**. The timeline shows one query's first
five guesses, and what NMS at 0.5 keeps of all ten (labelled with their
original ranks).
''')

code(r'''
q = int(torch.nonzero(top1_iou > 0.5)[0])
kept = wsg.metrics.nms(ranked[q], -torch.arange(ranked.shape[1], dtype=torch.float64), threshold=0.5, top_k=5)
fig, axes = plt.subplots(2, 1, figsize=(7, 4.6), sharex=True)
wsg.viz.timeline(gt[q], ranked[q, :5], ax=axes[0], title=f"test query {q}: first five guesses, no NMS")
wsg.viz.timeline(gt[q], ranked[q, kept], ax=axes[1], labels=[f"#{int(k) + 1}" for k in kept],
                 title="the guesses kept by NMS at 0.5 (at most five)")
plt.tight_layout()
plt.show()
''')

md(r'''
### Dropping or clipping changes the denominator

The repair policy for out-of-range moments also moves numbers, because it
changes both the ground truth and the set of queries counted. Take eight
queries on 30-second videos; three of them end after the video (at 36 s, 38 s and
40 s), and the model, which never predicts outside the video, answers each of
them with a moment that ends at 30 s. The five regular queries get three hits.
''')

code(r'''
toy = pd.DataFrame({
    "duration": [30.0] * 8,
    "start": [2.0, 5.0, 10.0, 0.0, 12.0, 24.0, 25.0, 26.0],
    "end":   [8.0, 15.0, 20.0, 6.0, 18.0, 40.0, 36.0, 38.0],
    "pred_start": [2.0, 6.0, 11.0, 10.0, 20.0, 23.0, 24.0, 25.0],
    "pred_end":   [9.0, 15.0, 19.0, 14.0, 25.0, 30.0, 30.0, 30.0],
})
toy["record"] = [f"toy:{i + 1}" for i in range(len(toy))]
rows = {}
for policy in ["clip", "drop", "keep"]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AnnotationRepairWarning)
        df = apply_moment_policies(toy, out_of_range=policy)
    pred = torch.tensor(df[["pred_start", "pred_end"]].to_numpy())[:, None, :]  # one guess per query
    r = wsg.metrics.recall_at(pred, torch.tensor(df[["start", "end"]].to_numpy()),
                              ns=(1,), ious=(0.5,), protocol="plain")
    rows[policy] = {"queries counted": len(df), "repairs": df.attrs["repairs"], **r}
policies = pd.DataFrame(rows).T
policies.index.name = "out_of_range policy"
display(policies)
assert policies["queries counted"].tolist() == [8, 5, 8]
assert [round(v, 2) for v in policies["R@1,IoU=0.5"]] == [75.0, 60.0, 37.5]
''')

md(r'''
Same predictions, three different R@1,IoU=0.5: 75 % when the truth is clipped
to the video (the predictions now match it well), 60 % when those queries are
dropped (five queries left) and 37.5 % when the impossible ends are kept. The
book clips, as 2D-TAN does, and reports the repair counts.
''')

# ============================================================================ blind baselines

md(r'''
## Blind baselines

A {term}`blind baseline` never looks at the query. `wsg.baselines` has three:

- **random**: an independent uniformly random ranking of the candidates for
  each query, i.e. chance level;
- **moment prior** (the {term}`moment-frequency prior`): every training moment is
  assigned to its best-matching candidate, and all test queries get the same
  list, ordered by how often each candidate was chosen. It only uses where
  training moments lie; the DiDeMo authors evaluate the same idea on their data
  {cite}`didemo2017`;
- **events** (chance among events): the video's own ground-truth moments in
  one random order per video. It knows far more than the other two (where every
  event of the video is) and nothing about the query.

The candidates are all spans of the clip grid (32 clips for the Charades-like
benchmark, 64 for the ActivityNet-like one), the candidate set of a 2D-TAN-style
map. All numbers below use the **2D-TAN protocol** (NMS at 0.5, strict $>$),
the default of the method chapters, on the **test** splits.
''')

code(r'''
protocol = "2d-tan"
blind_rows = {}
for name, b in benches.items():
    tab = wsg.baselines.blind_baselines(b, "test", protocol=protocol, seed=SEED)
    for baseline in tab.index:
        blind_rows[f"{name} / {baseline}"] = tab.loc[baseline].to_dict()
blind_table = wsg.viz.results_table(blind_rows, protocol=protocol)
display(blind_table)
''')

code(r'''
def expected_random_r1(b, split, m):
    """Chance R@1 (strict IoU > m): the share of grid spans that hit, averaged over queries."""
    spans, valid = wsg.proposals.all_spans(b.num_clips)
    ious = wsg.metrics.temporal_iou(spans[valid][None].double(), b.dataset(split).moments.double()[:, None])
    return 100 * (ious > m).double().mean().item()

for name, b in benches.items():
    for m in (0.3, 0.5, 0.7):
        got, expected = blind_rows[f"{name} / random"][f"R@1,IoU={m}"], expected_random_r1(b, "test", m)
        assert abs(got - expected) < 5, (name, m, got, expected)  # random is chance, up to sampling noise
uniform_prior = blind_rows["Charades-like, uniform / prior"]["R@1,IoU=0.5"]
biased_prior = blind_rows["Charades-like, start bias / prior"]["R@1,IoU=0.5"]
print(f"prior R@1,IoU=0.5: {uniform_prior:.1f} % without position bias, {biased_prior:.1f} % with it")
assert biased_prior > 2 * uniform_prior
''')

md(r'''
Three things to read off the table.

1. **Random is chance.** Its R@1 matches the share of grid spans that overlap
   the truth by more than $m$ (checked above). It is not small at low
   thresholds: with moments covering a quarter of the video, a random span
   overlaps the truth by more than 0.3 in roughly one case in four.
2. **The prior feeds on bias.** With events spread uniformly, the single most
   frequent span is a poor guess and the prior gains little or nothing over random at R@1.
   With the start bias, it learns to answer "the beginning of the video" and
   its R@1,IoU=0.5 more than doubles, without reading a word or watching a
   frame. Real benchmarks have such biases, which is why a method's
   number means little without the prior's number next to it, on the same split
   and under the same protocol.
3. **R@5 is generous.** Five diverse spans after NMS cover much of a short
   video, so blind R@5 is high; gains at R@1 and at IoU 0.7 are the informative
   ones.

**What a method must beat** is therefore not zero and not only the prior: on
the synthetic data it is *chance among events*, and for a trained model the
controls of the next section.

## Controls: did the model read the query?

A baseline says what the data give away. A *control* asks whether a trained
model used the words. The book holds every weakly-supervised method to four
(`wsg.controls`):

1. **chance among events** (above);
2. **the swapped-query control**: ask the trained model, for each query,
   *another* query of the same video (`wsg.controls.swapped_queries`). A model
   that reads the words moves its answer to the other event, so its R@1 against
   the original moment collapses; a model that learned "find an event" does not
   move. The **words gain** is R@1(true) $-$ R@1(swapped);
3. **the method's own query-blind variant**: the same architecture trained and
   evaluated with every sentence replaced by one constant token
   (`wsg.controls.query_blind`), the strongest blind rule that architecture
   can learn;
4. **blind rankings over the method's own candidates** (random and prior over
   `model.candidates()`), so that a method is not credited for a good candidate set.

Next to R@1 the controls table reports the **event hit**: the share of top-1
moments whose centre lies inside the ground truth. It separates finding the
right event from drawing its boundaries. The bar of the book: on 3-seed means,
R@1,IoU=0.5 above the best blind control **and** swapped-query R@1 at most a
third of the true one.

A toy makes the swapped-query control concrete: an "oracle" that knows every
test sentence's moment, and a "detector" that answers every query of a video
with the same event.
''')

code(r'''
from wsg.models import GroundingModel

answers = {(r.video_id, r.sentence): (r.start / r.duration, r.end / r.duration)
           for r in bench.splits["test"].itertuples()}
first_event = {vid: answers[(vid, g["sentence"].iloc[0])] for vid, g in bench.splits["test"].groupby("video_id")}


class Lookup(GroundingModel):
    """A query-reading oracle (``by_sentence``) or a query-blind event detector."""

    def __init__(self, by_sentence):
        super().__init__()
        self.by_sentence = by_sentence

    def candidates(self):
        spans, valid = wsg.proposals.all_spans(bench.num_clips)
        return spans[valid]

    def predict(self, batch, top_k=10):
        keys = zip(batch["video_id"], batch["sentence"])
        m = torch.tensor([answers[k] if self.by_sentence else first_event[k[0]] for k in keys])
        return m[:, None].expand(-1, top_k, -1), torch.ones(len(m), top_k)


for label, model in [("oracle (reads the query)", Lookup(True)), ("event detector (blind)", Lookup(False))]:
    ctl = wsg.controls.table(model, bench, "test", protocol="2d-tan", name=label)
    display(ctl.round(1))
    gain = ctl.attrs["words gain R@1,IoU=0.5"]
    print(f"{label}: words gain {gain:.1f} points\n")
    if model.by_sentence:
        assert ctl.loc["swapped query", "R@1,IoU=0.5"] == 0 and gain == 100
    else:  # the detector is at events chance whichever query it is asked
        assert abs(ctl.loc[label, "R@1,IoU=0.5"] - ctl.loc["events", "R@1,IoU=0.5"]) < 1e-9
        assert abs(ctl.loc["swapped query", "R@1,IoU=0.5"] - ctl.loc[label, "R@1,IoU=0.5"]) < 10
''')

md(r'''
The oracle's answer follows the sentence, so the swapped query sends it to the
wrong event every time. The blind detector is at chance among events for the
true *and* the swapped queries: both rows say the same thing, and its words
gain is within noise of zero.

### One run is an anecdote: seeds

Training is random: the initial weights, the order of the batches, dropout.
The same method with the same settings on the same data can move by many
points between two seeds, so every comparison in this book is a mean $\pm$
standard deviation over at least three seeds (`wsg.experiments.run`, which seeds
*before* building the model, so a run never depends on what ran earlier). Runs
too slow to repeat inside a chapter come from the **results store**,
`results/<profile>-<dataset>.csv`, written by one command (the first line of the
next cell prints it) and checked by a test that re-runs one of its rows and
finds the same numbers. The plot shows every method's test R@1,IoU=0.5 per
seed, next to its swapped-query and query-blind runs and chance among events.
''')

code(r'''
store = wsg.experiments.load_results(wsg.experiments.find_store("charades", "tiny"))
print("produced by:", store["command"].iloc[0])
bench_tiny = bench if profile.name == "tiny" else wsg.data.load_synthetic("charades", profile="tiny")
events_chance_r1 = wsg.baselines.blind_baselines(bench_tiny, "test").loc["events", "R@1,IoU=0.5"]
words = store[store["variant"] == "words"]
blind_runs = store[store["variant"] == "query-blind"]
fig, ax = plt.subplots(figsize=(8, 3.6))
methods = list(dict.fromkeys(words["method"]))
for i, m in enumerate(methods):
    w, b = words[words.method == m], blind_runs[blind_runs.method == m]
    ax.scatter(np.full(len(w), i - 0.15), w["R@1,IoU=0.5"], color="C0", label="true query" if i == 0 else None)
    ax.scatter(np.full(len(w), i), w["swapped R@1,IoU=0.5"], color="C3", marker="x",
               label="swapped query" if i == 0 else None)
    ax.scatter(np.full(len(b), i + 0.15), b["R@1,IoU=0.5"], color="0.5", marker="s",
               label="query-blind variant" if i == 0 else None)
ax.axhline(events_chance_r1, color="k", ls="--", lw=1, label="chance among events")
ax.set_xticks(range(len(methods)), [m.upper() for m in methods])
ax.set_ylabel("test R@1,IoU=0.5 (%)")
ax.set_title("one point per seed (tiny profile, Charades-like, protocol 2d-tan)")
ax.legend(fontsize=8, ncol=2)
plt.show()
spread = words.groupby("method")["R@1,IoU=0.5"].agg(["mean", "std", "min", "max"])
spread["max - min"] = spread["max"] - spread["min"]
display(spread.round(1))
assert (words.groupby("method").size() >= 3).all()
assert spread["max - min"].max() > 2  # seeds move results: one run is an anecdote
''')

md(r'''
## Select on validation, never on test

Every choice made by looking at scores (the epoch, a threshold, a learning
rate, even a random seed) is a fit to the data it was scored on. If that data is
the test split, the reported number is optimistic. The cell below makes the
effect visible with the most innocent choice possible: twenty random rankers
that differ only in their seed, all equally worthless.
''')

code(r'''
spans, valid = wsg.proposals.all_spans(bench.num_clips)
cands = spans[valid]
gt_val, gt_test = (torch.tensor(t[["start", "end"]].to_numpy() / t[["duration"]].to_numpy())
                   for t in (bench.splits["val"], bench.splits["test"]))  # normalised moments
seeds = range(20)
r1 = lambda ranked_, gt_: wsg.metrics.recall_at(ranked_, gt_, ns=(1,), ious=(0.5,), protocol=protocol)["R@1,IoU=0.5"]
val_scores = np.array([r1(wsg.baselines.random_ranking(len(gt_val), cands, seed=s), gt_val) for s in seeds])
test_scores = np.array([r1(wsg.baselines.random_ranking(len(gt_test), cands, seed=1000 + s), gt_test) for s in seeds])
# seed s is one "model": it ranks val with stream s and test with stream 1000 + s
selection = pd.Series({
    "mean over seeds (the truth: chance)": test_scores.mean(),
    "seed chosen on validation, scored on test": test_scores[val_scores.argmax()],
    "seed chosen on test, scored on test": test_scores.max(),
}, name=f"R@1,IoU=0.5 on test (%), protocol {protocol}").round(2)
display(selection.to_frame())
assert test_scores.max() > test_scores.mean() + 1
''')

md(r'''
Picking the best of twenty seeds on the test split "improves" a random ranker
by a few points; picking on validation gives an honest test number,
one draw from the same distribution as the mean. A real model selection (forty
epochs, a few hyper-parameters) has far more freedom than twenty seeds. The
synthetic benchmark has a validation split for this purpose; for Charades-STA,
which has none, `wsg.data.split_validation` holds out a fraction of the training
*videos*. Every number in the method chapters is selected on validation and
reported once on test.
''')

# ============================================================================ exercises

md(r'''
## Exercises

```{exercise} IoU at the threshold
:label: ch1-ex1

A query's ground truth is $(6, 18)$ s in a 30 s video. Compute by hand the IoU
of the three predictions $(6, 12)$, $(0, 18)$ and $(10, 20)$. For each, is it a
hit for R@1,IoU=0.5 under the plain protocol? Under the 2D-TAN protocol? Check
your answers with `wsg.metrics.temporal_iou` and `wsg.metrics.recall_at`.
```

```{solution} ch1-ex1
:class: dropdown

- $(6, 12)$: intersection $6$, span $18 - 6 = 12$, IoU $= 0.5$. A hit under
  plain ($\ge$), a miss under 2D-TAN ($>$).
- $(0, 18)$: intersection $12$, span $18$, IoU $= 2/3$. A hit under both.
- $(10, 20)$: intersection $18 - 10 = 8$, span $20 - 6 = 14$, IoU $= 4/7 \approx 0.571$. A hit under both.

Check: `wsg.metrics.temporal_iou(torch.tensor([[6., 12.], [0., 18.], [10., 20.]]), torch.tensor([6., 18.]))`
gives `[0.5, 0.6667, 0.5714]`; `recall_at` on the first prediction alone gives
100 under `protocol="plain"` and 0 under `protocol="2d-tan"`.
```

```{exercise} The DiDeMo ceiling
:label: ch1-ex2

Show that under the DiDeMo protocol no ranking can reach R@1 = 100 % on a set of
queries unless every query has at least three annotators who marked the same
moment. Write a function `oracle_r1(times)` that returns the best achievable
R@1 for a list of per-query annotations, and check it against
`wsg.metrics.didemo_scores` with a ranking that puts the most frequent
annotation first.
```

````{solution} ch1-ex2
:class: dropdown

A query counts for R@1 when the mean of its three best annotator ranks is at
most 1. Ranks are at least 1, so all three must equal 1: three annotations must
be the top-1 candidate, i.e. the same moment. A query whose most frequent
moment has fewer than three votes can never count (with fewer than three
annotators, all of them must agree). The best ranking puts the most frequent
moment first, so

```python
from collections import Counter

def oracle_r1(times):
    need = [min(3, len(t)) for t in times]
    return 100 * sum(Counter(map(tuple, t)).most_common(1)[0][1] >= k for t, k in zip(times, need)) / len(times)

def oracle_ranking(t):
    first = wsg.proposals.didemo_candidate_index([Counter(map(tuple, t)).most_common(1)[0][0]]).item()
    return [first] + [k for k in range(21) if k != first]

times = [[(1, 1), (1, 1), (1, 2), (4, 4)], [(1, 1), (1, 1), (1, 1), (3, 4)], [(0, 0), (0, 1), (0, 1), (0, 1)]]
best = wsg.metrics.didemo_scores([oracle_ranking(t) for t in times], times)["R@1"]
assert abs(oracle_r1(times) - best) < 1e-9
```

Both give $66.7$ %: the first query has only two votes for its majority moment.
On the real DiDeMo test set about three quarters of the queries have such a
consensus, which caps R@1 for every method.
````

```{exercise} A blind baseline of your own
:label: ch1-ex3

On the start-biased Charades-like benchmark, consider the blind rule "always
answer $(0, x)$". Choose $x$ on the **validation** split to maximise
R@1,IoU=0.5 under the 2D-TAN protocol, then report its test score once. How does
it compare with the moment prior in the table above? Why must $x$ not be chosen
on test?
```

````{solution} ch1-ex3
:class: dropdown

```python
xs = np.linspace(0.05, 1.0, 39)
def score(x, split):
    gt_ = bench_start.dataset(split).moments
    ranked_ = torch.tensor([[0.0, x]]).expand(len(gt_), 1, 2)
    return wsg.metrics.recall_at(ranked_, gt_, ns=(1,), ious=(0.5,), protocol="2d-tan")["R@1,IoU=0.5"]
best_x = max(xs, key=lambda x: score(x, "val"))
print(best_x, score(best_x, "test"))
```

The best $x$ lies near the typical length of a first event (a bit under half
the video), and its test R@1,IoU=0.5 is close to the prior's, which learns the
same thing from the training moments. Choosing $x$ on test would turn the test
split into training data for $x$: the number would be optimistic, exactly as in
the seed experiment above.
````

```{exercise} NMS can help or hurt R@5
:label: ch1-ex4

The made-up predictor above lost R@5 under NMS. Build a predictor for which
NMS at 0.5 *raises* R@5,IoU=0.5 compared with no NMS (`nms_threshold=1.0`). Hint:
put four near-copies of a wrong guess first.
```

````{solution} ch1-ex4
:class: dropdown

Rank four shifted copies of one wrong moment first and a correct moment at
place 6. Without NMS the top five are all wrong; NMS keeps one of the copies
and lets the correct moment move up into the top five:

```python
gt_ = torch.tensor([[0.6, 0.9]])
wrong = [[0.0, 0.30], [0.0, 0.31], [0.01, 0.30], [0.0, 0.29], [0.02, 0.31]]
ranked_ = torch.tensor([wrong + [[0.6, 0.9]]])
for theta in (1.0, 0.5):
    print(theta, wsg.metrics.recall_at(ranked_, gt_, ns=(5,), ious=(0.5,), protocol="2d-tan",
                                      nms_threshold=theta)["R@5,IoU=0.5"])   # 0.0, then 100.0
```

Whether NMS helps or hurts depends on how redundant a model's top guesses are,
which is why R@5 numbers are comparable only under the same NMS setting.
````
''')

# ============================================================================ summary

md(r'''
## Summary

- Temporal grounding maps a video and a sentence to a ranked list of moments.
  Weakly-supervised methods train on video-sentence pairs only; in `wsg` the
  trainer removes the `moment` key from their training batches.
- The four benchmarks come in four formats. `wsg.data.read_annotations` reads
  them all into one table, names the file and line of any malformed record, and
  makes the handling of out-of-range moments an explicit, counted policy.
- The synthetic benchmark puts 2 to 4 look-alike events in every video, each
  with a distractor sharing its verb or its object, so a query-blind model is
  held exactly at chance among a video's events and grounding needs both words.
- IoU, R@$n$,IoU=$m$ and mIoU are simple; the protocol around them is not. On
  the same predictions, $\ge$ versus $>$ moved R@1,IoU=0.5 by several points
  and the NMS threshold moved R@5 by more than ten; clipping, dropping or
  keeping out-of-range moments gave 75, 60 and 37.5 %. DiDeMo's R@1 needs three
  annotators to agree.
- Blind baselines set the bar: random is chance, and the moment prior
  more than doubles its R@1,IoU=0.5 under a start bias. Every table in this
  book names its protocol, shows the blind baselines next to the methods, and
  selects models on validation, never on test.

## References

The datasets: Charades {cite}`charades2016` and Charades-STA {cite}`tall2017`,
ActivityNet {cite}`activitynet2015` and ActivityNet Captions
{cite}`anetcaptions2017`, DiDeMo {cite}`didemo2017`, TACoS {cite}`tacos2013`.
The evaluation code whose protocols are compared: TALL {cite}`tall2017`, 2D-TAN
{cite}`2dtan2020` and LocalizingMoments {cite}`didemo2017`. The feature
extractors: VGG {cite}`vgg2015`, C3D {cite}`c3d2015`, I3D {cite}`i3d2017`. The
methods of the coming chapters: MARN {cite}`marn2020`, WSRA {cite}`wsra2020`,
VLANet {cite}`vlanet2020`, FSAN {cite}`fsan2021` and FIAN {cite}`fian2020`. Full
entries are in the {doc}`../book/bibliography`; the protocols are restated in
{doc}`../book/evaluation_protocols`.
''')


if __name__ == "__main__":
    chapter.write()
