"""Run a saved model in a process that imports only torch: `python -m helpers.serve MODEL INPUTS OUT`.

MODEL is a TorchScript `.pt` or an AOTInductor `.pt2` package; INPUTS is a `torch.save`d tuple of tensors and
OUT receives the outputs the same way. Notebooks 03 and 06 run this in a fresh process (`run_in_fresh_process`)
to prove a saved file needs neither transformers nor the model's Python code.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import torch


def main(model_path: str, inputs_path: str, out_path: str) -> None:
    """Load the model, run it on the saved inputs, save the outputs, and say what was imported."""
    if model_path.endswith(".pt2"):
        module = torch._inductor.aoti_load_package(model_path)
    else:
        module = torch.jit.load(model_path).eval()
    inputs = torch.load(inputs_path)
    with torch.inference_mode():
        torch.save(module(*inputs), out_path)
    print(f"fresh process ran {Path(model_path).name} on {[tuple(t.shape) for t in inputs]}; "
          f"transformers imported: {'transformers' in sys.modules}")


def run_in_fresh_process(model_path: str | Path, inputs: tuple[torch.Tensor, ...]) -> object:
    """Run `model_path` on `inputs` in a new Python process; return its outputs. Prints the process's report."""
    with tempfile.TemporaryDirectory(prefix="serve-") as tmp:
        inputs_file, out_file = Path(tmp) / "inputs.pt", Path(tmp) / "outputs.pt"
        torch.save(tuple(inputs), inputs_file)
        done = subprocess.run(
            [sys.executable, "-m", "helpers.serve", str(model_path), str(inputs_file), str(out_file)],
            capture_output=True, text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"the fresh process failed:\n{done.stderr.strip()[-2000:]}")
        print(done.stdout.strip())
        return torch.load(out_file)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
