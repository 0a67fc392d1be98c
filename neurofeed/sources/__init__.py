"""Data sources: each hands the pipeline :class:`~neurofeed.chunk.Chunk` objects."""

from .base import Source

__all__ = ["Source"]
