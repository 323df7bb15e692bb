"""Is this picture a SynthTalk-like portrait, or a photo the bundled model has never seen?

A calibrated probability from a logistic regression on four image statistics that tell a
flat-shaded ray-cast render from a camera's picture (computed on a 64² area-resized copy and a
≤ 256 px copy):

* ``flat``: share of 64² pixels whose 3×3 neighbourhood hardly varies (renders: large flat areas);
* ``noise``: median absolute Laplacian of the ≤ 256 px copy (sensor noise, texture, JPEG);
* ``colours``: distinct 4-bit-per-channel colours in the 64² copy (renders: few);
* ``backdrop``: spread *along* the top rows (a SynthTalk backdrop is a vertical gradient).

The weights live in ``avatar_domain.json`` beside this file, fitted by
``scripts/fit_avatar_domain.py`` (which also writes the held-out accuracy to docs/avatar.md).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

WEIGHTS = Path(__file__).with_name("avatar_domain.json")
FEATURES = ("flat", "noise", "colours", "backdrop")
THRESHOLD = 0.5  # in-domain when the probability is at least this


def features(image: Image.Image) -> np.ndarray:
    """The four statistics (log-scaled) of an RGB image: ``[4]``."""
    small = np.asarray(image.resize((64, 64), Image.Resampling.BOX), np.float64) / 255.0  # [64, 64, 3]
    side = min(256, max(image.size))
    medium = np.asarray(image.resize((side, side), Image.Resampling.BOX), np.float64).mean(-1) / 255.0
    gray = small.mean(-1)
    windows = np.lib.stride_tricks.sliding_window_view(gray, (3, 3)).reshape(62, 62, 9)
    flat = float((windows.std(-1) < 1.5 / 255).mean())
    laplacian = 4 * medium[1:-1, 1:-1] - medium[:-2, 1:-1] - medium[2:, 1:-1] - medium[1:-1, :-2] - medium[1:-1, 2:]
    noise = float(np.median(np.abs(laplacian)))
    colours = len(np.unique((small * 15.99).astype(np.int32) @ np.array([256, 16, 1]))) / 4096
    backdrop = float(small[:6, :12].std(1).mean() + small[:6, -12:].std(1).mean()) / 2
    return np.log(np.array([flat, noise, colours, backdrop]) + 1e-4)


@lru_cache(maxsize=1)
def _weights() -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(mean, scale, coefficients, intercept) of the standardised logistic regression."""
    data = json.loads(WEIGHTS.read_text())
    return np.array(data["mean"]), np.array(data["scale"]), np.array(data["coef"]), float(data["intercept"])


def domain_score(image: Image.Image) -> float:
    """Probability that ``image`` is a SynthTalk-like portrait (1) rather than an out-of-domain photo (0)."""
    return float(probabilities(features(image)[None])[0])


def probabilities(feature_rows: np.ndarray) -> np.ndarray:
    mean, scale, coef, intercept = _weights()
    z = ((feature_rows - mean) / scale) @ coef + intercept
    return 1.0 / (1.0 + np.exp(-z))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, iterations: int = 50) -> dict:
    """Newton's method on the L2-regularised log-loss of standardised ``x`` ``[N, F]``, labels ``y`` ``[N]``."""
    mean, scale = x.mean(0), x.std(0) + 1e-9
    z = np.concatenate([(x - mean) / scale, np.ones((len(x), 1))], 1)
    w = np.zeros(z.shape[1])
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-z @ w))
        grad = z.T @ (p - y) / len(y) + l2 * np.r_[w[:-1], 0]
        hess = (z * (p * (1 - p))[:, None]).T @ z / len(y) + l2 * np.diag(np.r_[np.ones(len(w) - 1), 0])
        w -= np.linalg.solve(hess, grad)
    return {
        "features": list(FEATURES),
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "coef": w[:-1].tolist(),
        "intercept": float(w[-1]),
    }
