"""neurofeed: real-time EEG mu-rhythm neurofeedback.

A research tool, not a medical device.
"""

import os as _os

__version__ = "0.1.0"

# liblsl prints INFO lines on stderr whenever an outlet starts; keep its log to warnings unless the
# user configured liblsl (LSLAPICFG) themselves. Read by liblsl when pylsl is first imported.
_os.environ.setdefault("LSLAPICFG", _os.path.join(_os.path.dirname(__file__), "lsl_api.cfg"))
