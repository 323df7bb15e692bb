"""Small CNN "experts" that read SynthTalk frames: mouth, pose, audio-visual sync and identity.

They turn generated pixels into numbers the metrics compare with ground truth. All take
uint8 frames ``[N, H, W, 3]`` (any size; resized to 64²) through ``to_input``; each is a few
hundred thousand parameters, trained in minutes on CPU by ``starcaster.eval.training``.

- ``MouthRegressor``: frame → (mouth_open, lip_round) in [0, 1].
- ``PoseRegressor``: frame → camera (azimuth / 90°, elevation / 30°).
- ``SyncExpert``: 5 consecutive frames and the audio features of the middle frame
  (``starcaster.audio.frame_features`` ``[5, 40]``) → unit embeddings; aligned pairs have high
  cosine. ``lip_reading_loss`` makes it the training's differentiable lip-sync supervision.
- ``IdentityExpert``: frame → 512-D unit embedding (cosine-softmax classifier over training
  identities); its pooled trunk features are the FID/FVD feature space.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from ..pixels import to_pixels

INPUT_SIZE = 64
SYNC_FRAMES = 5
WEIGHTS_DIR = Path(__file__).parent / "weights"
AZIMUTH_SCALE, ELEVATION_SCALE = 90.0, 30.0


def to_input(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` → float ``[N, 3, 64, 64]`` in [-1, 1] (area-resized if needed)."""
    x = to_pixels(frames)
    if x.shape[-1] != INPUT_SIZE or x.shape[-2] != INPUT_SIZE:
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="area")
    return x


class ConvTrunk(nn.Module):
    """Four stride-2 conv blocks: ``[N, C, 64, 64]`` → ``[N, widths[-1], 4, 4]``."""

    def __init__(self, in_channels: int = 3, widths: tuple[int, ...] = (16, 32, 64, 96)):
        super().__init__()
        layers: list[nn.Module] = []
        for width in widths:
            layers += [nn.Conv2d(in_channels, width, 3, stride=2, padding=1), nn.GroupNorm(8, width), nn.SiLU()]
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.SiLU()]
            in_channels = width
        self.net = nn.Sequential(*layers)
        self.out_channels = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _SpatialHead(nn.Module):
    """Flatten the 4×4 map (keeps *where* things are, which pose and mouth need) → MLP."""

    def __init__(self, channels: int, outputs: int, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(channels * 16, hidden), nn.SiLU(), nn.Linear(hidden, outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MouthRegressor(nn.Module):
    """Frame ``[N, 3, 64, 64]`` → ``[N, 2]`` (mouth_open, lip_round), sigmoid-bounded to [0, 1]."""

    def __init__(self):
        super().__init__()
        self.trunk = ConvTrunk()
        self.head = _SpatialHead(self.trunk.out_channels, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(self.trunk(x)))


class PoseRegressor(nn.Module):
    """Frame ``[N, 3, 64, 64]`` → ``[N, 2]`` camera (azimuth / 90°, elevation / 30°)."""

    def __init__(self):
        super().__init__()
        self.trunk = ConvTrunk()
        self.head = _SpatialHead(self.trunk.out_channels, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))

    def degrees(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, 2]`` (azimuth, elevation) in degrees."""
        return self(x) * torch.tensor([AZIMUTH_SCALE, ELEVATION_SCALE], device=x.device)


class SyncExpert(nn.Module):
    """SyncNet-style pair of encoders into one 128-D unit sphere.

    visual: ``[N, 5, 3, 64, 64]`` (frames t-2..t+2) → per-frame ``ConvTrunk`` → per-frame
    projection → the 5 frames concatenated → MLP → ``[N, 128]``; audio: ``[N, 5, 40]``
    (``frame_features`` of frame t) → MLP → ``[N, 128]``. ``logits`` = scale · cos + bias, trained
    with BCE (aligned = 1, shifted or other audio = 0). The trunk starts from the mouth
    regressor's (it already finds the mouth in every view), which makes training fast and stable.
    """

    def __init__(self, n_mels: int = 40, dim: int = 128, frame_dim: int = 64):
        super().__init__()
        self.trunk = ConvTrunk()
        self.frame_proj = nn.Sequential(nn.Flatten(), nn.Linear(self.trunk.out_channels * 16, frame_dim), nn.SiLU())
        self.visual_head = nn.Sequential(nn.Linear(SYNC_FRAMES * frame_dim, 256), nn.SiLU(), nn.Linear(256, dim))
        self.audio = nn.Sequential(
            nn.Flatten(),
            nn.Linear(SYNC_FRAMES * n_mels, 256),
            nn.SiLU(),
            nn.Linear(256, 256),
            nn.SiLU(),
            nn.Linear(256, dim),
        )
        self.scale = nn.Parameter(torch.tensor(5.0))
        self.bias = nn.Parameter(torch.tensor(-2.0))

    def embed_visual(self, frames: torch.Tensor) -> torch.Tensor:
        """``[N, 5, 3, 64, 64]`` → ``[N, dim]`` unit vectors."""
        return self.embed_trunk_features(self.trunk(frames.flatten(0, 1)).unflatten(0, frames.shape[:2]))

    def embed_trunk_features(self, features: torch.Tensor) -> torch.Tensor:
        """``[N, 5, C, 4, 4]`` trunk maps → ``[N, dim]`` (lets training reuse precomputed trunk features)."""
        per_frame = self.frame_proj(features.flatten(0, 1)).unflatten(0, features.shape[:2])  # [N, 5, frame_dim]
        return F.normalize(self.visual_head(per_frame.flatten(1)), dim=-1)

    def embed_audio(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.audio(features), dim=-1)

    def logits(self, frames: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return self.pair_logits(self.embed_visual(frames), self.embed_audio(features))

    def pair_logits(self, visual: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return self.scale * (visual * audio).sum(-1) + self.bias


class IdentityExpert(nn.Module):
    """Frame → 512-D unit embedding; ``classes`` cosine-softmax weights only matter for training."""

    def __init__(self, classes: int = 256, dim: int = 512):
        super().__init__()
        self.trunk = ConvTrunk()
        self.project = nn.Sequential(nn.Flatten(), nn.Linear(self.trunk.out_channels * 16, dim))
        self.classes = nn.Parameter(torch.randn(classes, dim) * 0.01)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally pooled trunk features ``[N, 96]``: the FID/FVD feature space."""
        return self.trunk(x).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.project(self.trunk(x)), dim=-1)

    def class_logits(self, embedding: torch.Tensor, scale: float = 16.0) -> torch.Tensor:
        return scale * embedding @ F.normalize(self.classes, dim=-1).T


