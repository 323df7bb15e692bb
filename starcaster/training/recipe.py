"""The whole staged recipe, and any one stage alone (``--stage``).

Order (the paper's): VAE and identity encoder (our synthetic-domain stand-ins for SD-1.5's
VAE and ArcFace) → ``prior`` (embedding → portrait: what Arc2Face gives the paper, a face from
the identity alone) → ``motion`` (identity + audio only: free motion under a soft identity,
no portrait conditioning) → ``reference`` (reference-encoder animation: the portrait is the
cache sink) → ``self_forcing`` (rollouts from the model's own chunks, longer context) →
``view`` (lightweight view adaptation on multi-view static sets: the temporal-to-spatial
step; view consistency and temporal coherence come from separate data).
Each video stage starts from the previous stage's ``final/`` weights.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

import numpy as np
import torch
from diffusers import DDIMScheduler

from ..audio import audio_config_for
from ..camera import ViewRange
from ..models.configs import get_preset
from ..models.identity_prior import IdentityPrior
from ..models.refiner import FrameRefiner
from ..models.unet import STARCasterUNet, with_reference_concat
from ..pipeline import STARCasterPipeline
from .batches import prepare_batch
from .checkpoint import finished_model
from .config import STAGE_ORDER, RecipeConfig, StageConfig
from .data import collate_audio_features, endless, mixed
from .distillation import distill_step, load_teacher, student_from
from .identity_canonical import describe_canonical_face
from .identity_encoder import train_identity_encoder
from .identity_prior import train_identity_prior
from .refiner import train_refiner
from .samples import write_stage_samples
from .self_forcing import self_forcing_step
from .step_context import StepContext
from .teacher_forcing import teacher_step
from .trainer import LoopSettings, is_main_process, process_slot, train, training_device, wait_for_everyone
from .vae import refine_decoder, refined_decoder, train_vae
from .view_adaptation import trainable_parameters

logger = logging.getLogger(__name__)

STEPS = {"teacher": teacher_step, "self_forcing": self_forcing_step, "distill": distill_step}  # kind → step


def _frames_needed(stage: StageConfig) -> int:
    if stage.kind in ("self_forcing", "distill"):
        return stage.rollout_chunks * stage.chunk_length
    return stage.context_frames + stage.chunk_length


def _initial_unet(cfg: RecipeConfig, index: int) -> STARCasterUNet:
    """The previous stage's final weights, else ``init_from``'s UNet, else a fresh model; for the
    first of consecutive ``distill`` stages a fresh student of their teacher.

    ``index == len(cfg.stages)`` asks for the finished video model (what the refiner stage uses).
    """
    name = cfg.stages[index].name if index < len(cfg.stages) else "refiner"
    if _starts_a_student(cfg, index):
        torch.manual_seed(cfg.seed)
        return student_from(_teacher(cfg, index), cfg.stages[index].student)
    if (final := _previous_final(cfg, index)) is not None:
        logger.info("starting %s from %s", name, final)
        return _continued_student(cfg, index, final) or STARCasterUNet.from_pretrained(final)
    if cfg.init_from is not None:
        logger.info("starting %s from %s", name, cfg.init_from / "unet")
        return STARCasterUNet.from_pretrained(cfg.init_from / "unet", dtype=torch.float32)
    torch.manual_seed(cfg.seed)
    return STARCasterUNet(**{**get_preset(cfg.preset).unet, **cfg.unet_overrides})


def _continued_student(cfg: RecipeConfig, index: int, final: Path) -> STARCasterUNet | None:
    """A ``distill`` stage continuing the student before it with ``student:`` changes that keep every
    weight's shape (e.g. ``context_source: denoiser``): the previous student's weights in the changed model."""
    if index >= len(cfg.stages) or cfg.stages[index].kind != "distill" or not cfg.stages[index].student:
        return None
    changes = cfg.stages[index].student
    previous = STARCasterUNet.from_pretrained(final, dtype=torch.float32)
    student = student_from(previous, changes)
    try:
        student.load_state_dict(previous.state_dict())
    except RuntimeError as error:
        raise ValueError(
            f"Stage {cfg.stages[index].name} continues the student of the stage before; its student changes "
            f"{changes} must keep the weights' shapes (a new width needs a stage that starts a student)"
        ) from error
    logger.info("%s: the previous student with %s", cfg.stages[index].name, changes)
    return student


def _starts_a_student(cfg: RecipeConfig, index: int) -> bool:
    """A ``distill`` stage makes a fresh student unless it continues one (the stage before is ``distill`` too)."""
    stages = cfg.stages
    return (
        index < len(stages) and stages[index].kind == "distill" and (index == 0 or stages[index - 1].kind != "distill")
    )


def _previous_final(cfg: RecipeConfig, index: int, teachers_only: bool = False) -> Path | None:
    """The ``final/`` folder of the last stage before ``index`` that has finished (``teachers_only``:
    of the stages that are not distillation), if any."""
    for previous in reversed(cfg.stages[:index]):
        if teachers_only and previous.kind == "distill":
            continue
        if (cfg.out / previous.name / "final" / "config.json").is_file():
            return cfg.out / previous.name / "final"
    return None


def _teacher(cfg: RecipeConfig, index: int) -> STARCasterUNet:
    """A ``distill`` stage's teacher: its ``teacher`` folder, else the model the (non-distill) stages
    before it finished, else ``init_from``'s."""
    stage = cfg.stages[index]
    source = stage.teacher or _previous_final(cfg, index, teachers_only=True) or cfg.init_from
    if source is None:
        raise ValueError(f"Stage {stage.name} (distill) has no teacher: set its 'teacher' or the recipe's init_from.")
    logger.info("%s: the teacher is %s", stage.name, source)
    return load_teacher(source)


