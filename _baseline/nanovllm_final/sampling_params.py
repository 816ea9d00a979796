"""SamplingParams: how to pick each next token and when to stop (vLLM's names and meanings).

The filters apply in vLLM's order: temperature, then top-k, then top-p, then min-p; sampling
draws from what is left. temperature=0 means greedy (argmax), whatever the other filters say.

Every field is checked when the object is made and again when a request is added (a field
changed in between is caught there); a bad value raises one ValueError naming the field.
Numpy scalars are accepted and stored as Python numbers.
"""

from dataclasses import dataclass

from nanovllm_final.utils.checks import as_bool, as_int, as_real

# Below this the logits / temperature overflow float32 and every probability but one is 0:
# greedy is what such a temperature means (vLLM uses the same cut-off).
GREEDY_BELOW = 1e-5
SEED_RANGE = (-2**63, 2**64)  # what torch.Generator.manual_seed accepts


@dataclass
class SamplingParams:
    temperature: float = 1.0  # 0 is greedy; higher flattens the distribution
    top_k: int = -1  # keep the k most likely tokens; -1 keeps all
    top_p: float = 1.0  # keep the smallest set whose probability reaches top_p (nucleus)
    min_p: float = 0.0  # drop tokens less likely than min_p x the most likely one
    max_tokens: int = 64  # stop after this many new tokens
    ignore_eos: bool = False  # keep going past end-of-sequence (benchmarks do)
    stop: list[str] | str | None = None  # stop when the text contains one of these; it is cut off
    seed: int | None = None  # a private generator: the same seed gives the same tokens

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Check and normalize every field in place (the engine calls it again at add time)."""
        self.temperature = as_real("temperature", self.temperature, ">= 0 (0 is greedy) and finite",
                                   lambda t: t >= 0)
        if self.temperature < GREEDY_BELOW:
            self.temperature = 0.0
        self.top_k = as_int("top_k", self.top_k, 1, allowed=(-1,), fix="; -1 keeps all tokens")
        self.top_p = as_real("top_p", self.top_p, "in (0, 1] (1 keeps all tokens)", lambda p: 0 < p <= 1)
        self.min_p = as_real("min_p", self.min_p, "in [0, 1] (0 keeps all tokens)", lambda p: 0 <= p <= 1)
        self.max_tokens = as_int("max_tokens", self.max_tokens, 1)
        self.ignore_eos = as_bool("ignore_eos", self.ignore_eos)
        stop = [self.stop] if isinstance(self.stop, str) else self.stop
        if stop is None:
            stop = []
        if not isinstance(stop, (list, tuple)) or any(not isinstance(s, str) or not s for s in stop):
            raise ValueError(f"stop must be a non-empty string or a list of them, got {self.stop!r}")
        self.stop = list(stop)
        if self.seed is not None:
            self.seed = as_int("seed", self.seed, fix="; use None for no seed")
            if not SEED_RANGE[0] <= self.seed < SEED_RANGE[1]:
                raise ValueError(f"seed must fit in 64 bits (from -2**63 to 2**64 - 1), got {self.seed}")
