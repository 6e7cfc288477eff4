"""The command line: ``python -m wsg train|evaluate|bench|checkpoints ...`` (runs outside notebooks).

Same recipes (:mod:`wsg.recipes`), same data loaders (:func:`wsg.data.load_benchmark`)
and same trainer (:class:`wsg.train.Trainer`) as the chapters::

    python -m wsg train fian --dataset charades --profile tiny --seeds 0,1,2 --out runs/fian
    python -m wsg train marn --dataset charades-sta --root data/charades --features data/i3d.hdf5 --out runs/marn
    python -m wsg evaluate --checkpoint runs/fian/seed0/model.pt --split test

``train`` writes, under ``--out``:

* ``seed<s>/last.pt``, ``seed<s>/best.pt``: the trainer's checkpoints (resumable);
* ``seed<s>/model.pt``: the selected (best validation) weights with everything
  ``evaluate`` needs to rebuild the model and the data (method, model config,
  vocabulary, dataset arguments, recipe);
* ``history.csv``: one row per (seed, epoch): loss terms, validation metrics, seconds;
* ``results.json``: per-seed test metrics under the named protocol, their mean and
  std, the settings with their sources, seconds, the wsg / torch versions, the git
  commit, the device and the command line.

The seeds loop is :func:`wsg.experiments.run` (each seed seeds every generator
*before* the model is built, so a seed fixes the initial weights as well as the
batch order; each run is also scored with the swapped-query control and the event
hit when the test split has videos with several queries). ``bench`` measures speed and
memory (:mod:`wsg.bench`); ``checkpoints`` remakes the chapters' train-or-load checkpoints
(:mod:`wsg.checkpoints`). Subcommands are registered in :data:`COMMANDS` as an
``add_<name>_parser`` / ``run_<name>`` pair.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from wsg.checkpoints import FORMAT as CHECKPOINT_FORMAT, load_checkpoint, save_model  # noqa: F401 (re-exported)
from wsg.provenance import versions


# ----------------------------------------------------------------------------- helpers
class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only when there is one worth showing."""

    def _get_help_string(self, action):
        if action.default in (None, False) or "default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]`` (also ``"0-4"`` for a range)."""
    seeds: list[int] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                seeds.extend(range(int(a), int(b) + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds must be integers separated by commas (e.g. 0,1,2), got {text!r}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"--seeds needs distinct integers (e.g. 0,1,2), got {text!r}")
    return seeds


def parse_videos(text: str) -> tuple[int, int, int]:
    """``"60,20,20"`` -> ``(60, 20, 20)``: videos per synthetic split."""
    try:
        n = tuple(int(x) for x in str(text).split(","))
    except ValueError:
        n = ()
    if len(n) != 3 or min(n) < 2:
        raise argparse.ArgumentTypeError(f"--videos needs three counts >= 2, TRAIN,VAL,TEST (e.g. 60,20,20), got {text!r}")
    return n  # type: ignore[return-value]


def describe_device(device) -> str:
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def _data_args(args: argparse.Namespace) -> dict:
    """The arguments of :func:`wsg.data.load_benchmark` a checkpoint records."""
    from wsg.recipes import SYNTHETIC

    data = {"dataset": args.dataset, "profile": args.profile, "num_clips": args.num_clips}
    if args.dataset in SYNTHETIC:
        data["kw"] = {"num_videos": list(args.videos)} if args.videos else {}
    else:
        data.update(root=str(Path(args.root).resolve()), features=str(Path(args.features).resolve()), kw={})
    return data


def load_data(data: dict):
    """Rebuild a benchmark from the dataset arguments a checkpoint records."""
    from wsg.data import load_benchmark

    kw = dict(data.get("kw") or {})
    if "num_videos" in kw:
        kw["num_videos"] = tuple(kw["num_videos"])
    return load_benchmark(data["dataset"], data.get("root"), data.get("features"), profile=data.get("profile"),
                          num_clips=data.get("num_clips"), **kw)


def _clean(x):
    """JSON-safe: numpy scalars to Python, non-finite floats to ``None``, tuples to lists."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# ----------------------------------------------------------------------------- train
def add_train_parser(sub) -> None:
    from wsg.recipes import DATASETS, METHODS, PROFILES, REAL, SYNTHETIC

    p = sub.add_parser(
        "train", help="train a method on a dataset with its recipe (one run per seed), then test it",
        description="Train METHOD with its recipe (wsg.recipes.get) on DATASET, one run per seed; each run "
                    "selects its best epoch on the validation split and is evaluated once on the test split. "
                    "Writes checkpoints, history.csv and results.json under --out.",
        formatter_class=_HelpFormatter)
    p.add_argument("key", metavar="METHOD", choices=METHODS, help=f"the method: {', '.join(METHODS)}")
    p.add_argument("--dataset", default="charades", choices=DATASETS, metavar="DATASET",
                   help=f"a synthetic preset ({', '.join(SYNTHETIC)}; generated and cached in $WSG_DATA) "
                        f"or a real benchmark ({', '.join(REAL)}; needs --root and --features)")
    p.add_argument("--root", help="real data: the folder of the dataset's annotation files "
                                  "(e.g. charades_sta_train.txt + Charades_v1_train.csv; see book/how_to_run.md)")
    p.add_argument("--features", help="real data: an HDF5 feature file keyed by video id, or a folder of "
                                      "<video_id>.npy files")
    p.add_argument("--profile", choices=PROFILES, default=None,
                   help="recipe profile (and synthetic data size); default: $WSG_PROFILE, else 'full' with a "
                        "CUDA GPU and 'tiny' without")
    p.add_argument("--seeds", type=parse_seeds, default=[0], metavar="S[,S...]",
                   help="seeds, one training run each (e.g. 0,1,2 for a mean and std)")
    p.add_argument("--epochs", type=int, default=None, metavar="N", help="override the recipe's epochs")
    p.add_argument("--lr", type=float, default=None, help="override the recipe's learning rate")
    p.add_argument("--batch-size", type=int, default=None, metavar="B", help="override the recipe's batch size")
    p.add_argument("--num-clips", type=int, default=None, metavar="T",
                   help="override the recipe's clips per video")
    p.add_argument("--protocol", default=None, choices=("plain", "tall", "2d-tan"),
                   help="evaluation protocol (validation and test); default: the recipe's")
    p.add_argument("--videos", type=parse_videos, default=None, metavar="TRAIN,VAL,TEST",
                   help="synthetic data only: videos per split (default: the profile's)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ...; default: CUDA when available")
    p.add_argument("--amp", action="store_true", help="mixed precision on CUDA")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created; a rerun resumes from "
                                                                 "each seed's last.pt)")


def _check_train_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from wsg.recipes import REAL, SYNTHETIC

    if args.dataset in REAL:
        what = {"root": "--root ROOT (the annotation folder)", "features": "--features F (an HDF5 feature file "
                "or a folder of .npy files)"}
        missing = [what[o] for o in ("root", "features") if not getattr(args, o)]
        if missing:
            parser.error(f"the real dataset {args.dataset!r} needs {' and '.join(missing)}")
        for option in ("root", "features"):
            value = getattr(args, option)
            if not Path(value).exists():
                parser.error(f"--{option} {value}: no such file or folder")
        if args.videos:
            parser.error("--videos applies to the synthetic presets only")
    elif args.dataset in SYNTHETIC and (args.root or args.features):
        parser.error(f"--root/--features are for real datasets; {args.dataset!r} is a synthetic preset")
    for name in ("epochs", "batch_size", "num_clips"):
        v = getattr(args, name)
        if v is not None and v < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {v}")
    if args.lr is not None and not args.lr > 0:
        parser.error(f"--lr must be positive, got {args.lr}")


def _seed_dir(out: Path, seed: int) -> Path:
    """Where :func:`wsg.experiments.run` puts a seed's trainer checkpoints."""
    return out / f"seed{seed}"


def run_train(args: argparse.Namespace) -> int:
    """Train one method over seeds with :func:`wsg.experiments.run` and write the run folder."""
    import pandas as pd
    import torch

    from wsg.experiments import per_seed, run
    from wsg.profiles import get_profile
    from wsg.recipes import get, model_config
    from wsg.train import choose_device, init_distributed

    t_start = time.perf_counter()
    rank, world = init_distributed()  # under torchrun: one process per device, DistributedDataParallel
    profile = get_profile(args.profile)
    args.profile = profile.name
    recipe = get(args.key, args.dataset, profile.name)
    overrides = {k: v for k, v in (("epochs", args.epochs), ("lr", args.lr), ("batch_size", args.batch_size),
                                   ("num_clips", args.num_clips), ("protocol", args.protocol)) if v is not None}
    for name, value in overrides.items():
        recipe[name] = value
        recipe["sources"][name] = "command line"
    args.num_clips = recipe["num_clips"]
    data = _data_args(args)
    bench = load_data(data)
    device = choose_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = " ".join(shlex.quote(a) for a in ["python", "-m", "wsg", *args.argv])
    print(f"wsg train {args.key} on {bench.name} ({', '.join(f'{s}: {len(df)}' for s, df in bench.splits.items())} "
          f"queries), profile {profile.name}, seeds {args.seeds}, device {device}", file=sys.stderr)
    test = bench.splits["test"]
    controls = bool((test.groupby("video_id").size() >= 2).any())  # the swapped-query control needs them
    train_overrides = {k: recipe[k] for k in ("lr", "epochs", "batch_size", "protocol")}
    rows = run(args.key, bench, args.seeds, profile=profile.name, dataset=args.dataset, controls=controls,
               progress=not args.quiet and rank == 0, device=str(device), checkpoint_dir=out, command=command,
               **train_overrides)
    if rank != 0:  # rank 0 writes the run folder (every process holds the same weights and metrics)
        return 0

    config = model_config(recipe, bench)
    histories, runs = [], []
    for seed, row in zip(args.seeds, per_seed(rows).to_dict("records")):
        ckpt_dir = _seed_dir(out, seed)
        best = torch.load(ckpt_dir / "best.pt", map_location="cpu", weights_only=False)
        last = torch.load(ckpt_dir / "last.pt", map_location="cpu", weights_only=False)
        save_model(ckpt_dir / "model.pt", args.key, config, best["model"], bench, recipe, data, seed,
                   int(row["best_epoch"]))
        history = pd.DataFrame(last["history"])
        history.insert(0, "seed", seed)
        histories.append(history)
        runs.append({**row, "checkpoint": str(ckpt_dir / "model.pt")})
    pd.concat(histories, ignore_index=True).to_csv(out / "history.csv", index=False)
    numeric = [c for c in rows.columns if c.startswith(("R@", "mIoU", "swapped", "event hit"))]
    summary = {m: {"mean": float(rows.loc["mean", m]),
                   "std": (float(rows.loc["std", m]) if len(args.seeds) > 1 else None)} for m in numeric}
    results = {
        "method": args.key, "dataset": args.dataset, "benchmark": bench.name, "profile": profile.name,
        "protocol": recipe["protocol"], "split": "test", "seeds": args.seeds,
        "queries": {s: int(len(df)) for s, df in bench.splits.items()},
        "controls": controls, "test": summary, "runs": runs,
        "settings": {"model": recipe["model"], **{k: recipe[k] for k in ("lr", "epochs", "batch_size", "num_clips")},
                     "sources": recipe["sources"], "data": data},
        "seconds": time.perf_counter() - t_start, "device": describe_device(device), "versions": versions(),
        "command": command, "torch_threads": torch.get_num_threads(), "processes": world,
    }
    (out / "results.json").write_text(json.dumps(_clean(results), indent=2, default=_json_default))
    print(json.dumps({"test": summary, "results": str(out / "results.json")}, indent=2, default=_json_default))
    return 0


def _json_default(x):
    if hasattr(x, "item"):
        return x.item()
    if isinstance(x, (set, tuple)):
        return list(x)
    return str(x)


# ----------------------------------------------------------------------------- evaluate
def add_evaluate_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate", help="evaluate a checkpoint written by 'train' on a split",
        description="Rebuild the model and the data recorded in a checkpoint (seed<s>/model.pt written by "
                    "'wsg train'; a trainer's best.pt / last.pt next to it also works) and print its metrics "
                    "on --split as JSON.",
        formatter_class=_HelpFormatter)
    p.add_argument("--checkpoint", required=True, metavar="CKPT",
                   help="seed<s>/model.pt from 'wsg train' (or best.pt / last.pt in the same folder)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="split to evaluate")
    p.add_argument("--protocol", default=None, choices=("plain", "tall", "2d-tan"),
                   help="evaluation protocol; default: the one the model was trained with")
    p.add_argument("--root", help="real data: the annotation folder, if it moved since training")
    p.add_argument("--features", help="real data: the feature file or folder, if it moved since training")
    p.add_argument("--device", default=None, help="cpu, cuda, ...; default: CUDA when available")
    p.add_argument("--out", default=None, metavar="JSON", help="also write the metrics to this file")


def run_evaluate(args: argparse.Namespace) -> int:
    import wsg.models
    from wsg.train import choose_device, evaluate

    state = load_checkpoint(args.checkpoint)
    data = dict(state["data"])
    from wsg.recipes import REAL

    if data["dataset"] in REAL:
        for option in ("root", "features"):
            if getattr(args, option):
                data[option] = str(Path(getattr(args, option)).resolve())
            if not Path(data[option]).exists():
                raise FileNotFoundError(f"{option} {data[option]} recorded in the checkpoint does not exist; "
                                        f"pass --{option}")
    bench = load_data(data)
    if list(bench.vocab.itos) != list(state["vocab"]):
        raise ValueError(f"the training split of {bench.name} no longer gives the checkpoint's vocabulary "
                         f"({len(bench.vocab)} words now, {len(state['vocab'])} then): the data changed")
    model = wsg.models.build(state["key"], **state["model_config"])
    model.load_state_dict(state["state_dict"])
    protocol = args.protocol or state["recipe"]["protocol"]
    device = choose_device(args.device)
    metrics = evaluate(model, bench.loader(args.split, 64), protocol=protocol, device=device)
    result = {"method": state["key"], "dataset": data["dataset"], "split": args.split, "protocol": protocol,
              "queries": int(len(bench.splits[args.split])), "metrics": metrics, "checkpoint": str(args.checkpoint),
              "seed": state.get("seed"), "best_epoch": state.get("best_epoch"), "device": describe_device(device), "versions": versions()}
    text = json.dumps(_clean(result), indent=2, default=_json_default)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return 0


# ----------------------------------------------------------------------------- entry point
#: subcommand -> (adds its parser, runs it); a new subcommand registers here
def add_bench_parser(sub) -> None:
    from wsg.recipes import METHODS, SYNTHETIC

    p = sub.add_parser(
        "bench", help="speed and memory of each method (seconds per epoch, peak memory, ...)",
        description="Train each method for a few epochs on its recipe's synthetic data and print, per method, "
                    "seconds per epoch, queries per second, the forward/backward share, peak memory (CUDA: "
                    "max_memory_allocated; CPU: peak RSS of the process), parameters and the time to evaluate "
                    "the test split. Rows are appended to results/bench.csv (see wsg.bench).",
        formatter_class=_HelpFormatter)
    p.add_argument("keys", nargs="*", metavar="KEY", help=f"methods (default: all of {', '.join(METHODS)})")
    p.add_argument("--profile", default="tiny", choices=("tiny", "full"), help="recipe and data size")
    p.add_argument("--dataset", default="charades", choices=SYNTHETIC, help="synthetic preset")
    p.add_argument("--device", default=None, help="cpu, cuda, ...; default: CUDA when available")
    p.add_argument("--amp", action="store_true", help="mixed precision on CUDA (bf16 where supported)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per method (the first is warm-up)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--videos", type=parse_videos, default=None, metavar="TRAIN,VAL,TEST",
                   help="videos per synthetic split instead of the profile's (e.g. 4050,100,100: about "
                        "Charades-STA's 12,404 training queries)")
    p.add_argument("--feature-dim", type=int, default=None, metavar="D",
                   help="width of the synthetic clip features (e.g. 1024: Charades-STA's I3D)")
    p.add_argument("--out", default="results/bench.csv", help="CSV the rows are appended to")


def run_bench(args: argparse.Namespace) -> int:
    import pandas as pd
    import torch

    from wsg.bench import benchmark
    from wsg.recipes import METHODS

    if args.threads:
        torch.set_num_threads(args.threads)
    data = None
    if args.videos or args.feature_dim:  # a synthetic benchmark of other sizes (e.g. a real dataset's)
        from wsg.data import load_synthetic

        sizes = {k: v for k, v in (("num_videos", args.videos), ("feature_dim", args.feature_dim)) if v}
        data = load_synthetic(args.dataset, profile=args.profile, **sizes)
        print(f"data: {', '.join(f'{s} {len(t)}' for s, t in data.splits.items())} queries, "
              f"{data.video_dim}-d features", file=sys.stderr)
    df = benchmark(args.keys or list(METHODS), profile=args.profile, device=args.device, amp=args.amp,
                   epochs=args.epochs, dataset=args.dataset, out=args.out, data=data,
                   command="python -m wsg " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    cols = ["method", "device", "amp", "s/epoch", "queries/s", "forward %", "peak MiB", "parameters", "eval s"]
    with pd.option_context("display.width", 160):
        print(df[cols].to_string(index=False))
    print(f"appended to {args.out}")
    return 0


# ----------------------------------------------------------------------------- checkpoints
def add_checkpoints_parser(sub) -> None:
    from wsg.recipes import DATASETS, METHODS

    p = sub.add_parser(
        "checkpoints", help="(re)make the chapters' checkpoints: one training run per method with its recipe",
        description="Train each method once with its recipe and seed, exactly as its chapter does, and save "
                    "the selected weights to checkpoints/<profile>/<method>-<dataset>-seed<seed>.pt (the file a "
                    "chapter loads instead of training; see wsg.checkpoints).",
        formatter_class=_HelpFormatter)
    p.add_argument("keys", nargs="*", metavar="KEY", help=f"methods (default: all of {', '.join(METHODS)})")
    p.add_argument("--dataset", default="charades", choices=DATASETS, help="dataset (real ones need --root, --features)")
    p.add_argument("--root", help="real data: the annotation folder")
    p.add_argument("--features", help="real data: the feature file or folder")
    p.add_argument("--profile", default="tiny", choices=("tiny", "full"), help="recipe and data size")
    p.add_argument("--seed", type=int, default=0, help="the chapters' seed")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (1: bit-reproducible weights)")
    p.add_argument("--device", default=None, help="cpu, cuda, ...; default: CUDA when available")


def run_checkpoints(args: argparse.Namespace) -> int:
    import torch

    from wsg.checkpoints import chapter_checkpoint, train_or_load
    from wsg.data import load_benchmark
    from wsg.models import build
    from wsg.recipes import METHODS, get, model_config
    from wsg.train import set_seed

    torch.set_num_threads(args.threads)
    for key in args.keys or list(METHODS):
        recipe = get(key, args.dataset, args.profile)
        bench = load_benchmark(args.dataset, args.root, args.features, args.profile, num_clips=recipe["num_clips"])
        set_seed(args.seed)  # before the model exists, as in the chapters
        model = build(key, **model_config(recipe, bench))
        t0 = time.perf_counter()
        train_or_load(key, model, bench, recipe, seed=args.seed, dataset=args.dataset, profile=args.profile,
                      retrain=True, progress=False, device=args.device)
        print(f"{key}: {chapter_checkpoint(key, args.dataset, args.profile, args.seed)} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return 0


COMMANDS: dict[str, tuple[Callable, Callable]] = {
    "train": (add_train_parser, run_train),
    "evaluate": (add_evaluate_parser, run_evaluate),
    "bench": (add_bench_parser, run_bench),
    "checkpoints": (add_checkpoints_parser, run_checkpoints),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m wsg",
        description="Weakly-supervised temporal grounding: train and evaluate the book's methods outside notebooks.",
        epilog="Run 'python -m wsg COMMAND --help' for a command's options. Synthetic data are cached in $WSG_DATA "
               "(default ~/.cache/wsg).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add, _ in COMMANDS.values():
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (argparse exits with 2 on bad usage)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    if args.command == "train":
        _check_train_args(parser._subparsers._group_actions[0].choices["train"], args)
    try:
        return COMMANDS[args.command][1](args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"wsg {args.command}: error: {exc}", file=sys.stderr)
        return 1
