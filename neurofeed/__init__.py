"""neurofeed: real-time EEG mu-rhythm neurofeedback.

A research tool, not a medical device.
"""

import os as _os

__version__ = "0.1.0"



def _lsl_config_found() -> bool:
    """True when liblsl will read a configuration of the user's or the lab's: ``$LSLAPICFG``, or
    ``lsl_api.cfg`` in the working folder, ``~/lsl_api/`` or ``/etc/lsl_api/`` (liblsl's own order)."""
    if _os.environ.get("LSLAPICFG"):
        return True
    places = ("lsl_api.cfg", _os.path.join(_os.path.expanduser("~"), "lsl_api", "lsl_api.cfg"),
              _os.path.join(_os.sep, "etc", "lsl_api", "lsl_api.cfg"))
    return any(_os.path.isfile(p) for p in places)


# liblsl prints INFO lines on stderr whenever an outlet starts. liblsl reads only the first config
# file it finds, so neurofeed's quiet one (log warnings and errors only) is used only where there is
# none of the user's or the lab's: their KnownPeers, SessionID and ResolveScope always win. Read by
# liblsl when pylsl is first imported.
if not _lsl_config_found():
    _os.environ["LSLAPICFG"] = _os.path.join(_os.path.dirname(__file__), "hardware", "lsl_api.cfg")
