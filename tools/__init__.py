"""Tools for working on nanovllm_final's kernels; the engine never imports them.

    python -m tools.bench_kernels   check, then time, every kernel at the engine's shapes (GPU)
    python -m tools.tune_kernels    the tile-configuration sweeps behind the kernels' constants (GPU)
    python -m tools.sass_stats      what the decode kernels compile to for sm_90 (no GPU needed)

docs/kernels.md says what each kernel does and what these measured.
"""
