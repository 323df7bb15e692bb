"""The user's options for one generation run, defined once (imports nothing heavy: the app reads it).

``GenerationRequest`` is the single definition of every generation option: its type, default,
valid range or choices, help text and command-line flag (``Option``, in each field's
metadata). Everything else derives from it or is checked against it by a test, so they
cannot drift apart:

* ``STARCasterPipeline.__call__``: the explicit keyword signature diffusers users and IDEs
  expect, asserted equal to these fields (``tests/test_request.py``); its ``Args`` section is
  generated from the help texts (``options_docstring``);
* ``check_request``: the range and choice checks of ``STARCasterPipeline.check_inputs``;
* the ``generate`` command's flags (``cli.py`` builds them from ``cli_options``) and the
  command line that reproduces a run (``command_line``, written into the app's settings JSON);
* the app's controls: slider bounds and defaults (``starcaster/demo/layout.py`` reads ``OPTIONS``);
* the evaluation harness's defaults (``EvalConfig``, checked by a test).
"""

from __future__ import annotations

import dataclasses
import math
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .camera import CAMERA_PATHS
from .errors import InputError

if TYPE_CHECKING:
    import torch

    from .audio import AudioSource

MAX_CHUNK_LENGTH = 16
MAX_STEPS = 50
MAX_GUIDANCE = 20.0
MAX_SWEEP_VIEWS = 1024  # a sweep holds all its views' features at once: bound it
PRECISIONS = ("fp32", "bf16")
AVATAR_MODES = ("auto", "always", "never")  # image mode: animate the photo's SynthTalk avatar (starcaster.avatar)
OUTPUT_TYPES = ("np", "latent")
CONTEXT_MODES = ("cache", "recompute")


@dataclass(frozen=True)
class Option:
    """What one field of ``GenerationRequest`` is, for checks, flags, controls and docs.

    ``low``/``high`` bound a number (``None``: unbounded on that side; ``high_open``: the bound
    itself is excluded); ``kind`` is the value's type (``int``/``float``/``str``/``bool``);
    ``flag`` its ``generate`` flag (``None``: not on the command line; a bool that defaults to
    True is switched off by its flag, e.g. ``--no-refiner``).
    """

    help: str
    kind: type | None = None
    low: float | None = None
    high: float | None = None
    high_open: bool = False
    unit: str = ""
    choices: tuple[str, ...] | None = None
    flag: str | None = None

    def range_text(self) -> str:
        """``"1–16 frames"``, ``"≥ 0"``, ``"0 to below 1"``, ``"one of: a, b"`` or ``""``."""
        if self.choices:
            return "one of: " + ", ".join(self.choices)
        unit = f" {self.unit}" if self.unit and self.unit != "°" else self.unit
        if self.low is not None and self.high is not None:
            return (
                f"{self.low:g} to below {self.high:g}{unit}" if self.high_open else f"{self.low:g}–{self.high:g}{unit}"
            )
        if self.low is not None:
            return f"≥ {self.low:g}{unit}"
        return ""


def option(default, help: str, **spec) -> dataclasses.Field:
    """A ``GenerationRequest`` field with its ``Option`` (``kind`` defaults to the default's type)."""
    spec.setdefault("kind", None if default is None else type(default))
    return field(default=default, metadata={"option": Option(help, **spec)})


