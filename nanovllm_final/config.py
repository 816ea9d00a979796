"""Config: the engine's knobs (nano-vllm's names) and the model's numbers from config.json.

`ModelConfig` is what the model needs (sizes, norms, RoPE); `Config` is what the engine needs
(batch limits, KV-cache size, devices). Three families load, differing in two switches:

    Qwen3  qk_norm=True          an RMSNorm over each head of q and k before RoPE
    Qwen2  attention_bias=True   q, k and v projections carry a bias
    Llama  neither               SmolLM2 is a Llama

config.json may also ask for biases (Llama's and Qwen3's `attention_bias`, Llama's `mlp_bias`)
and linear or llama3 RoPE scaling; these are implemented. Anything else that would change the
math (another activation, sliding windows, other RoPE scalings, quantization) is refused with a
ValueError naming the setting, never silently ignored.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from nanovllm_final.utils.checks import as_bool, as_int, as_real

SUPPORTED_ARCHITECTURES = ("Qwen3ForCausalLM", "Qwen2ForCausalLM", "LlamaForCausalLM")
DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16, "half": torch.float16}


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
    attention_bias: bool  # q, k and v projections carry a bias
    qk_norm: bool
    eos_token_ids: tuple[int, ...]
    o_proj_bias: bool = False  # Llama's and Qwen3's attention_bias covers o_proj too; Qwen2's does not
    mlp_bias: bool = False  # Llama's mlp_bias: gate, up and down carry a bias
    # RoPE scaling, transformers' rope_parameters without rope_theta: None, or
    # {"rope_type": "linear", "factor": f} or {"rope_type": "llama3", "factor", "low_freq_factor",
    # "high_freq_factor", "original_max_position_embeddings"} (layers/rotary_embedding.py).
    rope_scaling: dict | None = field(default=None, compare=False)

    @classmethod
    def from_pretrained(cls, model_path) -> "ModelConfig":
        folder = Path(model_path)
        path = folder / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; point model_path at a Hugging Face model folder")
        raw = read_json(path)
        gen_path = folder / "generation_config.json"
        gen = read_json(gen_path) if gen_path.is_file() else {}
        try:
            return cls.from_dict(raw, gen)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err

    @classmethod
    def from_dict(cls, raw: dict, generation_config: dict | None = None) -> "ModelConfig":
        archs = raw.get("architectures") or ["<none>"]
        if isinstance(archs, str):
            raise ValueError(f'architectures must be a list like ["{archs}"], got the string {archs!r}; '
                             "put the name in a list")
        arch = archs[0]
        if arch not in SUPPORTED_ARCHITECTURES:
            raise ValueError(f"architecture {arch!r} is not supported; supported: {', '.join(SUPPORTED_ARCHITECTURES)}")
        missing = [k for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                               "num_attention_heads") if k not in raw]
        if missing:
            raise ValueError(f"the key(s) {missing} are missing; fetch the model folder again or add them")
        refuse_unsupported(raw)
        heads = raw["num_attention_heads"]
        eos = [raw.get("eos_token_id"), (generation_config or {}).get("eos_token_id")]
        theta, scaling = rope_settings(raw)
        attention_bias = bool(raw.get("attention_bias", False))
        qwen2 = arch == "Qwen2ForCausalLM"
        try:
            eos_token_ids = tuple(sorted(set(_flatten(eos))))
        except (TypeError, ValueError) as err:
            raise ValueError(f"eos_token_id must be an integer or a list of them, got {eos}") from err
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
            rope_theta=theta,
            max_position_embeddings=raw.get("max_position_embeddings", 4096),
            tie_word_embeddings=raw.get("tie_word_embeddings", False),
            attention_bias=qwen2 or attention_bias,  # Qwen2 always has q/k/v biases, never an o_proj one
            o_proj_bias=attention_bias and not qwen2,
            mlp_bias=arch == "LlamaForCausalLM" and bool(raw.get("mlp_bias", False)),
            qk_norm=arch == "Qwen3ForCausalLM",
            eos_token_ids=eos_token_ids,
            rope_scaling=scaling,
        )


def read_json(path: Path) -> dict:
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err}); fetch the model folder again") from err
    if not isinstance(raw, dict):
        raise ValueError(f"{path} should hold a JSON object, got {type(raw).__name__}; fetch the model folder again")
    return raw


def refuse_unsupported(raw: dict) -> None:
    """Settings that change the model's math and that this engine does not implement: refusing
    is better than generating from a different model than the folder describes."""
    if raw.get("quantization_config"):
        method = raw["quantization_config"].get("quant_method", "?") if isinstance(raw["quantization_config"], dict) else "?"
        raise ValueError(f"quantization_config ({method}) is set: quantized checkpoints are not supported; "
                         "use the model's unquantized (bf16/fp16/fp32) folder")
    act = raw.get("hidden_act", "silu")
    if act != "silu":
        raise ValueError(f"hidden_act={act!r} is not supported; only 'silu' (SwiGLU) is implemented")
    if raw.get("use_sliding_window"):
        raise ValueError("use_sliding_window=true is not supported (every layer attends to the whole context); "
                         "set it to false only if the model was trained that way")


def rope_settings(raw: dict) -> tuple[float, dict | None]:
    """(rope_theta, scaling) from transformers 5's `rope_parameters` or the older `rope_scaling`
    plus `rope_theta`; only the linear and llama3 scalings are implemented."""
    old = dict(raw.get("rope_scaling") or {})
    if "type" in old:  # the name before "rope_type"
        old["rope_type"] = old.pop("type")
    params = dict(raw.get("rope_parameters") or {})
    # A folder may carry both forms; a scaling in either one must not be lost to a "default".
    if params.get("rope_type", "default") == "default":
        params = {**params, **old}
    theta = params.pop("rope_theta", raw.get("rope_theta", 10000.0))
    kind = params.pop("rope_type", "default")
    if kind == "default":
        return float(theta), None
    needs = {"linear": ["factor"],
             "llama3": ["factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"]}
    if kind not in needs:
        raise ValueError(f"RoPE scaling rope_type={kind!r} is not supported; supported: default, linear, llama3")
    missing = [k for k in needs[kind] if not isinstance(params.get(k), (int, float))]
    if missing:
        raise ValueError(f"RoPE scaling {kind!r} needs the number(s) {missing} in rope_parameters")
    return float(theta), {"rope_type": kind, **{k: float(params[k]) for k in needs[kind]}}


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
    kvcache_block_size: int | None = None  # tokens per KV block; 256 on GPU (FP8: 128), 16 on CPU
    num_kvcache_blocks: int = -1  # -1: size the pool from memory
    cpu_kvcache_gib: float = 1.0  # the CPU pool's memory budget when num_kvcache_blocks is -1
    kv_cache_dtype: str = "auto"  # "auto" (the model's dtype) or "fp8" (e4m3, one scale per KV head and layer)
    device: str | None = None  # "cuda" if available, else "cpu"
    dtype: torch.dtype | str | None = None  # None or "auto": bf16 on GPU, float32 on CPU
    seed: int = 0  # the default generator for unseeded sampling
    load_format: str = "auto"  # "auto": the folder's safetensors; "dummy": random weights (benchmarks)
    # The host schedules and prepares step N+1 while the GPU runs step N (engine.step). None: on a
    # GPU with tensor_parallel_size 1 (+10% on nano-vllm's benchmark on an H200); off on a CPU,
    # where nothing runs in the background.
    async_scheduling: bool | None = None
    hf_config: ModelConfig = field(init=False)
    eos: tuple[int, ...] = field(init=False)
    dist_port: int = field(init=False, default=0)

    def __post_init__(self):
        self.model = str(self.model)
        if not Path(self.model).is_dir():
            raise FileNotFoundError(f"model folder {self.model} does not exist; pass a Hugging Face model folder")
        self._check_options()
        self.hf_config = ModelConfig.from_pretrained(self.model)
        self.eos = self.hf_config.eos_token_ids
        on_gpu = self.device == "cuda"
        if self.dtype is None:
            self.dtype = torch.bfloat16 if on_gpu else torch.float32
        if self.kvcache_block_size is None:
            # On a GPU an FP8 cache takes 128-key blocks: a decode tile (128 keys) is then a whole
            # block, its K and its V each one run of 16 KB (2.4% faster on nano-vllm's benchmark,
            # H100, measurements/large_batch_h100.json); bf16 runs the same with either.
            self.kvcache_block_size = (128 if self.kv_cache_dtype == "fp8" else 256) if on_gpu else 16
        tp = self.tensor_parallel_size
        hf = self.hf_config
        if hf.num_attention_heads % tp or hf.num_key_value_heads % tp:
            raise ValueError(
                f"tensor_parallel_size={tp} must divide the {hf.num_attention_heads} query heads and "
                f"{hf.num_key_value_heads} KV heads; pick a divisor"
            )
        if on_gpu and tp > torch.cuda.device_count():
            raise ValueError(f"tensor_parallel_size={tp} but only {torch.cuda.device_count()} GPUs are visible")
        self.max_model_len = min(self.max_model_len, hf.max_position_embeddings)
        if self.async_scheduling is None:
            self.async_scheduling = on_gpu and tp == 1
        elif not isinstance(self.async_scheduling, bool):
            raise ValueError(f"async_scheduling must be True, False or None, got {self.async_scheduling!r}")
        elif self.async_scheduling and tp > 1:
            raise ValueError("async_scheduling needs tensor_parallel_size=1 (the sampled tokens stay on rank 0's "
                             "GPU); set async_scheduling=False")

    def _check_options(self) -> None:
        """Every option's type and range, before anything is loaded; numpy scalars become Python
        numbers. README.md's engine section has the table of what is accepted and refused."""
        if self.device is None:
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = str(self.device)  # a torch.device too
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {self.device!r}; the engine uses GPUs "
                             "0 .. tensor_parallel_size-1, so pick others with CUDA_VISIBLE_DEVICES")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' but torch sees no GPU; use device='cpu'")
        if isinstance(self.dtype, str) and self.dtype != "auto":
            if self.dtype not in DTYPES:
                raise ValueError(f"dtype must be one of {sorted(DTYPES)} or a torch dtype, got {self.dtype!r}")
            self.dtype = DTYPES[self.dtype]
        elif self.dtype == "auto":
            self.dtype = None
        if self.dtype is not None and self.dtype not in DTYPES.values():
            raise ValueError(f"dtype must be torch.float32, torch.bfloat16 or torch.float16, got {self.dtype!r}")
        for name, minimum in (("max_num_batched_tokens", 1), ("max_num_seqs", 1), ("tensor_parallel_size", 1),
                              ("max_model_len", 2)):
            setattr(self, name, as_int(name, getattr(self, name), minimum))
        if self.kvcache_block_size is not None:
            self.kvcache_block_size = as_int("kvcache_block_size", self.kvcache_block_size, 1,
                                             fix="; None picks 256 on GPU, 16 on CPU")
        self.num_kvcache_blocks = as_int("num_kvcache_blocks", self.num_kvcache_blocks, 1, allowed=(-1,),
                                         fix="; -1 sizes the pool from memory")
        self.seed = as_int("seed", self.seed)
        self.cpu_kvcache_gib = as_real("cpu_kvcache_gib", self.cpu_kvcache_gib,
                                       "a number of GiB > 0 (the CPU KV pool's budget)", lambda g: g > 0)
        self.gpu_memory_utilization = as_real("gpu_memory_utilization", self.gpu_memory_utilization,
                                              "in (0, 1]", lambda u: 0 < u <= 1)
        self.enforce_eager = as_bool("enforce_eager", self.enforce_eager)
        if self.load_format not in ("auto", "dummy"):
            raise ValueError(f"load_format must be 'auto' or 'dummy', got {self.load_format!r}")
        if self.kv_cache_dtype not in ("auto", "fp8"):
            raise ValueError(f"kv_cache_dtype must be 'auto' or 'fp8', got {self.kv_cache_dtype!r}")
