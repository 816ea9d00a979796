"""transformers' greedy tokens for the shared test prompts, computed once per model folder."""

import functools

from course.testing import PROMPTS, hf_greedy


@functools.lru_cache(maxsize=None)
def transformers_greedy(path, max_tokens: int = 8) -> tuple[tuple[int, ...], ...]:
    """One tuple of token ids per prompt of course.testing.PROMPTS."""
    return tuple(tuple(hf_greedy(path, prompt, max_tokens)) for prompt in PROMPTS)
