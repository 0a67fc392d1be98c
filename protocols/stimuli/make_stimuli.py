"""Make the image sets the shipped protocols name (``stimuli = "stimuli/<set>"``): schematic faces,
simple scenes and still point-light figures, drawn with matplotlib, so that every shipped
protocol shows its stimuli on any installation. Run from the repository: ``make stimuli``.

Schematic (line-drawing) faces carry expression and gaze direction with a few strokes; they are an
established stimulus class for emotion and threat research (e.g. Öhman, Lundqvist & Esteves 2001,
"The face in the crowd revisited", J Pers Soc Psychol 80(3):381-396). They are a neutral, licence-
free starting point: a clinic that wants photographs (e.g. a licensed face database) puts its own
protocol, naming its own folder, in the user protocol folder (README, "Protocols").

Output is deterministic (fixed parameters, no randomness beyond a seeded generator), PNG 480×360.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Circle, Ellipse, Polygon, Rectangle  # noqa: E402

OUT = Path(__file__).resolve().parent
W, H, DPI = 6.0, 4.5, 80  # 480 × 360 px
BG = "#2b2b2b"  # the participant view's dark background
SKIN = ("#e8c4a0", "#c99a72", "#8d5f3f", "#f1d3b8")


def _canvas(bg=BG):
    fig = plt.figure(figsize=(W, H), dpi=DPI)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-4 / 3, 4 / 3)
    ax.set_ylim(-1, 1)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.patch.set_facecolor(bg)
    return fig, ax


def _save(fig, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, facecolor=fig.get_facecolor())
    plt.close(fig)


def face(ax, x=0.0, y=0.0, s=1.0, mouth=0.0, brows=0.0, gaze=(0.0, 0.0), eyes_open=1.0, skin=SKIN[0],
         squeeze=0.0):
    """One schematic face. ``mouth`` −1 (down-turned) … +1 (smile); ``brows`` −1 (frown, inner ends
    down: anger) … +1 (raised: surprise/joy) and ``squeeze`` > 0 lifts the inner ends (sadness, pain);
    ``gaze`` moves the pupils (−1…1 each way: ±1 in x is averted); ``eyes_open`` 0 (shut) … 1."""
    lw = 3.0 * s
    ax.add_patch(Ellipse((x, y), 1.15 * s, 1.45 * s, facecolor=skin, edgecolor="#222", lw=lw))
    for side in (-1, 1):
        ex, ey = x + side * 0.22 * s, y + 0.15 * s
        ax.add_patch(Ellipse((ex, ey), 0.2 * s, 0.13 * s * max(eyes_open, 0.08), facecolor="white",
                             edgecolor="#222", lw=lw * 0.6))
        if eyes_open > 0.2:
            ax.add_patch(Circle((ex + 0.055 * s * gaze[0], ey + 0.03 * s * gaze[1]), 0.04 * s, color="#222"))
        inner, outer = ex - side * 0.1 * s, ex + side * 0.1 * s
        base = ey + 0.14 * s + 0.05 * s * max(brows, 0)
        ax.plot([inner, outer], [base + 0.07 * s * min(brows, 0) + 0.06 * s * squeeze,
                                 base - 0.02 * s * min(brows, 0)], color="#222", lw=lw * 1.2,
                solid_capstyle="round")
    ax.plot([x, x - 0.04 * s, x + 0.03 * s], [y + 0.08 * s, y - 0.12 * s, y - 0.13 * s], color="#222", lw=lw * 0.6)
    mx = np.linspace(-0.2, 0.2, 30) * s
    ax.plot(x + mx, y - 0.35 * s - mouth * 0.12 * s * (1 - (mx / (0.2 * s)) ** 2), color="#222", lw=lw,
            solid_capstyle="round")


EXPRESSIONS = {  # (mouth, brows, squeeze, eyes_open)
    "neutral": (0.0, 0.0, 0.0, 1.0), "happy": (0.9, 0.3, 0.0, 0.9), "sad": (-0.7, 0.0, 1.0, 0.7),
    "angry": (-0.5, -1.0, 0.0, 0.9), "pain": (-0.4, -0.4, 1.0, 0.15), "surprise": (0.1, 1.0, 0.0, 1.3),
}


def face_set(name, expressions, gazes=((0.0, 0.0),), n=4):
    for i in range(n):
        fig, ax = _canvas()
        mouth, brows, squeeze, eyes = EXPRESSIONS[expressions[i % len(expressions)]]
        face(ax, mouth=mouth, brows=brows, squeeze=squeeze, eyes_open=eyes, gaze=gazes[i % len(gazes)],
             skin=SKIN[i % len(SKIN)])
        _save(fig, OUT / name / f"{name}-{i + 1}.png")


def social_gentle(n=4):
    """Two faces side by side in calm, friendly contact with each other (not with the viewer)."""
    for i in range(n):
        fig, ax = _canvas("#33404a")
        expr = ("neutral", "happy")[i % 2]
        mouth, brows, squeeze, eyes = EXPRESSIONS[expr]
        for x, look, skin in ((-0.55, 1.0, SKIN[i % 4]), (0.55, -1.0, SKIN[(i + 2) % 4])):  # at each other
            face(ax, x, 0.0, 0.7, mouth=mouth * 0.6, brows=brows, squeeze=squeeze, gaze=(look, 0.0),
                 eyes_open=eyes, skin=skin)
        _save(fig, OUT / "social-gentle" / f"social-gentle-{i + 1}.png")


def calm_scenes(n=4):
    """Sky, hills and water in soft colours: a low-arousal rest picture."""
    rng = np.random.default_rng(3)
    skies = (("#8fb8d8", "#dfeaf2"), ("#e9c9a6", "#f6e7d3"), ("#9fc5b8", "#e2efe9"), ("#b9b3d6", "#ebe8f5"))
    for i in range(n):
        top, low = skies[i % len(skies)]
        fig, ax = _canvas(low)
        grad = np.linspace(0, 1, 256)[:, None]
        cmap = matplotlib.colors.LinearSegmentedColormap.from_list("sky", [low, top])
        ax.imshow(grad, extent=(-4 / 3, 4 / 3, -1, 1), origin="lower", cmap=cmap, aspect="auto")
        ax.add_patch(Circle((0.7 - 0.4 * i, 0.55), 0.13, color="#fff6d5", alpha=0.9))
        xs = np.linspace(-4 / 3, 4 / 3, 200)
        for k, (col, h0) in enumerate((("#7d9c86", -0.05), ("#5f806a", -0.25))):
            ph, amp = rng.uniform(0, 2 * np.pi), 0.08 + 0.04 * k
            ys = h0 + amp * np.sin(2.2 * xs + ph) + 0.03 * np.sin(5.1 * xs + 2 * ph)
            ax.add_patch(Polygon(np.c_[np.r_[xs, xs[::-1]], np.r_[ys, np.full_like(ys, -1)]], color=col))
        ax.add_patch(Rectangle((-4 / 3, -1), 8 / 3, 0.45, color="#6f98b5", alpha=0.85))
        _save(fig, OUT / "calm-scenes" / f"calm-scenes-{i + 1}.png")


def static_figures():
    """Still frames of the built-in point-light figures: the static control for action observation
    (a body is seen, nothing moves)."""
    sys.path.insert(0, str(OUT.parent.parent))
    from neurofeed.ui.stimuli import PointLightHands, PointLightWalker

    frames = [(PointLightHands(), 0.5, 0), (PointLightHands(), 1.3, 1), (PointLightWalker(), 0.2, 0),
              (PointLightWalker(), 0.7, 1)]
    for i, (model, t, trial) in enumerate(frames):
        fig, ax = _canvas("black")
        p = model.positions(t, trial)
        ax.scatter(p[:, 0], p[:, 1], s=60, color="white")
        _save(fig, OUT / "static" / f"static-{i + 1}.png")


def main():
    face_set("faces-neutral", ["neutral"])
    face_set("faces-negative", ["sad", "angry"])
    face_set("faces-positive", ["happy"])
    face_set("faces-direct", ["neutral"], gazes=((0.0, 0.0),))
    face_set("faces-averted", ["neutral"], gazes=((1.0, 0.0), (-1.0, 0.0), (1.0, -0.5), (-1.0, 0.5)))
    face_set("emotions-joy", ["happy", "surprise"])
    face_set("emotions-pain", ["pain"])
    face_set("emotions-mixed", ["happy", "pain", "sad", "surprise"])
    face_set("threat-mild", ["angry"])
    social_gentle()
    calm_scenes()
    static_figures()


if __name__ == "__main__":
    main()