@dataclass
class GenerationRequest:
    """The user's options for one run (the keyword arguments of ``__call__``/``start``/``stream``)."""

    audio: AudioSource = field(
        metadata={
            "option": Option(
                "speech as a path, float32 samples at 16 kHz, ``(sample_rate, samples)``, an already "
                "read ``audio.LoadedAudio`` (used as it is) or a live source (``pipe.live_audio()``)."
            )
        }
    )
    identity_embedding: object = option(
        None,
        "a 512-D embedding in this checkpoint's identity space (array, tensor or embedding file): the soft identity condition (give it or ``image``).",
    )
    image: object = option(
        None, "a reference portrait: its embedding is extracted *and* its face crop is the sink of the KV cache."
    )
    azimuth: float | np.ndarray = option(
        0.0,
        "view azimuth in degrees (0 = frontal); a scalar or one value per frame.",
        kind=float,
        unit="°",
        flag="--azimuth",
    )
    elevation: float | np.ndarray = option(
        0.0,
        "view elevation in degrees (+ looks from above); a scalar or one value per frame.",
        kind=float,
        low=-90.0,
        high=90.0,
        unit="°",
        flag="--elevation",
    )
    camera_path: str | None = option(
        "static",
        "a named camera path around the view: orbit (a full turn), nod, or sweep (one instant, many views: "
        "``num_frames`` views of the moment ``sweep_time``).",
        choices=tuple(CAMERA_PATHS),
        flag="--camera-path",
    )
    chunk_length: int = option(
        4,
        "frames generated per autoregressive chunk.",
        low=1,
        high=MAX_CHUNK_LENGTH,
        unit="frames",
        flag="--chunk-length",
    )
    num_inference_steps: int = option(
        1,  # one x0 step: the evaluation holds at 1 (docs/performance.md), 2.5× faster than 4
        "DDIM steps per chunk (x0-prediction; 1 holds the evaluation and is 2.5× faster than the 4 the model "
        "was trained to sample with).",
        low=1,
        high=MAX_STEPS,
        flag="--steps",
    )
    guidance_scale_audio: float = option(
        1.0,
        "audio CFG scale (1 = off; a scale ≠ 1 costs one more UNet pass per step).",
        low=0.0,
        high=MAX_GUIDANCE,
        flag="--guidance-audio",
    )
    guidance_scale_identity: float = option(
        1.0, "identity CFG scale (1 = off).", low=0.0, high=MAX_GUIDANCE, flag="--guidance-identity"
    )
    guidance_scale_camera: float = option(
        1.0,
        "camera CFG scale (1 = off; 2 holds the view better).",
        low=0.0,
        high=MAX_GUIDANCE,
        flag="--guidance-camera",
    )
    generator: torch.Generator | None = option(
        None, "seeds the noise; same inputs and seed give bit-identical frames on CPU (the CLI's ``--seed``)."
    )
    fps: float = option(25.0, "video frame rate.", low=1.0, high=60.0, flag="--fps")
    output_type: str = option("np", '``"np"`` (uint8 frames) or ``"latent"``.', choices=OUTPUT_TYPES)
    context_frames: int | None = option(
        4,  # 4 holds every quality bar on the whole test split and is faster than 8 (docs/performance.md)
        "past frames kept in the rolling KV-cache window (plus one sink; 4 holds every quality bar on the "
        "test split and is faster than 8); at most the checkpoint's ``max_context_frames - 1``.",
        kind=int,
        low=0,
        unit="frames",
        flag="--context-frames",
    )
    num_frames: int | None = option(
        None, "views of a sweep (default 2 s of video).", kind=int, low=1, high=MAX_SWEEP_VIEWS, flag="--sweep-views"
    )
    sweep_time: float | None = option(
        None,
        "the moment a sweep shows, in seconds (default the middle of the audio).",
        kind=float,
        low=0.0,
        unit="s",
        flag="--sweep-time",
    )
    reference_view: tuple[float, float] = option(
        (0.0, 0.0), "the (azimuth, elevation) the reference portrait is seen from.", kind=tuple
    )
    context_mode: str = option(
        "cache",
        '``"cache"`` reuses cached keys/values; ``"recompute"`` re-encodes the whole causal context every '
        "chunk (the naive baseline the cache is tested against).",
        choices=CONTEXT_MODES,
    )
    trim_silence: bool = option(False, "cut leading/trailing silence from the audio first.", flag="--trim-silence")
    max_audio_seconds: float | None = option(
        None, "refuse longer audio with an ``InputError`` (None = no limit).", kind=float, low=0.0, unit="s"
    )
    precision: str = option(
        "fp32",
        '``"fp32"`` (exact) or ``"bf16"`` (bf16 autocast and attention: faster on CPUs with bf16 units; '
        "docs/performance.md has its error).",
        choices=PRECISIONS,
        flag="--precision",
    )
    noise_sharing: float = option(
        1.0,
        "the share of every frame's starting noise common to the whole video (per-frame marginals stay "
        "N(0, I)); 1 removes sampling flicker (docs/training.md), 0 is independent noise per frame.",
        low=0.0,
        high=1.0,
        flag="--noise-sharing",
    )
    use_identity_prior: bool = option(
        True,
        "identity-only mode on a checkpoint with an identity prior: animate the prior's portrait of the "
        "embedding; off: the video model alone, from the embedding tokens.",
        flag="--no-identity-prior",
    )
    use_refiner: bool = option(
        True,
        "redraw each decoded frame's fine detail with the checkpoint's frame refiner, if it has one; off: the "
        'video model\'s own frames (``output_type="latent"`` never sees it).',
        flag="--no-refiner",
    )
    refiner_smoothing: float = option(
        0.5,
        "share of the previous frame's refiner correction kept in the next (temporal EMA; 0 refines each "
        "frame alone; sweeps use 0).",
        low=0.0,
        high=1.0,
        high_open=True,
        flag="--refiner-smoothing",
    )
    avatar: str = option(
        "auto",
        "with ``image``: auto animates the photo's SynthTalk avatar when the photo is out of the checkpoint's "
        "domain (docs/avatar.md) and the image itself otherwise; always / never force either way.",
        choices=AVATAR_MODES,
        flag="--avatar",
    )


