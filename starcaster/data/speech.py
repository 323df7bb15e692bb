"""Speech audio for SynthTalk: espeak-ng voices, or a numpy formant synthesiser when it is absent.

Text is random pseudo-words built from syllables, so every language's letter-to-sound rules
produce plausible speech without a corpus, and phrases are separated by pauses (real silence,
which the mouth model must map to a closed mouth). Voices are split by *variant* (timbre), so
test voices are never heard in training: see ``VOICE_VARIANTS``.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import soundfile
from scipy.signal import lfilter, resample_poly

from ..audio import SAMPLE_RATE

ESPEAK_LANGUAGES = ("en", "en-us", "de", "fr", "es", "it", "pt", "nl")
VOICE_VARIANTS = {  # espeak-ng variants; formant presets use the same split by index
    "train": ("m1", "m2", "m3", "m4", "m5", "m6", "f1", "f2", "f3"),
    "val": ("m8", "f5"),
    "test": ("m7", "f4"),
}
_FORMANT_PRESETS = {  # name → (base f0 Hz, formant scale); same train/val/test positions as above
    "m1": (95, 1.0), "m2": (110, 0.96), "m3": (125, 1.02), "m4": (105, 0.93), "m5": (135, 1.05), "m6": (100, 1.08),
    "f1": (200, 1.15), "f2": (225, 1.2), "f3": (185, 1.12), "m8": (118, 0.98), "f5": (210, 1.17), "m7": (90, 1.04),
    "f4": (240, 1.22),
}  # fmt: skip
_SYLLABLE_ONSETS = ("b", "d", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "sh", "ch", "f", "")
_SYLLABLE_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou", "ee", "oo")
_VOWEL_FORMANTS = {"a": (730, 1090, 2440), "e": (530, 1840, 2480), "i": (270, 2290, 3010), "o": (570, 840, 2410), "u": (300, 870, 2240)}  # fmt: skip


@dataclass(frozen=True)
class Voice:
    """A speaker: the engine, language (espeak only) and variant (timbre)."""

    engine: str  # "espeak" or "formant"
    language: str
    variant: str

    @property
    def name(self) -> str:
        return f"{self.engine}:{self.language}+{self.variant}"


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def resolve_engine(engine: str) -> str:
    """``auto`` → espeak when installed, else formant; an explicit engine is checked."""
    if engine == "auto":
        return "espeak" if espeak_available() else "formant"
    if engine == "espeak" and not espeak_available():
        raise RuntimeError("espeak-ng is not installed: `apt-get install espeak-ng`, or use speech='formant'.")
    if engine not in ("espeak", "formant"):
        raise ValueError(f"Unknown speech engine {engine!r}; use 'auto', 'espeak' or 'formant'.")
    return engine


def voices(split: str, engine: str) -> list[Voice]:
    """Every voice of ``split`` for ``engine`` (deterministic order)."""
    languages = ESPEAK_LANGUAGES if engine == "espeak" else ("synthetic",)
    return [Voice(engine, language, variant) for language in languages for variant in VOICE_VARIANTS[split]]


def synthesize(rng: np.random.Generator, voice: Voice, seconds: float) -> np.ndarray:
    """``seconds`` of speech with pauses: float32 mono at 16 kHz, peak normalised to a random level."""
    phrases = [_random_phrase(rng) for _ in range(max(2, int(seconds * 0.9) + 2))]
    pauses = rng.uniform(0.15, 0.8, len(phrases))
    if voice.engine == "espeak":
        wave = _espeak(voice, phrases, pauses, speed=int(rng.integers(130, 200)), pitch=int(rng.integers(25, 75)))
    else:
        wave = _formant(rng, voice, phrases, pauses)
    wave = _fit_length(rng, wave, int(round(seconds * SAMPLE_RATE)))
    peak = np.abs(wave).max()
    gain = rng.uniform(0.3, 0.9) / peak if peak > 0 else 1.0
    return (wave * gain).astype(np.float32)


def _random_phrase(rng: np.random.Generator) -> list[str]:
    """A phrase of 2–5 pseudo-words of 1–3 syllables each."""
    words = []
    for _ in range(rng.integers(2, 6)):
        syllables = rng.integers(1, 4)
        words.append("".join(rng.choice(_SYLLABLE_ONSETS) + rng.choice(_SYLLABLE_VOWELS) for _ in range(syllables)))
    return words


def _espeak(voice: Voice, phrases: list[list[str]], pauses: np.ndarray, speed: int, pitch: int) -> np.ndarray:
    """Run espeak-ng once (SSML breaks for the pauses) and resample its 22.05 kHz output to 16 kHz."""
    ssml = "".join(f'{" ".join(words)} <break time="{int(p * 1000)}ms"/> ' for words, p in zip(phrases, pauses))
    command = [
        "espeak-ng",
        "-v",
        f"{voice.language}+{voice.variant}",
        "-s",
        str(speed),
        "-p",
        str(pitch),
        "-m",
        "--stdout",
    ]
    result = subprocess.run([*command, ssml], capture_output=True, check=True)
    wave, rate = soundfile.read(io.BytesIO(result.stdout), dtype="float32")
    return resample_poly(wave, SAMPLE_RATE, rate).astype(np.float32)


def _formant(rng: np.random.Generator, voice: Voice, phrases: list[list[str]], pauses: np.ndarray) -> np.ndarray:
    """A source-filter synthesiser: pulse-train vowels through three resonators, noise consonants."""
    f0, scale = _FORMANT_PRESETS[voice.variant]
    pieces = []
    for words, pause in zip(phrases, pauses):
        for word in words:
            for vowel in (c for c in word if c in _VOWEL_FORMANTS):
                pieces.append(_noise_burst(rng, rng.uniform(0.03, 0.08)))
                pieces.append(_vowel(rng, _VOWEL_FORMANTS[vowel], f0 * rng.uniform(0.9, 1.15), scale))
            pieces.append(np.zeros(int(rng.uniform(0.02, 0.06) * SAMPLE_RATE), np.float32))
        pieces.append(np.zeros(int(pause * SAMPLE_RATE), np.float32))
    return np.concatenate(pieces)


def _vowel(rng: np.random.Generator, formants: tuple[int, int, int], f0: float, scale: float) -> np.ndarray:
    n = int(rng.uniform(0.09, 0.2) * SAMPLE_RATE)
    pitch = f0 * np.linspace(1.05, 0.95, n) * (1 + 0.01 * np.sin(np.arange(n) * 2 * np.pi * 5 / SAMPLE_RATE))
    phase = np.cumsum(pitch / SAMPLE_RATE)
    source = (np.diff(np.floor(phase), prepend=0.0) > 0).astype(np.float64)  # one pulse per period
    out = source
    for formant, bandwidth in zip(formants, (80, 100, 140)):
        out = _resonate(out, formant * scale, bandwidth)
    return (out * np.hanning(n)).astype(np.float32)


def _resonate(x: np.ndarray, frequency: float, bandwidth: float) -> np.ndarray:
    """Second-order resonator (a formant) at ``frequency`` Hz."""
    r = np.exp(-np.pi * bandwidth / SAMPLE_RATE)
    return lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * frequency / SAMPLE_RATE), r * r], x)


def _noise_burst(rng: np.random.Generator, seconds: float) -> np.ndarray:
    n = int(seconds * SAMPLE_RATE)
    noise = lfilter([1, -0.95], [1], rng.standard_normal(n))  # tilted towards high frequencies, like a fricative
    return (0.02 * noise * np.hanning(n)).astype(np.float32)


def _fit_length(rng: np.random.Generator, wave: np.ndarray, length: int) -> np.ndarray:
    """Crop a random stretch or pad with silence (random lead-in) to exactly ``length`` samples."""
    if len(wave) >= length:
        start = int(rng.integers(0, len(wave) - length + 1)) if rng.random() < 0.5 else 0
        return wave[start : start + length]
    lead = int(rng.integers(0, length - len(wave) + 1))
    return np.pad(wave, (lead, length - len(wave) - lead))
