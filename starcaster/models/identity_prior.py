"""The identity prior: a 512-D identity embedding → that person's canonical portrait.

Identity-only mode has no picture to anchor the first chunk, only the embedding. STARCaster
inherits that ability from Arc2Face (an embedding-conditioned face generator); the demo
checkpoint's video model, trained on a few hundred identities, never learned it well
(identity-only identity_cos ≈ 0.2 on held-out people, docs/training.md). Decoding a face from
an embedding is a *single-image* problem, though, so it can be learned from tens of thousands
of identities at the cost of one portrait each. This module is that decoder: it maps the
embedding to a frontal, neutral portrait, which the pipeline then treats exactly like a
user's reference picture. Identity stays soft: the portrait is imagined from the embedding,
and the video model still reads the embedding tokens.

The decoder is kernel ridge regression in closed form: standardised embedding → random
Fourier features → a linear readout onto the leading principal components of the training
portraits. Measured on held-out identities (docs/training.md, "identity prior"), it beat a
7 M-parameter convolutional decoder trained for the same wall time by SGD, fits in a minute,
and has no training dynamics to tune. Being a regression, it returns the *expected* portrait:
what the embedding does not determine comes out as its average, the safest anchor for a
video model that copies the portrait's appearance.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from ..pixels import to_pixels, to_uint8
from .weight_storage import Int8StorageMixin


class IdentityPrior(Int8StorageMixin, ModelMixin, ConfigMixin):
    """``[B, embed_dim]`` unit embeddings → portraits ``[B, 3, image_size, image_size]`` in [-1, 1].

    Stored: the embedding statistics, the readout and the portrait basis; the random
    frequencies are re-drawn from ``seed`` (so they cost no checkpoint space).
    """

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        embed_dim: int = 512,
        image_size: int = 64,
        num_features: int = 8192,
        bandwidth: float = 0.03,
        num_components: int = 64,
        seed: int = 0,
    ):
        super().__init__()
        pixels = 3 * image_size * image_size
        generator = torch.Generator().manual_seed(seed)
        frequencies = torch.randn(embed_dim, num_features, generator=generator) * bandwidth
        phases = torch.rand(num_features, generator=generator) * 2 * math.pi
        self.register_buffer("frequencies", frequencies, persistent=False)
        self.register_buffer("phases", phases, persistent=False)
        self.register_buffer("embedding_mean", torch.zeros(embed_dim))
        self.register_buffer("embedding_std", torch.ones(embed_dim))
        self.readout = nn.Parameter(torch.zeros(num_features, num_components))
        self.basis = nn.Parameter(torch.zeros(num_components, pixels))
        self.pixel_mean = nn.Parameter(torch.zeros(pixels))

    def features(self, embedding: torch.Tensor) -> torch.Tensor:
        """``[B, embed_dim]`` → random Fourier features ``[B, num_features]`` (fp32: cos needs the precision)."""
        z = (embedding.float() - self.embedding_mean.float()) / self.embedding_std.float()
        return torch.cos(z @ self.frequencies.float() + self.phases.float())

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        coefficients = self.features(embedding) @ self.readout.float()
        pixels = coefficients @ self.basis.float() + self.pixel_mean.float()
        size = self.config.image_size
        return pixels.view(-1, 3, size, size).to(self.dtype)

    @torch.no_grad()
    def fit(
        self,
        embeddings: torch.Tensor,
        portraits: np.ndarray,
        ridge: float = 1.0,
        chunk: int = 8192,
        pca_samples: int = 32768,
    ) -> None:
        """Closed-form fit on ``embeddings [N, embed_dim]`` and uint8 ``portraits [N, H, W, 3]``.

        Principal components of the portraits (randomised SVD on the first ``pca_samples``),
        then the ridge solution of features → component coefficients: least squares in pixel
        space within that basis. Sums run over chunks (80,000 fp32 portraits would be 4 GB),
        and the solve is in float64: the Gram matrix of N ≫ D features is too ill-conditioned
        for float32 (measured: float32 gave held-out pixel error 31/255, float64 11/255).
        """
        self.embedding_mean.copy_(embeddings.mean(0))
        self.embedding_std.copy_(embeddings.std(0).clamp_min(1e-6))
        spans = [slice(i, i + chunk) for i in range(0, len(portraits), chunk)]
        self.fit_basis(portraits, chunk, pca_samples)
        features = self.config.num_features
        gram = torch.zeros(features, features, dtype=torch.float64)
        rhs = torch.zeros(features, self.config.num_components, dtype=torch.float64)
        for span in spans:
            feats = self.features(embeddings[span])
            gram += (feats.T @ feats).double()
            rhs += (feats.T @ self.coefficients(portraits[span])).double()
        gram.diagonal().add_(ridge)
        self.readout.copy_(torch.linalg.solve(gram, rhs).float())

    @torch.no_grad()
    def fit_basis(self, portraits: np.ndarray, chunk: int = 8192, pca_samples: int = 32768) -> None:
        """The portrait space alone: mean portrait and leading principal components (randomised SVD)."""
        spans = [slice(i, i + chunk) for i in range(0, len(portraits), chunk)]
        mean = sum(_flat_pixels(portraits[s]).sum(0) for s in spans) / len(portraits)
        sample = _flat_pixels(portraits[:pca_samples]) - mean
        # svd_lowrank draws a random projection: seeded, without touching the caller's RNG
        with torch.random.fork_rng():
            torch.manual_seed(self.config.seed)
            _, _, components = torch.svd_lowrank(sample, q=self.config.num_components + 16, niter=3)
        self.basis.copy_(components[:, : self.config.num_components].T)  # [K, pixels], orthonormal rows
        self.pixel_mean.copy_(mean)

    @torch.no_grad()
    def coefficients(self, portraits: np.ndarray) -> torch.Tensor:
        """uint8 ``portraits [N, H, W, 3]`` → their coordinates ``[N, num_components]`` in the portrait basis."""
        return (_flat_pixels(portraits) - self.pixel_mean.float()) @ self.basis.float().T

    @torch.no_grad()
    def portrait(self, embedding: np.ndarray | torch.Tensor) -> np.ndarray:
        """One embedding ``(embed_dim,)`` → its portrait as uint8 ``[H, W, 3]``."""
        x = torch.as_tensor(np.asarray(embedding, np.float32)).reshape(1, -1).to(self.device)
        return to_uint8(self(x)[0])


def _flat_pixels(portraits: np.ndarray) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` → float ``[N, 3·H·W]``, channel-major like ``forward``'s output."""
    return to_pixels(portraits).flatten(1)
