"""ModelConfig: the numbers of a model, read from its config.json.

One small dataclass instead of transformers' config classes, so that every field the engine uses
is visible here. Three families are supported, and they differ only in two switches:

    Qwen3  qk_norm=True   (an RMSNorm over each head of q and k before the rotary embedding)
    Qwen2  attention_bias=True   (q, k and v projections carry a bias)
    Llama  neither        (SmolLM2 is a Llama)
"""

import json
from dataclasses import dataclass
from pathlib import Path

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
        path = Path(model_path) / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; point model_path at a Hugging Face model folder")
        raw = json.loads(path.read_text())
        return cls.from_dict(raw, generation_config=_read_generation_config(Path(model_path)))

    @classmethod
    def from_dict(cls, raw: dict, generation_config: dict | None = None) -> "ModelConfig":
        arch = (raw.get("architectures") or ["<none>"])[0]
        if arch not in SUPPORTED_ARCHITECTURES:
            raise ValueError(
                f"architecture {arch!r} is not supported; supported: {', '.join(SUPPORTED_ARCHITECTURES)}"
            )
        if (raw.get("rope_scaling") or {}).get("rope_type", "default") not in ("default", None):
            raise ValueError(f"rope_scaling {raw['rope_scaling']} is not supported; only plain RoPE is")
        rope = raw.get("rope_parameters") or {}
        heads = raw["num_attention_heads"]
        eos = [raw.get("eos_token_id")]
        if generation_config:
            eos.append(generation_config.get("eos_token_id"))
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

    @property
    def kv_bytes_per_token(self) -> int:
        """K and V, every layer, at 2 bytes a number (bf16): the cost chapter 2 pays to save work."""
        return 2 * self.num_hidden_layers * self.num_key_value_heads * self.head_dim * 2


def _read_generation_config(folder: Path) -> dict:
    path = folder / "generation_config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _flatten(values):
    for v in values:
        if isinstance(v, (list, tuple)):
            yield from _flatten(v)
        elif v is not None:
            yield int(v)
