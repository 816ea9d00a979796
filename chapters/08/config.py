"""Chapter 5's Config plus the number of ranks the model is split over.

    LLM(model, tensor_parallel_size=3)   # SmolLM2: 9 query heads and 3 K/V heads, 3 ranks of 3 and 1

Every rank computes whole heads and whole MLP features, so the size must divide the query
heads, the K/V heads and the MLP's hidden size; any other size is refused with the ones that work.
"""

import math
import socket
from dataclasses import dataclass

from ch05 import config


@dataclass
class Config(config.Config):
    tensor_parallel_size: int = 1  # processes (GPUs), one shard of every weight each
    dist_port: int = 0  # TCP port the ranks meet on, on this machine; 0: a free one

    def __post_init__(self):
        super().__post_init__()
        hf, n = self.hf_config, self.tensor_parallel_size
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"tensor_parallel_size must be an int >= 1, got {n!r}")
        splits = {"num_attention_heads": hf.num_attention_heads, "num_key_value_heads": hf.num_key_value_heads,
                  "intermediate_size": hf.intermediate_size}
        cannot = [f"{name}={value}" for name, value in splits.items() if value % n]
        if cannot:
            common = math.gcd(*splits.values())
            sizes = [d for d in range(1, common + 1) if common % d == 0]
            raise ValueError(
                f"tensor_parallel_size={n} does not divide this model's {', '.join(cannot)}: each rank computes whole "
                f"heads and whole MLP features; the sizes that work for this model are {', '.join(map(str, sizes))}"
            )
        if n > 1 and not self.dist_port:
            with socket.socket() as s:  # a port nobody listens on now; rank 0 listens on it next
                s.bind(("127.0.0.1", 0))
                self.dist_port = s.getsockname()[1]
