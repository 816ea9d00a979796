"""Where things live: the repository root and the default model folder."""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = REPO_ROOT / "models" / "smollm2-135m-instruct"


def default_model_path() -> Path:
    """The model folder to use: $NANOVLLM_MODEL if set, else the SmolLM2 folder `make demo` writes.

    Raises FileNotFoundError with the fix when the folder is missing, so a notebook or a command
    line fails with one readable line instead of a stack of transformers internals.
    """
    path = Path(os.environ.get("NANOVLLM_MODEL", DEFAULT_MODEL_DIR)).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"no model folder at {path} (config.json missing); run `make model` "
            "(or `make demo`) to fetch SmolLM2-135M-Instruct, or set NANOVLLM_MODEL to a "
            "Hugging Face model folder"
        )
    return path
