"""Can Qt open windows here? Checked before the QApplication exists.

Qt aborts the whole process (SIGABRT, exit 134) when its platform plugin cannot load, e.g. the
xcb plugin on a desktop without ``libxcb-cursor0``. So the check runs a tiny QGuiApplication in a
subprocess first; if it fails, :func:`qt_platform_problem` returns one line naming the missing
system packages and the apt command (``neurofeed session`` prints it and runs the terminal view).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# Debian/Ubuntu packages of the libraries Qt 6's xcb plugin loads (the README lists them too)
XCB_PACKAGES = ("libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1", "libxcb-image0", "libxcb-render-util0",
                "libxcb-randr0", "libxcb-shape0", "libxcb-xfixes0", "libxcb-xkb1", "libxkbcommon-x11-0",
                "libegl1", "libgl1")
_NO_CHECK = ("offscreen", "minimal", "vnc")  # platforms that need no display server
_PROBE = ("import sys\nfrom PySide6.QtGui import QGuiApplication\n"
          "app = QGuiApplication(sys.argv[:1])\nprint(app.platformName())\n")


def default_platform() -> str:
    """The platform Qt will pick: ``QT_QPA_PLATFORM``, else wayland/xcb/the OS's own."""
    env = os.environ.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if env:
        return env
    if sys.platform.startswith("linux"):
        if os.environ.get("WAYLAND_DISPLAY") and os.environ.get("XDG_SESSION_TYPE") == "wayland":
            return "wayland"
        return "xcb"
    return {"darwin": "cocoa", "win32": "windows"}.get(sys.platform, "")


def package_for(soname: str) -> str:
    """Debian package name of a shared library: ``libxcb-icccm.so.4`` -> ``libxcb-icccm4``,
    ``libxkbcommon-x11.so.0`` -> ``libxkbcommon-x11-0`` (Debian's naming rule for sonames)."""
    m = re.match(r"(lib[\w+.-]*?)\.so\.(\d+)", soname)
    if not m:
        return soname
    stem, major = m.groups()
    return f"{stem}-{major}" if stem[-1].isdigit() else f"{stem}{major}"


def plugin_file(platform: str) -> Path | None:
    """The platform plugin Qt would load (``QT_QPA_PLATFORM_PLUGIN_PATH`` or PySide6's own)."""
    folders = []
    if os.environ.get("QT_QPA_PLATFORM_PLUGIN_PATH"):
        folders.append(Path(os.environ["QT_QPA_PLATFORM_PLUGIN_PATH"]))
    try:
        import PySide6

        folders.append(Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms")
    except ImportError:
        pass
    for f in folders:
        hits = sorted(f.glob(f"libq{platform}.so")) + sorted(f.glob(f"libq{platform}*.so"))
        if hits:
            return hits[0]
    return None


def missing_libraries(path: Path) -> list[str]:
    """Shared libraries ``path`` needs that the dynamic linker cannot find (``ldd``; [] if unknown)."""
    ldd = shutil.which("ldd")
    if not ldd or not path:
        return []
    try:
        out = subprocess.run([ldd, str(path)], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted({m.group(1) for m in re.finditer(r"^\s*(\S+)\s+=>\s+not found", out, re.M)})


def qt_platform_problem(platform: str | None = None, timeout_s: float = 30.0) -> str | None:
    """None when Qt can start with ``platform`` here; otherwise one line saying why and what to install.

    A QGuiApplication is created in a subprocess (a failing plugin aborts its process, not ours);
    the libraries that are missing come from the probe's own messages and from ``ldd`` on the plugin.
    """
    platform = platform or default_platform()
    if platform in _NO_CHECK or not sys.platform.startswith("linux"):
        return None
    env = dict(os.environ, QT_QPA_PLATFORM=platform, QT_DEBUG_PLUGINS="1")
    try:
        r = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return f"the Qt '{platform}' platform did not start within {timeout_s:.0f} s."
    if r.returncode == 0:
        return None
    err = r.stderr
    libs = set(re.findall(r"(lib[\w+.-]+\.so\.\d+): cannot open shared object file", err))
    libs.update(missing_libraries(plugin_file(platform)))
    # (Qt's own hint "xcb-cursor0 or libxcb-cursor0 is needed" is printed on any xcb failure,
    # also a missing display, so only the loader's messages and ldd decide what is missing)
    pkgs = sorted({package_for(s) for s in libs})
    if pkgs:
        return (f"the Qt '{platform}' platform plugin cannot load: missing {', '.join(pkgs)}; "
                f"install with `sudo apt-get install {' '.join(pkgs)}`.")
    if "could not connect to display" in err:
        return (f"the Qt '{platform}' platform cannot connect to the X display "
                f"(DISPLAY={os.environ.get('DISPLAY', '')!r}).")
    why = next((ln.strip() for ln in err.splitlines()
                if "could not connect to display" in ln or "Could not load the Qt platform plugin" in ln
                or "Could not find the Qt platform plugin" in ln), "")
    why = why or (err.strip().splitlines() or [f"exit {r.returncode}"])[-1][:160]
    return (f"the Qt '{platform}' platform cannot start ({why}); if libraries are missing: "
            f"`sudo apt-get install {' '.join(XCB_PACKAGES)}`.")
