"""Build the Arabic edition: each English notebook plus its translation catalogue gives notebooks/ar/NN_*.ipynb.

Usage:
    python tools/arabic.py build        # write notebooks/ar/ for every notebook in the edition (`make arabic`)
    python tools/arabic.py status       # per notebook, the markdown cells untranslated, stale or left over
    python tools/arabic.py extract 02   # add the English text of missing/stale cells to the catalogue, as todos

The catalogue of notebooks/NN_name.ipynb is translations/ar/NN_name.yaml, keyed by the English cell's id:

    cells:
      6f05ca36:
        sha256: 3b9c...      # of the English source the Arabic translates
        ar: |-
          ## 1. مصفوفة واحدة ومهمتان
          ...

A notebook is in the Arabic edition when its catalogue exists; then every English markdown cell must have a
current translation (tests/test_arabic.py). `extract` marks each cell to (re)translate with a `todo` holding the
English text and already records that text's hash: translate, then delete the `todo`. Built notebooks keep the
English code cells, outputs, metadata and ids; each translated markdown cell is wrapped right-to-left (paragraphs
right-aligned), with code blocks and inline code isolated left-to-right. A cell without a current translation is
shown in English. `build` also writes README.ar.md from translations/ar/README.ar.md, filling in its notebook table.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
BUILT = NOTEBOOKS / "ar"
CATALOGUES = ROOT / "translations" / "ar"
README_AR, README_SOURCE = ROOT / "README.ar.md", CATALOGUES / "README.ar.md"
README_NOTE = "<!-- Built by `python tools/arabic.py build` from translations/ar/README.ar.md: edit that file. -->"
TABLE_START, TABLE_END = "<!-- notebook-table:start -->", "<!-- notebook-table:end -->"
HEADER = """\
# Arabic translation of notebooks/{notebook}, one entry per markdown cell, keyed by the English cell's id.
# `python tools/arabic.py build` combines it with the English notebook into notebooks/ar/{notebook}.
# sha256: hash of the English source that `ar` translates. A `todo` (written by `extract`) holds the English
# text to (re)translate: write the Arabic under `ar: |-`, then delete the `todo`. Terms: GLOSSARY.md.
# `extract` rewrites this file: comments other than this header are not kept.
"""
RTL_OPEN, RTL_CLOSE = '<div dir="rtl" lang="ar">', "</div>"
LTR_OPEN = '<div dir="ltr">'
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<mark>`{3,}|~{3,})")
PARAGRAPH_OPEN, PARAGRAPH_CLOSE = '<span style="display: block; text-align: right">', "</span>"
# Lines that end a paragraph: a heading or a thematic break (one line each), or the start of a list item, table,
# block quote or HTML block.
SINGLE_LINE_BLOCK = re.compile(r" {0,3}(#{1,6}(\s|$)|([-*_])( *\3){2,} *$)")
BLOCK_START = re.compile(r" {0,3}([-*+]\s|\d{1,9}[.)]\s|\||>|</?[A-Za-z][A-Za-z0-9-]*[\s/>]|<!--)")
# A code span (`x`, ``x``) or an autolink (<https://...>): isolated left-to-right inside Arabic prose.
INLINE_LTR = re.compile(r"(?<!`)(`+)(?!`).+?(?<!`)\1(?!`)|<https?://[^>\s]+>", re.S)


@dataclass(frozen=True)
class Problem:
    """A markdown cell of an English notebook without a current Arabic translation (or a left-over entry)."""

    notebook: str
    cell_id: str
    kind: str  # "missing", "stale", "todo" or "unused"
    first_line: str

    def __str__(self) -> str:
        return f"{self.notebook}: cell {self.cell_id} {self.kind}: {self.first_line}"


def source_hash(text: str) -> str:
    """sha256 of a cell's source, as stored beside its translation."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def first_line(text: str) -> str:
    """The first non-blank line of a cell, for naming it in a report."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "(empty)")


def english_notebooks() -> list[Path]:
    """The English notebooks, in course order."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def catalogue_path(notebook: Path) -> Path:
    """Where the Arabic catalogue of an English notebook lives."""
    return CATALOGUES / f"{notebook.stem}.yaml"


def in_edition(notebook: Path) -> bool:
    """A notebook is part of the Arabic edition once its catalogue exists."""
    return catalogue_path(notebook).exists()


def markdown_cells(nb: nbformat.NotebookNode) -> dict[str, str]:
    """{cell id: source} of a notebook's markdown cells, in order."""
    return {cell.id: cell.source for cell in nb.cells if cell.cell_type == "markdown"}


def relative(path: Path) -> str:
    """A path as the reader types it, from the repository root (absolute if outside it)."""
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


# --- the catalogue ------------------------------------------------------------------------------------------

