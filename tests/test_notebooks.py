"""The notebooks in notebooks/: committed without outputs, and each runs from top to bottom.

Each notebook runs with its default parameters in a Jupyter kernel (nbclient), in a copy of
notebooks/ and examples/ under a temporary folder, so the results folders that its sweeps
write to `../results` land there and not in the repository. A cell that raises fails the
test with the cell's source and traceback.
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT_S = 600
"""Maximum wall time of one cell, in seconds. With the default parameters a whole notebook needs
well under a minute."""


def test_notebooks_present() -> None:
    assert len(NOTEBOOKS) >= 4, f"expected the four notebooks in {ROOT / 'notebooks'}, found {NOTEBOOKS}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_committed_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [], f"{path.name} cell {index} has outputs; clear them before committing"
        assert cell.execution_count is None, f"{path.name} cell {index} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_starts_with_parameters(path: Path) -> None:
    first = nbformat.read(path, as_version=4).cells[0]
    assert first.cell_type == "code"
    assert "parameters" in first.metadata.get("tags", []), \
        f"{path.name}: the first cell should be the parameters cell, tagged 'parameters'"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    (tmp_path / "notebooks").mkdir()
    copy = tmp_path / "notebooks" / path.name
    shutil.copyfile(path, copy)
    notebook = nbformat.read(copy, as_version=4)

    client = NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(copy.parent)}})
    client.execute()

    images = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.outputs if "image/png" in output.get("data", {})]
    # Figures show inline only when nothing switched the notebook's matplotlib backend.
    assert images, f"{path.name} displayed no figure"
    for image in images:
        assert base64.b64decode(image["data"]["image/png"]).startswith(b"\x89PNG")
    tagged = [cell for cell in notebook.cells if "docs-figure" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: tag exactly one cell 'docs-figure' for docs/figures/"
    assert any("image/png" in output.get("data", {}) for output in tagged[0].outputs)
