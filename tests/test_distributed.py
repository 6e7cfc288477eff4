"""DistributedDataParallel through torchrun: 2 CPU processes with the gloo backend."""
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from wsg.data import load_synthetic
from wsg.models import build
from wsg.recipes import get, model_config
from wsg.train import evaluate


def test_torchrun_training_completes_and_evaluation_matches_one_process(tmp_path):
    worker = Path(__file__).with_name("ddp_worker.py")
    data, out = tmp_path / "data", tmp_path / "out"
    out.mkdir()
    bench = load_synthetic("charades", "tiny", cache_dir=data, num_videos=(40, 10, 12))  # generated once, here
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(worker), str(data), str(out)], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert result["world"] == 2 and [r["epoch"] for r in result["history"]] == [1, 2]
    assert (out / "ckpt" / "last.pt").exists() and not list((out / "ckpt").glob("*.tmp"))
    # the same weights evaluated by a single process give the same numbers
    model = build("wsra", **model_config(get("wsra", "charades", "tiny"), bench))
    model.load_state_dict(torch.load(out / "weights.pt"))
    assert evaluate(model, bench.loader("test", batch_size=7)) == result["metrics"]
