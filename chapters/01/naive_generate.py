"""Naive generation: run the whole sequence through the model for every new token.

    tokens = prompt
    repeat: logits = model(tokens)[-1]; next = sample(logits); tokens.append(next)

Step t recomputes all t tokens, so the work of one step grows with the length and the total
work with its square. Chapter 2 keeps the keys and values of past tokens and makes each step
cost one token.
"""

from ch01.solutions import generate  # noqa: F401 (exercise 1.4: the answer key)
