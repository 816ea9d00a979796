"""What the decode-attention kernels compile to on an H100/H200 (sm_90), without a GPU.

    python -m tools.sass_stats                 # bf16 and fp8 caches, the engine's tiles
    python -m tools.sass_stats --kv fp8 --block-n 128 --warps 8 --stages 2 --maxnreg 168

Triton's wheel carries ptxas and cuobjdump, so a kernel compiles for sm_90 on any machine. This
prints the registers and stack each thread needs (a stack means spills), and the instructions of
the kernel's main loop (one tile of BLOCK_N keys) by opcode. Decode attention has to move a tile
of K/V in the time the memory system delivers it; when the loop issues more instructions per tile
than that time allows, the kernel is bound by issuing them, not by bandwidth. On an H200 a tile
of 64 keys x 128 dims arrives on one multiprocessor in about 1,000 cycles for a bf16 cache and
about 500 for an fp8 one, and four schedulers issue one warp instruction each per cycle.

Arguments are specialized as the engine's calls are (16-byte aligned pointers, strides divisible
by 16): without that Triton cannot vectorize the loads, and the counts describe another kernel.
"""

import argparse
import collections
import os
import re
import subprocess
import tempfile

import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from nanovllm_final.kernels import decode_attention
from nanovllm_final.kernels.reference import FP8_MAX

# Arguments that the engine's calls make divisible by 16 (Triton specializes them at run time).
DIVISIBLE = {"stride_qb", "stride_qh", "stride_ob", "stride_oh", "stride_cb", "stride_ct", "stride_ch",
             "stride_vb", "stride_vt", "stride_vh", "stride_vd", "num_heads", "head_dim",
             "stride_nkb", "stride_nkh", "stride_nvb", "stride_nvh"}
POINTER_TYPES = {"q_ptr": "*bf16", "out_ptr": "*bf16", "block_tables_ptr": "*i32", "context_lens_ptr": "*i32",
                 "new_k_ptr": "*bf16", "new_v_ptr": "*bf16", "slot_mapping_ptr": "*i64",
                 "positions_ptr": "*i64", "q_norm_ptr": "*bf16", "k_norm_ptr": "*bf16"}


def engine_keys_first(kv: str, block_n: int, block_size: int = 256) -> bool:
    """Whether the engine's calls read keys-first tiles (decode_attention.uses_keys_first)."""
    return kv == "fp8" and block_size % block_n == 0


def engine_maxnreg(kv: str, block_n: int) -> int | None:
    """The register cap the engine launches this tile with (decode_attention.tiles)."""
    if kv != "fp8":
        return None
    return {decode_attention.FP8_BLOCK_N: decode_attention.FP8_MAXNREG,
            decode_attention.FP8_LARGE_BLOCK_N: decode_attention.FP8_LARGE_MAXNREG}.get(block_n)


def compile_decode(kv: str, block_n: int, warps: int, stages: int, group: int = 2, head_dim: int = 128,
                   block_size: int = 256, keys_first: bool | None = None, maxnreg: int | None = None,
                   tma: bool = True):
    """The decode split kernel compiled for sm_90 with one split per sequence, storing the step's
    tokens as the engine's decode steps do -> Triton's CompiledKernel. keys_first: keys-first tiles
    (default: as the engine picks, uses_keys_first). tma: keys-first tiles copied by the tensor
    memory accelerator, as on Hopper."""
    kernel = decode_attention.decode_split_kernel
    fp8 = kv == "fp8"
    if keys_first is None:
        keys_first = engine_keys_first(kv, block_n, block_size)
    tma = keys_first and tma
    block_d = max(16, triton.next_power_of_2(head_dim))
    descriptors = {"k_desc": f"tensordesc<fp8e4nv[1, {block_n}, 1, {block_d}]>",  # as tensor_descriptors makes them
                   "v_desc": f"tensordesc<fp8e4nv[1, 1, {block_d}, {block_n}]>"}
    constants = dict(BLOCK_SIZE=block_size, GROUP_PAD=max(16, triton.next_power_of_2(group)), BLOCK_N=block_n,
                     BLOCK_D=block_d, FP8=fp8, FP8_MAX=FP8_MAX, DOT_DTYPE=tl.float16, DOT_PRECISION="tf32",
                     ONE_SPLIT=True, KEYS_FIRST=keys_first, V_KEY_MAJOR=fp8,  # the engine's layouts
                     TABLE_PAD=32,  # one split of the default 17-block table (max_model_len 4096)
                     STORE=True,  # the engine's decode steps store their new tokens in the kernel
                     TMA=tma, PDL=not keys_first,  # keys-first tiles launch without PDL, and the engine
                     ROPE=not keys_first, QK_NORM=not keys_first)  # rotates their q and keys before (Qwen3)
    if not tma:
        constants.update(k_desc=None, v_desc=None)
    constants["stride_vt" if fp8 else "stride_vd"] = 1  # V's unit stride: Triton specializes a 1
    signature, attrs = {}, {}
    for i, name in enumerate(kernel.arg_names):
        if name in constants:
            signature[name] = "constexpr"
        elif name in descriptors:
            signature[name] = descriptors[name]
        elif name.endswith("_ptr"):
            signature[name] = POINTER_TYPES.get(name, ("*fp8e4nv" if fp8 else "*bf16") if "cache" in name else "*fp32")
            attrs[(i,)] = [["tt.divisibility", 16]]
        else:
            signature[name] = "fp32" if name in ("qk_scale", "rope_eps") else "i32"
            if name in DIVISIBLE:
                attrs[(i,)] = [["tt.divisibility", 16]]
    source = ASTSource(fn=kernel, signature=signature, constexprs=constants, attrs=attrs)
    return triton.compile(source, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=warps, num_stages=stages, maxnreg=maxnreg))


