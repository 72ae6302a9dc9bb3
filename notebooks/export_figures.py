"""Run the notebooks and write the figure of each one's `docs-figure` cell to docs/figures/.

    python notebooks/export_figures.py                  # every notebook, default parameters
    python notebooks/export_figures.py --all /tmp/figs  # also write every figure, to check them

Each notebook runs in a Jupyter kernel with its default parameters, in a copy of notebooks/
and examples/ under a temporary folder, so no results folder is left in the repository. The
figure is the PNG that the notebook displays inline, written as docs/figures/<notebook>.png.
Needs the `test` extra (nbclient, nbformat, ipykernel).
"""

from __future__ import annotations

import argparse
import base64
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def execute(path: Path, workdir: Path) -> nbformat.NotebookNode:
    """Run a copy of the notebook at `path` inside `workdir` and return it with its outputs."""
    shutil.copytree(ROOT / "examples", workdir / "examples")
    (workdir / "notebooks").mkdir()
    copy = workdir / "notebooks" / path.name
    shutil.copyfile(path, copy)
    notebook = nbformat.read(copy, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(copy.parent)}}).execute()
    return notebook


def images(cell: nbformat.NotebookNode) -> list[bytes]:
    """Return the PNG images a code cell displayed, in order."""
    return [base64.b64decode(output["data"]["image/png"]) for output in cell.get("outputs", [])
            if "image/png" in output.get("data", {})]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to run (default: every notebooks/*.ipynb)")
    parser.add_argument("--all", type=Path, default=None, metavar="DIR",
                        help="also write every figure of every notebook into DIR")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "figures",
                        help="folder of the docs figures (default: docs/figures)")
    args = parser.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    if args.all is not None:
        args.all.mkdir(parents=True, exist_ok=True)
    for path in args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb")):
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="herdsim-notebook-") as workdir:
            notebook = execute(path.resolve(), Path(workdir))
        print(f"{path.name}: ran in {time.perf_counter() - started:.1f} s (wall)")

        tagged = [cell for cell in notebook.cells if "docs-figure" in cell.metadata.get("tags", [])]
        if len(tagged) != 1 or not images(tagged[0]):
            print(f"error: {path.name} needs exactly one cell tagged 'docs-figure' that displays a figure",
                  file=sys.stderr)
            return 1
        target = args.out / f"{path.stem}.png"
        target.write_bytes(images(tagged[0])[0])
        print(f"  wrote {target}")

        if args.all is not None:
            for index, cell in enumerate(notebook.cells):
                for number, image in enumerate(images(cell), start=1):
                    (args.all / f"{path.stem}-cell{index:02d}-{number}.png").write_bytes(image)
    return 0


if __name__ == "__main__":
    sys.exit(main())
