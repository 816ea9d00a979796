"""The engine: Sequence (one request), BlockManager (KV blocks and the prefix cache), Scheduler
(who runs each step), ModelRunner (one rank's model, cache and CUDA graphs), LLMEngine (the loop)."""
