"""STARCasterUNet: an identity-aware 2D UNet extended in time, with a reference encoder.

Forward contract (one place, CausVid-style):

* ``encode_conditions(identity [B,512], audio [B,F,W,M], views [B,F,2], keep)`` →
  cross-attention tokens ``[B*F, N_id + N_audio + N_cam, D]`` (identity repeated per frame).
* ``forward(latents [B,F,C,h,w], timestep, conditions, cache)`` → the model's estimate of the
  *clean* latents ``[B,F,C,h,w]`` (we always predict x0). The F frames of a chunk attend to
  each other and to the cache; the cache is only read here.
* ``encode_context(clean [B,F,C,h,w], conditions)`` → per-layer keys/values ``[B,F,N,C]`` of
  finished frames, to append to the KV cache: the reference encoder (a UNet copy run at
  t = 0, frames independent) makes features, the denoiser's own ``to_k``/``to_v`` project them.
  With ``context_source="denoiser"`` (the live student) finished chunks skip that pass: the
  keys/values the denoiser's last step computed for the chunk (``forward(..., own_context=)``)
  go into the cache as they are (Self-Forcing style); the reference encoder then encodes only
  the portrait, once per video.

Every size comes from the config; ``configs.py`` holds the named presets.
"""

from __future__ import annotations

import torch
from diffusers import UNet2DConditionModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from einops import rearrange, repeat
from torch import nn

from .attention import (
    AttentionContext,
    CaptureSelfAttnProcessor,
    DecoupledCrossAttnProcessor,
    ExtendedSelfAttnProcessor,
)
from .kv_cache import KVCache, LayerKV
from .projectors import Arc2FaceIdentityProjector, AudioProjector, CameraProjector, IdentityProjector
from .weight_storage import Int8StorageMixin

STREAMS = ("identity", "audio", "camera")
CONTEXT_SOURCES = ("reference", "denoiser")  # what writes a finished chunk into the cache


