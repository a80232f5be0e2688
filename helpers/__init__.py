"""Helpers for the course "Exporting Transformers models to TorchScript".

Import modules, not names, so a reader knows where to look: `from helpers import tracing`, then
`tracing.save(...)`. Modules: `course` (set-up, exercises), `models`, `tracing`, `quiet`.
"""

__version__ = "0.1.0"
