import subprocess
import sys
from pathlib import Path

from helpers import course


def test_workdir_is_fresh_and_removed_at_exit():
    script = "from helpers import course; p = course.workdir('t'); (p / 'f').write_text('x'); print(p)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    folder = Path(done.stdout.strip())
    assert folder.name.startswith("t-") and not folder.exists()


def test_check_reports_not_attempted_correct_and_not_yet(capsys):
    assert course.check(None, lambda a: True, "hint") is None
    assert course.check(4, lambda a: a == 4, "hint") is True
    assert course.check(5, lambda a: a == 4, "add one less") is False
    assert course.check("x", lambda a: a + 1, "use a number") is False
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("not attempted") and lines[1] == "correct!"
    assert lines[2] == "not yet. Hint: add one less"
    assert "raised TypeError" in lines[3] and lines[3].endswith("Hint: use a number")


def test_setup_seeds_and_prints_versions(capsys):
    import torch

    course.setup(seed=7)
    first = torch.rand(2)
    course.setup(seed=7)
    assert torch.equal(first, torch.rand(2))
    assert "torch 2.13.0" in capsys.readouterr().out
