"""What every viewer shares: a widget built once, redrawn from numpy pictures, and a static
matplotlib figure instead when no Jupyter frontend will render widgets (papermill)."""
from __future__ import annotations

import html
import os
from typing import Any

from brainlib.widgets.render import png

__all__ = ["headless", "Viewer"]


def headless() -> bool:
    """True when no Jupyter frontend will render widgets (papermill, plain Python)."""
    if os.environ.get("BRAINLIB_HEADLESS", "") not in ("", "0"):
        return True
    try:
        from IPython import get_ipython
    except ImportError:
        return True
    shell = get_ipython()
    return shell is None or not hasattr(shell, "kernel")


class Viewer:
    """Base of the viewers: an ipywidgets box built on first use, redrawn from
    `_pictures()` + `readout()`, and a static `figure()` when no frontend renders."""

    def __init__(self) -> None:
        self._controls: dict[str, Any] = {}
        self._widget: Any = None

    def _build(self) -> Any:  # the ipywidgets box; fills self._controls
        raise NotImplementedError

    def _pictures(self) -> dict[str, Any]:  # control key -> function returning an RGB array
        raise NotImplementedError

    def readout(self) -> str:
        raise NotImplementedError

    def readout_html(self) -> str:
        """The readout as shown in the widget (subclasses may add lines)."""
        return f"<code>{html.escape(self.readout())}</code>"

    def figure(self) -> Any:
        raise NotImplementedError

    def widget(self) -> Any:
        """The ipywidgets box (built once)."""
        if self._widget is None:
            self._widget = self._build()
            self.redraw()
        return self._widget

    def redraw(self) -> None:
        """Refresh pictures and readout (the < 100 ms path); a no-op before `widget()`."""
        if self._widget is None:
            return
        for key, render in self._pictures().items():
            self._controls[key].value = png(render())
        self._controls["readout"].value = self.readout_html()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if headless():
            import matplotlib.pyplot as plt

            fig = self.figure()
            display(fig)
            plt.close(fig)
        else:
            display(self.widget())
