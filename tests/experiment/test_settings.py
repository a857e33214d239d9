"""Typed settings: deviations and readings are derived from the fields, never written twice."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import pytest

from brainlib.experiment import Settings, ours, paper, runtime


@dataclass(frozen=True)
class Toy(Settings):
    epochs: int = paper(20, "Sec. 3.3")
    lr: float = paper(1e-3, "Sec. 3.3")
    image_size: int = ours(512, "native size; the paper gives no resize")
    n_boot: int = runtime(1000, "bootstrap resamples")

    PROFILES: ClassVar = {"quick": {"epochs": 8, "image_size": 64, "n_boot": 200},
                          "smoke": {"epochs": 1}}


def test_full_profile_is_the_paper():
    s = Toy.for_profile("full")
    assert s.deviations() == []
    assert [r.name for r in s.readings()] == ["image_size"]
    assert Toy.paper_value("epochs") == 20


def test_profile_values_change_the_deviation_list():
    quick = Toy.for_profile("quick")
    assert [(d.name, d.value, d.paper_value) for d in quick.deviations()] == [("epochs", 8, 20)]
    assert "quick profile" in quick.deviations()[0].reason
    # runtime fields never count as deviations or readings
    assert all(d.name != "n_boot" for d in quick.deviations())
    # a caller's override adds a deviation with its own reason
    more = Toy.for_profile("quick", lr=0.01)
    assert {d.name for d in more.deviations()} == {"epochs", "lr"}
    assert "set by the caller" in {d.name: d for d in more.deviations()}["lr"].reason
    # None means "the profile's value"
    assert Toy.for_profile("quick", epochs=None).epochs == 8


def test_readings_say_when_a_profile_changed_our_choice():
    r = Toy.for_profile("quick").readings()[0]
    assert r.value == 64 and "full: 512" in r.why and "not in the paper" in str(r)


def test_table_has_one_row_per_field_with_status():
    t = Toy.for_profile("quick").table().set_index("setting")
    assert t.at["epochs", "status"] == "changed"
    assert t.at["lr", "status"] == "as in paper"
    assert t.at["image_size", "status"] == "not in paper"
    assert t.at["n_boot", "status"] == "runtime"


def test_settings_are_frozen_and_checked():
    s = Toy.for_profile("smoke")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.epochs = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="unknown settings"):
        Toy.for_profile("quick", epoch=3)
    with pytest.raises(ValueError, match="unknown profile"):
        Toy.for_profile("fast")
    with pytest.raises(KeyError):
        Toy.paper_value("image_size")
    with pytest.raises(TypeError):
        paper([1, 2], "Table 1")
