"""A real-face audio-visual sync expert: LatentSync's StableSyncNet layout, weights from the Hub.

The SynthTalk experts (``experts.py``) only read SynthTalk heads. For real faces the recipe and
``prepare`` use a SyncNet trained on real talking videos: ByteDance's StableSyncNet from
LatentSync 1.5 (``ByteDance/LatentSync-1.5``, ``stable_syncnet.pt``; OpenRAIL++-M weights,
Apache-2.0 code; see checkpoints.md). This module is our own implementation of that network's
layout (two convolutional ``DownEncoder``s with optional self-attention blocks, parameter names
as in the checkpoint), so its state dict loads strictly — a mismatch names the keys.

Contract:

* visual: 16 consecutive face crops, lower half, each ``[3, 128, 256]`` in [-1, 1], stacked on the
  channel axis → ``[B, 48, 128, 256]`` → unit embedding ``[B, 2048]``;
* audio: the matching 0.64 s as an 80-band log-mel (Wav2Lip/LatentSync normalisation, 80 mel
  frames per second) ``[B, 1, 80, 52]`` → unit embedding ``[B, 2048]``;
* in sync ⇔ high cosine of the two.

The checkpoint is a pickle: ``convert_syncnet`` reads it once with ``torch.load(weights_only=True)``
(tensors only, no code) and writes ``model.safetensors`` + ``config.json``; ``load_syncnet`` only
ever loads safetensors. ``SyncNetConfig.tiny()`` is the small stand-in the tests build locally.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import librosa
import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from ..errors import CheckpointError, OfflineError

SYNCNET_REPO = "ByteDance/LatentSync-1.5"
SYNCNET_FILE = "stable_syncnet.pt"
MEL_PER_SECOND = 80  # 16 kHz / hop 200


@dataclass(frozen=True)
class EncoderSpec:
    in_channels: int
    block_out_channels: tuple[int, ...]
    downsample_factors: tuple  # int or (h, w) per block
    attn_blocks: tuple[int, ...]
    norm_num_groups: int = 32


@dataclass(frozen=True)
class SyncNetConfig:
    audio: EncoderSpec = field(
        default_factory=lambda: EncoderSpec(
            1, (32, 64, 128, 256, 512, 1024, 2048), ((2, 1), 2, 2, 1, 2, 2, (2, 3)), (0, 0, 0, 1, 1, 0, 0)
        )
    )
    visual: EncoderSpec = field(
        default_factory=lambda: EncoderSpec(
            48, (64, 128, 256, 256, 512, 1024, 2048, 2048), ((1, 2), 2, 2, 2, 2, 2, 2, 2), (0, 0, 0, 0, 1, 1, 0, 0)
        )
    )
    num_frames: int = 16
    face_size: int = 256  # crops are resized to this; the lower half is read
    mel_frames: int = 52

    @classmethod
    def tiny(cls) -> SyncNetConfig:
        """A few-thousand-parameter stand-in with the same interface (tests; 32² crops, 5 frames)."""
        return cls(
            audio=EncoderSpec(1, (8, 16, 16, 32), ((2, 1), 2, 2, (10, 5)), (0, 1, 0, 0), norm_num_groups=4),
            visual=EncoderSpec(15, (8, 16, 16, 32), ((1, 2), 2, 2, 4), (0, 1, 0, 0), norm_num_groups=4),
            num_frames=5,
            face_size=32,
            mel_frames=20,
        )

    @classmethod
    def from_dict(cls, values: dict) -> SyncNetConfig:
        def spec(d: dict) -> EncoderSpec:
            factors = tuple(tuple(f) if isinstance(f, list) else f for f in d["downsample_factors"])
            return EncoderSpec(
                d["in_channels"], tuple(d["block_out_channels"]), factors, tuple(d["attn_blocks"]), d["norm_num_groups"]
            )

        rest = {k: v for k, v in values.items() if k not in ("audio", "visual")}
        return cls(audio=spec(values["audio"]), visual=spec(values["visual"]), **rest)


class ResnetBlock(nn.Module):
    """GroupNorm-SiLU-conv ×2 with a residual, then an optional strided conv (right/bottom padded)."""

    def __init__(self, in_channels: int, out_channels: int, downsample, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=1e-6)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=1e-6)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None
        factor = tuple(downsample) if isinstance(downsample, list | tuple) else downsample
        self.downsample_conv = None if factor == 1 else nn.Conv2d(out_channels, out_channels, 3, stride=factor)
        self.pad = (0, 1, 0, 1)  # (left, right, top, bottom): keeps a stride-2 conv at exactly half size
        if isinstance(factor, tuple) and factor[0] == 1:
            self.pad = (0, 1, 1, 1)
        elif isinstance(factor, tuple) and factor[1] == 1:
            self.pad = (1, 1, 0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.silu(self.norm2(self.conv1(F.silu(self.norm1(x))))))
        h = h + (x if self.conv_shortcut is None else self.conv_shortcut(x))
        if self.downsample_conv is not None:
            h = self.downsample_conv(F.pad(h, self.pad))
        return h


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int = 8):
        super().__init__()
        self.heads = heads
        self.to_q, self.to_k, self.to_v = (nn.Linear(dim, dim) for _ in range(3))
        self.to_out = nn.ModuleList([nn.Linear(dim, dim), nn.Dropout(0.0)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, N, C]
        q, k, v = (
            proj(x).unflatten(-1, (self.heads, -1)).transpose(1, 2) for proj in (self.to_q, self.to_k, self.to_v)
        )
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)  # [B, N, C]
        return self.to_out[0](out)


class _GegluFeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        self.net = nn.ModuleList([_Geglu(dim, dim * mult), nn.Dropout(0.0), nn.Linear(dim * mult, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net[2](self.net[0](x))


class _Geglu(nn.Module):
    def __init__(self, dim: int, inner: int):
        super().__init__()
        self.proj = nn.Linear(dim, 2 * inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class AttentionBlock(nn.Module):
    """Self-attention + GEGLU feed-forward over the spatial positions of a ``[B, C, H, W]`` map."""

    def __init__(self, dim: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, dim, eps=1e-6)
        self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ff = _GegluFeedForward(dim)
        self.conv_in, self.conv_out = nn.Conv2d(dim, dim, 1), nn.Conv2d(dim, dim, 1)
        self.attn = _Attention(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, height, width = x.shape
        h = self.conv_in(self.norm1(x)).flatten(2).transpose(1, 2)  # [B, HW, C]
        h = self.attn(self.norm2(h)) + h
        h = self.ff(self.norm3(h)) + h
        return self.conv_out(h.transpose(1, 2).unflatten(-1, (height, width))) + x


class DownEncoder(nn.Module):
    """``[B, C_in, H, W]`` → ``[B, C_last, 1, 1]``-shaped features (ReLU'd) for the configured input size."""

    def __init__(self, spec: EncoderSpec):
        super().__init__()
        channels = spec.block_out_channels
        self.conv_in = nn.Conv2d(spec.in_channels, channels[0], 3, padding=1)
        blocks: list[nn.Module] = []
        previous = channels[0]
        for width, factor, attention in zip(channels, spec.downsample_factors, spec.attn_blocks):
            blocks.append(ResnetBlock(previous, width, factor, spec.norm_num_groups))
            if attention:
                blocks.append(AttentionBlock(width, spec.norm_num_groups))
            previous = width
        self.down_blocks = nn.ModuleList(blocks)
        self.norm_out = nn.GroupNorm(spec.norm_num_groups, channels[-1], eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for block in self.down_blocks:
            x = block(x)
        return F.relu(self.norm_out(x))


class SyncNet(nn.Module):
    """Visual ``[B, 3·n, S/2, S]`` and audio ``[B, 1, 80, M]`` → unit embeddings ``([B, D], [B, D])``."""

    def __init__(self, config: SyncNetConfig = SyncNetConfig()):
        super().__init__()
        self.config = config
        self.audio_encoder = DownEncoder(config.audio)
        self.visual_encoder = DownEncoder(config.visual)

    def embed_visual(self, faces: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.visual_encoder(faces).flatten(1), dim=1)

    def embed_audio(self, mel: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.audio_encoder(mel).flatten(1), dim=1)

    def forward(self, faces: torch.Tensor, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.embed_visual(faces), self.embed_audio(mel)

    # -- input layout -------------------------------------------------------------------
    def visual_windows(self, frames: torch.Tensor) -> torch.Tensor:
        """Clips ``[B, T, 3, H, W]`` in [-1, 1] (T ≥ num_frames) → every window ``[B·(T−n+1), 3n, S/2, S]``."""
        size, n = self.config.face_size, self.config.num_frames
        faces = F.interpolate(frames.flatten(0, 1), size=(size, size), mode="area")[:, :, size // 2 :]
        faces = faces.unflatten(0, frames.shape[:2])  # [B, T, 3, S/2, S]
        windows = faces.unfold(1, n, 1)  # [B, W, 3, S/2, S, n]
        return windows.permute(0, 1, 5, 2, 3, 4).flatten(2, 3).flatten(0, 1)

    def read_clips(self, frames: torch.Tensor) -> torch.Tensor:
        """Lip reading for the training loss: ``[B, F, 3, H, W]`` → visual embeddings ``[B·W, D]``.

        Chunks shorter than the expert's window are padded by repeating their last frame.
        """
        short = self.config.num_frames - frames.shape[1]
        if short > 0:
            frames = torch.cat([frames, frames[:, -1:].expand(-1, short, -1, -1, -1)], 1)
        return self.embed_visual(self.visual_windows(frames))


def log_mel(wave: np.ndarray, sample_rate: int = 16_000) -> np.ndarray:
    """Wav2Lip/LatentSync mel: pre-emphasis, |STFT| (800/200), 80 bands 55–7600 Hz, dB, to [-4, 4]. ``[80, M]``."""
    emphasised = np.append(wave[0], wave[1:] - 0.97 * wave[:-1]) if len(wave) else wave
    spectrum = np.abs(librosa.stft(emphasised, n_fft=800, hop_length=200, win_length=800))
    mel = librosa.feature.melspectrogram(S=spectrum, sr=sample_rate, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    db = 20 * np.log10(np.maximum(1e-5, mel)) - 20
    return np.clip(8 * (db + 100) / 100 - 4, -4, 4).astype(np.float32)


def audio_windows(mel: np.ndarray, starts: np.ndarray, fps: float, width: int) -> torch.Tensor:
    """``[80, M]`` → ``[len(starts), 1, 80, width]`` mel windows beginning at video frames ``starts``."""
    padded = np.pad(mel, ((0, 0), (0, width)), mode="edge")
    index = (np.asarray(starts) * MEL_PER_SECOND / fps).astype(int)
    return torch.from_numpy(np.stack([padded[:, i : i + width] for i in index]))[:, None]


class SyncNetScorer:
    """``prepare``'s sync check with a SyncNet: distances ``d(o)`` per audio shift (``sync.SyncScorer``)."""

    name = "syncnet"

    def __init__(self, model: SyncNet, batch: int = 32):
        self.model, self.batch = model.eval(), batch

    @torch.no_grad()
    def distances(self, crops: np.ndarray, wave: np.ndarray, fps: float, max_offset: int) -> np.ndarray:
        from .metrics import sync_distance_by_offset

        frames = torch.from_numpy(crops).permute(0, 3, 1, 2).float()[None] / 127.5 - 1  # [1, T, 3, H, W]
        n = self.model.config.num_frames
        if frames.shape[1] < n:
            raise ValueError(f"A clip of {frames.shape[1]} frames is shorter than the expert's {n}-frame window.")
        visual = torch.cat([self.model.embed_visual(v) for v in self.model.visual_windows(frames).split(self.batch)])
        starts = np.arange(len(visual))
        mel = audio_windows(log_mel(wave), starts, fps, self.model.config.mel_frames)
        audio = torch.cat([self.model.embed_audio(m) for m in mel.split(self.batch)])
        return sync_distance_by_offset(visual.numpy(), audio.numpy(), max_offset)


def save_syncnet(model: SyncNet, folder: Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(asdict(model.config)))
    return folder


def convert_syncnet(checkpoint: Path, folder: Path, config: SyncNetConfig = SyncNetConfig()) -> Path:
    """A pickled SyncNet checkpoint → ``folder`` (safetensors + config), read with ``weights_only=True``."""
    try:
        payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle.UnpicklingError for anything that is not plain tensors
        raise CheckpointError(f"{checkpoint} is not a tensors-only checkpoint ({exc}); refusing to load it.") from exc
    state = payload.get("state_dict", payload) if isinstance(payload, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{checkpoint} holds no state dict.")
    model = SyncNet(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{checkpoint} does not match the SyncNet layout: {exc}") from exc
    return save_syncnet(model, folder)


def load_syncnet(source: str | Path | None = None) -> SyncNet:
    """A SyncNet from a converted folder, or from the Hub (``SYNCNET_REPO``; converted once, cached)."""
    folder = Path(source) if source is not None and Path(source).is_dir() else _converted_from_hub(source)
    config = SyncNetConfig.from_dict(json.loads((folder / "config.json").read_text()))
    model = SyncNet(config)
    model.load_state_dict(load_file(folder / "model.safetensors"), strict=True)
    return model.eval().requires_grad_(False)


def _converted_from_hub(repo_id: str | None) -> Path:
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    repo_id = repo_id or SYNCNET_REPO
    folder = Path(constants.HF_HOME) / "starcaster" / repo_id.replace("/", "--") / "syncnet"
    if (folder / "model.safetensors").is_file():
        return folder
    try:
        pickle_path = hf_hub_download(repo_id, SYNCNET_FILE)
    except LocalEntryNotFoundError as exc:
        raise OfflineError(
            f"The sync expert {repo_id}/{SYNCNET_FILE} is not in the Hugging Face cache and the Hub cannot be "
            f"reached. Fetch it once while online: hf download {repo_id} {SYNCNET_FILE} — or use --sync synthtalk / none."
        ) from exc
    return convert_syncnet(Path(pickle_path), folder)