TODO_WHY = {
    "missing": "new cell, translate `en` into `ar` and then delete this todo",
    "stale": "the English changed since `ar` was written, bring `ar` in line with `en` and then delete this todo",
}


class _Block(str):
    """Text written as a YAML literal block, so a translation reads (and diffs) line by line."""


class _Dumper(yaml.SafeDumper):
    """YAML writer for catalogues: literal blocks for text, keys in notebook order."""


_Dumper.add_representer(_Block, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|"))


def load_catalogue(path: Path) -> dict:
    """{"cells": {id: entry}, "unused": {id: entry}} from a catalogue file; both empty if it doesn't exist."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
    catalogue = {"cells": (data or {}).get("cells") or {}, "unused": (data or {}).get("unused") or {}}
    for cell_id, entry in {**catalogue["unused"], **catalogue["cells"]}.items():
        if not (isinstance(cell_id, str) and isinstance(entry, dict) and {"sha256", "ar"} <= entry.keys()):
            raise SystemExit(
                f"{relative(path)}: entry {cell_id!r} must be a quoted cell id holding `sha256` and `ar` "
                "(see the header of any catalogue; `python tools/arabic.py extract NN` writes a correct one)"
            )
    return catalogue


def _as_blocks(entry: dict) -> dict:
    """An entry with its texts (`ar`, `todo.en`) marked for literal-block output."""
    out = {key: _Block(value) if key == "ar" and value else value for key, value in entry.items()}
    if "todo" in out:
        out["todo"] = {**out["todo"], "en": _Block(out["todo"]["en"])}
    return out


def save_catalogue(path: Path, catalogue: dict) -> None:
    """Write a catalogue (header, then `cells` in notebook order, then `unused` if any), checking it reads back."""
    data = {"cells": {k: _as_blocks(v) for k, v in catalogue["cells"].items()}}
    if catalogue["unused"]:
        data["unused"] = {k: _as_blocks(v) for k, v in catalogue["unused"].items()}
    body = yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=10_000)
    if yaml.safe_load(body) != data:  # _Block compares equal to the str it holds
        raise RuntimeError(f"{relative(path)}: the catalogue would not read back as written")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER.format(notebook=f"{path.stem}.ipynb") + body, encoding="utf-8")


def entry_state(entry: dict | None, source: str) -> str | None:
    """Why a cell lacks a current translation ("missing", "todo", "stale"), or None when it has one."""
    if entry is None or not str(entry.get("ar") or "").strip():
        return "missing"
    if "todo" in entry:
        return "todo"
    return "stale" if entry["sha256"] != source_hash(source) else None


def refreshed(entry: dict | None, source: str) -> dict:
    """An entry brought up to date with the English source: unchanged when current, else given a todo."""
    state = entry_state(entry, source)
    if state is None:
        return entry
    why = entry["todo"].get("why", TODO_WHY["stale"]) if state == "todo" else TODO_WHY[state]
    return {"sha256": source_hash(source), "todo": {"why": why, "en": source}, "ar": (entry or {}).get("ar") or ""}


# --- checks ---------------------------------------------------------------------------------------------------


def notebook_problems(notebook: Path) -> list[Problem]:
    """Every markdown cell of an English notebook without a current translation, and every unused entry."""
    english = markdown_cells(nbformat.read(notebook, as_version=4))
    catalogue = load_catalogue(catalogue_path(notebook))
    found = []
    for cell_id, source in english.items():
        state = entry_state(catalogue["cells"].get(cell_id), source)
        if state:
            found.append(Problem(notebook.name, cell_id, state, first_line(source)))
    leftovers = {k: v for k, v in catalogue["cells"].items() if k not in english} | catalogue["unused"]
    for cell_id, entry in leftovers.items():
        found.append(Problem(notebook.name, cell_id, "unused", first_line(str(entry.get("ar") or ""))))
    return found


def orphan_catalogues() -> list[Path]:
    """Catalogues whose English notebook no longer exists (renamed or removed)."""
    names = {catalogue_path(notebook).name for notebook in english_notebooks()}
    return sorted(path for path in CATALOGUES.glob("*.yaml") if path.name not in names)


# --- building -------------------------------------------------------------------------------------------------


def split_fences(text: str) -> list[tuple[bool, list[str]]]:
    """A markdown text's lines in runs: (True, a fenced code block with its fences) or (False, prose)."""
    runs: list[tuple[bool, list[str]]] = []
    fence = None
    for line in text.split("\n"):
        if fence is not None:
            runs[-1][1].append(line)
            closed = line.strip().startswith(fence) and set(line.strip()) == {fence[0]}
            fence = None if closed else fence
        elif match := FENCE.match(line):
            fence = match["mark"]
            runs.append((True, [line]))
        elif runs and not runs[-1][0]:
            runs[-1][1].append(line)
        else:
            runs.append((False, [line]))
    return runs


def align_paragraphs(lines: list[str]) -> list[str]:
    """Prose lines with each plain paragraph wrapped in a right-aligned block span.

    JupyterLab styles every rendered paragraph `text-align: left`, which a parent's dir="rtl" doesn't override;
    lists, headings and tables follow the direction by themselves. Indented code blocks are not supported.
    """
    out: list[str] = []
    context = None  # None: after a blank line or a heading; "para": in a paragraph; "block": list, table, quote...
    for line in lines:
        single, starts = SINGLE_LINE_BLOCK.match(line), BLOCK_START.match(line)
        if not line.strip() or single or starts:
            if context == "para":
                out[-1] += PARAGRAPH_CLOSE
            context = "block" if starts and not single else None
        elif context is None and len(line) - len(line.lstrip()) < 4:
            indent = line[: len(line) - len(line.lstrip())]
            line, context = indent + PARAGRAPH_OPEN + line.lstrip(), "para"
        out.append(line)
    if context == "para":
        out[-1] += PARAGRAPH_CLOSE
    return out


def mark_directions(text: str) -> str:
    """Arabic markdown with paragraphs right-aligned, fenced code in a left-to-right div, code spans and URLs LTR."""
    parts = []
    for is_code, lines in split_fences(text):
        if is_code:
            indent = FENCE.match(lines[0])["indent"]
            parts.append("\n".join(["", indent + LTR_OPEN, "", *lines, "", indent + "</div>", ""]))
        else:
            prose = "\n".join(align_paragraphs(lines))
            parts.append(INLINE_LTR.sub(lambda m: f'<span dir="ltr">{m[0]}</span>', prose))
    return "\n".join(parts)


def rtl_markdown(text: str) -> str:
    """An Arabic markdown cell as built: right-to-left and right-aligned, code left-to-right.

    The blank lines after the opening tag and before the closing one keep the markdown inside rendering
    (an HTML block ends at a blank line). JupyterLab's sanitizer keeps `dir` and `lang` on any element, and
    `display` and `text-align` in a style attribute.
    """
    return "\n".join([RTL_OPEN, "", mark_directions(text.strip("\n")), "", RTL_CLOSE])


def build_notebook(notebook: Path) -> tuple[nbformat.NotebookNode, int]:
    """The Arabic notebook built from an English one and its catalogue, and how many cells are in Arabic."""
    nb = nbformat.read(notebook, as_version=4)
    catalogue = load_catalogue(catalogue_path(notebook))
    translated = 0
    for cell in nb.cells:
        entry = catalogue["cells"].get(cell.id)
        if cell.cell_type == "markdown" and entry_state(entry, cell.source) is None:
            cell.source = rtl_markdown(entry["ar"])
            translated += 1
    nb.metadata["language"] = "ar"
    nb.metadata["built_from"] = [f"notebooks/{notebook.name}", relative(catalogue_path(notebook))]
    nb.metadata["built_by"] = "python tools/arabic.py build (edit the catalogue, not this notebook)"
    return nb, translated


def notebook_text(nb: nbformat.NotebookNode) -> str:
    """A notebook serialised exactly as nbformat.write stores it."""
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def build() -> None:
    """Write notebooks/ar/ for every notebook in the edition, remove those that left it, update README.ar.md."""
    BUILT.mkdir(exist_ok=True)
    edition = [notebook for notebook in english_notebooks() if in_edition(notebook)]
    for notebook in edition:
        nb, translated = build_notebook(notebook)
        out, total = BUILT / notebook.name, len(markdown_cells(nb))
        text = notebook_text(nb)
        if not out.exists() or out.read_text(encoding="utf-8") != text:
            out.write_text(text, encoding="utf-8")
        untranslated = f" ({total - translated} shown in English: `python tools/arabic.py status`)"
        print(f"{relative(out)}: {translated} of {total} markdown cells in Arabic{untranslated * (translated < total)}")
    for stray in sorted(set(BUILT.glob("*.ipynb")) - {BUILT / notebook.name for notebook in edition}):
        stray.unlink()
        print(f"removed {relative(stray)}: no English notebook or no catalogue for it")
    readme = readme_text() if README_SOURCE.exists() else None
    if readme and (not README_AR.exists() or README_AR.read_text(encoding="utf-8") != readme):
        README_AR.write_text(readme, encoding="utf-8")
        print(f"{relative(README_AR)}: rebuilt from {relative(README_SOURCE)}")


def opening(source: str, time_label: str, hardware_label: str) -> tuple[str, str, str]:
    """(title, reading time, hardware) from a notebook's first cell: '# 01 · Title', '**Time:** ~20 min · ...'."""
    title = re.search(r"^#\s+(.+)$", source, re.M)
    found = [re.search(rf"\*\*{label}:\*\*\s*([^·|\n]+)", source) for label in (time_label, hardware_label)]
    return (title[1].strip() if title else "?", *(match[1].strip() if match else "?" for match in found))


def table_row(notebook: Path) -> str:
    """README.ar.md's row for a notebook: its Arabic title and link once translated, else the English ones."""
    first = nbformat.read(notebook, as_version=4).cells[0]
    entry = load_catalogue(catalogue_path(notebook))["cells"].get(first.id)
    if entry_state(entry, first.source) is None:
        title, minutes, hardware = opening(entry["ar"], "المدة", "العتاد")
        return f"| [{title}](notebooks/ar/{notebook.name}) | {minutes} | {hardware} |"
    title, minutes, hardware = (f'<span dir="ltr">{text}</span>' for text in opening(first.source, "Time", "Hardware"))
    return f"| [{title}](notebooks/{notebook.name}) (بالإنجليزية، لم يُترجم بعد) | {minutes} | {hardware} |"


def readme_text() -> str:
    """README.ar.md as built: translations/ar/README.ar.md with its notebook table filled in, right-to-left."""
    source = README_SOURCE.read_text(encoding="utf-8")
    if TABLE_START not in source or TABLE_END not in source:
        raise SystemExit(f"{relative(README_SOURCE)} lacks the {TABLE_START} / {TABLE_END} lines for its table")
    rows = ["| الدفتر | مدة القراءة | العتاد |", "|---|---|---|", *map(table_row, english_notebooks())]
    head, rest = source.split(TABLE_START, 1)
    filled = f"{head}{TABLE_START}\n" + "\n".join(rows) + f"\n{TABLE_END}{rest.split(TABLE_END, 1)[1]}"
    return f"{README_NOTE}\n{rtl_markdown(filled)}\n"


# --- commands -------------------------------------------------------------------------------------------------


def status() -> int:
    """Print, per notebook, the cells to (re)translate; return 1 if a notebook in the edition is incomplete."""
    incomplete = False
    for notebook in english_notebooks():
        problems = notebook_problems(notebook)
        if in_edition(notebook):
            total = len(markdown_cells(nbformat.read(notebook, as_version=4)))
            done = total - sum(problem.kind != "unused" for problem in problems)
            print(f"{notebook.name}: in the edition, {done} of {total} markdown cells translated")
        else:
            print(f"{notebook.name}: not in the edition yet (no {relative(catalogue_path(notebook))}; "
                  f"`python tools/arabic.py extract {notebook.name[:2]}` starts it)")
        for problem in problems:
            print(f"  {problem.kind:8} {problem.cell_id}  {problem.first_line}")
        incomplete |= in_edition(notebook) and bool(problems)
    for orphan in orphan_catalogues():
        print(f"{relative(orphan)}: no English notebook of that name (renamed? rename the catalogue too)")
    return int(incomplete or bool(orphan_catalogues()))


def find_notebook(number: str) -> Path:
    """The English notebook numbered NN."""
    found = [notebook for notebook in english_notebooks() if notebook.name[:2] == number.zfill(2)]
    if len(found) != 1:
        names = ", ".join(notebook.name[:2] for notebook in english_notebooks())
        raise SystemExit(f"no single English notebook numbered {number!r}: the notebooks are {names}")
    return found[0]


def extract(number: str) -> Path:
    """Create or update notebook NN's catalogue: a todo with the English text for each cell to (re)translate."""
    notebook = find_notebook(number)
    path = catalogue_path(notebook)
    old = load_catalogue(path)
    known = old["unused"] | old["cells"]
    english = markdown_cells(nbformat.read(notebook, as_version=4))
    cells = {cell_id: refreshed(known.get(cell_id), source) for cell_id, source in english.items()}
    unused = {cell_id: entry for cell_id, entry in known.items() if cell_id not in english}
    save_catalogue(path, {"cells": cells, "unused": unused})
    todo = sum("todo" in entry for entry in cells.values())
    print(f"{relative(path)}: {len(cells)} markdown cells, {todo} to translate (search for `todo:`)")
    if unused:
        print(f"  {len(unused)} entries under `unused:` match no English markdown cell: reuse or delete them")
    return path


def main(argv: list[str]) -> int:
    """Run one command: build, status or extract NN."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="write notebooks/ar/ from the English notebooks and the catalogues")
    commands.add_parser("status", help="list the markdown cells with no current translation")
    commands.add_parser("extract", help="add the cells to (re)translate to a catalogue").add_argument("number")
    args = parser.parse_args(argv)
    if args.command == "build":
        build()
    elif args.command == "extract":
        extract(args.number)
    return status() if args.command == "status" else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
