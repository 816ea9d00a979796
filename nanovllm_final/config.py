"""Config: the engine's knobs (nano-vllm's names) and the model's numbers from config.json.

`ModelConfig` is what the model needs (sizes, norms, RoPE); `Config` is what the engine needs
(batch limits, KV-cache size, devices). Three families load, differing in two switches:

    Qwen3  qk_norm=True          an RMSNorm over each head of q and k before RoPE
    Qwen2  attention_bias=True   q, k and v projections carry a bias
    Llama  neither               SmolLM2 is a Llama
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

SUPPORTED_ARCHITECTURES = ("Qwen3ForCausalLM", "Qwen2ForCausalLM", "LlamaForCausalLM")


@dataclass(frozen=True)
class ModelConfig:
    architecture: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    max_position_embeddings: int
    tie_word_embeddings: bool
    attention_bias: bool
    qk_norm: bool
    eos_token_ids: tuple[int, ...]

    @classmethod
    def from_pretrained(cls, model_path) -> "ModelConfig":
        folder = Path(model_path)
        path = folder / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; point model_path at a Hugging Face model folder")
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON ({err}); fetch the model folder again") from err
        gen_path = folder / "generation_config.json"
        gen = json.loads(gen_path.read_text()) if gen_path.is_file() else {}
        return cls.from_dict(raw, gen)

    @classmethod
    def from_dict(cls, raw: dict, generation_config: dict | None = None) -> "ModelConfig":
        arch = (raw.get("architectures") or ["<none>"])[0]
        if arch not in SUPPORTED_ARCHITECTURES:
            raise ValueError(f"architecture {arch!r} is not supported; supported: {', '.join(SUPPORTED_ARCHITECTURES)}")
        rope_scaling = raw.get("rope_scaling") or {}
        if rope_scaling.get("rope_type", rope_scaling.get("type", "default")) != "default":
            raise ValueError(f"rope_scaling {rope_scaling} is not supported; only plain RoPE is")
        rope = raw.get("rope_parameters") or {}
        heads = raw["num_attention_heads"]
        eos = [raw.get("eos_token_id"), (generation_config or {}).get("eos_token_id")]
        return cls(
            architecture=arch,
            vocab_size=raw["vocab_size"],
            hidden_size=raw["hidden_size"],
            intermediate_size=raw["intermediate_size"],
            num_hidden_layers=raw["num_hidden_layers"],
            num_attention_heads=heads,
            num_key_value_heads=raw.get("num_key_value_heads") or heads,
            head_dim=raw.get("head_dim") or raw["hidden_size"] // heads,
            rms_norm_eps=raw.get("rms_norm_eps", 1e-6),
            rope_theta=rope.get("rope_theta", raw.get("rope_theta", 10000.0)),
            max_position_embeddings=raw.get("max_position_embeddings", 4096),
            tie_word_embeddings=raw.get("tie_word_embeddings", False),
            attention_bias=arch == "Qwen2ForCausalLM" or raw.get("attention_bias", False),
            qk_norm=arch == "Qwen3ForCausalLM",
            eos_token_ids=tuple(sorted(set(_flatten(eos)))),
        )


def _flatten(values):
    for v in values:
        if isinstance(v, (list, tuple)):
            yield from _flatten(v)
        elif v is not None:
            yield int(v)


@dataclass
class Config:
    model: str
    max_num_batched_tokens: int = 16384  # tokens per forward pass: decodes first, then prefill chunks
    max_num_seqs: int = 512  # sequences running at once
    max_model_len: int = 4096  # prompt + output, capped by the model's max_position_embeddings
    gpu_memory_utilization: float = 0.9  # share of GPU memory for weights, activations and KV cache
    tensor_parallel_size: int = 1
    enforce_eager: bool = False  # True: no CUDA graphs
    kvcache_block_size: int | None = None  # tokens per KV block; 256 on GPU, 16 on CPU
    num_kvcache_blocks: int = -1  # -1: size the pool from memory
    cpu_kvcache_gib: float = 1.0  # the CPU pool's memory budget when num_kvcache_blocks is -1
    kv_cache_dtype: str = "auto"  # "auto" (the model's dtype) or "fp8" (e4m3 with per-token scales)
    device: str | None = None  # "cuda" if available, else "cpu"
    dtype: torch.dtype | str | None = None  # bf16 on GPU, float32 on CPU
    seed: int = 0  # the default generator for unseeded sampling
    load_format: str = "auto"  # "auto": the folder's safetensors; "dummy": random weights (benchmarks)
    hf_config: ModelConfig = field(init=False)
    eos: tuple[int, ...] = field(init=False)
    dist_port: int = field(init=False, default=0)

    def __post_init__(self):
        self.model = str(self.model)
        if not Path(self.model).is_dir():
            raise FileNotFoundError(f"model folder {self.model} does not exist; pass a Hugging Face model folder")
        self.hf_config = ModelConfig.from_pretrained(self.model)
        self.eos = self.hf_config.eos_token_ids
        self.device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' but torch sees no GPU; use device='cpu'")
        on_gpu = self.device == "cuda"
        if self.dtype is None:
            self.dtype = torch.bfloat16 if on_gpu else torch.float32
        elif isinstance(self.dtype, str):
            self.dtype = getattr(torch, self.dtype.replace("bf16", "bfloat16").replace("fp32", "float32"))
        if self.kvcache_block_size is None:
            self.kvcache_block_size = 256 if on_gpu else 16
        if self.kvcache_block_size < 1:
            raise ValueError(f"kvcache_block_size must be >= 1, got {self.kvcache_block_size}")
        if self.load_format not in ("auto", "dummy"):
            raise ValueError(f"load_format must be 'auto' or 'dummy', got {self.load_format!r}")
        if self.kv_cache_dtype not in ("auto", "fp8"):
            raise ValueError(f"kv_cache_dtype must be 'auto' or 'fp8', got {self.kv_cache_dtype!r}")
        if self.max_num_seqs < 1 or self.max_num_batched_tokens < 1:
            raise ValueError("max_num_seqs and max_num_batched_tokens must be >= 1")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}")
        tp = self.tensor_parallel_size
        hf = self.hf_config
        if tp < 1 or hf.num_attention_heads % tp or hf.num_key_value_heads % tp:
            raise ValueError(
                f"tensor_parallel_size={tp} must divide the {hf.num_attention_heads} query heads and "
                f"{hf.num_key_value_heads} KV heads; pick a divisor"
            )
        if on_gpu and tp > torch.cuda.device_count():
            raise ValueError(f"tensor_parallel_size={tp} but only {torch.cuda.device_count()} GPUs are visible")
        self.max_model_len = min(self.max_model_len, hf.max_position_embeddings)
