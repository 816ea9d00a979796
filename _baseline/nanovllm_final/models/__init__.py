"""The model classes, by the architecture name a config.json gives.

Qwen2 and Llama are Qwen3's decoder with its two switches set from the config (see qwen3.py).
"""

from nanovllm_final.models.qwen3 import Qwen3ForCausalLM

MODEL_CLASSES = {
    "Qwen3ForCausalLM": Qwen3ForCausalLM,
    "Qwen2ForCausalLM": Qwen3ForCausalLM,
    "LlamaForCausalLM": Qwen3ForCausalLM,
}
