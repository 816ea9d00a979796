"""Chapter 8 exercises. Replace each `raise NotImplementedError(...)` with your code, then run

    pytest chapters/08

Each test puts your function into the chapter's real layers (ch08.linear, ch08.embed_head), runs
them as 2, 3 or 4 ranks (threads of one process that add up their tensors as an all-reduce
would) against the unsplit layer, then builds the whole tiny model split over ranks and compares
its logits with transformers'. The notebook notebooks/08_tensor_parallel.ipynb walks through every
piece, with hints; chapters/08/solutions.py is the answer key, so try before you peek.
"""

# What the layer exercises (8.1-8.4) work with; `self` is the layer:
#   self.tp_rank, self.tp_size      this rank's number (0 .. tp_size - 1) and the number of ranks
#   self.weight, self.bias          this rank's shard (the bias may be None); shapes as built
#   param                           the parameter being loaded (self.weight or self.bias)
#   loaded                          the checkpoint's whole tensor for it, as in the unsplit model
#   ch08.comm.all_reduce(y)         adds up y across the ranks, in place (every rank gets the sum)
#   self.vocab_start_idx, self.vocab_end_idx    (8.4) the token ids whose rows this rank holds


def column_parallel_weight_loader(self, param, loaded) -> None:
    """ch08.linear.ColumnParallelLinear.weight_loader: the layer computes this rank's slice of
    the outputs, the same size on every rank. Copy into `param` the part of `loaded` (the
    checkpoint's weight, or its bias) that this rank needs."""
    raise NotImplementedError(
        "Exercise 8.1: the column-parallel loader — keep the part of the checkpoint's weight and bias "
        "that produces the outputs rank r computes; see notebooks/08_tensor_parallel.ipynb, "
        "section 'Splitting by columns'"
    )


def row_parallel_weight_loader(self, param, loaded) -> None:
    """ch08.linear.RowParallelLinear.weight_loader: the layer receives this rank's slice of the
    inputs and computes its contribution to the whole output. Copy into `param` the part of
    `loaded` (the checkpoint's weight, or its bias) that this rank needs."""
    raise NotImplementedError(
        "Exercise 8.2: the row-parallel loader — keep the part of the weight that meets rank r's inputs, "
        "and decide what the bias needs; see notebooks/08_tensor_parallel.ipynb, section 'Splitting by rows'"
    )


def row_parallel_forward(self, x):
    """ch08.linear.RowParallelLinear.forward: x (T, in_features / tp_size) is this rank's slice
    of the inputs; return (T, out_features), the layer's whole output x_full·Wᵀ + b, the same
    on every rank. With one rank there is nobody to talk to."""
    raise NotImplementedError(
        "Exercise 8.3: the row-parallel forward — this rank's partial result, then the communication "
        "that completes it (and the bias, counted once); see notebooks/08_tensor_parallel.ipynb, "
        "section 'Splitting by rows'"
    )


def vocab_parallel_embedding_forward(self, x):
    """ch08.embed_head.VocabParallelEmbedding.forward: token ids x (T,) -> (T, D), every token's
    embedding, the same on every rank. This rank's self.weight holds the rows of the token ids
    self.vocab_start_idx .. self.vocab_end_idx - 1 (row 0 is token vocab_start_idx); any token id
    of the vocabulary may come."""
    raise NotImplementedError(
        "Exercise 8.4: the vocab-parallel lookup — look up the ids this rank holds, contribute nothing "
        "for the others, and combine the ranks; see notebooks/08_tensor_parallel.ipynb, section "
        "'The embedding and the LM head'"
    )


def allreduce_bytes_per_token(config, tensor_parallel_size: int, dtype_bytes: int = 2) -> float:
    """The bytes one rank sends, per token, in all the all-reduces of one forward pass through
    the model split over `tensor_parallel_size` ranks. `config` is a ch01.ModelConfig
    (hidden_size, num_hidden_layers, ...); the all-reduced tensors hold `dtype_bytes`-byte
    numbers, and each all-reduce is a ring all-reduce (ch08.comm says what one costs). The LM
    head's gather is not counted."""
    raise NotImplementedError(
        "Exercise 8.5: all-reduce traffic per token — count the all-reduces of a forward pass, the "
        "bytes of each per token, and what a ring sends of them; see notebooks/08_tensor_parallel.ipynb, "
        "section 'What it costs'"
    )
