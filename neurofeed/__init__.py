"""neurofeed: real-time EEG mu-rhythm neurofeedback.

A research tool, not a medical device.
"""

__version__ = "0.1.0"
