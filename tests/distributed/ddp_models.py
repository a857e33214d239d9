"""A registered paper network trained 2 epochs by engine.fit on random inputs (run by torchrun).

Usage: ddp_models.py MODEL INPUT_SHAPE_JSON N_CLASSES KWARGS_JSON; prints one RESULT line per rank.
"""
from __future__ import annotations

import json
import os
import sys

import torch
from torch.nn import functional as F

from brainlib.engine import fit, make_loader
from brainlib.models import create_model

torch.set_num_threads(1)
name, shape, classes, kwargs = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])


class D(torch.utils.data.Dataset):
    def __len__(self):
        return 16

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"x": torch.randn(*shape, generator=g), "y": torch.tensor(i % classes), "id": str(i)}


def logits(o):
    return o if torch.is_tensor(o) else o["logits"]


torch.manual_seed(0)
m = create_model(name, **kwargs)
res = fit(m, make_loader(D(), 4, shuffle=True, seed=0), make_loader(D(), 4), epochs=2,
          losses=[("ce", lambda o, b: F.cross_entropy(logits(o), b["y"]), 1.0)],
          device="cpu", progress=False, activation="softmax")
print(f"\nRESULT rank {os.environ.get('RANK')} {name} world {res.world_size} loss {list(res.history['train_loss'])}", flush=True)
