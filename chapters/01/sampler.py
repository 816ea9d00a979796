"""Turn the last position's logits into one token id."""

import torch


def sample(logits: torch.Tensor, temperature: float, generator: torch.Generator | None = None) -> int:
    """logits: (vocab_size,). Temperature 0 is argmax, not a tiny temperature: dividing by 0 is
    undefined, and greedy is what a user asking for 0 means."""
    if temperature == 0:
        return int(logits.argmax())
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))
