"""The ipywidgets controls of `WindowExplorer`, laid out to fit a 1366 x 768 laptop screen.

The picture (at least 512 px, whole CT pixels) sits on the left; on the right: the presets as
one toggle group ("brain 40/80", the active one pressed), level and width as ~440 px sliders
(about 4.5 HU per screen pixel when dragged, 1 HU per arrow key) each with a box to type the
value into, an "extended range" switch for bone-like windows, the slice ("12 / 33"), the
overlay mode, the HU histogram and the readout. Clicking the picture moves the readout point.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from brainlib.widgets.clickimage import ClickImage
from brainlib.widgets.window_explorer import preset_label

if TYPE_CHECKING:
    from brainlib.widgets.window_explorer import WindowExplorer

__all__ = ["build_controls", "sync_controls", "RANGES"]

#: slider ranges (min, max) in HU: normal, and extended (bone windows, metal).
RANGES = {"level": ((-1000, 1000), (-1000, 3000)), "width": ((1, 2000), (1, 4000))}
COLUMN_PX = 460
SLIDER_PX = 440
HINT = ("Type a number into a box and press Enter, or click a slider and use the "
        "\u2190 \u2192 keys for 1 HU steps.")


def _needs_extended(e: "WindowExplorer") -> bool:
    values = {"level": e.level, "width": e.width}
    return any(not lo <= values[k] <= hi for k, ((lo, hi), _) in RANGES.items())


def sync_controls(e: "WindowExplorer") -> None:
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
        c["slice_label"].value = f"<b>slice</b> {e.slice_label()}"
        if "overlay" in c:
            c["overlay"].value = e.overlay_mode
    finally:
        e._syncing = False


def _apply_ranges(e: "WindowExplorer") -> None:
    c = e._controls
    ext = int(bool(c["extended"].value))
    for key, ranges in RANGES.items():
        lo, hi = ranges[ext]
        c[key].min, c[key].max = lo, hi  # every range starts at the same minimum


def _on_user(e: "WindowExplorer", key: str):
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


def _value_row(w: Any, c: dict, key: str, label: str, tip: str) -> Any:
    (lo, hi), _ = RANGES[key]
    c[key] = w.IntSlider(min=lo, max=hi, step=1, readout=False, continuous_update=True,
                         description="", tooltip=tip, layout=w.Layout(width=f"{SLIDER_PX}px"))
    c[f"{key}_text"] = w.IntText(step=1, continuous_update=False, tooltip=f"type the {key} and press Enter",
                                 layout=w.Layout(width="80px"))
    c[f"{key}_text"].add_class(f"brainlib-{key}-box")
    c[key].add_class(f"brainlib-{key}-slider")
    head = w.HBox([w.HTML(f"<b>{label}</b> (HU)", layout=w.Layout(width="120px")), c[f"{key}_text"],
                   w.HTML(f"<small>{tip}</small>")], layout=w.Layout(align_items="center"))
    return w.VBox([head, c[key]])


def build_controls(e: "WindowExplorer") -> Any:
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
        style={"button_width": "138px"}, layout=w.Layout(width=f"{COLUMN_PX}px"))
    c["presets"].add_class("brainlib-presets")
    level_row = _value_row(w, c, "level", "level", "centre of the window")
    width_row = _value_row(w, c, "width", "width", "HU from black to white")
    c["extended"] = w.Checkbox(value=False, description="extended range (level to 3000, width to 4000)",
                               indent=False, layout=w.Layout(width=f"{COLUMN_PX}px"))
    c["slice_index"] = w.IntSlider(min=0, max=z - 1, readout=False, disabled=z == 1,
                                   layout=w.Layout(width="300px"))
    c["slice_label"] = w.HTML(layout=w.Layout(width="130px"))
    c["slice_label"].add_class("brainlib-slice-label")
    rows = [c["presets"], level_row, width_row, c["extended"],
            w.HTML(f"<small>{HINT} Click the picture to read the HU there.</small>",
                   layout=w.Layout(width=f"{COLUMN_PX}px")),
            w.HBox([c["slice_label"], c["slice_index"]])]
    if e.overlay is not None:
        c["overlay"] = w.ToggleButtons(options=["outline", "fill", "off"], description="mask",
                                       style={"button_width": "70px", "description_width": "40px"})
        rows.append(c["overlay"])
    c["hist"] = w.Image(format="png", layout=w.Layout(width="440px", height="150px"))
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
    box = w.HBox([c["image"], w.VBox(rows, layout=w.Layout(width=f"{COLUMN_PX + 10}px"))],
                 layout=w.Layout(align_items="flex-start", grid_gap="12px"))
    box.add_class("brainlib-window-explorer")
    return box
