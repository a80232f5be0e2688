"""Check the course in a real browser: JupyterLab in headless Chromium, opened the way a new learner opens it.

Usage: python tools/check_browser.py   (`make check-browser` installs Debian's Chromium and the driver, then runs this)

JupyterLab runs from this venv on a free localhost port with a token, with fresh user settings and workspaces (so it
shows what `make install` set up, not what someone clicked before), serving a copy of notebooks/ (so nothing in the
repository is touched). For every notebook it checks that every cell renders, the course kernel is chosen and starts,
no dialog, error toast or Jupyter news prompt shows, and no widget renders as raw text. Notebook 02 is then run top
to bottom (Run All); the slider labelled "length" in its explorer is dragged, and the report below it must change.
One screenshot per notebook goes to build/browser/. Prints one verdict per notebook and exits 1 if any failed.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat
from playwright.sync_api import Locator, Page, sync_playwright
from playwright.sync_api import TimeoutError as PageTimeout

from run_notebooks import check_errors

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
OUT = ROOT / "build" / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
KERNEL, KERNEL_DISPLAY = "torchscript-course", "Python (TorchScript course)"
NEWS = "official Jupyter news"
# An ipywidget's text/plain fallback, e.g. "VBox(children=(IntSlider(value=24, ...": what shows when widgets fail.
RAW_WIDGET = re.compile(r"\b(VBox|HBox|Box|IntSlider|FloatSlider|IntProgress|FloatProgress|Output|Dropdown|Button"
                        r"|HTML|Label)\((children|value|layout|description|outputs|options)=")
RUN_PREFIX, SLIDER = "02_", "length"
LOAD_MS, RUN_MS, SETTLE_MS = 120_000, 900_000, 3_000


def notebook_paths() -> list[str]:
    """The course's notebooks, relative to notebooks/: NN_*.ipynb, then ar/*.ipynb where that folder exists."""
    found = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) + sorted((NOTEBOOKS / "ar").glob("*.ipynb"))
    return [path.relative_to(NOTEBOOKS).as_posix() for path in found]


