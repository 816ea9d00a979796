"""Chapter 3 — paged KV blocks (in progress)."""
