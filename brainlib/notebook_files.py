"""The notebooks a run executes: which paper each belongs to and what parameters it declares.

`notebook_key` maps ``notebooks/<stem>.ipynb`` to the paper key its name starts with
(``brainlib.PAPERS``); `declared_parameters` reads the names assigned in the cell tagged
``parameters``, so the runner offers a notebook only the parameters it declares
(`brainlib.runner`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from brainlib import PAPERS


class NotebookError(Exception):
    """A notebook that cannot be run as is (e.g. no cell tagged `parameters`)."""


def notebook_key(path: Path) -> str:
    """The paper key the file name starts with (longest match), else the file stem."""
    matches = [key for key in PAPERS if path.stem.startswith(key)]
    return max(matches, key=len) if matches else path.stem


def find_notebooks(notebooks_dir: Path) -> list[Path]:
    return sorted(p for p in Path(notebooks_dir).glob("*.ipynb") if not p.name.startswith("."))


def _parameters_cell_index(nb: Any) -> int | None:
    for index, cell in enumerate(nb.cells):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return index
    return None


def declared_parameters(path: Path) -> set[str]:
    """Names assigned in the notebook's `parameters` cell; NotebookError if it has none.

    The cell is parsed with `ast` (papermill.inspect_notebook skips annotations such as
    ``data_root: str | None = None``); papermill's own inspection is added for cells `ast`
    cannot parse (IPython magics).
    """
    import ast

    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    index = _parameters_cell_index(nb)
    if index is None:
        raise NotebookError(f"{path}: no cell tagged 'parameters'; every brainlib notebook must "
                            "declare profile, data_root, out_dir, device, seed in one")
    names: set[str] = set()
    try:
        tree = ast.parse(nb.cells[index].source)
    except SyntaxError:
        import papermill

        return set(papermill.inspect_notebook(str(path)))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else [])
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name):
                    names.add(sub.id)
    return names