def _lip_expert(cfg: RecipeConfig, stage: StageConfig, device: torch.device):
    """The frozen lip reader of the lip-reading loss: SynthTalk's mouth regressor or a real-face SyncNet."""
    if stage.lip_weight <= 0:
        return None
    if cfg.lip_expert == "syncnet":
        from ..eval.syncnet import load_syncnet

        return load_syncnet(cfg.lip_expert_weights).to(device)
    if cfg.lip_expert != "mouth":
        raise ValueError(f"lip_expert must be 'mouth' or 'syncnet', got {cfg.lip_expert!r}")
    from ..eval.experts import load_expert

    return load_expert("mouth").to(device)


VIEW_EXPERT_DIR = Path(__file__).parent / "view_expert"


def _view_expert(cfg: RecipeConfig, stage: StageConfig, device: torch.device):
    """The frozen pose regressor of the view loss (``view_expert_weights``, default ``VIEW_EXPERT_DIR``:
    trained by ``python -m starcaster.eval.training --pose-only`` with its own seed and renders, so the
    evaluation's pose expert, which grades view error, is not the network training optimised against)."""
    if stage.view_weight <= 0:
        return None
    from ..eval.experts import load_expert

    return load_expert("pose", cfg.view_expert_weights or VIEW_EXPERT_DIR).to(device)


def local_rows(sample: dict, rank: int, world: int) -> dict:
    """This process's rows of a collated global batch (arrays and lists alike)."""
    if world == 1:
        return sample
    size = len(sample["frames"]) // world
    return {k: v[rank * size : (rank + 1) * size] if hasattr(v, "__len__") else v for k, v in sample.items()}


def _batches(cfg: RecipeConfig, stage: StageConfig, vae, encoder, unet, rng, device: torch.device):
    """Global batches of ``stage.batch_size`` (every process reads the same ones), sliced per process."""
    window, size, fps = _frames_needed(stage), stage.batch_size, 25.0
    rank, world = process_slot()
    if size % world:
        raise ValueError(f"Stage {stage.name}: batch_size {size} is not divisible by the {world} processes.")
    audio_config = audio_config_for(unet.config)
    collate = functools.partial(collate_audio_features, frames=window, fps=fps, config=audio_config)

    def windows(kind: str):
        return endless(cfg.data / "train", window, size, (kind,), cfg.seed, cfg.num_workers, collate)

    views = windows("multiview") if stage.multiview_prob > 0 else None
    for sample in mixed(windows("talking"), views, stage.multiview_prob, rng):
        yield prepare_batch(local_rows(sample, rank, world), vae, encoder, stage.motion_weight, device)


