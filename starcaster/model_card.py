"""Generate a checkpoint's model card (``huggingface_hub.ModelCard``) from facts, not by hand.

Two inputs:
* **notes** — the human-written part, one markdown file per published checkpoint
  (``docs/model_cards/<name>.md``): YAML front matter (``title``, ``license``, ``tags``,
  ``results``: the eval JSONs to report) and ``## `` sections; ``Intended use`` and
  ``Limitations`` are required, the rest (training, ablations...) is kept in order;
* **facts** read here — the folder's files with sizes and storage dtypes (safetensors headers),
  the base model (Arc2Face for a ``real``-preset UNet, none for a checkpoint trained from
  scratch), and the metrics of ``python -m starcaster eval`` result JSONs: the model-index
  metadata, the measured tables and the exact commands that reproduce them.

``build_card`` returns the ModelCard; ``publish`` writes it as the repo's README.md.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from safetensors import safe_open

from .errors import CheckpointError

REQUIRED_SECTIONS = ("Intended use", "Limitations")
PIPELINE_TAG = "image-to-video"
LIBRARY = "diffusers"
ARC2FACE = "FoivosPar/Arc2Face"
TASK = "image-to-video"
DATASET = "synthtalk"
# metric key → (label, direction); the order of the tables
METRICS = {
    "lip_sync_corr": ("lip-sync correlation", "↑"),
    "sync_conf": ("sync confidence", "↑"),
    "sync_dist": ("sync distance", "↓"),
    "view_error_deg": ("view error (°)", "↓"),
    "identity_cos": ("identity cosine", "↑"),
    "identity_drift": ("identity drift", "↓"),
    "motion_ratio": ("motion ratio", "→ 1"),
    "seam_ratio": ("seam ratio", "→ 1"),
    "ssim": ("SSIM vs. the truth", "↑"),
    "fid_own": ("FID (own features)", "↓"),
    "fvd_own": ("FVD (own features)", "↓"),
}
# eval settings (result JSON ``meta.settings``) → `python -m starcaster eval` flags
EVAL_FLAGS = {
    "max_clips": "--max-clips",
    "seconds": "--seconds",
    "drift_seconds": "--drift-seconds",
    "guidance_scale_camera": "--guidance-camera",
    "noise_sharing": "--noise-sharing",
}


@dataclass
class CardNotes:
    """The human-written part of a model card (see the module docstring)."""

    title: str
    license: str
    summary: str
    sections: dict[str, str]  # heading → markdown body, in file order
    tags: list[str] = field(default_factory=list)
    results: list[str] = field(default_factory=list)  # eval JSON paths, relative to the notes' repo root
    source: str = "notes"  # the notes file's name, quoted in the card


def load_notes(path: Path) -> CardNotes:
    """Parse ``path``; a missing title/license or required section is a ``CheckpointError`` naming it."""
    text = Path(path).read_text()
    match = re.match(r"^---\n(.*?)\n---\n(.*)$", text, flags=re.S)
    if not match:
        raise CheckpointError(f"{path} has no YAML front matter (--- title/license/tags/results ---).")
    meta, body = yaml.safe_load(match.group(1)) or {}, re.sub(r"<!--.*?-->\s*", "", match.group(2), flags=re.S)
    parts = re.split(r"^## +(.+?)\s*$", body, flags=re.M)
    sections = {heading: content.strip() for heading, content in zip(parts[1::2], parts[2::2], strict=True)}
    missing = [k for k in ("title", "license") if not meta.get(k)] + [s for s in REQUIRED_SECTIONS if s not in sections]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)} (required in every model card).")
    summary = re.sub(r"^# .*\n", "", parts[0].strip()).strip()
    return CardNotes(
        meta["title"],
        meta["license"],
        summary,
        sections,
        meta.get("tags", []),
        meta.get("results", []),
        Path(path).name,
    )


def base_model(folder: Path) -> str | None:
    """The Hub model these weights start from: Arc2Face for the ``real`` preset, else none (from scratch)."""
    config = json.loads((Path(folder) / "unet" / "config.json").read_text())
    return ARC2FACE if config.get("identity_projector") == "arc2face" or config.get("clip_config") else None


DTYPES = {"F32": "fp32", "F16": "fp16", "BF16": "bf16", "I8": "int8", "U8": "uint8", "I64": "int64", "BOOL": "bool"}


def storage(file: Path) -> str:
    """The dtypes a safetensors file stores, largest share first (e.g. ``int8 + fp16``)."""
    counts: Counter[str] = Counter()
    with safe_open(file, framework="pt") as handle:
        for key in handle.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
            tensor = handle.get_slice(key)
            numel = 1
            for n in tensor.get_shape():
                numel *= n
            counts[DTYPES.get(tensor.get_dtype(), tensor.get_dtype().lower())] += numel
    return " + ".join(name for name, _ in counts.most_common())


def files_table(folder: Path) -> str:
    """Markdown table of every file under ``folder`` but the card itself: path, size, storage."""
    rows = ["| file | size | stored as |", "|---|---|---|"]
    for file in sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.name != "README.md"):
        kind = storage(file) if file.suffix == ".safetensors" else "—"
        rows.append(f"| `{file.relative_to(folder).as_posix()}` | {human_size(file.stat().st_size)} | {kind} |")
    return "\n".join(rows)


def human_size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB" if size >= 1000 else f"{size} B"


def model_row(result: dict) -> tuple[str, dict]:
    """(mode, metrics) of the ``model (...)`` row of an eval result JSON."""
    mode = result["meta"]["settings"]["mode"]
    return mode, result["rows"][f"model ({mode})"]


def eval_results(results: list[dict]) -> list[EvalResult]:
    """Model-index entries: one dataset entry per mode, one metric per measured value."""
    entries = []
    for result in results:
        mode, row = model_row(result)
        sequences = result["meta"]["sequences"]
        for key, value in row.items():
            if key not in METRICS or value is None:
                continue
            entries.append(
                EvalResult(
                    task_type=TASK,
                    dataset_type=DATASET,
                    dataset_name=f"SynthTalk test split ({sequences} sequences, {mode} mode)",
                    dataset_config=mode,
                    dataset_split="test",
                    metric_type=key,
                    metric_name=f"{METRICS[key][0]} ({mode} mode)",
                    metric_value=round(float(value), 4),
                )
            )
    return entries


def metrics_table(result: dict) -> str:
    """Markdown table: a row per metric, a column per row of the eval (ceiling, floors, model)."""
    columns = list(result["rows"])
    lines = ["| metric | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for key, (label, direction) in METRICS.items():
        values = [result["rows"][c].get(key) for c in columns]
        if all(v is None for v in values):
            continue
        cells = ["—" if v is None else f"{v:.3f}" for v in values]
        cells[-1] = f"**{cells[-1]}**"
        lines.append(f"| {label} {direction} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def eval_command(result: dict, checkpoint: str) -> str:
    """The exact `python -m starcaster eval` line that measured ``result``."""
    settings = result["meta"]["settings"]
    parts = ["python -m starcaster eval", f"--checkpoint {checkpoint}", "--data data/synthtalk --split test"]
    parts.append(f"--mode {settings['mode']}")
    parts += [f"{flag} {settings[key]:g}" for key, flag in EVAL_FLAGS.items() if settings.get(key)]
    parts += ["--no-identity-prior"] * (settings.get("use_identity_prior") is False)
    parts += ["--no-refiner"] * (settings.get("use_refiner") is False)
    return " ".join(parts) + f" --out eval_{settings['mode']}.json"


def build_card(
    folder: Path,
    notes: CardNotes,
    results: list[dict],
    *,
    repo_id: str,
    revision: str | None,
    source: str | None = None,
) -> ModelCard:
    """The complete card for ``folder`` published as ``repo_id`` at ``revision``; ``source``: the
    checkpoint folder as the reproduction commands should name it (default: ``folder``'s name)."""
    data = ModelCardData(
        license=notes.license,
        library_name=LIBRARY,
        pipeline_tag=PIPELINE_TAG,
        tags=notes.tags,
        base_model=base_model(folder),
        model_name=notes.title,
        eval_results=eval_results(results) or None,
    )
    checkpoint = repo_id + (f"@{revision}" if revision else "")
    generated = (
        f"<!-- Generated by starcaster/model_card.py (`python -m starcaster push`) from docs/model_cards/"
        f"{notes.source}, the folder's files and the eval result JSONs: edit those, not this file. -->"
    )
    body = [
        generated,
        f"# {notes.title}",
        notes.summary,
        _usage(repo_id, revision),
        "## Files\n\n" + _files_text(folder),
    ]
    for heading, content in notes.sections.items():
        body.append(f"## {heading}\n\n{content}")
        if heading == "Intended use" and results:
            body.append(_metrics_section(results))
    body.append(_reproduce(results, checkpoint, source or Path(folder).name))
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(body) + "\n")


