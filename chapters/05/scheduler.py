"""Scheduler with chunked prefill: every step mixes decodes and pieces of prompts under one budget.

Chapter 4's steps were either all prefill or all decode. A step of decodes alone reads every
weight for one token per sequence and leaves the arithmetic idle; a step holding a long prompt
makes every running sequence wait for it. Here each step fills a budget of
`max_num_batched_tokens` tokens in this order:

    1. decodes     every running sequence whose prompt is done computes its newest token (one
                   token each), oldest first; preemption as in chapter 4 when a block is missing
    2. running     prompts part-way through continue, oldest first
       prefills
    3. waiting     then prompts from the queue, first come first served, while blocks and
       prompts     max_num_seqs allow

A prompt takes min(what it has left, what the budget has left) tokens: a **chunk**. What does not
fit continues next step, after that step's decodes. So no running sequence ever skips a step,
and a long prompt costs every step only as much time as the budget allows.
"""

from ch04 import scheduler
from ch05 import solutions


class Scheduler(scheduler.Scheduler):
    # The reference of the chapter's exercises is in solutions.py, its answer key (read it after them).
    schedule = solutions.schedule  # exercise 5.2 (solutions.py)
