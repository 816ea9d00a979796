"""Tiny random models, saved as real Hugging Face model folders.

Tests and notebooks use them where speed matters: a few layers, hidden size 64, built with
transformers' own config and model classes, so that `transformers` is the reference our code is
compared against. Each folder has config.json, model.safetensors, a small byte-level BPE tokenizer
with a chat template, and generation_config.json: exactly what a downloaded model folder holds.

    from course.tiny import make_tiny_model
    path = make_tiny_model("/tmp/tiny-qwen3", "qwen3")
"""

from pathlib import Path

import torch

# Each family differs where the real ones do: Qwen3 normalizes q and k per head (QK-norm),
# Qwen2 has biases on q/k/v, Llama has neither. All use grouped-query attention (4 query heads
# share 2 K/V heads) unless a caller overrides it.
FAMILIES = {
    "qwen3": dict(tie_word_embeddings=True),
    "qwen2": dict(tie_word_embeddings=False),
    "llama": dict(tie_word_embeddings=True),
}

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "The capital of France is Paris. The capital of Italy is Rome.",
    "A key-value cache stores the keys and values of past tokens so they are computed once.",
    "Paged attention splits the cache into blocks, like pages of virtual memory.",
    "The scheduler admits waiting sequences when free blocks allow it.",
    "Once upon a time, a small language model learned to count: one, two, three, four, five.",
]


def make_tokenizer(vocab_size: int = 300):
    """A byte-level BPE tokenizer trained in a blink on a few sentences."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
    )


def make_config(family: str, vocab_size: int, eos_token_id: int, **overrides):
    from transformers import LlamaConfig, Qwen2Config, Qwen3Config

    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {sorted(FAMILIES)}")
    cls = {"qwen3": Qwen3Config, "qwen2": Qwen2Config, "llama": LlamaConfig}[family]
    kwargs = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=1024,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        bos_token_id=eos_token_id - 1,
        eos_token_id=eos_token_id,
        pad_token_id=0,
        **FAMILIES[family],
    )
    if family == "qwen2":
        kwargs["use_sliding_window"] = False
    kwargs.update(overrides)
    return cls(**kwargs)


@torch.no_grad()
def randomize_(model, seed: int, std: float = 0.15) -> None:
    """Re-draw every weight, norms included (1 + noise), so that a bug in any piece shows up
    in the logits and the greedy tokens are decided by clear margins rather than by noise."""
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
        if "norm" in name:
            p.copy_(1.0 + 0.2 * noise)
        elif name.endswith("bias"):
            p.copy_(0.1 * noise)
        else:
            p.copy_(std * noise)


def make_tiny_model(path, family: str = "qwen3", seed: int = 0, **overrides) -> Path:
    """Build a random `family` model and save it as a model folder at `path`; returns the path."""
    from transformers import AutoModelForCausalLM, GenerationConfig

    path = Path(path)
    tokenizer = make_tokenizer()
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config = make_config(family, vocab_size=len(tokenizer) + 20, eos_token_id=eos, **overrides)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    randomize_(model, seed)
    if config.tie_word_embeddings:
        model.tie_weights()
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    GenerationConfig(bos_token_id=config.bos_token_id, eos_token_id=eos, pad_token_id=0).save_pretrained(path)
    return path


def load_reference(path):
    """transformers' own model for a folder, in float32 and eval mode: the reference."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
