"""tools/sass_stats.py compiles the decode kernel for sm_90 on a machine with no GPU and finds its loop."""

import pytest

from tools import sass_stats


@pytest.mark.slow
def test_fp8_decode_loop_is_found_and_counted():
    loops = {}
    for tma in (False, True):
        sass, usage = sass_stats.sass_of(sass_stats.compile_decode("fp8", block_n=64, warps=4, stages=3, tma=tma))
        assert "REG:" in usage
        loop = sass_stats.main_loop(sass)
        counts = sass_stats.opcode_counts(loop)
        # One tile: the e4m3 -> fp16 conversions and the tensor-core products are in the loop, and the
        # loads are asynchronous: per-thread copies, or one tensor-memory-accelerator copy per tile
        # (a kernel compiled without the engine's specializations has neither).
        assert 100 < len(loop) < 5000
        assert any(op.startswith("F2FP") and "E4M3" in op for op in counts)
        assert any(op.startswith(("HMMA", "HGMMA")) for op in counts)
        assert any(op.startswith("UTMALDG" if tma else "LDGSTS") for op in counts), sorted(counts)
        assert sum(counts.values()) == len(loop)
        loops[tma] = len(loop)
    assert loops[True] < loops[False]  # no address per thread to compute