def free_port() -> int:
    """A TCP port on localhost that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def lab_env(home: Path) -> dict[str, str]:
    """Jupyter's environment: fresh user settings, workspaces, data (kernels, notebook signatures) and runtime
    folders, so only what `make install` put in the venv counts; no hub at run time. The notebooks are a copy
    outside the checkout, so the folders `helpers` finds from the current one (committed benchmark results, the C++
    sources) are named through their settings."""
    env = dict(os.environ)
    for name in ("JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
        env[name] = str(home / name.lower())
    env.setdefault("COURSE_RESULTS", str(ROOT / "benchmarks" / "results"))
    env.setdefault("COURSE_CPP", str(ROOT / "cpp"))
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def trust(root: Path, home: Path) -> None:
    """Sign the copied notebooks, as `make lab` signs the course's: JupyterLab renders an unsigned notebook's stored
    widgets (notebook 02's explorer) as raw text."""
    paths = [str(root / name) for name in notebook_paths()]
    done = subprocess.run([sys.executable, "-m", "jupyter", "trust", *paths], env=lab_env(home), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"jupyter trust failed:\n{done.stdout}")


def start_lab(root: Path, home: Path, token: str) -> tuple[subprocess.Popen, str]:
    """Start JupyterLab on a free localhost port serving `root`; return the process and its base URL once it answers."""
    port = free_port()
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"]
    if os.getuid() == 0:
        command.append("--allow-root")
    with (OUT / "jupyterlab.log").open("w") as log:
        proc = subprocess.Popen(command, env=lab_env(home), stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + LOAD_MS / 1000
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            api(base, token, "/api/status")
            return proc, base
        except (OSError, http.client.HTTPException):  # not listening yet, or not answering yet
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"JupyterLab did not start: see {OUT / 'jupyterlab.log'}")


def api(base: str, token: str, path: str, method: str = "GET") -> object:
    """Call the Jupyter server's REST API; the decoded JSON answer (None when empty)."""
    request = urllib.request.Request(base + path, method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        body = answer.read()
    return json.loads(body) if body else None


def shut_down_kernels(base: str, token: str) -> None:
    """End every session (and its kernel), so each notebook starts from none."""
    for session in api(base, token, "/api/sessions"):
        api(base, token, f"/api/sessions/{session['id']}", method="DELETE")


def open_notebook(page: Page, base: str, token: str, name: str, cells: int) -> None:
    """Open one notebook in a fresh workspace; wait until every cell is in the page and its kernel is idle."""
    page.goto(f"{base}/lab/tree/{name}?reset&token={token}")
    page.wait_for_function(f"document.querySelectorAll('.jp-Notebook .jp-Cell').length >= {cells}",
                           timeout=LOAD_MS)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=LOAD_MS)
    page.wait_for_timeout(SETTLE_MS)  # JupyterLab's news prompt, when it shows, comes a moment after loading


def page_problems(page: Page, cells: int) -> list[str]:
    """What a learner would see wrong on the open notebook: missing cells, dialogs, toasts, raw widgets."""
    problems = []
    shown = page.locator(".jp-Notebook .jp-Cell").count()
    if shown != cells:
        problems.append(f"{shown} cells rendered, the file has {cells}")
    problems += [f"dialog: {text[:120]!r}" for text in page.locator(".jp-Dialog").all_inner_texts()]
    for text in page.locator(".Toastify__toast").all_inner_texts():
        problems.append("Jupyter news prompt shown" if NEWS in text else f"notification: {text[:120]!r}")
    raw = [text for text in page.locator(".jp-OutputArea-output").all_text_contents() if RAW_WIDGET.search(text)]
    problems += [f"widget shown as raw text: {text[:80]!r}" for text in raw]
    return problems


DIRECTIONS = """() => {
  const prose = document.querySelector('.jp-MarkdownCell .jp-RenderedMarkdown [dir="rtl"]');
  const inline = prose && prose.querySelector('[dir="ltr"] code');
  const code = document.querySelector('.jp-CodeCell .cm-content');
  const dir = (el) => el ? getComputedStyle(el).direction : 'missing';
  return {prose: dir(prose), inline: dir(inline), code: dir(code)};
}"""
"""Computed text direction of the first Arabic prose block, of inline code inside it, and of the first code cell."""


def direction_problems(page: Page) -> list[str]:
    """An Arabic notebook must show its prose right to left, and code (in cells and inline) left to right."""
    found = page.evaluate(DIRECTIONS)
    wanted = {"prose": "rtl", "inline": "ltr", "code": "ltr"}
    return [f"{part} is {found[part]}, not {want}" for part, want in wanted.items() if found[part] != want]


def kernel_problems(page: Page, base: str, token: str, name: str) -> list[str]:
    """The course kernel must be the one shown in the toolbar and the one the server started for this notebook."""
    problems = []
    shown = page.locator(".jp-Toolbar-kernelName").first.inner_text().strip()
    if shown != KERNEL_DISPLAY:
        problems.append(f"toolbar shows kernel {shown!r}, not {KERNEL_DISPLAY!r}")
    started = [s["kernel"]["name"] for s in api(base, token, "/api/sessions") if s["path"].endswith(name)]
    if started != [KERNEL]:
        problems.append(f"kernels started for it: {started}, expected [{KERNEL!r}]")
    return problems


def menu(page: Page, top: str, item: str) -> None:
    """Click a JupyterLab menu entry, as a learner would (e.g. Run > Run All Cells)."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{top}$")).click()
    page.locator(".lm-Menu-item", has_text=re.compile(f"^{re.escape(item)}")).first.click()


def run_all(page: Page, copy: Path) -> list[str]:
    """Clear outputs, Run All, wait until every cell that printed before prints again, save, and check the file."""
    stored = nbformat.read(copy, as_version=4)
    printing = [i for i, cell in enumerate(stored.cells) if cell.cell_type == "code" and cell.get("outputs")]
    menu(page, "Edit", "Clear Outputs of All Cells")
    menu(page, "Run", "Run All Cells")
    page.wait_for_function(
        """indices => { const cells = document.querySelectorAll('.jp-Notebook .jp-Cell');
            const pending = [...document.querySelectorAll('.jp-InputPrompt')].some(p => p.textContent.includes('*'));
            return !pending && indices.every(i => cells[i].querySelector('.jp-OutputArea-output')); }""",
        arg=printing, timeout=RUN_MS)
    menu(page, "File", "Save Notebook")
    page.wait_for_selector(".jp-mod-dirty", state="detached", timeout=LOAD_MS)
    ran = nbformat.read(copy, as_version=4)
    problems = [f"cell {i} printed nothing when run" for i in printing if not ran.cells[i].get("outputs")]
    try:
        check_errors(copy, ran)
    except SystemExit as error:
        problems.append(str(error))
    return problems


def explorer_slider(page: Page) -> tuple[Locator, Locator]:
    """The explorer's slider labelled SLIDER, and the output area of the widget box that holds it."""
    label = page.locator(".widget-label", has_text=re.compile(f"^{SLIDER}$"))
    slider = page.locator(".widget-slider", has=label).first
    report = slider.locator("xpath=ancestor::div[contains(@class, 'widget-vbox')][1]//div[contains(@class, "
                            "'widget-output')]").first
    return slider, report


def move_slider(page: Page) -> list[str]:
    """Drag the explorer's length slider with the mouse; the report below it must change."""
    slider, report = explorer_slider(page)
    if slider.count() == 0:
        return [f"no slider labelled {SLIDER!r} found"]
    slider.scroll_into_view_if_needed()
    handle = slider.locator(".noUi-handle")
    page.wait_for_function("e => e.innerText.trim().length > 0", arg=report.element_handle(), timeout=LOAD_MS)
    before, value = report.inner_text(), handle.get_attribute("aria-valuenow")
    box = handle.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + 30, box["y"] + box["height"] / 2, steps=10)
    page.mouse.up()
    if handle.get_attribute("aria-valuenow") == value:
        return [f"dragging the {SLIDER!r} slider did not change its value ({value})"]
    try:
        page.wait_for_function("([e, old]) => e.innerText !== old && e.innerText.trim().length > 0",
                               arg=[report.element_handle(), before], timeout=LOAD_MS)
    except PageTimeout:
        return [f"the report below the slider did not change after moving {SLIDER} {value} -> "
                f"{handle.get_attribute('aria-valuenow')}"]
    print(f"    {SLIDER} {value} -> {handle.get_attribute('aria-valuenow')}: report changed", flush=True)
    return []


