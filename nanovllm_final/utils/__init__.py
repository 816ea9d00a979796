"""utils of nanovllm_final."""