def lip_reading_loss(expert: SyncExpert, frames: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Differentiable sync loss for training: -log σ(logit) of generated frames with their audio.

    ``frames`` ``[B, 5, 3, 64, 64]`` in [-1, 1] (e.g. ``to_input`` layout), ``features`` ``[B, 5, 40]``.
    Freeze the expert (``requires_grad_(False)``, ``eval()``) so only the generator learns.
    """
    return F.softplus(-expert.logits(frames, features)).mean()


EXPERTS: dict[str, type[nn.Module]] = {
    "mouth": MouthRegressor,
    "pose": PoseRegressor,
    "sync": SyncExpert,
    "identity": IdentityExpert,
}


def save_expert(model: nn.Module, name: str, directory: Path = WEIGHTS_DIR) -> Path:
    """Store weights as fp16 safetensors (they are small and fp16 is plenty for evaluation)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.safetensors"
    save_file({k: v.detach().half().contiguous() for k, v in model.state_dict().items()}, path)
    return path


def load_expert(name: str, directory: Path = WEIGHTS_DIR) -> nn.Module:
    """An expert in eval mode, fp32, gradients off; raises FileNotFoundError with the retrain command."""
    path = Path(directory) / f"{name}.safetensors"
    if not path.is_file():
        raise FileNotFoundError(
            f"Missing expert weights {path}: run `python -m starcaster.eval.training` to train them."
        )
    state = {k: v.float() for k, v in load_file(path).items()}
    model = EXPERTS[name](**({"classes": state["classes"].shape[0]} if name == "identity" else {}))
    model.load_state_dict(state)
    return model.eval().requires_grad_(False)
