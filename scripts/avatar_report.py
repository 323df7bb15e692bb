"""Measure the photo → avatar fit and draw its contact sheet (docs/avatar.md).

    OMP_NUM_THREADS=1 python scripts/avatar_report.py [--seeds 60] [--no-sheet]

(a) Parameter recovery on held-out SynthTalk portraits (test-split identity seeds, never used by
    anything that was fitted): CIEDE2000 colour errors, categorical accuracies, mean absolute error
    of the geometry in per cent of each range, and the identity similarity (cosine of the evaluation
    identity expert's embeddings) between the recovered and the true portrait — next to the
    similarity of two different identities, so the number has a scale.
(b) Contact sheet: for every real face photo available offline, photo | avatar | frames of the
    bundled checkpoint animating the avatar from three views.
(c) Time per request at one thread: the fit alone (photo path and portrait path) and the domain score.
Writes docs/results/avatar/recovery.json, timing.json and docs/images/avatar_contact_sheet.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from starcaster import avatar  # noqa: E402
from starcaster.avatar_domain import domain_score  # noqa: E402
from starcaster.avatar_photos import real_face_photos  # noqa: E402
from starcaster.data.heads import HAIR_STYLES, sample_head  # noqa: E402
from starcaster.data.render import RenderConfig, render_reference  # noqa: E402

TEST_SEED = 2_000_000
OUT = ROOT / "docs" / "results" / "avatar"


def delta_e(a, b) -> float:
    from skimage.color import deltaE_ciede2000, rgb2lab

    lab = rgb2lab(np.array([[a, b]], np.float64))[0]
    return float(deltaE_ciede2000(lab[0], lab[1]))


def recovery(count: int) -> dict:
    from starcaster.eval.experts import load_expert, to_input

    expert = load_expert("identity")
    rows, truths, fits = [], [], []
    for seed in range(TEST_SEED, TEST_SEED + count):
        truth = sample_head(seed)
        portrait = render_reference(truth, RenderConfig(size=64))
        fit = avatar.fit_portrait(portrait)
        row = {f"dE_{c}": delta_e(getattr(truth, c), getattr(fit, c)) for c in avatar.COLOUR_FIELDS}
        row |= {"hair_style": truth.hair_style == fit.hair_style, "glasses": truth.glasses == fit.glasses,
                "beard": (truth.beard > 0) == (fit.beard > 0.3)}  # fmt: skip
        row |= {
            f"err_{k}": abs(avatar.get(truth, k) - avatar.get(fit, k)) / np.ptp(avatar.RANGES[k])
            for k in avatar.GEOMETRY
        }
        rows.append(row)
        truths.append(portrait)
        fits.append(render_reference(fit, RenderConfig(size=64)))
    with torch.no_grad():
        a, b = expert(to_input(np.stack(truths))), expert(to_input(np.stack(fits)))
    same = (a * b).sum(-1).numpy()
    other = (a * b.roll(1, 0)).sum(-1).numpy()
    summary = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    summary |= {f"p90_{k}": float(np.quantile([r[k] for r in rows], 0.9)) for k in rows[0] if k.startswith("dE_")}
    summary |= {"identity_cos_recovered": float(same.mean()), "identity_cos_min": float(same.min()),
                "identity_cos_other_identity": float(other.mean()), "n": count,
                "hair_styles_true": [HAIR_STYLES[sample_head(s).hair_style] for s in range(TEST_SEED, TEST_SEED + count)]}  # fmt: skip
    summary.pop("hair_styles_true")
    return summary


def timing() -> dict:
    torch.set_num_threads(1)
    photo = next(iter(real_face_photos().values()))
    avatar.fit_avatar(photo)  # loads dlib's models once (~1 s), as the first request of a server does
    portrait = Image.fromarray(render_reference(sample_head(TEST_SEED), RenderConfig(size=128)))
    result = {}
    for name, image in (("photo (astronaut, 512²)", photo), ("SynthTalk portrait (128²)", portrait)):
        times = []
        for _ in range(5):
            start = time.perf_counter()
            domain_score(image)
            avatar.fit_avatar(image)
            times.append(time.perf_counter() - start)
        result[name] = {"median_s": float(np.median(times)), "max_s": float(np.max(times))}
    return result


def contact_sheet(path: Path) -> None:
    from starcaster import BUNDLED_CHECKPOINT, STARCasterPipeline

    pipe = STARCasterPipeline.from_pretrained(BUNDLED_CHECKPOINT)
    pipe.set_progress_bar_config(disable=True)
    from starcaster.audio import load_audio

    audio = load_audio(str(ROOT / "examples" / "audio" / "hello.wav"))[4_000:12_000]  # "hel-": 0.5 s, 13 frames
    rows = []
    for name, photo in real_face_photos().items():
        fit = pipe.photo_to_avatar(photo)
        cells = [_around_face(photo, fit.box, 128), fit.portrait]
        for azimuth in (-30.0, 0.0, 30.0):
            out = pipe(audio, image=fit.portrait, azimuth=azimuth, avatar="never", num_frames=None,
                       generator=torch.Generator().manual_seed(0), max_audio_seconds=None)  # fmt: skip
            frame = out.frames[len(out.frames) // 2]
            cells.append(np.asarray(Image.fromarray(frame).resize((128, 128), Image.Resampling.NEAREST)))
        rows.append(np.concatenate(cells, 1))
        print(name, "·", fit.description)
    sheet = Image.fromarray(np.concatenate(rows, 0))  # 256 colours: the docs image stays small (~130 KB)
    sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)


def _around_face(image: Image.Image, box, size: int) -> np.ndarray:
    """A square of the photo around the face used (2.4 face boxes), or the centre square."""
    if box is None:
        return _square(image, size)
    left, top, right, bottom = box
    cx, cy, half = (left + right) / 2, (top + bottom) / 2 + 0.1 * (bottom - top), 1.2 * max(right - left, bottom - top)
    crop = image.crop((round(cx - half), round(cy - half), round(cx + half), round(cy + half)))
    return np.asarray(crop.resize((size, size), Image.Resampling.LANCZOS))


def _square(image: Image.Image, size: int) -> np.ndarray:
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return np.asarray(image.crop((left, top, left + side, top + side)).resize((size, size)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=60)
    parser.add_argument("--no-sheet", action="store_true")
    parser.add_argument("--sheet-only", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    if args.sheet_only:
        return contact_sheet(ROOT / "docs" / "images" / "avatar_contact_sheet.png")
    (OUT / "timing.json").write_text(json.dumps(timing(), indent=1) + "\n")
    print((OUT / "timing.json").read_text())
    result = recovery(args.seeds)
    (OUT / "recovery.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    if not args.no_sheet:
        contact_sheet(ROOT / "docs" / "images" / "avatar_contact_sheet.png")


if __name__ == "__main__":
    main()