def train_stage(cfg: RecipeConfig, name: str, vae, encoder, prior=None) -> STARCasterUNet:
    index = [s.name for s in cfg.stages].index(name)
    stage = cfg.stages[index]
    folder = cfg.out / stage.name
    if (folder / "final" / "config.json").is_file():
        unet = STARCasterUNet.from_pretrained(folder / "final")
    else:
        unet = _fit_stage(cfg, index, vae, encoder, prior)
    if cfg.sample_seconds > 0 and not (folder / "samples.mp4").is_file() and is_main_process():
        write_stage_samples(assemble_pipeline(cfg, unet, vae, encoder), cfg.data, folder, cfg.sample_seconds)
    return unet


def _fit_stage(cfg: RecipeConfig, index: int, vae, encoder, prior=None) -> STARCasterUNet:
    stage = cfg.stages[index]
    folder = cfg.out / stage.name
    device = training_device()  # frozen helpers go where accelerate puts the UNet
    vae, encoder = vae.to(device), encoder.to(device)
    unet = _initial_unet(cfg, index)
    if stage.reference_concat:
        unet = with_reference_concat(unet)
    unet = unet.to(device)
    unet.train()
    if cfg.gradient_checkpointing:
        unet.backbone.enable_gradient_checkpointing()
    rng = np.random.default_rng(cfg.seed + index)
    torch.manual_seed(cfg.seed + index)  # the same noise stream in every process (StepContext.randn slices it)
    scheduler = DDIMScheduler(**get_preset(cfg.preset).scheduler)
    identity_encoder = encoder if stage.identity_weight > 0 else None
    rank, world = process_slot()
    lip_expert = _lip_expert(cfg, stage, device)
    teacher = _teacher(cfg, index).to(device) if stage.kind == "distill" else None
    view_expert = _view_expert(cfg, stage, device)
    ctx = StepContext(
        unet, scheduler, vae, stage, rng, lip_expert, identity_encoder, teacher, prior, rank, world, view_expert
    )
    step_fn = STEPS[stage.kind]
    settings = LoopSettings(
        stage.steps, stage.lr, cfg.bf16, cfg.ema_decay, cfg.grad_clip, cfg.log_every, cfg.save_every, stage.max_minutes
    )
    batches = _batches(cfg, stage, vae, encoder, unet, rng, device)
    unet = train(
        stage.name,
        folder,
        unet,
        trainable_parameters(unet, stage.trainable),
        batches,
        lambda b: step_fn(ctx, b),
        settings,
    )
    if is_main_process():
        unet.eval().save_pretrained(folder / "final")
    wait_for_everyone()
    return unet.eval()


