"""One training / evaluation engine for every brainlib paper.

Every paper pipeline (He et al. 2024, Wang et al. DrCT1/DrCT2, Yin et al. 2024, Lin et al. 2021,
Pandiyaraju et al. 2024) trains through :func:`fit` and scores through :func:`evaluate` /
:func:`predict`, so seeding, checkpointing, resumption and mixed precision are written once.

Reading order: seeding and loaders -> batch helpers -> optimiser construction -> checkpoints
-> :func:`evaluate` / :func:`predict` -> :func:`fit` -> :func:`kfold_split`.

Conventions
-----------
* A batch is a dict ``{"x": tensor, "y": tensor, "id": list[str] | tensor, ...}``; the model
  input is ``input_fn(batch)`` (default ``batch["x"]``), so multi-input models work.
* A model returns a tensor or a dict of tensors.
* ``losses`` is a list of ``(name, fn(outputs, batch) -> scalar tensor, weight)``; the training
  objective is the weighted sum. Each named loss is logged separately.
* Determinism: on CPU two runs with the same seed are bit-identical. Shuffling order of epoch
  ``e`` depends only on ``(seed, e)`` (:class:`EpochShuffleSampler`), and every RNG state
  (python, numpy, torch, CUDA, loader generators) is stored in the checkpoint, so
  ``resume=True`` after an interruption reproduces the uninterrupted run exactly.
* Interruption: with a ``checkpoint_dir``, :func:`fit` resumes by default. Rerunning the same
  command after a kill continues from the last completed epoch (``last.pt``, written atomically
  after every epoch) and ends with the same weights as an uninterrupted run; a training whose
  checkpoint is already at the final epoch returns at once without training. A checkpoint
  written for another configuration (model parameters, optimiser, schedule, data size,
  ``checkpoint_meta``) is refused with :class:`CheckpointMismatchError`, never half-loaded.
  Checkpoints load with ``torch.load(weights_only=True)``.
* Several processes: under ``torchrun`` (or ``brainlib run --nproc N``) :func:`fit` trains with
  DistributedDataParallel, the batch size being the global one (:mod:`.distributed`,
  :mod:`.launch`, docs/scale.md).

Modules: ``loaders`` (seeding, samplers), ``batches``, ``optim``, ``checkpoint``,
``evaluation`` (evaluate / predict), ``training`` (fit), ``distributed`` and ``syncbn`` (DDP),
``launch`` (``--nproc``), ``kfold``, ``parallel`` (independent trainings on worker processes).
"""
from __future__ import annotations

from brainlib.engine.batches import LossSpec, _amp_context, _amp_mode, _compute_losses, _to_device, \
    default_input_fn
from brainlib.engine.checkpoint import (BEST_CHECKPOINT, LAST_CHECKPOINT, CheckpointMismatchError,
                                        _atomic_save, load_checkpoint)
from brainlib.engine.evaluation import Predictions, evaluate, predict
from brainlib.engine.kfold import kfold_split
from brainlib.engine.loaders import (EpochShuffleSampler, make_loader, resolve_device, seed_everything,
                                     seed_worker, torch_threads)
from brainlib.engine.optim import _make_optimizer, _param_groups
from brainlib.engine.training import FitResult, _train_one_epoch, fit

__all__ = [
    "CheckpointMismatchError",
    "EpochShuffleSampler",
    "FitResult",
    "LossSpec",
    "Predictions",
    "evaluate",
    "fit",
    "kfold_split",
    "load_checkpoint",
    "make_loader",
    "predict",
    "resolve_device",
    "seed_everything",
    "seed_worker",
    "torch_threads",
]
