"""The ipywidgets controls of `WindowExplorer`, laid out to fit a 1366 x 768 laptop screen.

The picture (at least 512 px, whole CT pixels) sits on the left; on the right, one row each:
the presets as one toggle group ("brain 40/80", the active one pressed), level and width as a
box to type the value into beside a 440 px slider (about 4.5 HU per screen pixel when dragged,
1 HU per arrow key), an "extended range" switch for bone-like windows, the slice ("12 / 33"),
the mask mode, the HU histogram and the readout. Clicking the picture moves the readout point.
"""
from __future__ import annotations

from typing import Any, Mapping, Protocol

import numpy as np

from brainlib.widgets.clickimage import ClickImage
from brainlib.io import Window


class ExplorerState(Protocol):
    """What the controls read and drive (`WindowExplorer` provides it): the window, the
    slice, the mask mode and the dict of built controls."""

    level: float
    width: float
    slice_index: int
    overlay_mode: str
    presets: Mapping[str, Window]
    volume: np.ndarray
    overlay: np.ndarray | None
    scale: int
    _controls: dict[str, Any]
    _syncing: bool

    @property
    def active_preset(self) -> str | None: ...
    def slice_label(self) -> str: ...
    def set_preset(self, name: str) -> None: ...
    def click(self, row_fraction: float, col_fraction: float) -> None: ...
    def redraw(self) -> None: ...

__all__ = ["build_controls", "sync_controls", "RANGES", "preset_label"]


