"""The real SmolLM2-135M-Instruct (skipped when `make model` has not fetched it)."""

import pytest

from course.paths import DEFAULT_MODEL_DIR
from nanovllm_final import LLM, SamplingParams

pytestmark = [pytest.mark.model, pytest.mark.skipif(not (DEFAULT_MODEL_DIR / "config.json").is_file(),
                                                    reason="SmolLM2 not fetched; run `make model`")]


def test_capital_of_france_is_paris():
    with LLM(DEFAULT_MODEL_DIR, device="cpu", max_model_len=512) as llm:
        [out] = llm.chat([{"role": "user", "content": "What is the capital of France?"}],
                         SamplingParams(temperature=0, max_tokens=32), use_tqdm=False)
    assert "Paris" in out["text"], out["text"]
    assert out["finish_reason"] == "stop"
