"""Deviation texts: a reason shared by several changed settings is written once, not per setting."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from brainlib.experiment import Settings, open_experiment, paper, runtime
from brainlib.experiment.settings import Deviation, deviation_texts
from brainlib.report import DataSource

LONG_REASON = "quick profile: sized for minutes on a 2-core CPU; " + "long justification " * 20


@dataclass(frozen=True)
class Toy(Settings):
    epochs: int = paper(20, "Sec. 3.3")
    image_size: int = paper(256, "Sec. 3.1")
    lr: float = paper(1e-3, "Sec. 3.3")
    n_boot: int = runtime(1000, "bootstrap resamples")

    PROFILES: ClassVar = {"quick": {"epochs": 8, "image_size": 64, "n_boot": 200}}
    PROFILE_REASONS: ClassVar = {**Settings.PROFILE_REASONS, "quick": LONG_REASON}


def test_profile_reason_is_written_once_and_the_callers_change_keeps_its_own():
    s = Toy.for_profile("quick", lr=0.01)
    texts = deviation_texts(s.deviations())
    assert len(texts) == 2
    grouped, caller = texts
    joined = "; ".join(texts)  # what a caption shows
    assert joined.count(LONG_REASON.strip()) == 1
    assert grouped.startswith(LONG_REASON.strip() + ": ")
    assert "epochs: 8 (paper: 20, Sec. 3.3)" in grouped
    assert "image_size: 64 (paper: 256, Sec. 3.1)" in grouped
    assert "lr" not in grouped.removeprefix(LONG_REASON.strip())
    assert caller == "lr: 0.01 (paper: 0.001, Sec. 3.3; quick profile, set by the caller)"
    assert "n_boot" not in joined  # runtime fields are never deviations


def test_a_single_deviation_keeps_todays_text_and_order_follows_first_appearance():
    a = Deviation("a", 1, 2, "Sec. 1", "why A")
    b = Deviation("b", 3, 4, "Sec. 2", "why B.")
    c = Deviation("c", 5, 6, "Sec. 3", "why B.")
    assert deviation_texts([a]) == [str(a)] == ["a: 1 (paper: 2, Sec. 1; why A)"]
    assert deviation_texts([b, a, c]) == [
        "why B: b: 3 (paper: 4, Sec. 2); c: 5 (paper: 6, Sec. 3)", str(a)]
    assert deviation_texts([]) == []


def test_session_captions_and_manifest_state_the_reason_once(tmp_path):
    s = Toy.for_profile("quick", lr=0.01)
    exp = open_experiment("toy", s, params={"profile": "quick"}, out_dir=tmp_path,
                          source=DataSource("phantom", "toy"))
    exp.deviate("backbone: random initialisation")
    assert exp.deviations == [*deviation_texts(s.deviations()),
                              "backbone: random initialisation"]
    assert exp.run.deviations == exp.deviations  # what the manifest and captions use
    caption = exp.run.caption("A table")
    assert caption.count(LONG_REASON.strip()) == 1
    assert "epochs: 8" in caption and "image_size: 64" in caption
    assert "random initialisation" in caption
