"""The explorer notebook: saved clean, runs headless, and its lessons' numbers are measured on
the phantom's own masks (recomputed here from the same study and compared with its output)."""
from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "explore_ct_windows.ipynb"


def _text(nb) -> str:
    out = []
    for c in nb.cells:
        for o in c.get("outputs", []) if c.cell_type == "code" else []:
            out.append(o.get("text", "") or o.get("data", {}).get("text/html", "")
                       + o.get("data", {}).get("text/plain", ""))
    return "\n".join(out)


def test_lesson_cells_type_no_measured_number():
    """The lesson cells compute their numbers: no HU or contrast value is typed into them."""
    import re

    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", []))
    assert "split_lesion(example.volume, subdural)" in code
    assert not re.findall(r"(?<![\w.])-?\d+\.\d+", code), "a decimal number is typed into a code cell"


@pytest.mark.slow
def test_explorer_notebook_numbers_come_from_the_phantom_masks(tmp_path, brainlib_kernel, monkeypatch):
    import papermill as pm

    from brainlib.explore import (describe_contrast, describe_visibility, load_example_study, split_lesion,
                                  visibility_table, window_contrast_table)

    monkeypatch.setenv("BRAINLIB_HEADLESS", "1")
    nb = pm.execute_notebook(str(NOTEBOOK), str(tmp_path / "explore.ipynb"), kernel_name=brainlib_kernel,
                             progress_bar=False, parameters={"seed": 0})
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # the explorer's static figure and one comparison per lesson
    text = _text(nb)
    assert "blood vs bone" in text and "contrast / noise" in text

    study = load_example_study(None, None, 0)
    parts = split_lesion(study.volume, study.masks["subdural"])
    assert len(parts) == 2, "the default phantom study shows an acute and a faint part of subdural blood"
    acute, faint = parts
    contrast = window_contrast_table(study.volume[acute.slice_index], acute.mask[acute.slice_index])
    visibility = visibility_table(study.volume[faint.slice_index], faint.mask[faint.slice_index])
    assert describe_contrast(contrast) in text
    assert describe_visibility(faint, visibility) in text
    assert f"median {acute.median_hu:.0f} HU" in text
    # and they are about the right things: the acute part merges with bone in the brain window,
    # the faint one has the same contrast-to-noise in every window
    assert abs(contrast.loc["brain", "blood vs bone"]) < abs(contrast.loc["subdural", "blood vs bone"])
    ratios = visibility["contrast / noise"]
    assert ratios.max() - ratios.min() < 0.1 * abs(ratios).max()
