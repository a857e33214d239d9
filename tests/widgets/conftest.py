"""Widgets built without a frontend are closed after each test, so none is left for
ipywidgets to close while Python shuts down (which prints 'Exception ignored' tracebacks)."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _close_widgets():
    yield
    import ipywidgets

    ipywidgets.Widget.close_all()
