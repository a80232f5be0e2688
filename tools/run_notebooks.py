"""Execute notebooks top to bottom, store their outputs, and record how long each took.

Usage: python tools/run_notebooks.py notebooks/01_*.ipynb [...]   (or `make notebooks` for all)

Each notebook runs in a fresh kernel from this interpreter's environment, in its own folder, with widget
state saved. A cell may store an error only if it is tagged `raises-exception` (and says
NBVAL_RAISES_EXCEPTION, so nbval expects it). Run times go to notebooks/timings.json and into the
README's notebook table, labelled with the machine and date.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from helpers import timing

ROOT = Path(__file__).resolve().parents[1]
TIMINGS = ROOT / "notebooks" / "timings.json"
README = ROOT / "README.md"
KERNELSPEC = {"name": "torchscript-course", "display_name": "Python (TorchScript course)", "language": "python"}
TABLE_START, TABLE_END = "<!-- notebook-table:start -->", "<!-- notebook-table:end -->"


def check_errors(path: Path, nb: nbformat.NotebookNode) -> None:
    """Fail if any cell stored an error without being marked as a cell that teaches an error."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errored = any(out.get("output_type") == "error" for out in cell.get("outputs", []))
        expected = "raises-exception" in cell.metadata.get("tags", [])
        if errored and not expected:
            raise SystemExit(f"{path.name}: cell {index} raised an error it was not tagged to raise")
        if expected and "NBVAL_RAISES_EXCEPTION" not in cell.source:
            raise SystemExit(f"{path.name}: cell {index} is tagged raises-exception but lacks # NBVAL_RAISES_EXCEPTION")


def execute(path: Path) -> float:
    """Run one notebook in place; return its wall time in seconds."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", store_widget_state=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    check_errors(path, nb)
    nb.metadata["kernelspec"] = KERNELSPEC
    nbformat.write(nb, path)
    return seconds


def opening(path: Path) -> tuple[str, str, str]:
    """(title, reading time, hardware) from a notebook's first cell: '# 03 · Title', '**Time:** ~15 min · **Hardware:** CPU'."""
    text = nbformat.read(path, as_version=4).cells[0].source
    title = re.search(r"^#\s+(.+)$", text, re.M)
    minutes = re.search(r"\*\*Time:\*\*\s*([^·|\n]+)", text)
    hardware = re.search(r"\*\*Hardware:\*\*\s*([^·|\n]+)", text)
    found = [m.group(1).strip() if m else "?" for m in (title, minutes, hardware)]
    return found[0] if title else path.stem, found[1], found[2]


def update_readme(timings: dict) -> None:
    """Rewrite the README's notebook table from the notebooks and their recorded timings."""
    if not README.exists() or TABLE_START not in README.read_text():
        return
    rows = ["| Notebook | Reading time | Hardware | Runs in (measured) |", "|---|---|---|---|"]
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        title, minutes, hardware = opening(path)
        run = timings.get(path.name)
        measured = f"{run['seconds']:.0f} s ({run['machine']}, {run['date']})" if run else "not yet run"
        rows.append(f"| [{title}](notebooks/{path.name}) | {minutes} | {hardware} | {measured} |")
    text = README.read_text()
    head, rest = text.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    README.write_text(f"{head}{TABLE_START}\n" + "\n".join(rows) + f"\n{TABLE_END}{tail}")


def record(name: str, seconds: float) -> dict:
    """Add one notebook's run time to notebooks/timings.json (re-read first: others may have written)."""
    timings = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    timings[name] = {
        "seconds": round(seconds, 1),
        "machine": timing.machine(),
        "date": dt.date.today().isoformat(),
        "command": "make notebooks",
    }
    TIMINGS.write_text(json.dumps(dict(sorted(timings.items())), indent=2) + "\n")
    return timings


def main(paths: list[str]) -> None:
    for name in paths:
        path = Path(name).resolve()
        seconds = execute(path)
        print(f"{path.name}: {seconds:.1f} s")
        update_readme(record(path.name, seconds))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    main(sys.argv[1:])