OPTIONS: dict[str, Option] = {f.name: f.metadata["option"] for f in dataclasses.fields(GenerationRequest)}
DEFAULTS: dict[str, object] = {
    f.name: f.default for f in dataclasses.fields(GenerationRequest) if f.default is not dataclasses.MISSING
}


def cli_options() -> dict[str, Option]:
    """The options that have a ``generate`` flag, in field order."""
    return {name: spec for name, spec in OPTIONS.items() if spec.flag}


def check_request(request: GenerationRequest) -> None:
    """Raise ``InputError`` for any option outside its range or choices (the spec's checks)."""
    for name in OPTIONS:
        check_option(name, getattr(request, name))


def check_option(name: str, value) -> None:
    """One option's range or choices (``None`` and per-frame arrays pass: other checks see to them)."""
    spec = OPTIONS[name]
    if spec.choices:
        if value is None and name == "camera_path":
            return
        if value not in spec.choices:
            raise InputError(f"{name} must be one of {', '.join(spec.choices)}; got {value!r}.")
    elif spec.low is not None and value is not None and np.ndim(value) == 0:
        _check_number(name, value, spec)


def _check_number(name: str, value, spec: Option) -> None:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be a number ({spec.range_text()}); got {value!r}.") from exc
    if not math.isfinite(number):
        raise InputError(f"{name} must be a finite number ({spec.range_text()}); got {value}.")
    too_high = spec.high is not None and (number >= spec.high if spec.high_open else number > spec.high)
    if number >= spec.low and not too_high:
        return
    unit = f" {spec.unit}" if spec.unit and spec.unit != "°" else spec.unit
    low = f"{spec.low:g}°" if spec.unit == "°" else f"{spec.low:g}"
    if spec.high is None:
        raise InputError(f"{name} must be at least {spec.low:g}{unit}; got {value}.")
    if spec.high_open:
        raise InputError(f"{name} must be at least {spec.low:g} and below {spec.high:g}; got {value}.")
    raise InputError(f"{name} must be between {low} and {spec.high:g}{unit}; got {value}.")


def flag_help(spec: Option, default) -> str:
    """A flag's help: the option's help, its range and its default."""
    parts = [("turn off: " if spec.kind is bool and default else "") + spec.help.replace("``", "")]
    if spec.range_text() and not spec.choices:  # argparse lists the choices itself
        parts.append(f"({spec.range_text()})")
    if spec.kind is not bool and default is not None:
        parts.append(f"[default {default}]")
    return " ".join(parts).replace("%", "%%")


def command_line(settings: dict, *, seed: int | None = None) -> list[str]:
    """``generate`` flags reproducing ``settings`` (option name → value); the inverse of the CLI's parsing."""
    words: list[str] = []
    for name, spec in cli_options().items():
        if name not in settings or settings[name] is None:
            continue
        value = settings[name]
        if spec.kind is bool:
            if bool(value) != bool(DEFAULTS[name]):
                words.append(spec.flag)
            continue
        words += [spec.flag, str(value)]
    if seed is not None:
        words += ["--seed", str(seed)]
    return words


def quoted(words: list[str]) -> str:
    return " ".join(shlex.quote(word) for word in words)


def options_docstring(indent: str = "    ") -> str:
    """The ``Args`` section of ``__call__`` and friends, from the help texts (one place to edit them)."""
    lines = ["Args:"]
    for name, spec in OPTIONS.items():
        extra = f" ({spec.range_text()})" if spec.range_text() else ""
        default = "" if name == "audio" else f" Default: {DEFAULTS[name]!r}."
        lines.append(f"{indent}{name}: {spec.help}{extra}{default}")
    lines.append(f"{indent}callback_on_chunk_end: called as ``fn(pipe, chunk)`` after every chunk.")
    return "\n".join(lines)
