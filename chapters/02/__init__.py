"""Chapter 2 — KV cache (in progress)."""
