"""The workload: nano-vllm's benchmark (bench.py), scaled by one number so that it fits a CPU.

nano-vllm's bench.py seeds Python's random with 0 and draws 256 requests: a prompt of
randint(100, 1024) random token ids in [0, 10000] and an output of randint(100, 1024) tokens,
generated to the end whatever the model says (ignore_eos), at temperature 0.6. That is 133,966
output tokens. `nano_vllm_workload(scale)` draws the same way with every count multiplied by
`scale`: 256 * scale requests, prompts and outputs of 100 * scale to 1024 * scale tokens. At
scale 1 it is nano-vllm's exactly (the drawing is nanovllm_final.bench's, imported, not copied).

A workload is plain data (token ids and output lengths), so that every chapter's engine gets the
same requests through its own SamplingParams class: see `Workload.params`.
"""

from dataclasses import dataclass

from nanovllm_final.bench import CHECKSUM, workload as draw_nano_vllm_requests

NANO_VLLM = dict(num_seqs=256, input_len=(100, 1024), output_len=(100, 1024), max_token_id=10000, temperature=0.6)


@dataclass(frozen=True)
class Workload:
    prompts: list[list[int]]  # token ids, one list per request
    output_lens: list[int]  # each request's max_tokens; with ignore_eos, exactly its output tokens
    temperature: float
    scale: float
    max_token_id: int

    @property
    def num_output_tokens(self) -> int:
        return sum(self.output_lens)

    @property
    def num_prompt_tokens(self) -> int:
        return sum(map(len, self.prompts))

    def params(self, sampling_params_class) -> list:
        """One SamplingParams per request, of the engine's own class (every chapter has one)."""
        return [sampling_params_class(temperature=self.temperature, max_tokens=n, ignore_eos=True) for n in self.output_lens]

    def describe(self) -> dict:
        return dict(scale=self.scale, num_seqs=len(self.prompts), prompt_tokens=self.num_prompt_tokens,
                    output_tokens=self.num_output_tokens, temperature=self.temperature,
                    prompt_lens=[min(map(len, self.prompts)), max(map(len, self.prompts))],
                    output_lens=[min(self.output_lens), max(self.output_lens)], ignore_eos=True)


def nano_vllm_workload(scale: float = 1.0, temperature: float | None = None, max_token_id: int | None = None) -> Workload:
    """nano-vllm's 256 requests, every count times `scale` (at least 1 request of 1 token each).
    temperature: nano-vllm's 0.6 by default; 0 (greedy) when tokens are to be compared between
    engines. max_token_id: 10,000 by default; lower it for a model with a smaller vocabulary."""
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1] (1 is nano-vllm's workload), got {scale}")
    scaled = lambda n: max(1, round(n * scale))  # noqa: E731
    num_seqs = scaled(NANO_VLLM["num_seqs"])
    input_len = tuple(scaled(n) for n in NANO_VLLM["input_len"])
    output_len = tuple(scaled(n) for n in NANO_VLLM["output_len"])
    max_token_id = NANO_VLLM["max_token_id"] if max_token_id is None else max_token_id
    prompts, params = draw_nano_vllm_requests(num_seqs, input_len, output_len, max_token_id)
    work = Workload(prompts=prompts, output_lens=[p.max_tokens for p in params],
                    temperature=NANO_VLLM["temperature"] if temperature is None else temperature,
                    scale=scale, max_token_id=max_token_id)
    if scale == 1 and max_token_id == NANO_VLLM["max_token_id"]:
        assert work.num_output_tokens == CHECKSUM, f"workload drifted: {work.num_output_tokens} output tokens, expected {CHECKSUM}"
    return work
