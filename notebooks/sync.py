"""Build the demo notebooks ``NN_name.ipynb`` from their sources ``NN_name.py`` (jupytext percent format).

The ``.py`` files are the ones to edit and review: plain Python that ruff and mypy read, one
``# %%`` line per code cell and ``# %% [markdown]`` per markdown cell (its text commented out),
``# %% tags=["summary"]`` for a tagged cell. The ``.ipynb`` files are generated from them and
committed without outputs, so that JupyterLab opens them ready to run::

    .venv/bin/python notebooks/sync.py           # rewrite the .ipynb files from the .py sources
    .venv/bin/python notebooks/sync.py --check   # exit status 1 if an .ipynb is out of date

A generated notebook depends on its source alone: no outputs, no execution counts, the same
notebook metadata for all (a Python 3 kernel), and cell ids ``NN-II`` from the notebook's number
and the cell's position (nbformat would draw random ones), so regenerating leaves unchanged
notebooks byte for byte unchanged. ``tests/test_notebooks.py`` checks that the committed
notebooks are what this script writes, and executes them.

``jupytext.toml`` pairs the two files for JupyterLab with the jupytext extension (the ``lab``
extra): editing the ``.ipynb`` there and saving it updates the ``.py`` as well; run this script
afterwards to strip the outputs again.

Every notebook runs top to bottom on the demo workspace (``$WORKBENCH_DEMO_DIR``, else
``workspace/demo`` in the working directory or a parent; ``workbench demo`` builds it) and ends
with a cell tagged ``summary`` that prints one JSON line of the numbers the tests check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

HERE = Path(__file__).resolve().parent
METADATA = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}
NEW_CELL = {"code": new_code_cell, "markdown": new_markdown_cell, "raw": new_raw_cell}


def sources(folder: Path = HERE) -> list[Path]:
    """The notebook sources ``NN_name.py`` of ``folder``, in order."""
    return sorted(folder.glob("[0-9][0-9]_*.py"))


def build(source: Path) -> nbformat.NotebookNode:
    """The notebook of one ``.py`` source: its cells' text and metadata (tags), nothing else."""
    text = source.read_text(encoding="utf-8")
    compile(text, str(source), "exec")  # a SyntaxError names the file and line here, not at run time
    parsed = jupytext.reads(text, fmt="py:percent")
    number = source.stem.split("_")[0]
    cells = []
    for i, cell in enumerate(parsed.cells):
        new = NEW_CELL[cell.cell_type](source=cell.source, metadata=dict(cell.metadata))
        new.id = f"{number}-{i:02d}"
        cells.append(new)
    nb = new_notebook(cells=cells, metadata=METADATA)
    nbformat.validate(nb)
    return nb


def render(nb: nbformat.NotebookNode) -> str:
    """The ``.ipynb`` file's text, exactly as :func:`nbformat.write` writes it."""
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if an .ipynb is out of date")
    args = parser.parse_args(argv)
    stale = []
    for source in sources():
        target = source.with_suffix(".ipynb")
        text = render(build(source))
        if target.is_file() and target.read_text(encoding="utf-8") == text:
            continue
        stale.append(target)
        if not args.check:
            target.write_text(text, encoding="utf-8")
            print("wrote", target)
    orphans = sorted(set(HERE.glob("*.ipynb")) - {s.with_suffix(".ipynb") for s in sources()})
    for orphan in orphans:
        print(f"{orphan} has no source {orphan.with_suffix('.py').name}", file=sys.stderr)
    if args.check and stale:
        print("out of date (run `python notebooks/sync.py`):", *(str(p) for p in stale), file=sys.stderr)
    return 1 if (args.check and stale) or orphans else 0


if __name__ == "__main__":
    sys.exit(main())
