"""python -m tools.sweep_split MIN_SPLIT_TOKENS [bench args...]: nanovllm_final.bench with the decode
kernel's shortest split set to MIN_SPLIT_TOKENS (kernels/decode_attention.py), to sweep it."""

import sys

from nanovllm_final import bench
from nanovllm_final.kernels import decode_attention

if __name__ == "__main__":
    decode_attention.MIN_SPLIT_TOKENS = int(sys.argv[1])
    print(f"MIN_SPLIT_TOKENS = {decode_attention.MIN_SPLIT_TOKENS}")
    bench.main(sys.argv[2:])
