"""A PNG image widget that reports where it was clicked (an anywidget: ipywidgets' own
Image has no click event). The click arrives as fractions of the picture's height and width,
so the viewer maps it to a CT pixel whatever the on-screen size."""
from __future__ import annotations

import anywidget
import traitlets

__all__ = ["ClickImage"]

_ESM = r"""
function render({ model, el }) {
  const img = document.createElement("img");
  img.className = "brainlib-click-image";
  img.draggable = false;
  img.style.imageRendering = "pixelated";  /* whole CT pixels, never smoothed */
  img.style.cursor = "crosshair";
  img.style.display = "block";
  let url = null;
  const update = () => {
    const data = model.get("value");
    if (url) URL.revokeObjectURL(url);
    url = URL.createObjectURL(new Blob([data], { type: "image/png" }));
    img.src = url;
    img.style.width = model.get("display_width") + "px";
    img.alt = model.get("alt");
  };
  img.addEventListener("click", (ev) => {
    const r = img.getBoundingClientRect();
    const n = (model.get("click")[2] || 0) + 1;
    model.set("click", [(ev.clientY - r.top) / r.height, (ev.clientX - r.left) / r.width, n]);
    model.save_changes();
  });
  model.on("change:value", update);
  model.on("change:display_width", update);
  update();
  el.appendChild(img);
  return () => { if (url) URL.revokeObjectURL(url); };
}
export default { render };
"""


class ClickImage(anywidget.AnyWidget):
    """`value`: PNG bytes; `display_width`: on-screen width in px; `click`: the last click as
    [row fraction, column fraction, click count] (the count makes repeated clicks distinct)."""

    _esm = _ESM
    value = traitlets.Bytes(b"").tag(sync=True)
    display_width = traitlets.Int(512).tag(sync=True)
    alt = traitlets.Unicode("CT slice").tag(sync=True)
    click = traitlets.List([0.0, 0.0, 0]).tag(sync=True)
