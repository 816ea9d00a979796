"""Plumbing: the per-step attention Context, and the safetensors loader."""
