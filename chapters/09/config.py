"""Chapter 5's Config, and whether decode steps may replay CUDA graphs."""

from dataclasses import dataclass

from ch05 import config


@dataclass
class Config(config.Config):
    enforce_eager: bool = False  # True: no CUDA graphs, every step launches its kernels one by one
