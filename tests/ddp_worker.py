"""Run by tests/test_distributed.py under torchrun: train one epoch on 2 CPU processes (gloo).

Usage: python -m torch.distributed.run --standalone --nproc_per_node=2 tests/ddp_worker.py DATA_DIR OUT_DIR
"""
import json
import sys
from pathlib import Path

import torch

from wsg.data import load_synthetic
from wsg.models import build
from wsg.recipes import get, model_config, train_config
from wsg.train import Trainer, evaluate, init_distributed, set_seed

torch.set_num_threads(1)
data_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
rank, world = init_distributed()
bench = load_synthetic("charades", "tiny", cache_dir=data_dir, num_videos=(40, 10, 12))
recipe = get("wsra", "charades", "tiny")
set_seed(0)
model = build("wsra", **model_config(recipe, bench))
trainer = Trainer(model, train_config(recipe, seed=0, epochs=2, progress=False, checkpoint_dir=str(out / "ckpt")))
history = trainer.fit(bench.loader("train", 8, seed=0), bench.loader("val"))
metrics = evaluate(model, bench.loader("test", batch_size=5))
if rank == 0:
    torch.save(model.state_dict(), out / "weights.pt")
    (out / "result.json").write_text(json.dumps({"world": world, "metrics": metrics,
                                                 "history": history.drop(columns="train_seconds").to_dict("records")}))
