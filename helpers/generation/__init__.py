"""Text generation with traced parts, introduced in notebook 07: token for token what `model.generate` returns.

Everything is importable from `helpers.generation`; each piece lives in the submodule named for it:
- `traced`: `TracedSeq2Seq` and `TracedCausalLM` (trace, check, generate, save, load) and their checks;
- `steps`: the traceable pieces (an encoder, one decoder step) with the causal mask and position ids;
- `rules`: `GreedyRules`, what `generate()` does around the argmax, as plain data;
- `models`: tiny generator models built from configs, and real ones (`load_generator`) when chosen;
- `cost`: what one step costs, traced vs eager with and without a KV cache.
"""

from helpers.generation import cost, models, rules, steps, traced
from helpers.generation.rules import GreedyRules
from helpers.generation.traced import (
    TracedCausalLM,
    TracedGenerator,
    TracedSeq2Seq,
    agreement,
    example_ids,
    position_limit,
    random_cases,
    references,
)

__all__ = ["GreedyRules", "cost", "models", "rules", "steps", "traced", "TracedCausalLM", "TracedGenerator", "TracedSeq2Seq", "agreement", "example_ids",
           "position_limit", "random_cases", "references"]
