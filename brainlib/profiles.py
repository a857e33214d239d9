"""Run profiles: `smoke` (seconds, for tests), `quick` (CPU minutes), `full` (paper settings).

Each paper module declares a dict ``{"full": {...}, "quick": {...}, "smoke": {...}}`` whose
`full` entry holds the paper's own settings. `resolve_profile` merges explicit overrides and
lists every setting that differs from the paper's, so manifests and captions can state them.
"""
from __future__ import annotations

from typing import Any, Mapping

PROFILES = ("smoke", "quick", "full")


def resolve_profile(
    table: Mapping[str, Mapping[str, Any]],
    profile: str,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Return (settings, deviations) for `profile`, with non-None `overrides` applied.

    Deviations read like ``"epochs: 3 (paper: 20)"``; they are empty for `full` without overrides.
    """
    if profile not in table:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(table)}")
    paper = dict(table["full"])
    settings = dict(paper)
    settings.update(table[profile])
    settings.update({k: v for k, v in (overrides or {}).items() if v is not None})
    deviations = [
        f"{key}: {settings[key]!r} (paper: {paper[key]!r})"
        for key in sorted(settings)
        if key in paper and settings[key] != paper[key]
    ]
    return settings, deviations
