import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from helpers import course
from helpers.course import exercises


def test_workdir_is_fresh_and_removed_at_exit():
    script = "from helpers import course; p = course.workdir('t'); (p / 'f').write_text('x'); print(p)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    folder = Path(done.stdout.strip())
    assert folder.name.startswith("t-") and folder.parent.parent.name == course.SCRATCH and not folder.exists()


def test_a_killed_process_scratch_is_removed_by_the_next_one():
    """A SIGKILLed kernel runs no exit handler: the next process's root removes what it left, temp files too."""
    script = ("import os, signal, tempfile; from helpers import course; course.temporary_files_in(course.scratch_root());"
              "print(course.workdir('k'), tempfile.mkdtemp(prefix='aotinductor_'), flush=True);"
              "os.kill(os.getpid(), signal.SIGKILL)")
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    left = [Path(p) for p in killed.stdout.split()]
    assert killed.returncode == -9 and all(p.exists() for p in left) and left[1].parent == left[0].parent
    subprocess.run([sys.executable, "-c", "from helpers import course; course.scratch_root()"], check=True)
    assert not left[0].parent.exists()


def test_setup_keeps_inductor_cache_outside_the_scratch_folder():
    script = ("import os, tempfile; from helpers import course; course.setup();"
              "print(tempfile.gettempdir(), os.environ['TMPDIR'], os.environ['TORCHINDUCTOR_CACHE_DIR'])")
    env = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_CACHE_DIR"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    temp, tmpdir, cache = done.stdout.split()[-3:]
    assert temp == tmpdir and Path(temp).parent.name == course.SCRATCH
    assert course.SCRATCH not in cache


@pytest.fixture
def exercise_00(monkeypatch):
    """A check registered as exercise "00.1": is the answer `four`, a number the notebook passes in?"""
    monkeypatch.setitem(exercises.CHECKS, "00.1", lambda answer, *, four: answer - four == 0)


def test_check_reports_not_attempted_correct_and_not_yet(capsys, exercise_00):
    assert course.check(None, "00.1", "hint", four=4) is None
    assert course.check(4, "00.1", "hint", four=4) is True
    assert course.check(5, "00.1", "add one less", four=4) is False
    assert course.check("x", "00.1", "use a number", four=4) is False
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "not attempted yet: replace None with your answer and re-run this cell"
    assert lines[1] == "correct!" and lines[2] == "not yet. Hint: add one less"
    assert lines[3].startswith("not yet: checking your answer raised TypeError: ")
    assert lines[3].endswith(". Hint: use a number")


def test_check_refuses_an_unknown_exercise_even_unattempted(capsys):
    with pytest.raises(KeyError, match=r"no exercise '09\.1': the exercises are 01\.1, 01\.2, "):
        course.check(None, "09.1", "hint")
    assert capsys.readouterr().out == ""


def test_check_refuses_a_context_the_check_does_not_read(exercise_00):
    with pytest.raises(TypeError, match=r"exercise 00\.1's check reads \['four'\] from the notebook, but the cell "
                                        r"passes \['five'\]"):
        course.check(None, "00.1", "hint", five=5)


def test_every_exercise_has_one_notebook_cell_and_a_documented_check():
    notebooks = Path(__file__).parents[1] / "notebooks"
    sources = ["".join(cell["source"]) for path in sorted(notebooks.glob("0*.ipynb"))
               for cell in json.loads(path.read_text(encoding="utf-8"))["cells"] if cell["cell_type"] == "code"]
    used = [found for source in sources for found in re.findall(r'course\.check\(\s*\w+, "(\d\d\.\d)"', source)]
    assert sorted(used) == sorted(exercises.CHECKS), "each exercise id in exactly one notebook cell"
    assert all(check.__doc__ and check.__name__.startswith(f"nb{exercise[:2]}_")
               for exercise, check in exercises.CHECKS.items())


def test_setup_seeds_and_prints_versions(capsys):
    import torch

    course.setup(seed=7)
    first = torch.rand(2)
    course.setup(seed=7)
    assert torch.equal(first, torch.rand(2))
    assert "torch 2.13.0" in capsys.readouterr().out


def test_setup_prints_the_release_not_the_build_tag(capsys):
    course.setup()
    line = capsys.readouterr().out
    assert "+cpu" not in line and "python" not in line, "stored outputs must not depend on the platform or Python"


def test_known_noise_hides_only_explained_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with course.known_noise():
            warnings.warn("`torch.jit.trace` is deprecated. Please switch to torch.export.", DeprecationWarning)
            warnings.warn("something new", UserWarning)
    assert [str(w.message) for w in caught] == ["something new"]


def test_show_once_prints_each_distinct_warning_once(capsys):
    import torch

    with course.show_once() as seen:
        for _ in range(3):
            warnings.warn("`torch.jit.trace` is deprecated.", DeprecationWarning)
        warnings.warn("a tracer note", torch.jit.TracerWarning)
    assert capsys.readouterr().out.splitlines() == [
        "DeprecationWarning: `torch.jit.trace` is deprecated.",
        "TracerWarning: a tracer note",
    ]
    assert len(seen) == 2


def test_show_once_first_line_drops_details_that_vary(capsys):
    with course.show_once(first_line=True):
        warnings.warn("Output nr 1. does not match. Detailed error:\nGreatest difference: 3.37", UserWarning)
        warnings.warn("Output nr 1. does not match. Detailed error:\nGreatest difference: 2.91", UserWarning)
    assert capsys.readouterr().out.splitlines() == ["UserWarning: Output nr 1. does not match. Detailed error:"]


def test_threads_and_transformers_quiet_restore_what_they_change():
    import torch
    import transformers

    before = torch.get_num_threads()
    with course.threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    level = transformers.logging.get_verbosity()
    try:
        with course.transformers_quiet():
            assert transformers.logging.get_verbosity() == transformers.logging.ERROR
            raise KeyError("leaving by an error restores it too")
    except KeyError:
        pass
    assert transformers.logging.get_verbosity() == level


def test_locate_finds_the_checkout_from_below_and_names_its_setting(tmp_path, monkeypatch):
    (tmp_path / "cpp").mkdir()
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    monkeypatch.delenv("COURSE_CPP", raising=False)
    assert course.locate("cpp", "COURSE_CPP") == tmp_path / "cpp"
    monkeypatch.setenv("COURSE_CPP", "/somewhere/else")
    assert course.locate("cpp", "COURSE_CPP") == Path("/somewhere/else")
    monkeypatch.delenv("COURSE_CPP")
    monkeypatch.chdir("/")
    with pytest.raises(FileNotFoundError, match="set the environment variable COURSE_CPP"):
        course.locate("cpp", "COURSE_CPP")


def test_build_folder_is_the_checkouts_notebooks_build_from_any_notebook_folder(tmp_path, monkeypatch):
    (tmp_path / "notebooks" / "ar").mkdir(parents=True)
    monkeypatch.delenv("COURSE_BUILD", raising=False)
    for here in (tmp_path, tmp_path / "notebooks", tmp_path / "notebooks" / "ar"):
        monkeypatch.chdir(here)
        assert course.build_folder("06") == tmp_path / "notebooks" / "build" / "06"
    assert (tmp_path / "notebooks" / "build" / "06").is_dir()
    monkeypatch.setenv("COURSE_BUILD", str(tmp_path / "elsewhere"))
    assert course.build_folder("06") == tmp_path / "elsewhere" / "06"