def _tool(name: str) -> str:
    return os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", name)


def sass_of(compiled) -> tuple[str, str]:
    """(SASS text, resource usage line) of a compiled kernel, from the cuobjdump in Triton's wheel."""
    with tempfile.TemporaryDirectory() as tmp:
        cubin = os.path.join(tmp, "kernel.cubin")
        with open(cubin, "wb") as f:
            f.write(compiled.asm["cubin"])
        sass = subprocess.run([_tool("cuobjdump"), "-sass", cubin], capture_output=True, text=True, check=True).stdout
        usage = subprocess.run([_tool("cuobjdump"), "-res-usage", cubin], capture_output=True, text=True, check=True).stdout
    return sass, " ".join(line.strip() for line in usage.splitlines() if "REG:" in line)


def main_loop(sass: str) -> list[str]:
    """The instructions of the longest backward branch's body: the loop over tiles of keys. A body
    with an EXIT in it is not a loop but a slow path placed after the kernel's end that jumps back
    into one (a TMA copy's retried wait on its barrier)."""
    instructions = [(int(m.group(1), 16), m.group(2)) for m in re.finditer(r"/\*([0-9a-f]{4,})\*/\s+([^;]*);", sass)]
    best: list[str] = []
    for address, text in instructions:
        target = re.search(r"\bBRA\b.*?(0x[0-9a-f]+)", text)
        if target and int(target.group(1), 16) < address:
            body = [t for a, t in instructions if int(target.group(1), 16) <= a <= address]
            if not any(re.search(r"\bEXIT\b", t) for t in body):
                best = max(best, body, key=len)
    return best


def opcode_counts(instructions: list[str]) -> collections.Counter:
    """Opcode with its modifiers (LDS.U8 is a one-byte load, LDS.128 a 16-byte one) -> how many times it
    appears; a predicate in front is dropped."""
    return collections.Counter(re.sub(r"^@!?U?P\w+\s+", "", text).split()[0] for text in instructions)


def report(kv: str, block_n: int, warps: int, stages: int, keys_first: bool | None = None,
           maxnreg: int | None = None, tma: bool = True, sass_dir: str | None = None) -> str:
    """The summary printed for one configuration; with sass_dir, its whole SASS is also written
    there (one file per configuration, to compare a kernel's machine code before and after a change)."""
    if keys_first is None:
        keys_first = engine_keys_first(kv, block_n)
    if maxnreg is None:
        maxnreg = engine_maxnreg(kv, block_n)
    sass, usage = sass_of(compile_decode(kv, block_n, warps, stages, keys_first=keys_first, maxnreg=maxnreg, tma=tma))
    if sass_dir:
        name = f"decode-{kv}-n{block_n}-w{warps}-s{stages}-{'keys' if keys_first else 'queries'}-first"
        with open(os.path.join(sass_dir, f"{name}{'-tma' if keys_first and tma else ''}.sass"), "w") as f:
            f.write(sass)
    loop = main_loop(sass)
    counts = opcode_counts(loop)
    how = ("keys first" + (", TMA" if tma else ", per-thread copies")) if keys_first else "queries first"
    cap = f", at most {maxnreg} registers" if maxnreg else ""
    lines = [f"decode, {kv} cache, {block_n} keys per tile, {warps} warps, {stages} stages, {how}{cap}: {usage}",
             f"  main loop: {len(loop)} instructions per thread per tile ({len(loop) * warps} warp instructions "
             f"per tile per program)",
             "  " + ", ".join(f"{op} {n}" for op, n in counts.most_common(24))]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kv", choices=["bf16", "fp8"], nargs="*", default=["bf16", "fp8"])
    parser.add_argument("--block-n", type=int, default=None, help="keys per tile (default: the engine's)")
    parser.add_argument("--warps", type=int, default=None)
    parser.add_argument("--stages", type=int, default=None)
    parser.add_argument("--maxnreg", type=int, default=None, help="register cap (default: the engine's)")
    parser.add_argument("--keys-first", choices=["auto", "on", "off"], default="auto",
                        help="fp8: keys-first tiles (auto: as the engine picks) or queries-first ones")
    parser.add_argument("--tma", choices=["on", "off"], default="on",
                        help="keys-first tiles copied by the tensor memory accelerator (Hopper) or by each thread")
    parser.add_argument("--sass-dir", help="also write each configuration's whole SASS into this folder")
    args = parser.parse_args()
    keys_first = {"auto": None, "on": True, "off": False}[args.keys_first]
    for kv in args.kv:
        tiles = ((decode_attention.FP8_BLOCK_N, decode_attention.FP8_NUM_WARPS, decode_attention.FP8_NUM_STAGES)
                 if kv == "fp8" else (decode_attention.BLOCK_N, decode_attention.NUM_WARPS, decode_attention.NUM_STAGES))
        block_n, warps, stages = (given or default for given, default in zip((args.block_n, args.warps, args.stages), tiles))
        print(report(kv, block_n, warps, stages, keys_first, args.maxnreg, args.tma == "on", args.sass_dir))


if __name__ == "__main__":
    main()
