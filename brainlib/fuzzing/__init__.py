"""Fuzzing brainlib's readers (issue 14; docs/FUZZING.md).

Every reader of an input file (DICOM CT and NM, the RSNA, CQ500, DeepLesion and bone-scan
CSVs, DeepLesion and BUSI PNGs, box CSVs, claims YAML) must return a valid result or raise
its typed error family naming the file: never another exception, never a hang, never an
unbounded allocation. :func:`run_corpus` checks that on a fixed-seed corpus of mutated seed
files and counts the outcomes; ``python -m brainlib.fuzzing`` runs it from the shell.
"""
from brainlib.fuzzing.corpus import CASE_MEMORY_LIMIT, CASE_TIME_LIMIT, FAILURES, Report, run_case, run_corpus
from brainlib.fuzzing.mutate import Seed, mutate
from brainlib.fuzzing.targets import Target, targets

__all__ = ["CASE_MEMORY_LIMIT", "CASE_TIME_LIMIT", "FAILURES", "Report", "Seed", "Target",
           "mutate", "run_case", "run_corpus", "targets"]
