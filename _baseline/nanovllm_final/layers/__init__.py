"""The model's building blocks: tensor-parallel linears, embedding and LM head, RMSNorm, RoPE,
SwiGLU, paged attention, and the batched sampler."""
