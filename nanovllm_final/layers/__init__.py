"""layers of nanovllm_final."""
