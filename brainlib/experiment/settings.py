"""Typed experiment settings: every field carries the paper's value and where the paper states
it, or says that the paper does not state it and why we chose what we chose.

A paper declares one frozen dataclass (like timm's pretrained configs)::

    @dataclass(frozen=True)
    class He2024Settings(Settings):
        epochs: int = paper(20, "Sec. 3.3")
        image_size: int = ours(512, "RSNA's native size; the paper gives no resize")
        n_boot: int = runtime(1000, "bootstrap resamples of every CI")

        PROFILES: ClassVar[Profiles] = {"quick": {"epochs": 8}, "smoke": {...}}
        PROFILE_REASONS: ClassVar[dict[str, str]] = {"quick": "CPU minutes", ...}

The class defaults are the `full` profile: the paper's own values where it gives them.
`for_profile("quick", epochs=3)` applies the profile's overrides, then the caller's. From the
resolved object alone follow the *deviations* (paper fields whose value differs from the
paper's) and the *readings* (fields the paper leaves open, with the value used and why);
nothing is written twice. `runtime` fields (threads, bootstrap sizes, phantom sizes) describe
how we run, not the method: they are listed, never counted as deviations or readings.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal, Mapping, Sequence

import pandas as pd

Origin = Literal["paper", "ours", "runtime"]
Profiles = Mapping[str, Mapping[str, Any]]
PROFILE_NAMES: tuple[str, ...] = ("smoke", "quick", "full")


def paper(value: Any, where: str) -> Any:
    """A setting the paper states: `value` is the paper's, `where` cites it ("Sec. 3.3")."""
    return _field(value, origin="paper", where=where)


def ours(value: Any, why: str) -> Any:
    """A setting the paper leaves open: `value` is our choice at `full`, `why` justifies it."""
    return _field(value, origin="ours", why=why)


def runtime(value: Any, why: str) -> Any:
    """How we run, not what the method is (threads, bootstrap size, phantom size)."""
    return _field(value, origin="runtime", why=why)


def _field(value: Any, **meta: str) -> Any:
    if isinstance(value, (list, dict, set)):
        raise TypeError("settings must be immutable: use a tuple instead of a list/dict/set")
    return dataclasses.field(default=value, metadata=meta)


@dataclass(frozen=True)
class Deviation:
    """A paper setting run with another value (in `profile`, for `reason`)."""

    name: str
    value: Any
    paper_value: Any
    where: str
    reason: str

    def __str__(self) -> str:
        return (f"{self.name}: {_show(self.value)} (paper: {_show(self.paper_value)}, "
                f"{self.where}; {self.reason})")

    def change(self) -> str:
        """The change without its reason: "name: value (paper: x, where)"."""
        return f"{self.name}: {_show(self.value)} (paper: {_show(self.paper_value)}, {self.where})"


def deviation_texts(devs: Sequence[Deviation]) -> list[str]:
    """One text per reason, so a long profile reason is stated once in captions and manifests.

    Deviations sharing a reason become "<reason>: name: value (paper: x, where); name2: ...";
    a deviation whose reason no other one shares keeps its own text, "name: value (paper: x,
    where; reason)". Groups keep the order in which their reasons first appear.
    """
    groups: dict[str, list[Deviation]] = {}
    for dev in devs:
        groups.setdefault(dev.reason, []).append(dev)
    texts = []
    for reason, group in groups.items():
        if len(group) == 1:
            texts.append(str(group[0]))
        else:
            head = reason.rstrip().removesuffix(".")
            texts.append(f"{head}: " + "; ".join(d.change() for d in group))
    return texts


@dataclass(frozen=True)
class Reading:
    """A choice the paper does not fix: the value used and why."""

    name: str
    value: Any
    why: str

    def __str__(self) -> str:
        return f"{self.name} = {_show(self.value)}: {self.why} (not in the paper)"


def _show(value: Any) -> str:
    if value is None:
        return "all"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class Settings:
    """Base of every paper's settings dataclass (subclass it with `frozen=True`)."""

    PROFILES: ClassVar[Profiles] = {}
    PROFILE_REASONS: ClassVar[Mapping[str, str]] = {
        "smoke": "smoke profile: seconds on CPU, only checks that everything runs",
        "quick": "quick profile: sized for minutes on a 2-core CPU",
        "full": "set by the caller",
    }

    profile: str = runtime("full", "profile the other fields were resolved for")

    @classmethod
    def for_profile(cls, profile: str = "full", **overrides: Any) -> "Settings":
        """The settings of `profile` with the caller's non-None `overrides` on top.

        Raises ValueError for an unknown profile or a name that is not a field.
        """
        if profile not in PROFILE_NAMES:
            raise ValueError(f"unknown profile {profile!r}; choose one of {PROFILE_NAMES}")
        names = {f.name for f in fields(cls)}
        values: dict[str, Any] = dict(cls.PROFILES.get(profile, {}))
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown settings {unknown}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        made = cls(**values, profile=profile)
        object.__setattr__(made, "_overridden", frozenset(k for k, v in overrides.items()
                                                         if v is not None))
        return made

    @classmethod
    def paper_value(cls, name: str) -> Any:
        """The paper's value of a field (its class default), KeyError for a non-paper field."""
        f = _fields_by_name(cls)[name]
        if f.metadata.get("origin") != "paper":
            raise KeyError(f"{cls.__name__}.{name} is not stated in the paper")
        return f.default

    def origin(self, name: str) -> Origin:
        return _fields_by_name(type(self))[name].metadata.get("origin", "runtime")

    def reason(self, name: str) -> str:
        """Why `name` has its value: the caller's override, else the profile's reason."""
        if name in getattr(self, "_overridden", ()):
            return f"{self.profile} profile, set by the caller"
        return self.PROFILE_REASONS.get(self.profile, f"{self.profile} profile")

    def deviations(self) -> list[Deviation]:
        """Paper settings whose value here differs from the paper's."""
        out = []
        for f in fields(self):
            if f.metadata.get("origin") != "paper":
                continue
            value = getattr(self, f.name)
            if value != f.default:
                out.append(Deviation(f.name, value, f.default, f.metadata["where"],
                                     self.reason(f.name)))
        return out

    def readings(self) -> list[Reading]:
        """Settings the paper leaves open, with the value used and why we chose it."""
        out = []
        for f in fields(self):
            if f.metadata.get("origin") != "ours":
                continue
            value, why = getattr(self, f.name), f.metadata["why"]
            if value != f.default:
                why = f"{self.reason(f.name)} (full: {_show(f.default)}, {why})"
            out.append(Reading(f.name, value, why))
        return out

    def table(self) -> pd.DataFrame:
        """One row per setting: value used, paper's value, status and source/justification."""
        rows = []
        for f in fields(self):
            origin = f.metadata.get("origin", "runtime")
            value = getattr(self, f.name)
            if origin == "paper":
                status = "as in paper" if value == f.default else "changed"
                paper_value, why = _show(f.default), f.metadata["where"]
                if status == "changed":
                    why = f"{why}; {self.reason(f.name)}"
            else:
                status = "not in paper" if origin == "ours" else "runtime"
                paper_value, why = "", f.metadata.get("why", "")
            rows.append({"setting": f.name, "value": _show(value), "paper": paper_value,
                         "status": status, "source or reason": why})
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _fields_by_name(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in fields(cls)}