def _short(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"


def preset_label(name: str, win: Window) -> str:
    """Button text of a window: 'soft tissue 40/380' (level/width, no underscores; learned
    windows to 0.1 HU, their tooltip has every digit)."""
    return f"{name.replace('_', ' ')} {_short(win.level)}/{_short(win.width)}"

#: slider ranges (min, max) in HU: normal, and extended (bone windows, metal).
RANGES = {"level": ((-1000, 1000), (-1000, 3000)), "width": ((1, 2000), (1, 4000))}
COLUMN_PX = 600
SLIDER_PX = 430  # ~4.7 HU per screen pixel over 2000 HU
LABEL_PX = 78
BOX_PX = 72
HIST_PX = (580, 140)
HINT = ("Type a value and press Enter, or click a slider and press \u2190 \u2192 (1 HU). "
        "Click the picture to read its HU.")


def _needs_extended(e: ExplorerState) -> bool:
    values = {"level": e.level, "width": e.width}
    return any(not lo <= values[k] <= hi for k, ((lo, hi), _) in RANGES.items())


def sync_controls(e: ExplorerState) -> None:
    """Make every control show the explorer's state (no observer reacts meanwhile)."""
    c = e._controls
    if not c:
        return
    e._syncing = True
    try:
        if _needs_extended(e):
            c["extended"].value = True
        _apply_ranges(e)
        for key in ("level", "width"):
            c[key].value = int(round(getattr(e, key)))
            c[f"{key}_text"].value = int(round(getattr(e, key)))
        c["presets"].value = e.active_preset
        c["slice_index"].value = e.slice_index
        c["slice_label"].value = e.slice_label()
        if "overlay" in c:
            c["overlay"].value = e.overlay_mode
    finally:
        e._syncing = False


def _apply_ranges(e: ExplorerState) -> None:
    c = e._controls
    ext = int(bool(c["extended"].value))
    for key, ranges in RANGES.items():
        lo, hi = ranges[ext]
        c[key].min, c[key].max = lo, hi  # every range starts at the same minimum


def _on_user(e: ExplorerState, key: str):
    """Observer of a control the student moved: update the state, then redraw."""
    def handler(change: dict) -> None:
        if getattr(e, "_syncing", False):
            return
        if key in ("level", "width"):
            value = float(change["new"])
            if key == "width" and value < 1:
                sync_controls(e)  # refuse: a window needs a positive width
                return
            setattr(e, key, value)
        elif key == "slice_index":
            e.slice_index = int(change["new"])
        elif key == "presets" and change["new"] is not None:
            e.set_preset(change["new"])
        elif key == "overlay":
            e.overlay_mode = change["new"]
            e.redraw()
        elif key == "extended":  # stays on while the window needs it
            sync_controls(e)
            e.redraw()
        elif key == "click":
            e.click(change["new"][0], change["new"][1])
    return handler


def _labelled_row(w: Any, label: str, *items: Any) -> Any:
    return w.HBox([w.HTML(label, layout=w.Layout(width=f"{LABEL_PX}px")), *items],
                  layout=w.Layout(align_items="center"))


def _value_row(w: Any, c: dict, key: str, tip: str) -> Any:
    (lo, hi), _ = RANGES[key]
    c[key] = w.IntSlider(min=lo, max=hi, step=1, readout=False, continuous_update=True,
                         description="", tooltip=tip, layout=w.Layout(width=f"{SLIDER_PX}px"))
    c[f"{key}_text"] = w.IntText(step=1, continuous_update=False, tooltip=f"{tip}: type and press Enter",
                                 layout=w.Layout(width=f"{BOX_PX}px"))
    c[f"{key}_text"].add_class(f"brainlib-{key}-box")
    c[key].add_class(f"brainlib-{key}-slider")
    return _labelled_row(w, f"<b>{key}</b> HU", c[f"{key}_text"], c[key])


def build_controls(e: ExplorerState) -> Any:
    """The explorer's ipywidgets box; fills `e._controls` and wires the observers."""
    import ipywidgets as w

    z, h, wd = e.volume.shape
    c = e._controls
    e._syncing = False
    c["image"] = ClickImage(display_width=min(max(512, wd * e.scale), 640))
    c["image"].add_class("brainlib-image")
    c["presets"] = w.ToggleButtons(
        options=[(preset_label(n, win), n) for n, win in e.presets.items()], value=None,
        tooltips=[f"level {win.level:g} HU, width {win.width:g} HU" for win in e.presets.values()],
        style={"button_width": "142px"}, layout=w.Layout(width=f"{COLUMN_PX}px"))
    c["presets"].add_class("brainlib-presets")
    rows = [c["presets"], _value_row(w, c, "level", "centre of the window"),
            _value_row(w, c, "width", "HU from black to white")]
    c["extended"] = w.Checkbox(value=False, description="extended range (level to 3000, width to 4000)",
                               indent=False, layout=w.Layout(width=f"{COLUMN_PX}px"))
    rows += [c["extended"], w.HTML(f"<small>{HINT}</small>", layout=w.Layout(width=f"{COLUMN_PX}px"))]
    c["slice_index"] = w.IntSlider(min=0, max=z - 1, readout=False, disabled=z == 1,
                                   layout=w.Layout(width=f"{SLIDER_PX}px"))
    c["slice_label"] = w.HTML(layout=w.Layout(width=f"{BOX_PX + 6}px"))
    c["slice_label"].add_class("brainlib-slice-label")
    rows.append(_labelled_row(w, "<b>slice</b>", c["slice_label"], c["slice_index"]))
    if e.overlay is not None:
        c["overlay"] = w.ToggleButtons(options=["outline", "fill", "off"], style={"button_width": "80px"},
                                       tooltips=["cyan ring just outside the mask", "light cyan fill",
                                                 "no mask"])
        rows.append(_labelled_row(w, "<b>mask</b>", c["overlay"]))
    c["hist"] = w.Image(format="png", layout=w.Layout(width=f"{HIST_PX[0]}px", height=f"{HIST_PX[1]}px"))
    c["hist"].add_class("brainlib-histogram")
    c["readout"] = w.HTML(layout=w.Layout(width=f"{COLUMN_PX}px"))
    c["readout"].add_class("brainlib-readout")
    rows += [c["hist"], c["readout"]]
    sync_controls(e)
    for key in ("level", "width", "slice_index", "presets", "overlay", "extended"):
        if key in c:
            c[key].observe(_on_user(e, key), names="value")
    for key in ("level", "width"):
        c[f"{key}_text"].observe(_on_user(e, key), names="value")
    c["image"].observe(_on_user(e, "click"), names="click")
    column = w.VBox(rows, layout=w.Layout(width=f"{COLUMN_PX + 8}px", grid_gap="2px"))
    # side by side on a laptop with the file browser hidden; the controls wrap below when narrower
    box = w.HBox([c["image"], column], layout=w.Layout(align_items="flex-start", grid_gap="12px",
                                                        flex_flow="row wrap"))
    box.add_class("brainlib-window-explorer")
    return box
