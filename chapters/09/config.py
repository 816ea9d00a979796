"""Chapter 8's Config, and whether decode steps may replay CUDA graphs."""

from dataclasses import dataclass

from ch08 import config


@dataclass
class Config(config.Config):
    enforce_eager: bool = False  # True: no CUDA graphs, every step launches its kernels one by one
