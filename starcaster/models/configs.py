"""Named model presets (flux-style ``configs = {name: spec}``): ``tiny``, ``demo``, ``real``.

One job: what a model *is* — the architecture hyper-parameters of each named model (UNet, VAE,
identity encoder, scheduler). Not the user's options for a run (``starcaster/request.py``), not
the training recipe (``training/config.py``, which names a preset here), and not the building of
a random-weight pipeline from one (``starcaster/presets.build_pipeline``).

* ``real``: 512² frames, the SD-1.5 VAE, an SD-1.5-shaped UNet (the Arc2Face backbone) with
  Arc2Face's CLIP-token identity projection, so ``FoivosPar/Arc2Face`` weights load into the
  denoiser and its reference encoder (see ``starcaster.convert``); identities are insightface
  antelopev2 (glintr100) ArcFace embeddings; audio is wav2vec2-base features (768-D per frame).
* ``demo``: 64² frames as pixel-unshuffle latents (4×4 patches folded into 48 channels on a
  16×16 grid: exact, no VAE to train), a few-M-parameter UNet, a built-in identity encoder;
  trains on SynthTalk on a CPU.
* ``demo-kl``: the same UNet on a small learned VAE (4× down, 8 latent channels) — the
  bundled checkpoint up to run 3b; its reconstructions capped identity_cos at 0.50, see
  docs/training.md.
* ``tiny``: the smallest thing that exercises every code path, for tests.
* ``real-small``: the ``real`` topology at reduced width — SD-1.5's UNet layout (4 levels, 2 layers
  each, cross-attention on the top three, 8 heads), Arc2Face's CLIP-token identity projection with
  a 2-layer 512-wide CLIP, an SD-VAE-shaped autoencoder (4 latent channels, 1/8 resolution, scale
  0.18215) at 128² — so the real code paths train on a CPU (``configs/real-small.yaml``).

The scheduler is DDIM predicting the clean sample, zero-terminal-SNR betas and trailing
timesteps: the first of few steps then starts from pure noise, and predicting x0 is what
made a tiny model learn in the feasibility runs (see docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

SCHEDULER = dict(
    num_train_timesteps=1000,
    beta_schedule="scaled_linear",
    beta_start=0.00085,
    beta_end=0.012,
    prediction_type="sample",
    timestep_spacing="trailing",
    rescale_betas_zero_snr=True,
    clip_sample=False,
    set_alpha_to_one=False,
)

WAV2VEC2_MODEL = "facebook/wav2vec2-base-960h"  # Apache-2.0; the real preset's audio encoder

CLIP_VIT_L14_TEXT = dict(
    vocab_size=49408,
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    projection_dim=768,
)


@dataclass(frozen=True)
class ModelPreset:
    """Everything needed to build a fresh (random) set of pipeline components."""

    image_size: int
    unet: dict
    vae: dict
    identity_encoder: dict | None
    scheduler: dict = field(default_factory=lambda: dict(SCHEDULER))
    vae_class: str = "AutoencoderKL"  # or "PixelUnshuffleVAE" (models/pixel_vae.py)


def _vae(channels: tuple[int, ...], latent: int, groups: int, layers: int, size: int, scale: float) -> dict:
    return dict(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * len(channels),
        up_block_types=("UpDecoderBlock2D",) * len(channels),
        block_out_channels=channels,
        latent_channels=latent,
        norm_num_groups=groups,
        layers_per_block=layers,
        sample_size=size,
        scaling_factor=scale,
    )


DEMO_UNET = dict(
    sample_size=16,
    latent_channels=8,
    block_out_channels=(64, 96, 128),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    layers_per_block=1,
    attention_heads=4,
    cross_attention_dim=128,
    norm_num_groups=32,
    identity_tokens=4,
    audio_n_mels=40,
    audio_context=2,
    camera_bands=4,
    max_context_frames=16,
)


SMALL_CLIP_TEXT = dict(  # CLIP-L's vocabulary and prompt, 2 layers; 512 wide: the ArcFace vector fits a token
    vocab_size=49408,
    hidden_size=512,
    intermediate_size=1024,
    num_hidden_layers=2,
    num_attention_heads=8,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    projection_dim=512,
)


# Stable Diffusion 1.5's UNet layout (Arc2Face's backbone) and the conditioning of the real-scale
# presets: `real` uses it at full width, `real-small` at a fraction of it.
SD15_LAYOUT = dict(
    latent_channels=4,
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    layers_per_block=2,
    attention_heads=8,
    norm_num_groups=32,
    identity_projector="arc2face",
    audio_context=4,
    camera_tokens=2,
    camera_bands=8,
    max_context_frames=16,
)

PRESETS: dict[str, ModelPreset] = {
    "tiny": ModelPreset(
        image_size=32,
        unet=dict(
            sample_size=16,
            latent_channels=4,
            block_out_channels=(16, 32),
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            layers_per_block=1,
            attention_heads=2,
            cross_attention_dim=32,
            norm_num_groups=8,
            identity_tokens=2,
            audio_n_mels=16,
            audio_context=1,
            camera_bands=2,
            max_context_frames=16,
        ),
        vae=_vae((16, 16), 4, 8, 1, 32, 1.0),
        identity_encoder=dict(image_size=32, channels=(8, 16)),
    ),
    "demo": ModelPreset(
        image_size=64,
        unet={**DEMO_UNET, "latent_channels": 48},
        vae=dict(in_channels=3, downscale_factor=4, sample_size=64, scaling_factor=1.0),
        vae_class="PixelUnshuffleVAE",
        identity_encoder=dict(image_size=64),
    ),
    "demo-kl": ModelPreset(
        image_size=64,
        unet=DEMO_UNET,
        vae=_vae((32, 64, 64), 8, 32, 1, 64, 1.0),
        identity_encoder=dict(image_size=64),
    ),
    "real": ModelPreset(
        image_size=512,
        unet=dict(
            **SD15_LAYOUT,
            sample_size=64,
            block_out_channels=(320, 640, 1280, 1280),
            cross_attention_dim=768,
            clip_config=CLIP_VIT_L14_TEXT,
            audio_extractor="wav2vec2",  # per-frame wav2vec2 features (audio.audio_config_for)
            audio_model=WAV2VEC2_MODEL,
            audio_n_mels=768,  # the projector's input width: wav2vec2-base's hidden size
            identity_encoder_type="insightface-antelopev2",
        ),
        vae=_vae((128, 256, 512, 512), 4, 32, 2, 512, 0.18215),
        identity_encoder=None,
    ),
    "real-small": ModelPreset(
        image_size=128,
        unet=dict(
            **SD15_LAYOUT,  # the real topology at a fraction of the width
            sample_size=16,
            block_out_channels=(32, 64, 128, 128),
            cross_attention_dim=512,
            clip_config=SMALL_CLIP_TEXT,
            audio_n_mels=80,
        ),
        vae=_vae((32, 64, 64, 64), 4, 32, 2, 128, 0.18215),
        identity_encoder=dict(image_size=128),  # stands in for insightface (which needs real faces)
    ),
}


def get_preset(name: str) -> ModelPreset:
    if name not in PRESETS:
        raise ValueError(f"Unknown model preset {name!r}; choose one of {sorted(PRESETS)}.")
    return PRESETS[name]
