"""Chapter 10 — the FP8 KV cache: keys and values in one byte each, with a scale per head.
"""