class STARCasterUNet(Int8StorageMixin, ModelMixin, ConfigMixin):
    """Denoiser + reference encoder + condition projectors, saved and loaded as one component."""

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        sample_size: int = 16,
        latent_channels: int = 4,
        block_out_channels: tuple[int, ...] = (64, 128, 192),
        down_block_types: tuple[str, ...] = ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types: tuple[str, ...] = ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        layers_per_block: int = 1,
        attention_heads: int | tuple[int, ...] = 4,
        cross_attention_dim: int = 128,
        norm_num_groups: int = 32,
        identity_projector: str = "mlp",
        identity_embed_dim: int = 512,
        identity_tokens: int = 4,
        clip_config: dict | None = None,
        audio_n_mels: int = 40,
        audio_context: int = 2,
        camera_tokens: int = 1,
        camera_bands: int = 4,
        max_context_frames: int = 16,
        identity_encoder_type: str = "builtin",
        reference_concat: bool = False,
        audio_extractor: str = "logmel",  # or "wav2vec2": then audio_n_mels is its hidden size
        audio_model: str | None = None,  # wav2vec2 Hub id or folder (audio.audio_config_for reads it)
        audio_model_revision: str | None = None,
        audio_dropout: float = 0.1,  # in the audio projector's transformer layer (training only)
        context_source: str = "reference",  # or "denoiser": finished chunks' keys/values from the denoising pass
    ):
        super().__init__()
        if context_source not in CONTEXT_SOURCES:
            raise ValueError(f"context_source must be one of {CONTEXT_SOURCES}, got {context_source!r}")
        backbone_kwargs = dict(
            sample_size=sample_size,
            in_channels=latent_channels,
            out_channels=latent_channels,
            block_out_channels=tuple(block_out_channels),
            down_block_types=tuple(down_block_types),
            up_block_types=tuple(up_block_types),
            layers_per_block=layers_per_block,
            attention_head_dim=attention_heads,  # diffusers' legacy name: it is the head count
            cross_attention_dim=cross_attention_dim,
            norm_num_groups=norm_num_groups,
        )
        # reference_concat: the portrait's latents also enter the denoiser pixel-aligned, as extra
        # input channels (zeros without a portrait) — the cheapest reference conditioning, which the
        # feasibility prototype found gives sharp faces (docs/architecture.md).
        in_channels = latent_channels * (2 if reference_concat else 1)
        self.backbone = UNet2DConditionModel(**{**backbone_kwargs, "in_channels": in_channels})
        self.reference_net = UNet2DConditionModel(**backbone_kwargs)
        self.identity_proj = self._make_identity_projector()
        self.audio_proj = AudioProjector(audio_n_mels, 2 * audio_context + 1, cross_attention_dim, audio_dropout)
        self.camera_proj = CameraProjector(cross_attention_dim, camera_tokens, camera_bands)
        self._install_processors()
        # Inference-only: run the attention products in this dtype (bf16), None = the model's.
        # Not part of the config or the weights; the pipeline's ``precision`` sets it.
        self.attention_dtype: torch.dtype | None = None

    # -- construction -------------------------------------------------------------------
    def _make_identity_projector(self) -> nn.Module:
        cfg = self.config
        if cfg.identity_projector == "arc2face":
            return Arc2FaceIdentityProjector(dict(cfg.clip_config or {}), cfg.identity_embed_dim)
        if cfg.identity_projector == "mlp":
            return IdentityProjector(cfg.identity_embed_dim, cfg.cross_attention_dim, cfg.identity_tokens)
        raise ValueError(f"identity_projector must be 'mlp' or 'arc2face', got {cfg.identity_projector!r}")

    @property
    def stream_tokens(self) -> tuple[int, int, int]:
        return (self.identity_proj.num_tokens, self.audio_proj.num_tokens, self.camera_proj.num_tokens)

    def _install_processors(self) -> None:
        backbone, reference = {}, {}
        for key in self.backbone.attn_processors:
            name = key.removesuffix(".processor")
            attn = self.backbone.get_submodule(name)
            if name.endswith("attn1"):
                backbone[key] = ExtendedSelfAttnProcessor(name, attn.inner_dim, self.config.max_context_frames)
                reference[key] = CaptureSelfAttnProcessor(name)
            else:
                cross_dim = self.config.cross_attention_dim
                backbone[key] = DecoupledCrossAttnProcessor(self.stream_tokens, cross_dim, attn.inner_dim)
                reference[key] = DecoupledCrossAttnProcessor(self.stream_tokens, cross_dim, attn.inner_dim)
        self.backbone.set_attn_processor(backbone)
        self.reference_net.set_attn_processor(reference)

    def self_attention_layers(self) -> dict[str, ExtendedSelfAttnProcessor]:
        """The denoiser's extended self-attention processors by layer name (the cache's keys)."""
        procs = self.backbone.attn_processors.values()
        return {p.name: p for p in procs if isinstance(p, ExtendedSelfAttnProcessor)}

    def new_cache(self, window_frames: int | None = 8, sink_frames: int = 1) -> KVCache:
        if window_frames is not None and window_frames + sink_frames > self.config.max_context_frames:
            raise ValueError(
                f"window_frames + sink_frames = {window_frames + sink_frames} exceeds this model's "
                f"max_context_frames = {self.config.max_context_frames}"
            )
        return KVCache(sink_frames=sink_frames, window_frames=window_frames)

    # -- conditions ---------------------------------------------------------------------
    def encode_conditions(
        self,
        identity: torch.Tensor,
        audio: torch.Tensor,
        views: torch.Tensor,
        keep: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """identity ``[B,512]``, audio ``[B,F,W,M]``, views ``[B,F,2]`` (deg) → ``[B*F, N, D]``.

        ``keep[stream]`` is a bool ``[B]``: False replaces that stream by its null tokens.
        """
        keep = keep or {}
        frames = audio.shape[1]
        per_frame_keep = {s: repeat(k, "b -> (b f)", f=frames) for s, k in keep.items()}
        ident = self.identity_proj(identity, keep.get("identity"))  # [B, N_id, D]
        ident = repeat(ident, "b n d -> (b f) n d", f=frames)
        sound = self.audio_proj(audio.flatten(0, 1), per_frame_keep.get("audio"))  # [B*F, W, D]
        camera = self.camera_proj(views.flatten(0, 1), per_frame_keep.get("camera"))  # [B*F, N_cam, D]
        return torch.cat([ident, sound.to(ident.dtype), camera.to(ident.dtype)], dim=1)

    # -- denoising and context ----------------------------------------------------------
    def forward(
        self,
        latents: torch.Tensor,
        timestep: torch.Tensor | float,
        conditions: torch.Tensor,
        cache: KVCache | None = None,
        cfg_groups: int = 1,
        reference: torch.Tensor | None = None,
        own_context: dict | None = None,
    ) -> torch.Tensor:
        """Noisy chunk ``[B,F,C,h,w]`` at ``timestep`` → predicted clean chunk ``[B,F,C,h,w]``.

        ``reference`` ``[B',1,C,h,w]`` (B' divides B: one per video, repeated over CFG groups) is
        the portrait's latents; only ``reference_concat`` models read it (None → zeros).
        ``own_context``: a dict that receives the chunk's keys/values per self-attention layer
        ``[B/G, F, N, C]`` (with their graph where grad is on), for ``context_source="denoiser"``.
        """
        batch, frames = latents.shape[:2]
        timesteps = _per_frame_timesteps(timestep, batch, frames, latents.device)
        context = AttentionContext(
            frames=frames, cache=cache, cfg_groups=cfg_groups, attention_dtype=self.attention_dtype,
            own_context=own_context,
        )  # fmt: skip
        if self.config.reference_concat:
            latents = torch.cat([latents, _aligned_reference(reference, latents)], dim=2)
        x0 = self.backbone(
            latents.flatten(0, 1),  # [B*F, C, h, w]
            timesteps,
            encoder_hidden_states=conditions,
            cross_attention_kwargs={"context": context},
        ).sample
        return rearrange(x0, "(b f) c h w -> b f c h w", f=frames)

    def encode_context(
        self, clean: torch.Tensor, conditions: torch.Tensor, timestep: torch.Tensor | float = 0
    ) -> dict[str, LayerKV]:
        """Finished frames ``[B,F,C,h,w]`` → keys/values per self-attention layer ``[B,F,N,C]``.

        ``timestep`` > 0 lets training show the encoder lightly noised context (noise
        augmentation); inference always encodes clean frames at t = 0.
        """
        batch, frames = clean.shape[:2]
        context = AttentionContext(frames=1, capture={}, attention_dtype=self.attention_dtype)
        self.reference_net(
            clean.flatten(0, 1),
            _per_frame_timesteps(timestep, batch, frames, clean.device),
            encoder_hidden_states=conditions,
            cross_attention_kwargs={"context": context},
        )
        backbone_layers = self.self_attention_layers()
        return {
            name: backbone_layers[name].project_context(self.backbone.get_submodule(name), features, frames)
            for name, features in context.capture.items()
        }

    def context_entry(
        self, clean: torch.Tensor, conditions: torch.Tensor, own: dict | None = None
    ) -> dict[str, LayerKV]:
        """What finished frames ``[B,F,C,h,w]`` (their condition tokens ``[B*F, N, D]``) add to the KV cache:
        the reference encoder's keys/values, or for ``context_source="denoiser"`` ``own``, the keys/values
        the last denoising step recorded for them (``forward(..., own_context=)``)."""
        if not self.context_from_denoiser:
            return self.encode_context(clean, conditions)
        if own is None:
            raise ValueError(
                "this model's context comes from its own denoising pass (context_source='denoiser'): "
                "frames it did not make can't enter its cache"
            )
        return own

    @property
    def context_from_denoiser(self) -> bool:
        """True when finished chunks enter the cache as the denoiser's own keys/values."""
        return self.config.context_source == "denoiser"

    def encode_reference(self, latents: torch.Tensor, identity: torch.Tensor, view: torch.Tensor) -> dict[str, LayerKV]:
        """The reference portrait ``[B,1,C,h,w]`` seen from ``view`` ``[B,2]`` → cache keys/values.

        A portrait has no sound: its audio stream is the null tokens, so inference and training
        encode the cache sink exactly alike.
        """
        batch = latents.shape[0]
        cfg = self.config
        silent = latents.new_zeros(batch, 1, 2 * cfg.audio_context + 1, cfg.audio_n_mels)
        keep = {"audio": torch.zeros(batch, dtype=torch.bool, device=latents.device)}
        conditions = self.encode_conditions(identity, silent, view.view(batch, 1, 2).to(latents.dtype), keep)
        return self.encode_context(latents, conditions)


def _aligned_reference(reference: torch.Tensor | None, latents: torch.Tensor) -> torch.Tensor:
    """The portrait's latents broadcast to every frame of ``latents`` (zeros without one)."""
    if reference is None:
        return torch.zeros_like(latents)
    reference = reference.to(latents.dtype).repeat(latents.shape[0] // reference.shape[0], 1, 1, 1, 1)
    return reference.expand(-1, latents.shape[1], -1, -1, -1)


def with_reference_concat(unet: STARCasterUNet) -> STARCasterUNet:
    """The same model with pixel-aligned reference input channels, zero-initialised.

    The new channels start at zero, so the converted model computes exactly what ``unet`` did
    until training teaches it to read the portrait (like inpainting UNets extend ``conv_in``).
    """
    if unet.config.reference_concat:
        return unet
    settings = {k: v for k, v in unet.config.items() if not k.startswith("_")}
    converted = STARCasterUNet(**{**settings, "reference_concat": True}).to(unet.device)
    state = unet.state_dict()
    weight = state["backbone.conv_in.weight"]
    state["backbone.conv_in.weight"] = torch.cat([weight, torch.zeros_like(weight)], dim=1)
    converted.load_state_dict(state)
    return converted


def _per_frame_timesteps(timestep, batch: int, frames: int, device) -> torch.Tensor:
    """Scalar, ``[B]`` or ``[B, F]`` timesteps → ``[B*F]`` (diffusion forcing may vary per frame)."""
    t = torch.as_tensor(timestep, device=device)
    if t.ndim == 0:
        return t.expand(batch * frames)
    if t.ndim == 1:
        return repeat(t, "b -> (b f)", f=frames)
    return t.flatten()
