"""The Arabic edition (notebooks/ar/): every notebook in it is fully translated, current with the English
notebook, identical to it in code and outputs, and exactly what `python tools/arabic.py build` writes.

A notebook is in the edition when translations/ar/<its name>.yaml exists (tools/arabic.py explains the catalogue).
"""

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_tool():
    """tools/arabic.py as a module (tools/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("arabic_tool", ROOT / "tools" / "arabic.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


arabic = _load_tool()
EDITION = [notebook for notebook in arabic.english_notebooks() if arabic.in_edition(notebook)]
FIX = "edit the catalogue, then run `python tools/arabic.py build` (`status` lists what is left)"


def _ids(notebooks: list[Path]) -> list[str]:
    return [notebook.stem for notebook in notebooks]


def test_every_english_notebook_is_in_the_edition():
    missing = [notebook.name for notebook in arabic.english_notebooks() if not arabic.in_edition(notebook)]
    assert not missing, f"no catalogue yet for {missing}: `python tools/arabic.py extract NN` starts one"


@pytest.mark.parametrize("notebook", EDITION, ids=_ids(EDITION))
def test_every_markdown_cell_has_a_current_translation(notebook):
    problems = arabic.notebook_problems(notebook)
    assert not problems, (
        "cells to (re)translate:\n" + "\n".join(map(str, problems))
        + f"\n`python tools/arabic.py extract {notebook.name[:2]}` adds their English text as todos; " + FIX
    )


def _code_cell_differences(english: nbformat.NotebookNode, built: nbformat.NotebookNode) -> list[str]:
    """Where the built notebook's cells differ from the English one's, other than translated markdown."""
    if [(c.id, c.cell_type) for c in english.cells] != [(c.id, c.cell_type) for c in built.cells]:
        return ["the cells (ids, types or order) differ"]
    found = []
    for old, new in zip(english.cells, built.cells):
        fields = ("source", "outputs", "execution_count", "metadata") if old.cell_type == "code" else ("metadata",)
        found += [f"{old.cell_type} cell {old.id}: {field}" for field in fields if old.get(field) != new.get(field)]
    return found


@pytest.mark.parametrize("notebook", EDITION, ids=_ids(EDITION))
def test_code_and_outputs_equal_the_english(notebook):
    built_path = arabic.BUILT / notebook.name
    assert built_path.exists(), f"{arabic.relative(built_path)} is missing: run `python tools/arabic.py build`"
    english = nbformat.read(notebook, as_version=4)
    differences = _code_cell_differences(english, nbformat.read(built_path, as_version=4))
    assert not differences, (
        f"{arabic.relative(built_path)} differs from notebooks/{notebook.name}: {differences}; "
        "run `python tools/arabic.py build` (notebooks/ar/ is built, never edited)"
    )


@pytest.mark.parametrize("notebook", EDITION, ids=_ids(EDITION))
def test_built_notebook_is_up_to_date(notebook):
    built_path = arabic.BUILT / notebook.name
    fresh, _ = arabic.build_notebook(notebook)
    stored = built_path.read_text(encoding="utf-8") if built_path.exists() else ""
    if stored != arabic.notebook_text(fresh):
        old = {cell.id: cell for cell in nbformat.reads(stored, as_version=4).cells} if stored else {}
        changed = [cell.id for cell in fresh.cells if old.get(cell.id) != cell] or ["notebook metadata"]
        pytest.fail(f"{arabic.relative(built_path)} is not what a fresh build writes (cells {changed}): "
                    "edited by hand, or the catalogue or English notebook changed since; " + FIX)


def test_no_built_notebook_or_catalogue_without_its_pair():
    expected = {notebook.name for notebook in EDITION}
    strays = sorted(path.name for path in arabic.BUILT.glob("*.ipynb") if path.name not in expected)
    assert not strays, f"notebooks/ar/ holds {strays} with no catalogue: run `python tools/arabic.py build`"
    orphans = [arabic.relative(path) for path in arabic.orphan_catalogues()]
    assert not orphans, f"{orphans} match no English notebook: rename them with the notebook"


def test_readme_is_up_to_date():
    assert arabic.README_AR.read_text(encoding="utf-8") == arabic.readme_text(), (
        "README.ar.md is not what a fresh build writes from translations/ar/README.ar.md and the notebooks: "
        "edit translations/ar/README.ar.md, then run `python tools/arabic.py build`"
    )


# --- the tool itself, on a throwaway course -------------------------------------------------------------------


@pytest.fixture
def course(tmp_path, monkeypatch):
    """A course of one English notebook (heading, prose, code) in tmp_path, with the tool pointed at it."""
    for name, path in [("ROOT", tmp_path), ("NOTEBOOKS", tmp_path / "notebooks"),
                       ("BUILT", tmp_path / "notebooks" / "ar"), ("CATALOGUES", tmp_path / "translations" / "ar"),
                       ("README_AR", tmp_path / "README.ar.md"),
                       ("README_SOURCE", tmp_path / "translations" / "ar" / "README.ar.md")]:
        monkeypatch.setattr(arabic, name, path)
    v4 = nbformat.v4
    nb = v4.new_notebook(cells=[
        v4.new_markdown_cell("# 09 · Title\n\nUse `torch.jit.trace`.", id="intro"),
        v4.new_code_cell("print(1)", id="code", execution_count=1,
                         outputs=[v4.new_output("stream", name="stdout", text="1\n")]),
        v4.new_markdown_cell("Second cell.", id="second"),
    ])
    arabic.NOTEBOOKS.mkdir()
    nbformat.write(nb, arabic.NOTEBOOKS / "09_demo.ipynb")
    return arabic.NOTEBOOKS / "09_demo.ipynb"


def _translate(catalogue_file: Path, texts: dict[str, str]) -> None:
    """What a translator does: write the Arabic, delete the todo."""
    catalogue = arabic.load_catalogue(catalogue_file)
    for cell_id, text in texts.items():
        catalogue["cells"][cell_id]["ar"] = text
        catalogue["cells"][cell_id].pop("todo")
    arabic.save_catalogue(catalogue_file, catalogue)


def _kinds(notebook: Path) -> dict[str, str]:
    return {problem.cell_id: problem.kind for problem in arabic.notebook_problems(notebook)}


def test_extract_translate_change_and_reextract(course):
    assert not arabic.in_edition(course)
    catalogue_file = arabic.extract("9")
    assert arabic.in_edition(course) and _kinds(course) == {"intro": "missing", "second": "missing"}
    assert "Use `torch.jit.trace`." in catalogue_file.read_text(encoding="utf-8")  # the English, for the translator
    _translate(catalogue_file, {"intro": "# 09 · عنوان\n\nاستخدم `torch.jit.trace`.", "second": "الخلية الثانية."})
    assert _kinds(course) == {}

    nb = nbformat.read(course, as_version=4)
    nb.cells[2].source = "Second cell, reworded."
    nbformat.write(nb, course)
    assert _kinds(course) == {"second": "stale"}
    arabic.extract("09")
    entry = arabic.load_catalogue(catalogue_file)["cells"]["second"]
    assert entry["ar"] == "الخلية الثانية." and entry["todo"]["en"] == "Second cell, reworded."
    assert _kinds(course) == {"second": "todo"}


def test_removed_cell_is_kept_as_unused_and_reported(course):
    catalogue_file = arabic.extract("09")
    _translate(catalogue_file, {"intro": "# عنوان", "second": "نص."})
    nb = nbformat.read(course, as_version=4)
    del nb.cells[2]
    nbformat.write(nb, course)
    assert _kinds(course) == {"second": "unused"}
    arabic.extract("09")
    assert arabic.load_catalogue(catalogue_file)["unused"]["second"]["ar"] == "نص."


def test_build_keeps_code_and_shows_untranslated_cells_in_english(course, capsys):
    catalogue_file = arabic.extract("09")
    _translate(catalogue_file, {"intro": "# 09 · عنوان\n\nاستخدم `torch.jit.trace`."})
    arabic.build()
    assert "1 of 2 markdown cells in Arabic" in capsys.readouterr().out
    english, built = nbformat.read(course, as_version=4), nbformat.read(arabic.BUILT / course.name, as_version=4)
    assert _code_cell_differences(english, built) == []
    assert built.cells[0].source.startswith('<div dir="rtl" lang="ar">\n\n# 09 · عنوان')
    assert built.cells[2].source == "Second cell."
    assert built.metadata["language"] == "ar"


def test_readme_table_links_translated_notebooks_to_the_arabic_edition(course):
    arabic.README_SOURCE.parent.mkdir(parents=True)
    arabic.README_SOURCE.write_text(f"# عنوان\n\n{arabic.TABLE_START}\n{arabic.TABLE_END}\n", encoding="utf-8")
    arabic.build()
    assert arabic.README_AR.read_text(encoding="utf-8").startswith(f'{arabic.README_NOTE}\n<div dir="rtl" lang="ar">')
    ltr = '<span dir="ltr">{}</span>'.format
    english_row = f"| [{ltr('09 · Title')}](notebooks/09_demo.ipynb) (بالإنجليزية، لم يُترجم بعد) | {ltr('?')} | {ltr('?')} |"
    assert english_row in arabic.README_AR.read_text(encoding="utf-8")
    _translate(arabic.extract("09"), {"intro": "# 09 · عنوان\n\n**المدة:** نحو 5 دقائق · **العتاد:** CPU"})
    arabic.build()
    arabic_row = "| [09 · عنوان](notebooks/ar/09_demo.ipynb) | نحو 5 دقائق | CPU |"
    assert arabic_row in arabic.README_AR.read_text(encoding="utf-8")


def test_build_removes_a_notebook_that_left_the_edition(course):
    arabic.extract("09")
    arabic.build()
    arabic.catalogue_path(course).unlink()
    arabic.build()
    assert not (arabic.BUILT / course.name).exists()


def test_rtl_markdown_aligns_prose_and_keeps_code_left_to_right():
    text = "\n".join([
        "## 1. عنوان `x`", "", "**ما ستتعلمه**", "- بند `a(b)`", "- بند", "",
        "فقرة", "من سطرين <https://example.com>.", "", "```python", "print(`x`)", "```", "", "| a | b |", "|---|---|",
    ])
    para = arabic.PARAGRAPH_OPEN
    assert arabic.rtl_markdown(text) == "\n".join([
        '<div dir="rtl" lang="ar">', "",
        '## 1. عنوان <span dir="ltr">`x`</span>', "",
        f"{para}**ما ستتعلمه**</span>", '- بند <span dir="ltr">`a(b)`</span>', "- بند", "",
        f"{para}فقرة", 'من سطرين <span dir="ltr"><https://example.com></span>.</span>', "",
        "", '<div dir="ltr">', "", "```python", "print(`x`)", "```", "", "</div>", "",
        "", "| a | b |", "|---|---|",
        "", "</div>",
    ])


def test_catalogue_reads_back_exactly(tmp_path):
    tricky = "سطر فيه: نقطتان و'علامات' \"اقتباس\"\n  سطر مُزاح\n\n- بند #1\n\nمسافة في آخر السطر   "
    catalogue = {"cells": {"0123": {"sha256": arabic.source_hash("x"), "ar": tricky}}, "unused": {}}
    arabic.save_catalogue(tmp_path / "09_demo.yaml", catalogue)
    assert arabic.load_catalogue(tmp_path / "09_demo.yaml") == catalogue


def test_a_malformed_catalogue_says_what_is_wrong(tmp_path):
    path = tmp_path / "09_demo.yaml"
    path.write_text("cells:\n  abc:\n    ar: نص\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="entry 'abc' must be a quoted cell id holding `sha256` and `ar`"):
        arabic.load_catalogue(path)
