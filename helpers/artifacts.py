"""Files around an export: what a saved model file holds, and a build cache.

Introduced in notebook 06, beside `helpers.export`: `contents` lists a `.pt` or `.pt2` archive by folder and
file type; `cached_package` keeps an AOTInductor build in a build folder, keyed by the program's `fingerprint`.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch.export import ExportedProgram

from helpers import export, tracing

def contents(path: str | os.PathLike, depth: int = 3, top: int = 6) -> str:
    """The `top` biggest groups of files inside a zip-based model file, by folder (to `depth`) and extension."""
    groups: dict[str, list[int]] = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            *folders, name = info.filename.split("/")[1:]  # the first folder is named after the file
            key = "/".join(folders[:depth] + [f"*{Path(name).suffix}"]) if folders else name
            group = groups.setdefault(key, [0, 0])
            group[0], group[1] = group[0] + 1, group[1] + info.file_size
    biggest = sorted(groups.items(), key=lambda item: -item[1][1])[:top]
    return "\n".join(f"{key:<48} {files:>4} files {size / 1e6:9.1f} MB" for key, (files, size) in biggest)


def fingerprint(program: ExportedProgram) -> str:
    """sha256 of a program's graph and weights: the same program always gives the same digest."""
    digest = hashlib.sha256(str(program.graph).encode())
    for name, tensor in sorted({**program.state_dict, **program.constants}.items()):
        if isinstance(tensor, torch.Tensor):
            digest.update(name.encode() + str(tensor.dtype).encode())
            digest.update(tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def cached_package(program: ExportedProgram, path: str | os.PathLike, **settings: Any) -> dict[str, Any]:
    """`export.package` for a build folder: reuse `path` if this torch built it from this program with these
    settings (the program's `fingerprint` sits beside it in `path.program`), else (re)build it. Prints which."""
    path, wanted = Path(path), export.build_settings(
        settings.get("dtype"), settings.get("freeze", True), settings.get("max_autotune", False))
    source, key_file = fingerprint(program), Path(f"{path}.program")
    reason = "not built yet"
    if path.exists():
        try:
            manifest = export.check_package(path)
            if manifest["settings"] == wanted and key_file.exists() and key_file.read_text() == source:
                print(f"reused {path.name} (compiled in {manifest['compile_seconds']} s on {manifest['built']})")
                return manifest
            reason = "it was built from another program or with other settings"
        except (tracing.ModelFileError, KeyError) as err:
            reason = str(err)
    key_file.unlink(missing_ok=True)
    manifest = export.package(program, path, overwrite=True, **settings)
    key_file.write_text(source)
    print(f"compiled {path.name} in {manifest['compile_seconds']} s ({reason})")
    return manifest
