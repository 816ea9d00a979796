"""ModelRunner: owns the model and its KV cache, and turns a batch of sequences into one forward.

Each step computes, for every sequence, the tokens whose K/V are not in the cache yet:

    step 1 (prefill)   the whole prompt, at positions 0 .. P-1
    step 2, 3, ...     the one token sampled last, at position num_tokens - 1

All sequences' new tokens go through the model as one flat batch (the model has no batch
dimension); `cu_seqlens_q` says where each sequence's tokens start and end in it, and the logits
of each sequence's last new token predict its next one.
"""

import torch

from ch02.attention import Attention
from ch02.context import Context, get_context, reset_context, set_context
from ch02.sequence import RowSequence
from ch02.solutions import prepare_inputs  # exercise 2.3: the answer key


class ModelRunner:
    def __init__(self, model, max_num_seqs: int, max_model_len: int):
        self.model = model
        self.device = next(model.parameters()).device
        # Reserved up front, whatever the prompts turn out to be: max_model_len slots for each of
        # max_num_seqs sequences.
        self.allocate_kv_cache(max_num_seqs, max_model_len)

    def allocate_kv_cache(self, num_rows: int, row_len: int, dtype: torch.dtype | None = None) -> None:
        """One zeroed tensor holding K and V of every layer, self.kv_cache: (2, n_layers, num_rows,
        row_len, n_kv_heads, head_dim), in `dtype` (by default the dtype of the model's weights);
        each attention layer gets views of its K and V part."""
        layers = [m for m in self.model.modules() if isinstance(m, Attention)]
        first = layers[0]
        param = next(self.model.parameters())
        shape = (2, len(layers), num_rows, row_len, first.num_kv_heads, first.head_dim)
        self.kv_cache = torch.zeros(shape, dtype=dtype or param.dtype, device=param.device)
        for i, attn in enumerate(layers):
            attn.k_cache, attn.v_cache = self.kv_cache[0, i], self.kv_cache[1, i]  # (num_rows, row_len, n_kv_heads, head_dim)

    @property
    def bytes_per_slot(self) -> int:
        """Bytes of K and V of one token, all layers: 2 * n_layers * n_kv_heads * head_dim * dtype size."""
        _, n_layers, _, _, n_kv_heads, head_dim = self.kv_cache.shape
        return 2 * n_layers * n_kv_heads * head_dim * self.kv_cache.element_size()

    def prepare(self, seqs: list[RowSequence]) -> tuple[torch.Tensor, torch.Tensor]:
        """Build the step's inputs and publish the batch layout for the attention layers."""
        input_ids, positions, cu_seqlens_q, context_lens = prepare_inputs(seqs)
        cache_rows = torch.tensor([seq.cache_row for seq in seqs])
        set_context(Context(cu_seqlens_q=cu_seqlens_q, context_lens=context_lens, cache_rows=cache_rows))
        return input_ids.to(self.device), positions.to(self.device)

    @torch.inference_mode()
    def run(self, seqs: list[RowSequence]) -> torch.Tensor:
        """One forward over the uncached tokens of `seqs`; returns each sequence's next-token
        logits, (B, vocab_size). The caller marks the tokens cached (see LLM.postprocess)."""
        input_ids, positions = self.prepare(seqs)
        try:
            hidden = self.model(input_ids, positions)  # (N, D); the K/V of all N tokens are now stored
            last = get_context().cu_seqlens_q[1:] - 1  # (B,): each sequence's last new token
            return self.model.compute_logits(hidden[last.to(self.device)])  # (B, vocab_size)
        finally:
            reset_context()
