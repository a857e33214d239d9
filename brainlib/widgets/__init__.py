"""Interactive viewers for students: window width/level, series attention, CAM.

Windowing is learnt by moving it. `WindowExplorer` shows a CT slice through a window
(level, width) in HU with sliders, presets (brain, subdural, soft tissue, bone, plus learned
windows such as the ones He et al. 2024's window module finds), a slice slider, an optional
mask outline, a HU histogram with the window drawn on it and the HU where the picture is
clicked. `SeriesAttentionViewer` browses a DrCT (Wang et al.) series with its slice
attention; `CamViewer` thresholds a CAM into a box as He et al. do (20 % of the maximum).

Rendering is numpy + PIL (`render`), so a 512 x 512 redraw stays far below 100 ms on a CPU.
With no frontend (`brainlib run` exports ``BRAINLIB_HEADLESS=1``) the same objects display a
static matplotlib figure instead, so notebooks run headlessly and their HTML export still
shows the picture. The programmatic state (`level`, `width`, `slice_index`, `image()`) is the
same in both modes and is what the tests check.

Modules: `sources` (arrays, DICOM files and folders, folder errors), `render` (drawing),
`base` (the shared viewer), `window_explorer` + `window_controls`, `series_viewer`,
`cam_viewer`, `clickimage` (a clickable picture), `measure` (contrast through a window).
"""
from __future__ import annotations

from brainlib.widgets.base import headless
from brainlib.widgets.cam_viewer import CamViewer
from brainlib.widgets.measure import region_contrast
from brainlib.widgets.series_viewer import SeriesAttentionViewer
from brainlib.widgets.sources import LoadedVolume, NoCTSeriesError, find_series, load_source, load_volume
from brainlib.widgets.window_explorer import WindowExplorer

__all__ = ["WindowExplorer", "SeriesAttentionViewer", "CamViewer", "load_source", "load_volume",
           "LoadedVolume", "find_series", "NoCTSeriesError", "headless", "region_contrast"]
