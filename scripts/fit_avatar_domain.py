"""Fit the avatar domain score (``starcaster/avatar_domain.json``) and report held-out accuracy.

    OMP_NUM_THREADS=1 python scripts/fit_avatar_domain.py [--out docs/results/avatar/domain.json]

In-domain (label 1): SynthTalk reference portraits at 64/128/256 px, some re-saved as JPEG
(quality 75–95) — what a visitor who downloads an example and uploads it again sends.
Out-of-domain (label 0): "photo-like" SynthTalk renders (a textured backdrop, sensor noise, blur,
JPEG 40–80), scikit-image's LFW face crops, and real photos shipped in registry packages.
Training uses train-split identities, LFW crops 0–49 and non-face photos; the test uses
test-split identities, LFW crops 50–99 and every real face photo (never seen in training).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from starcaster import avatar_domain  # noqa: E402
from starcaster.avatar_photos import non_face_photos, real_face_photos  # noqa: E402
from starcaster.data.heads import sample_head  # noqa: E402
from starcaster.data.render import RenderConfig, render_reference  # noqa: E402


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def synth(seed: int, rng: np.random.Generator) -> Image.Image:
    size = int(rng.choice([64, 128, 256]))
    image = Image.fromarray(render_reference(sample_head(seed), RenderConfig(size=size)))
    return jpeg(image, int(rng.integers(75, 96))) if rng.random() < 0.5 else image


def photo_like(seed: int, rng: np.random.Generator, textures: list[np.ndarray]) -> Image.Image:
    """A SynthTalk render made to look photographed: textured backdrop, noise, blur, JPEG."""
    from starcaster.data.render import render_parts
    from starcaster.data.state import FrameState

    head, config = sample_head(seed), RenderConfig(size=128)
    pixels = render_reference(head, config).astype(np.float64)
    background = render_parts(head, FrameState.neutral(1), config)[0] < 0
    texture = textures[int(rng.integers(len(textures)))]
    y, x = rng.integers(0, texture.shape[0] - 128), rng.integers(0, texture.shape[1] - 128)
    pixels[background] = texture[y : y + 128, x : x + 128][background]
    pixels += rng.normal(0, rng.uniform(3, 12), pixels.shape)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    return jpeg(image, int(rng.integers(40, 81)))


def lfw(indices: range) -> list[Image.Image]:
    from skimage import data

    faces = data.lfw_subset()[: max(indices) + 1]  # the first 100 are faces, 25×25 grey in [0, 1]
    return [Image.fromarray((faces[i] * 255).astype(np.uint8)).convert("RGB").resize((128, 128)) for i in indices]


def dataset(split: str, rng: np.random.Generator) -> tuple[list, list, list]:
    textures = [np.asarray(p.convert("RGB").resize((256, 256)), np.float64) for p in non_face_photos().values()]
    base = 0 if split == "train" else 2_000_000
    images, labels, groups = [], [], []
    for i in range(150):
        images += [synth(base + i, rng), photo_like(base + 500 + i, rng, textures)]
        labels += [1, 0]
        groups += ["SynthTalk portraits", "photo-like SynthTalk renders"]
    faces = lfw(range(0, 50) if split == "train" else range(50, 100))
    images += faces
    labels += [0] * len(faces)
    groups += ["LFW face crops (scikit-image)"] * len(faces)
    extra = non_face_photos() if split == "train" else real_face_photos()
    images += list(extra.values())
    labels += [0] * len(extra)
    groups += ["other photos" if split == "train" else "real face photos"] * len(extra)
    return images, np.array(labels), groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "results" / "avatar" / "domain.json"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    train_x, train_y, _ = dataset("train", rng)
    model = avatar_domain.fit_logistic(np.stack([avatar_domain.features(im) for im in train_x]), train_y)
    avatar_domain.WEIGHTS.write_text(json.dumps(model, indent=1) + "\n")
    avatar_domain._weights.cache_clear()
    test_x, test_y, groups = dataset("test", rng)
    scores = np.array([avatar_domain.domain_score(im) for im in test_x])
    right = (scores >= avatar_domain.THRESHOLD) == (test_y == 1)
    report = {"accuracy": float(right.mean()), "n": len(test_y), "brier": float(((scores - test_y) ** 2).mean())}
    report["groups"] = {
        g: {"n": int(sum(1 for x in groups if x == g)), "accuracy": float(right[[x == g for x in groups]].mean()),
            "mean_score": float(scores[[x == g for x in groups]].mean())}
        for g in dict.fromkeys(groups)
    }  # fmt: skip
    report["real_face_photos"] = {
        name: float(scores[len(scores) - len(real_face_photos()) + i]) for i, name in enumerate(real_face_photos())
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
