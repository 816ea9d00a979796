"""engine of nanovllm_final."""