def assemble_pipeline(
    cfg: RecipeConfig, unet: STARCasterUNet, vae, encoder, prior=None, refiner=None
) -> STARCasterPipeline:
    scheduler = DDIMScheduler(**get_preset(cfg.preset).scheduler)
    pipe = STARCasterPipeline(
        unet=unet.eval(),
        vae=vae,
        scheduler=scheduler,
        identity_encoder=encoder,
        identity_prior=prior,
        refiner=refiner,
        trained_views=trained_views(cfg.data),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def trained_views(data: Path) -> dict | None:
    """The view range the training data was rendered with (a SynthTalk manifest's ``max_azimuth`` /
    ``max_elevation``), for the checkpoint to declare; None where the data does not say (real videos)."""
    manifest = Path(data) / "manifest.json"
    config = json.loads(manifest.read_text()).get("config", {}) if manifest.is_file() else {}
    if "max_azimuth" not in config or "max_elevation" not in config:
        return None
    az, el = float(config["max_azimuth"]), float(config["max_elevation"])
    return ViewRange((-az, az), (-el, el)).to_config()


def run(cfg: RecipeConfig, only: str | None = None, export: Path | None = None) -> STARCasterPipeline | None:
    """Run every stage in order (skipping finished ones), or only ``only``; export the pipeline."""
    if only is not None and only not in STAGE_ORDER:
        raise ValueError(f"Unknown stage {only!r}; choose from {STAGE_ORDER}.")
    encoder = None
    source = cfg.init_from or cfg.components_from
    if source is not None:  # a published checkpoint's latent and identity space
        vae, encoder = _components_from(source)
    else:
        vae, psnr = train_vae(cfg)
        logger.info("VAE reconstruction PSNR %.2f dB", psnr)
        if only == "vae":
            return None
    if cfg.decoder.steps > 0 and (only in (None, "decoder") or refined_decoder(cfg.out) is not None):
        vae = refine_decoder(cfg, vae)  # trains when asked for, else reuses a finished refinement
    if only == "decoder":
        return None
    if encoder is None:
        encoder = train_identity_encoder(cfg)
        if cfg.identity.canonical_steps > 0:  # before the prior and every video stage: they use its embeddings
            encoder = describe_canonical_face(cfg, encoder)
    elif cfg.identity.canonical_steps > 0:  # a published encoder: its video model reads its embeddings as they are
        logger.warning(
            "identity.canonical_steps ignored: the identity encoder comes from %s (to fine-tune a published "
            "checkpoint's encoder, use scripts/finetune_identity_encoder.py + scripts/swap_identity_encoder.py)",
            source,
        )
    if only == "identity":
        return None
    train_prior = (lambda: train_identity_prior(cfg, encoder)) if cfg.prior.identities > 0 else None
    prior = _optional_component(cfg, only, "prior", "identity_prior", IdentityPrior, train_prior)
    if only == "prior":
        return None
    names = [s.name for s in cfg.stages] if only is None else [only] if only != "refiner" else []
    unet = None
    for name in names:
        unet = train_stage(cfg, name, vae, encoder, prior)
    if unet is None:  # ``--stage refiner``: the finished video model
        unet = _initial_unet(cfg, len(cfg.stages))
    train_it = (lambda: train_refiner(cfg, unet, vae, encoder, prior)) if cfg.refiner.steps > 0 else None
    refiner = _optional_component(cfg, only, "refiner", "refiner", FrameRefiner, train_it)
    pipe = assemble_pipeline(cfg, unet, vae, encoder, prior, refiner)
    if export is not None:
        export_pipeline(pipe, export)
    return pipe


def _optional_component(cfg: RecipeConfig, only: str | None, stage: str, folder: str, cls, train_it):
    """An optional pipeline component (identity prior, refiner): trained now when the config has its
    stage (``train_it``) and it is asked for, else this run's finished one, else ``init_from``'s (if any).

    ``folder`` names both the run's stage folder (``<out>/<folder>/final``) and the pipeline's component.
    """
    if train_it is not None and only in (None, stage):
        return train_it()
    finished = finished_model(cls, cfg.out / folder / "final")
    if finished is None and cfg.init_from is not None:
        finished = finished_model(cls, cfg.init_from / folder)
    return finished


def _components_from(folder: Path):
    from ..models.autoencoders import load_vae_folder
    from ..models.identity_encoder import IdentityEncoder

    vae = load_vae_folder(folder / "vae")
    encoder = (
        IdentityEncoder.from_pretrained(folder / "identity_encoder", dtype=torch.float32).eval().requires_grad_(False)
    )
    return vae, encoder


def export_pipeline(pipe: STARCasterPipeline, folder: Path) -> Path:
    """Save as a Hub-style folder with fp16 weights (half the size; loads back as fp32)."""
    pipe.to(torch.float16).save_pretrained(folder, safe_serialization=True)
    pipe.to(torch.float32)
    return folder
