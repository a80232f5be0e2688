"""Helpers for the course "Exporting Transformers models to TorchScript".

Import modules, not names, so a reader knows where to look: `from helpers import tracing`, then
`tracing.save(...)`. The README's Layout section lists every module and the notebook that introduces it.
"""

__version__ = "0.1.0"
