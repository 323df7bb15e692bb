"""STARCasterPipeline: (identity, speech, camera view) → talking-portrait video, chunk by chunk.

``stream()`` is the engine; ``__call__`` collects its chunks. Each chunk:
noise → few DDIM steps (x0-prediction, per-stream CFG) attending to the KV cache → clean
latents → reference encoder writes them into the cache → VAE decode → yield. Memory is
flat in audio length: the cache keeps a sink plus a rolling window, and only one chunk of
frames exists at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import AutoencoderKL, DDIMScheduler, DiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor

from . import identity as identity_frontend
from .audio import SAMPLE_RATE, AudioFeatureConfig, AudioSource, frame_features, load_audio
from .camera import FROZEN_TIME_PATHS, ViewTrack, make_view_track
from .errors import InputError
from .hub import resolve_checkpoint
from .models.identity_encoder import IdentityEncoder  # imported so from_pretrained can load the component
from .models.identity_prior import IdentityPrior
from .models.kv_cache import KVCache
from .models.pixel_vae import PixelUnshuffleVAE
from .models.refiner import FrameRefiner, TemporalRefinement
from .models.sampling import Guidance, denoise_chunk, guided_conditions
from .models.unet import STARCasterUNet
from .models.weight_storage import align_weights
from .pipeline_output import ChunkOutput, STARCasterPipelineOutput
from .pixels import to_pixels, to_uint8
from .timing import StageTimer

MAX_CHUNK_LENGTH = 16
MAX_STEPS = 50
MAX_SWEEP_VIEWS = 1024  # a sweep holds all its views' features at once: bound it
PRECISIONS = ("fp32", "bf16")


@dataclass
class GenerationRequest:
    """The user's options for one run (the arguments of ``__call__``/``stream``)."""

    audio: AudioSource
    identity_embedding: object = None
    image: object = None
    azimuth: float | np.ndarray = 0.0
    elevation: float | np.ndarray = 0.0
    camera_path: str | None = None
    chunk_length: int = 4
    num_inference_steps: int = 4
    guidance_scale_audio: float = 1.0
    guidance_scale_identity: float = 1.0
    guidance_scale_camera: float = 1.0
    generator: torch.Generator | None = None
    fps: float = 25
    output_type: str = "np"
    context_frames: int | None = 8
    num_frames: int | None = None
    sweep_time: float | None = None
    reference_view: tuple[float, float] = (0.0, 0.0)
    context_mode: str = "cache"
    trim_silence: bool = False
    max_audio_seconds: float | None = None
    precision: str = "fp32"
    noise_sharing: float = 1.0
    use_identity_prior: bool = True  # identity-only mode: anchor on the prior's portrait, if the checkpoint has one
    use_refiner: bool = True  # redraw fine detail with the checkpoint's frame refiner, if it has one
    refiner_smoothing: float = 0.5  # share of the previous frame's refiner correction kept (temporal EMA)


@dataclass
class GenerationRun:
    """A checked, prepared run whose chunks are produced lazily by iterating ``chunks``."""

    chunks: Iterator[ChunkOutput]
    audio: np.ndarray | None  # what the video is in sync with (None for a frozen-time sweep)
    num_frames: int
    fps: float
    identity_embedding: np.ndarray  # (512,) the identity actually used
    views: ViewTrack


@dataclass
class _Prepared:
    """Everything a run needs before its first chunk (tensors on the pipeline's device)."""

    identity: torch.Tensor  # [1, 512]
    audio_features: torch.Tensor  # [T, W, M]
    views: ViewTrack
    audio: np.ndarray | None
    reference_latents: torch.Tensor | None  # [1, 1, C, h, w]
    reference_view: tuple[float, float]
    refining: TemporalRefinement | None = None  # the frame refiner's inputs and temporal state (None: no refiner)