def _usage(repo_id: str, revision: str | None) -> str:
    rev = f', revision="{revision}"' if revision else ""
    return (
        "## Usage\n\n```python\nimport torch\nfrom starcaster import STARCasterPipeline\n\n"
        f'pipe = STARCasterPipeline.from_pretrained("{repo_id}"{rev})  # variant="fp16": half the download\n'
        'out = pipe("speech.wav", image="portrait.png", azimuth=30.0, generator=torch.Generator().manual_seed(0))\n'
        "out.frames  # [F, H, W, 3] uint8, 25 fps\n```\n\n"
        f"Command line: `python -m starcaster download {repo_id}" + (f"@{revision}" if revision else "") + "`, then "
        f"`python -m starcaster generate --checkpoint {repo_id}" + (f"@{revision}" if revision else "") + " "
        "--audio speech.wav --image portrait.png --out out.mp4`. The `starcaster` package comes from the project's "
        "source repository (`pip install -r requirements.txt`); it loads safetensors only and never runs remote code. "
        "Paper: https://arxiv.org/abs/2512.13247."
    )


def _files_text(folder: Path) -> str:
    variants = sorted({p.name.split(".")[1] for p in Path(folder).rglob("*.safetensors") if p.name.count(".") == 2})
    note = (
        f"Precision variants in diffusers' naming: `*.{variants[0]}.safetensors` beside the full-precision files; "
        f'`from_pretrained(..., variant="{variants[0]}")` fetches only those.\n\n'
        if variants
        else ""
    )
    return note + files_table(folder)


def _metrics_section(results: list[dict]) -> str:
    parts = ["## Metrics\n\nMeasured by `python -m starcaster eval` (docs/evaluation.md) on held-out SynthTalk "
             "identities and voices; each table scores the ground truth (ceiling) and trivial baselines (floors) "
             "in the same run as the model. The metrics use the project's own expert networks: they rank models "
             "on SynthTalk and are not comparable with published numbers."]  # fmt: skip
    for result in results:
        mode, _ = model_row(result)
        meta = result["meta"]
        parts.append(
            f"### {mode} mode: {meta['sequences']} sequences, {meta['frames']} frames\n\n{metrics_table(result)}"
        )
    return "\n\n".join(parts)


def _reproduce(results: list[dict], checkpoint: str, source: str) -> str:
    lines = ["python -m starcaster synth --out data/synthtalk --clips 1500 --eval-clips 10   # the test split"]
    lines += [eval_command(result, checkpoint) for result in results]
    lines.append(f"python -m starcaster push {source} {checkpoint.split('@')[0]} --dry-run   # what is published")
    return "## Reproduce the metrics\n\n```bash\n" + "\n".join(lines) + "\n```"
