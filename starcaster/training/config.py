"""Training configuration: dataclasses, loaded from YAML files in ``configs/``.

One job: how to *train* (stages, steps, batch sizes, learning rates, loss weights, rollout
settings). The model's architecture is the preset that ``RecipeConfig.preset`` names
(``models/configs.py``); a generation run's options are ``starcaster/request.py``.

One ``RecipeConfig`` describes the whole staged recipe (VAE → identity encoder → motion →
reference → self-forcing → view); ``--stage`` runs any one of them alone, starting from the
previous stage's weights in ``out/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

STAGE_ORDER = (
    "vae",
    "decoder",
    "identity",
    "prior",
    "motion",
    "reference",
    "self_forcing",
    "view",
    "distill",
    "on_policy",
    "own_context",
    "live_view",
    "refiner",
)


@dataclass
class VaeConfig:
    steps: int = 1500
    batch_size: int = 32
    lr: float = 1e-3
    kl_weight: float = 1e-6
    max_minutes: float | None = None


@dataclass
class DecoderConfig:
    """Decoder-only refinement of the VAE (encoder frozen); ``steps: 0`` skips it."""

    steps: int = 0
    batch_size: int = 32
    lr: float = 5e-4
    latent_noise: float = 0.1  # up to this × latent std of noise on the decoder's input
    max_minutes: float | None = None


@dataclass
class IdentityConfig:
    steps: int = 800
    batch_size: int = 64
    lr: float = 2e-3
    margin: float = 0.3  # additive angular margin (ArcFace)
    scale: float = 24.0
    max_minutes: float | None = None
    # then: fine-tune it to describe the canonical face (``training/identity_canonical.py``); 0 skips it
    canonical_steps: int = 0
    canonical_batch: int = 32  # fresh identities per step, two renders each
    canonical_lr: float = 3e-4  # the encoder's (the linear head's: 1e-2)
    canonical_components: int = 64  # principal components of the canonical portraits the head predicts
    canonical_workers: int = 2  # data-loader processes rendering the identities
    canonical_basis: int = 4096  # canonical portraits whose principal components are the head's targets
    canonical_max_minutes: float | None = None


@dataclass
class PriorConfig:
    """The identity prior (embedding → portrait, ``training/identity_prior.py``); ``identities: 0`` skips it."""

    identities: int = 0  # training identities, one rendered portrait each (the bundle: 80,000)
    features: int = 8192  # random Fourier features of the standardised embedding
    bandwidth: float = 0.03  # their frequency scale
    components: int = 64  # principal components of the portraits the readout predicts
    ridge: float = 1.0
    workers: int = 2  # processes rendering the portraits


@dataclass
class RefinerConfig:
    """The frame refiner (``training/refiner.py``) on the finished video model; ``steps: 0`` skips it."""

    steps: int = 0
    batch_size: int = 32
    lr: float = 1e-3
    windows: int = 1600  # training windows the video model rolls out to make the pairs
    rollout_batch: int = 8
    chunks: int = 2  # chunks rolled out per window after the real context (the later ones from its own)
    chunk_length: int = 4
    rollout_steps: int = 4  # sampler steps of the pairs' rollout: the video model's training sampler (inference: 1)
    prior_prob: float = 0.3  # share of windows whose portrait is the identity prior's (identity-only mode)
    none_prob: float = 0.1  # share with no portrait at all (the video model alone)
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 128])
    edge_weight: float = 1.0
    adversarial_weight: float = 0.0  # > 0: a conditional PatchGAN critic rewards believable detail (pix2pix)
    init: str | None = None  # a refiner folder to start from (e.g. an L1-trained one), instead of a fresh one
    pairs: str | None = None  # reuse this pairs.npz (e.g. the L1 sitting's) instead of <out>/refiner/pairs.npz
    # distillation: a finished refiner folder whose outputs on the generated frames are the targets
    # instead of the ground truth (a lighter student of it: set narrower ``channels``)
    teacher: str | None = None
    max_minutes: float | None = None


@dataclass
class StageConfig:
    """One video-model stage. ``kind`` picks the step: teacher-forced, self-forcing rollout or
    distillation into a lighter student (``training/distillation.py``)."""

    name: str
    steps: int
    batch_size: int = 8
    lr: float = 4e-4
    kind: str = "teacher"  # "teacher" | "self_forcing" | "distill"
    chunk_length: int = 4
    context_frames: int = 4  # ground-truth past frames given as context (teacher forcing)
    reference_prob: float = 0.0  # chance the reference portrait is the cache sink
    first_chunk_prob: float = 0.25  # chance of no past frames (the first chunk of a video)
    context_noise_t: int = 100  # context frames are noised to t ∈ [0, this] (noise augmentation)
    rollout_chunks: int = 3  # self-forcing: chunks generated from the model's own output
    train_window: int = 12  # self-forcing: KV window in training (inference uses 8)
    noise_sharing: float = (
        0.0  # self-forcing: share of the rollout's starting noise common to all frames (as inference)
    )
    num_inference_steps: int = 4
    multiview_prob: float = 0.0  # chance a batch is a multi-view static set (view axis)
    trainable: str = "all"  # "all" | "view" (camera stream + self-attention only)
    lip_weight: float = 0.0  # weight of the lip-reading loss (mouth expert on decoded frames)
    identity_weight: float = 0.0  # weight of the identity loss (frozen identity encoder on decoded frames)
    view_weight: float = 0.0  # weight of the view loss (a frozen pose regressor on decoded frames, per degree)
    reference_concat: bool = False  # give the UNet pixel-aligned reference channels (zero-initialised)
    motion_weight: float = 4.0  # extra loss weight where ground-truth frames move (the mouth)
    drop_identity: float = 0.1
    drop_audio: float = 0.1
    drop_camera: float = 0.05
    max_minutes: float | None = None  # wall-clock budget: stop early (state saved) when exceeded
    # distill (training/distillation.py):
    teacher: str | None = None  # the finished model to learn from (default: the stages before, else init_from)
    student: dict = field(default_factory=dict)  # the student's changes to the teacher's UNet settings (a stage
    # continuing a student: changes that keep the weights' shapes, e.g. {context_source: denoiser})
    prior_prob: float = 0.3  # share of sinks that are the identity prior's portrait (identity-only mode)
    on_policy_prob: float = 0.0  # share of steps on the student's own rollout (the teacher's target given it)


@dataclass
class RecipeConfig:
    preset: str = "demo"
    data: Path = Path("data/synthtalk")
    out: Path = Path("runs/demo")
    seed: int = 0
    bf16: bool = True
    ema_decay: float = 0.995
    grad_clip: float = 1.0
    log_every: int = 20
    save_every: int = 100
    gradient_checkpointing: bool = False
    num_workers: int = 0
    init_from: Path | None = None  # a pipeline folder to continue from (its VAE, encoder and UNet)
    components_from: Path | None = None  # a pipeline folder whose VAE and identity encoder are reused (fresh UNet)
    sample_seconds: float = 2.0  # per-stage sample video of a held-out val clip (0 = none)
    # the lip-reading loss's expert: "mouth" (SynthTalk's mouth regressor) or "syncnet" (real faces,
    # eval/syncnet.py; ``lip_expert_weights``: a converted folder or Hub repo id, default LatentSync's)
    lip_expert: str = "mouth"
    lip_expert_weights: str | None = None
    # the view loss's pose regressor: a folder holding ``pose.safetensors`` (default: training/view_expert/,
    # SynthTalk's regressor trained apart from the evaluation's, so the metric does not grade its own teacher)
    view_expert_weights: Path | None = None
    # changes to the preset's UNet settings for a fresh model, e.g. {audio_extractor: wav2vec2,
    # audio_model: <folder>, audio_n_mels: <its hidden size>}
    unet_overrides: dict = field(default_factory=dict)
    vae: VaeConfig = field(default_factory=VaeConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)
    refiner: RefinerConfig = field(default_factory=RefinerConfig)
    stages: list[StageConfig] = field(default_factory=list)

    def stage(self, name: str) -> StageConfig:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"No stage {name!r} in this config; it has {[s.name for s in self.stages]}.")


def _build(cls, values: dict):
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"Unknown {cls.__name__} settings: {sorted(unknown)}")
    return cls(**values)


def load_config(path: str | Path, **overrides) -> RecipeConfig:
    """A ``RecipeConfig`` from YAML; ``overrides`` (e.g. ``data=``, ``out=``) win."""
    raw = yaml.safe_load(Path(path).read_text()) or {}
    raw.update({k: v for k, v in overrides.items() if v is not None})
    raw["vae"] = _build(VaeConfig, raw.get("vae", {}))
    raw["decoder"] = _build(DecoderConfig, raw.get("decoder", {}))
    raw["identity"] = _build(IdentityConfig, raw.get("identity", {}))
    raw["prior"] = _build(PriorConfig, raw.get("prior", {}))
    raw["refiner"] = _build(RefinerConfig, raw.get("refiner", {}))
    raw["stages"] = [_build(StageConfig, s) for s in raw.get("stages", [])]
    for key in ("data", "out"):
        raw[key] = Path(raw.get(key, getattr(RecipeConfig, key, "")))
    for key in ("init_from", "components_from", "view_expert_weights"):
        if raw.get(key):
            raw[key] = Path(raw[key])
    return _build(RecipeConfig, raw)