class STARCasterPipeline(DiffusionPipeline):
    """Identity- and view-aware talking portraits by spatio-temporal autoregressive diffusion.

    Components: ``unet`` (``STARCasterUNet``: denoiser, reference encoder and condition
    projectors), ``vae`` (per-frame ``AutoencoderKL``, or the exact ``PixelUnshuffleVAE``), ``scheduler`` (DDIM, x0-prediction),
    ``identity_encoder`` (the built-in face encoder, or None when the checkpoint expects
    insightface embeddings), ``identity_prior`` (optional: embedding → portrait, the anchor
    of identity-only mode) and ``refiner`` (optional: redraws the fine detail — eyes, brows,
    nose — of each decoded frame from the identity's portrait).
    """

    model_cpu_offload_seq = "unet->vae->refiner"
    _optional_components = ["identity_encoder", "identity_prior", "refiner"]

    def __init__(
        self,
        unet: STARCasterUNet,
        vae: AutoencoderKL | PixelUnshuffleVAE,
        scheduler: DDIMScheduler,
        identity_encoder: IdentityEncoder | None = None,
        identity_prior: IdentityPrior | None = None,
        refiner: FrameRefiner | None = None,
    ):
        super().__init__()
        self.register_modules(
            unet=unet,
            vae=vae,
            scheduler=scheduler,
            identity_encoder=identity_encoder,
            identity_prior=identity_prior,
            refiner=refiner,
        )
        self.timer = StageTimer(enabled=False)  # the benchmark swaps in an enabled one

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, revision: str | None = None, **kwargs):
        """Load from a local folder or a Hub repo id (``repo`` or ``repo@revision``).

        Resolution (download, cache, offline, refusing pickles) is ``hub.resolve_checkpoint``;
        weights are always read as safetensors.
        """
        variant = kwargs.get("variant")  # "fp16": only the *.fp16.safetensors files are fetched
        folder = resolve_checkpoint(str(pretrained_model_name_or_path), revision=revision, variant=variant)
        kwargs.setdefault("use_safetensors", True)
        if "dtype" not in kwargs and "torch_dtype" not in kwargs:
            kwargs["dtype"] = torch.float32  # fp16-stored weights run in fp32 on CPU
        kwargs.pop("trust_remote_code", None)
        pipe = super().from_pretrained(folder, **kwargs)
        for component in pipe.components.values():
            if isinstance(component, torch.nn.Module):
                align_weights(component)  # outputs depend on the weights' values, not the file's layout
        return pipe

    # -- settings derived from the checkpoint -------------------------------------------
    @property
    def image_size(self) -> int:
        return self.vae.config.sample_size

    @property
    def audio_config(self) -> AudioFeatureConfig:
        cfg = self.unet.config
        return AudioFeatureConfig(n_mels=cfg.audio_n_mels, context=cfg.audio_context)

    @property
    def identity_space(self) -> str:
        """Which identity encoder this checkpoint's embeddings come from."""
        return self.unet.config.identity_encoder_type

    # -- 1. inputs ----------------------------------------------------------------------
    def check_inputs(self, request: GenerationRequest, guidance: Guidance) -> None:
        """Raise ``InputError`` (a ``ValueError``) naming the bad setting and its valid range."""
        r = request
        chunk_length, num_inference_steps, fps, context_frames = (
            r.chunk_length,
            r.num_inference_steps,
            r.fps,
            r.context_frames,
        )
        if (r.identity_embedding is None) == (r.image is None):
            got = "both" if r.image is not None else "neither"
            raise InputError(f"Give exactly one of `identity_embedding` or `image` (got {got}).")
        if r.output_type not in ("np", "latent"):
            raise InputError(f"output_type must be 'np' or 'latent'; got {r.output_type!r}.")
        if r.precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}; got {r.precision!r}.")
        if r.context_mode not in ("cache", "recompute"):
            raise InputError(f"context_mode must be 'cache' or 'recompute'; got {r.context_mode!r}.")
        if not 1 <= int(chunk_length) <= MAX_CHUNK_LENGTH:
            raise InputError(f"chunk_length must be between 1 and {MAX_CHUNK_LENGTH} frames; got {chunk_length}.")
        if not 1 <= int(num_inference_steps) <= MAX_STEPS:
            raise InputError(f"num_inference_steps must be between 1 and {MAX_STEPS}; got {num_inference_steps}.")
        if not (math.isfinite(fps) and 1 <= fps <= 60):
            raise InputError(f"fps must be between 1 and 60; got {fps}.")
        limit = self.unet.config.max_context_frames - 1
        if context_frames is not None and not 0 <= int(context_frames) <= limit:
            raise InputError(f"context_frames must be between 0 and {limit} for this checkpoint; got {context_frames}.")
        if not (math.isfinite(r.refiner_smoothing) and 0.0 <= r.refiner_smoothing < 1.0):
            raise InputError(f"refiner_smoothing must be at least 0 and below 1; got {r.refiner_smoothing}.")
        if not (math.isfinite(r.noise_sharing) and 0.0 <= r.noise_sharing <= 1.0):
            raise InputError(f"noise_sharing must be between 0 and 1; got {r.noise_sharing}.")
        for stream in ("audio", "identity", "camera"):
            scale = getattr(guidance, stream)
            if not (math.isfinite(scale) and 0.0 <= scale <= 20.0):
                raise InputError(f"guidance_scale_{stream} must be between 0 and 20; got {scale}.")
        for name, value in (("azimuth", r.azimuth), ("elevation", r.elevation)):
            try:
                finite = bool(np.all(np.isfinite(np.asarray(value, dtype=np.float64))))
            except (TypeError, ValueError):
                finite = False
            if not finite:
                raise InputError(f"{name} must be finite numbers (degrees); got {value!r}.")
        if r.num_frames is not None and not 1 <= int(r.num_frames) <= MAX_SWEEP_VIEWS:
            raise InputError(
                f"num_frames (views of a sweep) must be between 1 and {MAX_SWEEP_VIEWS}; got {r.num_frames}."
            )
        if r.sweep_time is not None and not math.isfinite(r.sweep_time):
            raise InputError(f"sweep_time must be a finite number of seconds; got {r.sweep_time}.")

    # -- 2. identity --------------------------------------------------------------------
    def identity_backend(self):
        """The face encoder this checkpoint's identity space needs (built-in or insightface)."""
        return identity_frontend.make_identity_backend(self.identity_space, self.identity_encoder)

    def encode_identity(self, image) -> np.ndarray:
        """A face image → the checkpoint's 512-D identity embedding (L2-normalised)."""
        return self.identity_backend().embed(identity_frontend.load_image(image))

    def imagine_portrait(self, identity_embedding) -> np.ndarray:
        """The identity prior's portrait of an embedding, uint8 ``[H, W, 3]`` (what identity-only mode animates)."""
        if self.identity_prior is None:
            raise InputError("This checkpoint has no identity prior (no `identity_prior/` folder).")
        dim = self.unet.config.identity_embed_dim
        return self.identity_prior.portrait(identity_frontend.load_embedding(identity_embedding, expected_dim=dim))

    def random_identity(self, seed: int | np.random.Generator | None = None) -> np.ndarray:
        """A random identity embedding ``(512,)``.

        With an identity prior: a draw from the (diagonal) Gaussian of the embeddings the prior
        was trained on, so it decodes to a plausible face; without one: a uniform direction.
        """
        dim = self.unet.config.identity_embed_dim
        if self.identity_prior is None:
            return identity_frontend.random_identity(seed, dim=dim)
        mean = self.identity_prior.embedding_mean.float().cpu().numpy()
        spread = np.diag(self.identity_prior.embedding_std.float().cpu().numpy())
        return identity_frontend.random_identity(seed, dim=dim, mean=mean, cov_factor=spread)

    def _prepare_identity(
        self, identity_embedding, image, use_prior: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(embedding, portrait)``: the portrait (uint8 ``[H, W, 3]``) is the reference crop, the identity
        prior's portrait of the embedding, or None (the video model alone)."""
        dim = self.unet.config.identity_embed_dim
        if image is None:
            embedding = identity_frontend.load_embedding(identity_embedding, expected_dim=dim)
            if not use_prior or self.identity_prior is None:
                return embedding, None  # the video model alone: soft identity from the embedding tokens
            return embedding, self.identity_prior.portrait(embedding)
        picture = identity_frontend.load_image(image)
        embedding = self.identity_backend().embed(picture)
        return embedding, np.array(identity_frontend.detect_and_crop_face(picture, self.image_size).image)

    # -- 3./4. audio and views ----------------------------------------------------------
    def _prepare_audio(self, r: GenerationRequest, frozen: bool):
        audio, fps, num_frames, sweep_time = r.audio, r.fps, r.num_frames, r.sweep_time
        wave = load_audio(audio, SAMPLE_RATE, max_seconds=r.max_audio_seconds, trim_silence=r.trim_silence)
        features = frame_features(wave, fps, self.audio_config)  # [T, W, M]
        if not frozen:
            return wave, features
        instant = len(features) // 2 if sweep_time is None else int(round(sweep_time * fps))
        if not 0 <= instant < len(features):
            raise InputError(f"sweep_time {sweep_time} s is outside the audio ({len(wave) / SAMPLE_RATE:.2f} s).")
        count = int(num_frames or round(2 * fps))
        return None, np.repeat(features[instant : instant + 1], count, axis=0)

    # -- latents <-> images -------------------------------------------------------------
    @torch.no_grad()
    def encode_images(self, images: np.ndarray) -> torch.Tensor:
        """uint8 ``[N, H, W, 3]`` → scaled latents ``[N, C, h, w]``."""
        pixels = to_pixels(torch.from_numpy(images).to(self.device)).to(self.vae.dtype)
        return self.vae.encode(pixels).latent_dist.mode() * self.vae.config.scaling_factor

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor, refining: TemporalRefinement | None = None) -> np.ndarray:
        """Scaled latents ``[N, C, h, w]`` → uint8 ``[N, H, W, 3]`` (through the frame refiner given a run's state)."""
        pixels = self.vae.decode(latents.to(self.vae.dtype) / self.vae.config.scaling_factor).sample
        if refining is not None:
            pixels = refining(self.refiner, pixels.to(self.refiner.dtype))
        return to_uint8(pixels)

    def _prepare(self, r: GenerationRequest) -> _Prepared:
        with self.timer("identity"):
            embedding, portrait = self._prepare_identity(r.identity_embedding, r.image, r.use_identity_prior)
            reference = None if portrait is None else self.encode_images(portrait[None])[None]  # [1, 1, C, h, w]
        frozen = r.camera_path in FROZEN_TIME_PATHS
        with self.timer("audio"):
            wave, features = self._prepare_audio(r, frozen)
        views = make_view_track(len(features), r.azimuth, r.elevation, r.camera_path)
        dtype = self.unet.dtype
        return _Prepared(
            identity=torch.from_numpy(embedding).to(self.device, dtype)[None],
            audio_features=torch.from_numpy(features).to(self.device, dtype),
            views=views,
            audio=wave,
            reference_latents=reference,
            reference_view=tuple(r.reference_view),
            refining=self._refining(portrait, 0.0 if frozen else r.refiner_smoothing) if r.use_refiner else None,
        )

    @torch.no_grad()
    def _refining(self, portrait: np.ndarray | None, smoothing: float) -> TemporalRefinement | None:
        """The refiner's run state: the portrait it reads (the reference crop, or the prior's portrait), or a blank."""
        if self.refiner is None:
            return None
        dtype, size = self.refiner.dtype, self.image_size
        if portrait is None:
            blank = torch.zeros(1, 3, size, size, device=self.device, dtype=dtype)
            return TemporalRefinement(blank, torch.zeros(1, device=self.device), smoothing)
        pixels = to_pixels(torch.from_numpy(portrait).to(self.device))[None].to(dtype)
        return TemporalRefinement(pixels, torch.ones(1, device=self.device), smoothing)

    # -- 5. cache -----------------------------------------------------------------------
    def _conditions(self, prep: _Prepared, start: int, stop: int) -> tuple:
        """Per-chunk condition inputs ``(identity [1,512], audio [1,F,W,M], views [1,F,2])``."""
        audio = prep.audio_features[start:stop][None]
        views = torch.from_numpy(np.stack([prep.views.azimuth[start:stop], prep.views.elevation[start:stop]], -1))
        return prep.identity, audio, views.to(audio.device, audio.dtype)[None]

    @torch.no_grad()
    def _write_context(self, cache: KVCache, clean: torch.Tensor, identity, audio, views) -> None:
        """Run the reference encoder on finished frames ``[1,F,C,h,w]`` and cache their K/V."""
        cache.append(self.unet.encode_context(clean, self.unet.encode_conditions(identity, audio, views)))

    @torch.no_grad()
    def _write_reference(self, cache: KVCache, prep: _Prepared) -> None:
        if prep.reference_latents is None:
            return
        view = torch.tensor([prep.reference_view], device=self.device)
        cache.append(self.unet.encode_reference(prep.reference_latents.to(self.unet.dtype), prep.identity, view))

    @contextmanager
    def precision(self, precision: str = "fp32") -> Iterator[None]:
        """``bf16``: bf16 autocast and bf16 attention products for the block (fp32 weights stay).

        Entered per chunk, never across a ``yield``, so the caller's code is not autocast.
        """
        if precision == "fp32":
            yield
            return
        previous, self.unet.attention_dtype = self.unet.attention_dtype, torch.bfloat16
        try:
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                yield
        finally:
            self.unet.attention_dtype = previous

    # -- 6. the autoregressive loop -----------------------------------------------------
    def stream(self, audio: AudioSource, **kwargs) -> Iterator[ChunkOutput]:
        """Yield ``ChunkOutput``s as chunks finish; takes the keyword arguments of ``__call__``.

        ``context_mode="recompute"`` re-encodes the whole causal context every chunk instead
        of reusing cached keys/values: the naive baseline the cache is tested against.
        """
        yield from self.start(audio=audio, **kwargs).chunks

    @torch.no_grad()
    def start(self, **settings) -> GenerationRun:
        """Check and prepare every input now (errors surface here), then return the lazy run.

        Takes the keyword arguments of ``__call__``. Front ends use it to know the frame count
        and audio before the first chunk exists (progress bars, streaming mp4 writing).
        """
        request = GenerationRequest(**settings)
        guidance = Guidance(
            audio=float(request.guidance_scale_audio),
            identity=float(request.guidance_scale_identity),
            camera=float(request.guidance_scale_camera),
        )
        self.check_inputs(request, guidance)
        prep = self._prepare(request)
        return GenerationRun(
            chunks=self._generate(prep, request, guidance),
            audio=prep.audio,
            num_frames=len(prep.audio_features),
            fps=float(request.fps),
            identity_embedding=prep.identity[0].float().cpu().numpy(),
            views=prep.views,
        )

    def _noise(self, shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
        return randn_tensor(shape, generator=generator, device=self.device, dtype=self.unet.dtype)

    @torch.no_grad()
    def _generate(self, prep: _Prepared, r: GenerationRequest, guidance: Guidance) -> Iterator[ChunkOutput]:
        total, chunk_length = len(prep.audio_features), int(r.chunk_length)
        num_chunks = math.ceil(total / chunk_length)
        with self.precision(r.precision):
            context = _ContextStore(self, prep, r.context_frames, recompute=r.context_mode == "recompute")
        latent_shape = (self.unet.config.latent_channels, self.unet.config.sample_size, self.unet.config.sample_size)
        shared = self._noise((1, 1, *latent_shape), r.generator)
        for index in self.progress_bar(range(num_chunks)):
            start, stop = index * chunk_length, min(total, (index + 1) * chunk_length)
            identity, audio, views = self._conditions(prep, start, stop)
            own = self._noise((1, stop - start, *latent_shape), r.generator)
            noise = math.sqrt(r.noise_sharing) * shared + math.sqrt(1.0 - r.noise_sharing) * own
            with self.precision(r.precision):
                with self.timer("context"):
                    cache = context.cache()
                with self.timer("denoise"):
                    conditions = guided_conditions(self.unet, identity, audio, views, guidance)
                    steps = int(r.num_inference_steps)
                    clean = denoise_chunk(
                        self.unet, self.scheduler, noise, conditions, cache, steps, guidance, prep.reference_latents
                    )
                with self.timer("context"):
                    context.add(clean, identity, audio, views)
                with self.timer("decode"):
                    latent = r.output_type == "latent"
                    frames = clean[0].float().cpu().numpy() if latent else self.decode_latents(clean[0], prep.refining)
            yield ChunkOutput(
                frames,
                start,
                index,
                num_chunks,
                total,
                prep.views.azimuth[start:stop],
                prep.views.elevation[start:stop],
            )

    @torch.no_grad()
    def __call__(
        self,
        audio: AudioSource,
        identity_embedding=None,
        image=None,
        azimuth: float | np.ndarray = 0.0,
        elevation: float | np.ndarray = 0.0,
        camera_path: str | None = None,
        chunk_length: int = 4,
        num_inference_steps: int = 4,
        guidance_scale_audio: float = 1.0,
        guidance_scale_identity: float = 1.0,
        guidance_scale_camera: float = 1.0,
        generator: torch.Generator | None = None,
        fps: float = 25,
        output_type: str = "np",
        callback_on_chunk_end: Callable[[STARCasterPipeline, ChunkOutput], None] | None = None,
        context_frames: int | None = 8,
        num_frames: int | None = None,
        sweep_time: float | None = None,
        reference_view: tuple[float, float] = (0.0, 0.0),
        context_mode: str = "cache",
        trim_silence: bool = False,
        max_audio_seconds: float | None = None,
        precision: str = "fp32",
        noise_sharing: float = 1.0,
        use_identity_prior: bool = True,
        use_refiner: bool = True,
        refiner_smoothing: float = 0.5,
    ) -> STARCasterPipelineOutput:
        """Generate a whole clip.

        Args:
            audio: speech as a path, float32 samples at 16 kHz, or ``(sample_rate, samples)``.
            identity_embedding: a 512-D embedding in this checkpoint's identity space (array,
                tensor or embedding file) — the soft identity condition; or
            image: a reference portrait: its embedding is extracted *and* its face crop is the
                sink of the KV cache (reference-based animation).
            azimuth, elevation: degrees; scalars or one value per frame.
            camera_path: ``static``, ``orbit``, ``nod`` or ``sweep`` (one instant, many views;
                ``num_frames`` views of the moment ``sweep_time`` s, default the middle).
            chunk_length: frames generated per autoregressive chunk.
            num_inference_steps: DDIM steps per chunk (x0-prediction; 4 is the trained target).
            guidance_scale_audio, guidance_scale_identity, guidance_scale_camera: per-stream CFG
                scales (1 = off; each scale ≠ 1 costs one more UNet pass per step).
            generator: seeds the noise; same inputs and seed give bit-identical frames on CPU.
            context_frames: past frames kept in the rolling KV-cache window (plus one sink).
            output_type: ``"np"`` (uint8 frames) or ``"latent"``.
            trim_silence: cut leading/trailing silence from the audio first.
            max_audio_seconds: refuse longer audio with an ``InputError`` (None = no limit).
            precision: ``"fp32"`` (default, exact) or ``"bf16"`` (bf16 autocast and attention:
                faster on CPUs with AMX / bf16 units; see docs/performance.md for its error).
            noise_sharing: the share of every frame's starting noise that is one image common to
                the whole video (per-frame marginals stay N(0, I)). 1 (default): frames differ only
                through their conditions and context, which removes sampling flicker (motion ratio
                9.9 → 1.05 and lip-sync 0.50 → 0.93 on held-out clips, docs/training.md);
                0: independent noise per frame.
            use_identity_prior: identity-only mode (no ``image``) on a checkpoint with an identity
                prior: animate the prior's portrait of the embedding (``imagine_portrait``) as the
                reference (default); False: the video model alone, from the embedding tokens.
            use_refiner: on a checkpoint with a frame refiner, redraw each decoded frame's fine
                detail from the identity's portrait (default); False: the video model's frames as
                they are. ``output_type="latent"`` skips it (latents are the video model's).
            refiner_smoothing: the share of the previous frame's refiner correction kept in the next
                (an exponential moving average of the corrections, 0 ≤ s < 1): 0.5 (default) halves
                the flicker a per-frame refiner adds; 0 refines each frame alone. Sweeps use 0.
        """
        settings = dict(locals())
        for name in ("self", "callback_on_chunk_end"):
            settings.pop(name)
        run = self.start(**settings)
        chunks = []
        for chunk in run.chunks:
            chunks.append(chunk.frames)
            if callback_on_chunk_end is not None:
                callback_on_chunk_end(self, chunk)
        self.maybe_free_model_hooks()
        return STARCasterPipelineOutput(
            frames=np.concatenate(chunks),
            fps=run.fps,
            audio=run.audio,
            sample_rate=SAMPLE_RATE,
            azimuth=run.views.azimuth,
            elevation=run.views.elevation,
            identity_embedding=run.identity_embedding,
        )


class _ContextStore:
    """The causal context of a run: a KV cache (default) or, for ``recompute``, the raw frames.

    In recompute mode it keeps every finished chunk's clean latents and conditions and
    rebuilds a fresh cache from all of them before each chunk — the naive O(n²) baseline.
    """

    def __init__(self, pipe: STARCasterPipeline, prep: _Prepared, window: int | None, recompute: bool):
        self.pipe, self.prep, self.window, self.recompute = pipe, prep, window, recompute
        self.history: list[tuple] = []
        self._cache = pipe.unet.new_cache(window_frames=window)
        pipe._write_reference(self._cache, prep)

    def cache(self) -> KVCache:
        if not self.recompute:
            return self._cache
        cache = self.pipe.unet.new_cache(window_frames=self.window)
        self.pipe._write_reference(cache, self.prep)
        for item in self.history:
            self.pipe._write_context(cache, *item)
        return cache

    def add(self, clean, identity, audio, views) -> None:
        if self.recompute:
            self.history.append((clean, identity, audio, views))
        else:
            self.pipe._write_context(self._cache, clean, identity, audio, views)