def screenshot(name: str) -> Path:
    """build/browser/02_dummy_inputs_and_shapes.png; ar_02_dummy_inputs_and_shapes.png for the Arabic edition."""
    return OUT / f"{Path(name).with_suffix('').as_posix().replace('/', '_')}.png"


def check_notebook(page: Page, base: str, token: str, name: str, copy: Path) -> list[str]:
    """Every check for one notebook; runs it and moves its slider when it is notebook 02. Saves its screenshot."""
    cells = len(nbformat.read(copy, as_version=4).cells)
    open_notebook(page, base, token, name, cells)
    problems = page_problems(page, cells) + kernel_problems(page, base, token, name)
    if name.startswith("ar/"):
        problems += direction_problems(page)
    if name.startswith(RUN_PREFIX) and not problems:  # notebooks/02_*, not a translation under ar/
        problems += run_all(page, copy)
        problems += page_problems(page, cells)
        if not problems:
            problems += move_slider(page)
    page.screenshot(path=str(screenshot(name)))
    shut_down_kernels(base, token)
    return problems


def check_all(root: Path, home: Path) -> int:
    """Start JupyterLab and Chromium, check every notebook, print verdicts; the number that failed."""
    token = os.urandom(16).hex()
    lab, base = start_lab(root, home, token)
    failed = 0
    try:
        with sync_playwright() as driver:
            browser = driver.chromium.launch_persistent_context(
                str(home / "chromium-profile"), executable_path=CHROMIUM, args=FLAGS, headless=True,
                viewport={"width": 1400, "height": 1000})
            page = browser.new_page()
            for name in notebook_paths():
                start = time.monotonic()
                try:
                    problems = check_notebook(page, base, token, name, root / name)
                except PageTimeout as error:
                    problems = [f"timed out: {str(error).splitlines()[0]}"]
                    page.screenshot(path=str(screenshot(name)))
                verdict = "ok  " if not problems else "FAIL"
                print(f"{verdict} {name} ({time.monotonic() - start:.0f} s){': ' if problems else ''}"
                      + "; ".join(problems), flush=True)
                failed += bool(problems)
            browser.close()
    finally:
        lab.terminate()
        lab.wait(timeout=30)
    return failed


def main() -> int:
    """Check every notebook in a copy of notebooks/; screenshots and the server's log go to build/browser/."""
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} not found: install Debian's chromium (`make check-browser` does) or set CHROMIUM")
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="check-browser-") as scratch:
        root, home = Path(scratch) / "notebooks", Path(scratch) / "home"
        shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns("build", ".ipynb_checkpoints"))
        trust(root, home)
        failed = check_all(root, home)
    total = len(notebook_paths())
    print(f"browser check: {total - failed} of {total} notebooks passed; screenshots in {OUT.relative_to(ROOT)}/")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
