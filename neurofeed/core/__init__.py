"""The base every room stands on: chunks, events, the feedback state and record, channels, errors,
the ring buffer and the protocol/config library. Imports nothing else of neurofeed.
"""
