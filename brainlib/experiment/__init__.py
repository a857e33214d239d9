"""brainlib.experiment: the shape every paper's notebook stands on.

* `settings` — typed, frozen settings per paper: each field is `paper(value, where)`,
  `ours(value, why)` or `runtime(value, why)`; profiles are overrides; deviations and readings
  are derived from the fields.
* `Experiment` (`session`) — settings, device, seed, threads, data source, run folder; saves
  tables and figures with captions; `finish()` compares claims and writes the manifest.
* `ClaimRecorder` — measured values by claim id, for `brainlib.claims.compare`.

Adding a paper: see docs/DEVELOPING.md ("Adding a paper").
"""
from brainlib.experiment.recorder import ClaimRecorder
from brainlib.experiment.session import Experiment, InstrumentCheckError, open_experiment
from brainlib.experiment.settings import (Deviation, Reading, Settings, ours, paper,
                                          runtime)

__all__ = ["ClaimRecorder", "Deviation", "Experiment", "InstrumentCheckError", "Reading", "Settings", "open_experiment",
           "ours", "paper", "runtime"]
