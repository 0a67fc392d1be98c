"""Data sources: each hands the pipeline :class:`~neurofeed.core.chunk.Chunk` objects."""

from .base import Source

__all__ = ["Source"]
