"""STARCasterPipeline: (identity, speech, camera view) → talking-portrait video, chunk by chunk.

``stream()`` is the engine; ``__call__`` collects its chunks. Each chunk:
noise → few DDIM steps (x0-prediction, per-stream CFG) attending to the KV cache → clean
latents → reference encoder writes them into the cache → VAE decode → yield. Memory is
flat in audio length: the cache keeps a sink plus a rolling window, and only one chunk of
frames exists at a time.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL, DDIMScheduler, DiffusionPipeline

from . import identity as identity_frontend
from .ahead import Ahead
from .audio import (
    SAMPLE_RATE,
    AudioFeatureConfig,
    AudioSource,
    LoadedAudio,
    audio_config_for,
    frame_features,
    load_audio,
    num_video_frames,
    too_long,
)
from .audio_stream import FixedFeatures, StreamedFeatures, file_samples, iter_file_blocks
from .camera import FROZEN_TIME_PATHS, ViewRange, ViewSteering, ViewTrack, make_view_track
from .errors import InputError
from .hub import resolve_checkpoint
from .models.identity_encoder import IdentityEncoder  # imported so from_pretrained can load the component
from .models.identity_prior import IdentityPrior
from .models.pixel_vae import PixelUnshuffleVAE
from .models.refiner import FrameRefiner, TemporalRefinement
from .models.rollout import NoiseSource, Rollout, Sink
from .models.sampling import Guidance
from .models.unet import STARCasterUNet
from .models.weight_storage import align_weights, channels_last_weights
from .pipeline_output import ChunkOutput, STARCasterPipelineOutput
from .pixels import to_pixels, to_uint8
from .request import GenerationRequest, check_option, check_request, options_docstring
from .timing import StageTimer

logger = logging.getLogger(__name__)
_CHUNK_LOCK = threading.Lock()  # concurrent runs (app sessions) compute one chunk at a time, whole chunks each
LONG_AUDIO_SECONDS = 60.0  # longer recordings are decoded in blocks as the video is generated (flat memory)


@dataclass
class GenerationRun:
    """A checked, prepared run whose chunks are produced lazily by iterating ``chunks``.

    While it streams, ``steer`` changes the view (and chunk length) of the chunks still to
    come; ``views`` is the per-frame track: what was rendered so far, then the plan.
    """

    chunks: Iterator[ChunkOutput]
    audio: np.ndarray | None  # what the video is in sync with (None: a sweep, a live or a long-file run)
    num_frames: int | None  # None while a live run's audio has not ended
    fps: float
    identity_embedding: np.ndarray  # (512,) the identity actually used
    steering: ViewSteering
    controls: dict = field(default_factory=dict)  # chunk_length for the chunks to come
    audio_file: Path | None = None  # a long recording read in blocks: mux the file itself
    avatar: object = None  # the ``AvatarFit`` animated instead of the photo, if the avatar path ran
    rendered: list[ViewTrack] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # for the user (also logged): e.g. views the model never saw
    view_range: ViewRange | None = None  # the checkpoint's trained views (None: not declared)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Stop after the chunk being generated (safe from any thread; iteration then ends)."""
        self.cancelled.set()

    def steer(self, azimuth: float | None = None, elevation: float | None = None, chunk_length: int | None = None):
        """Turn the camera (eased, from the next chunk on) and/or change the chunk length mid-stream."""
        check_view(azimuth, elevation)
        if azimuth is not None or elevation is not None:
            self.steering.steer(azimuth, elevation)
            target = self.steering.target
            if self.view_range is not None and (note := self.view_range.warning(*target)) is not None:
                logger.warning(note)
        if chunk_length is not None:
            check_option("chunk_length", chunk_length)
            self.controls["chunk_length"] = int(chunk_length)

    @property
    def views(self) -> ViewTrack:
        done = list(self.rendered)  # a snapshot: the generating thread appends to it
        az = np.concatenate([t.azimuth for t in done]) if done else np.zeros(0, np.float32)
        el = np.concatenate([t.elevation for t in done]) if done else np.zeros(0, np.float32)
        planned = self.steering.planned
        if self.num_frames is not None and len(az) < self.num_frames:
            az = np.concatenate([az, planned.azimuth[len(az) : self.num_frames]])
            el = np.concatenate([el, planned.elevation[len(el) : self.num_frames]])
        return ViewTrack(az.astype(np.float32), el.astype(np.float32))


@dataclass
class _Prepared:
    """Everything a run needs before its first chunk (tensors on the pipeline's device)."""

    identity: torch.Tensor  # [1, 512]
    features: object  # StreamedFeatures | FixedFeatures: fetch(start, stop) → [F, W, M]
    steering: ViewSteering
    audio: np.ndarray | None
    reference_latents: torch.Tensor | None  # [1, 1, C, h, w]
    reference_view: tuple[float, float]
    refining: TemporalRefinement | None = None  # the frame refiner's inputs and temporal state (None: no refiner)
    audio_file: Path | None = None
    avatar: object = None  # the ``AvatarFit`` animated instead of the photo (None: the image itself)


def check_view(azimuth, elevation) -> None:
    """Impossible views are errors: elevation beyond ±90° is not an elevation."""
    for name, value in (("azimuth", azimuth), ("elevation", elevation)):
        if value is None:
            continue
        try:
            array = np.asarray(value, dtype=np.float64)
            finite = bool(np.all(np.isfinite(array)))
        except (TypeError, ValueError):
            finite = False
        if not finite:
            raise InputError(f"{name} must be finite numbers (degrees); got {value!r}.")
        if name == "elevation" and np.any(np.abs(array) > 90.0):
            raise InputError(f"elevation must be between -90° and 90° (looking from below / above); got {value!r}.")


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
        trained_views: dict | None = None,
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
        ViewRange.from_config(trained_views)  # a malformed declaration fails at load time, not per request
        self.register_to_config(trained_views=trained_views)
        self.timer = StageTimer(enabled=False)  # the benchmark swaps in an enabled one
        self._identity_backends: dict[tuple, object] = {}

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
        for component in (pipe.unet, pipe.refiner):  # the per-chunk models
            if component is not None and component.device.type == "cpu":
                channels_last_weights(component)
        return pipe

    # -- settings derived from the checkpoint -------------------------------------------
    @property
    def image_size(self) -> int:
        return self.vae.config.sample_size

    @property
    def audio_config(self) -> AudioFeatureConfig:
        return audio_config_for(self.unet.config)

    @property
    def view_range(self) -> ViewRange | None:
        """The views this checkpoint was trained on (``trained_views`` in ``model_index.json``; None: undeclared)."""
        return ViewRange.from_config(self.config.get("trained_views"))

    @property
    def identity_space(self) -> str:
        """Which identity encoder this checkpoint's embeddings come from."""
        return self.unet.config.identity_encoder_type

    # -- 1. inputs ----------------------------------------------------------------------
    def check_inputs(self, request: GenerationRequest) -> None:
        """Raise ``InputError`` (a ``ValueError``) naming the bad setting and its valid range.

        The ranges and choices are ``GenerationRequest``'s (``request.check_request``); what is
        checked here depends on the checkpoint or on several options at once.
        """
        r = request
        if (r.identity_embedding is None) == (r.image is None):
            got = "both" if r.image is not None else "neither"
            raise InputError(f"Give exactly one of `identity_embedding` or `image` (got {got}).")
        check_request(r)
        limit = self.unet.config.max_context_frames - 1
        if r.context_frames is not None and not int(r.context_frames) <= limit:
            raise InputError(
                f"context_frames must be between 0 and {limit} for this checkpoint; got {r.context_frames}."
            )
        if r.context_mode == "recompute" and self.unet.context_from_denoiser:
            raise InputError(
                "context_mode 'recompute' re-encodes finished frames; this checkpoint caches its own denoising "
                "pass instead (context_source 'denoiser'): use context_mode 'cache'."
            )
        check_view(r.azimuth, r.elevation)

    # -- 2. identity --------------------------------------------------------------------
    def identity_backend(self, **options):
        """The face encoder this checkpoint's identity space needs (built-in or insightface).

        Built once per pipeline (and ``options``, e.g. ``detector="none"``) and reused: insightface
        loads its ONNX models on first use, so a backend per request reloaded them every time. A
        new ``identity_encoder`` component gets a new backend.
        """
        key = (self.identity_space, tuple(sorted(options.items())))
        cached = self._identity_backends.get(key)
        if cached is None or cached[0] is not self.identity_encoder:
            backend = identity_frontend.make_identity_backend(self.identity_space, self.identity_encoder, **options)
            cached = self._identity_backends[key] = (self.identity_encoder, backend)
        return cached[1]

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

    def photo_to_avatar(self, image):
        """A photo → its SynthTalk avatar (``starcaster.avatar.AvatarFit``): the head read from the photo,
        its canonical portrait (uint8 ``[128, 128, 3]``), a description of what was read, the domain
        score of the photo (1 = SynthTalk-like) and the avatar's identity embedding ``(512,)``."""
        from .avatar import avatar_for

        return self._embed_avatar(avatar_for(identity_frontend.load_image(image), "always"))

    def render_avatar(self, head, domain_score: float | None = None):
        """An avatar from given head parameters (``HeadParams``, e.g. adjusted ones): portrait and embedding."""
        from .avatar import AvatarFit, render_portrait

        return self._embed_avatar(AvatarFit(head, render_portrait(head), "parameters", domain_score=domain_score))

    def _embed_avatar(self, fit):
        """Set ``fit.embedding``; the built-in encoder reads the avatar's portrait whole (it is already a crop)."""
        backend = self.identity_backend(**({"detector": "none"} if self.identity_space == "builtin" else {}))
        fit.embedding = backend.embed(identity_frontend.load_image(fit.portrait))
        return fit

    def _prepare_identity(
        self, identity_embedding, image, use_prior: bool = True, avatar: str = "never"
    ) -> tuple[np.ndarray, np.ndarray | None, object]:
        """``(embedding, portrait, avatar)``: the portrait (uint8 ``[H, W, 3]``) is the reference crop (of the
        photo's avatar when ``avatar`` says so: then the ``AvatarFit``), the identity prior's portrait of
        the embedding, or None (the video model alone)."""
        dim = self.unet.config.identity_embed_dim
        if image is None:
            embedding = identity_frontend.load_embedding(identity_embedding, expected_dim=dim)
            if not use_prior or self.identity_prior is None:
                return embedding, None, None  # the video model alone: soft identity from the embedding tokens
            return embedding, self.identity_prior.portrait(embedding), None
        picture = identity_frontend.load_image(image)
        fit = None
        if avatar != "never":
            from .avatar import avatar_for

            if (fit := avatar_for(picture, avatar)) is not None:
                picture = identity_frontend.load_image(self._embed_avatar(fit).portrait)
        if fit is not None:  # the avatar's portrait is already a crop
            crop = identity_frontend.detect_and_crop_face(picture, self.image_size, detector="none")
            return fit.embedding, np.array(crop.image), fit
        found = self.identity_backend().extract(picture)  # detects the face once: the reference crop reuses it
        return found.embedding, np.array(identity_frontend.recrop(picture, found.crop, self.image_size).image), None

    # -- 3./4. audio and views ----------------------------------------------------------
    def _prepare_audio(self, r: GenerationRequest, frozen: bool) -> tuple[np.ndarray | None, Path | None, object]:
        """``(wave, long_file, features)``: the samples the video is in sync with (whole clips),
        the file itself for a long recording read in blocks, and the run's feature source."""
        if isinstance(r.audio, StreamedFeatures):  # live: samples arrive while the video is generated
            return None, None, r.audio
        if not frozen and (long_file := self._long_file(r)) is not None:
            total = num_video_frames(file_samples(long_file), r.fps)
            blocks = iter_file_blocks(long_file)
            return None, long_file, StreamedFeatures(r.fps, self.audio_config, blocks=blocks, total=total)
        wave = self._wave(r)
        if frozen:
            return None, None, FixedFeatures(self._instant(wave, r))
        if self.audio_config.extractor != "logmel":  # a sequence model over the whole clip (wav2vec2)
            return wave, None, FixedFeatures(frame_features(wave, r.fps, self.audio_config))
        features = StreamedFeatures(r.fps, self.audio_config)
        features.push(wave)
        features.end()
        return wave, None, features

    def _wave(self, r: GenerationRequest) -> np.ndarray:
        """The whole clip's samples; a ``LoadedAudio`` was decoded and checked by the caller (the app): used as it is."""
        if not isinstance(r.audio, LoadedAudio):
            return load_audio(r.audio, SAMPLE_RATE, max_seconds=r.max_audio_seconds, trim_silence=r.trim_silence)
        if r.max_audio_seconds is not None and r.audio.info.duration_s > r.max_audio_seconds:
            raise too_long(r.audio.info.duration_s, r.max_audio_seconds)
        if r.trim_silence:
            raise InputError("trim_silence applies when audio is read: pass read_audio(..., trim_silence=True).")
        return r.audio.wave

    def _long_file(self, r: GenerationRequest) -> Path | None:
        """A recording long enough to be read in blocks (soundfile formats over ``LONG_AUDIO_SECONDS``)."""
        if not isinstance(r.audio, str | Path) or self.audio_config.extractor != "logmel":
            return None
        samples = file_samples(r.audio) if Path(r.audio).is_file() else None
        if samples is None or samples <= LONG_AUDIO_SECONDS * SAMPLE_RATE:
            return None
        if r.max_audio_seconds is not None and samples > r.max_audio_seconds * SAMPLE_RATE:
            raise too_long(samples / SAMPLE_RATE, r.max_audio_seconds)
        if r.trim_silence:
            raise InputError(
                f"trim_silence needs the whole clip in memory; it is only available for audio up to "
                f"{LONG_AUDIO_SECONDS:g} s. Trim long recordings beforehand."
            )
        return Path(r.audio)

    def _instant(self, wave: np.ndarray, r: GenerationRequest) -> np.ndarray:
        """A frozen-time sweep's features: one instant's window repeated for every view ``[V, W, D]``."""
        features = frame_features(wave, r.fps, self.audio_config)  # [T, W, M]
        instant = len(features) // 2 if r.sweep_time is None else int(round(r.sweep_time * r.fps))
        if not 0 <= instant < len(features):
            raise InputError(f"sweep_time {r.sweep_time} s is outside the audio ({len(wave) / SAMPLE_RATE:.2f} s).")
        count = int(r.num_frames or round(2 * r.fps))
        return np.repeat(features[instant : instant + 1], count, axis=0)

    def warm_up(self) -> None:
        """Pay the one-time costs before the first request: librosa's first mel spectrogram (≈ 5 s of
        lazy imports and JIT here) and the first forward passes. A server calls it once after loading."""
        identity = np.ones(self.unet.config.identity_embed_dim, np.float32)
        hum = 0.1 * np.sin(np.arange(SAMPLE_RATE // 5, dtype=np.float32) * 0.05)  # not silence: no warning
        run = self.start(audio=hum, identity_embedding=identity, fps=25)
        for _ in run.chunks:
            pass

    def live_audio(self, fps: float = 25) -> StreamedFeatures:
        """A live speech source for ``start(audio=...)``: ``push(samples, sample_rate)`` as they are
        recorded, ``end()`` when the speaker stops; chunks are generated as the audio arrives."""
        return StreamedFeatures(fps, self.audio_config)

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
            embedding, portrait, avatar = self._prepare_identity(
                r.identity_embedding, r.image, r.use_identity_prior, r.avatar
            )
            reference = None if portrait is None else self.encode_images(portrait[None])[None]  # [1, 1, C, h, w]
        frozen = r.camera_path in FROZEN_TIME_PATHS
        with self.timer("audio"):
            wave, long_file, features = self._prepare_audio(r, frozen)
        if features.total is None and (
            r.camera_path not in (None, "static") or np.ndim(r.azimuth) or np.ndim(r.elevation)
        ):
            raise InputError("Live audio takes one static view (steer it while it streams), not a camera path.")
        planned = make_view_track(features.total or 1, r.azimuth, r.elevation, r.camera_path)
        return _Prepared(
            identity=torch.from_numpy(embedding).to(self.device, self.unet.dtype)[None],
            features=features,
            steering=ViewSteering(planned),
            audio=wave,
            reference_latents=reference,
            reference_view=tuple(r.reference_view),
            refining=self._refining(portrait, 0.0 if frozen else r.refiner_smoothing) if r.use_refiner else None,
            audio_file=long_file,
            avatar=avatar,
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

    # -- 5. per-chunk conditions --------------------------------------------------------
    def _conditions(self, prep: _Prepared, features: np.ndarray, views: ViewTrack) -> tuple:
        """Per-chunk condition inputs ``(identity [1,512], audio [1,F,W,M], views [1,F,2])``.

        Device and dtype are the run's identity tensor's: ``self.device`` / ``unet.dtype`` walk every
        module of every component on each call (py-spy found them on the denoiser thread per chunk;
        end to end the difference is within the machine's noise, 0.42 vs 0.43 s per video second)."""
        audio = torch.from_numpy(features).to(prep.identity.device, prep.identity.dtype)[None]
        track = torch.from_numpy(np.stack([views.azimuth, views.elevation], -1).astype(np.float32))
        return prep.identity, audio, track.to(audio.device, audio.dtype)[None]

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
    def start(self, request: GenerationRequest | None = None, **options) -> GenerationRun:
        """Check and prepare every input now (errors surface here), then return the lazy run.

        Takes a ``GenerationRequest`` and/or the keyword arguments of ``__call__`` (which
        override the request's). Front ends use it to know the frame count and audio before
        the first chunk exists (progress bars, streaming mp4 writing), and to ``steer`` the
        run while it streams.
        """
        request = GenerationRequest(**options) if request is None else dataclasses.replace(request, **options)
        self.check_inputs(request)
        guidance = Guidance(
            audio=float(request.guidance_scale_audio),
            identity=float(request.guidance_scale_identity),
            camera=float(request.guidance_scale_camera),
        )
        prep = self._prepare(request)
        run = GenerationRun(
            chunks=iter(()),
            audio=prep.audio,
            num_frames=prep.features.total,
            fps=float(request.fps),
            identity_embedding=prep.identity[0].float().cpu().numpy(),
            steering=prep.steering,
            controls={"chunk_length": int(request.chunk_length)},
            audio_file=prep.audio_file,
            avatar=prep.avatar,
            warnings=self._view_warnings(prep.steering.planned),
            view_range=self.view_range,
        )
        run.chunks = self._generate(prep, request, guidance, run)
        return run

    def _view_warnings(self, planned: ViewTrack) -> list[str]:
        """Views outside the checkpoint's trained range: logged, and returned for the front end to show."""
        note = None if self.view_range is None else self.view_range.warning(planned.azimuth, planned.elevation)
        if note is not None:
            logger.warning(note)
        return [] if note is None else [note]

    def _generate(self, prep: _Prepared, r: GenerationRequest, guidance: Guidance, run: GenerationRun):
        """Chunks as they finish, from a three-stage pipeline on two worker threads: the denoiser
        (the caller's torch thread count) runs one chunk ahead of the decoder + frame refiner (one
        thread: measured best on two cores), which runs one chunk ahead of the caller writing it."""
        denoised = Ahead(lambda stop: self._denoised_chunks(prep, r, guidance, run, stop))
        decoded = Ahead(lambda stop: self._decoded_chunks(denoised, prep, r, run, stop), threads=1)
        try:
            yield from decoded
        finally:
            denoised.stop()  # both stages at once, then wait for them
            decoded.close()
            denoised.close()

    @torch.no_grad()
    def _decoded_chunks(self, denoised: Ahead, prep: _Prepared, r: GenerationRequest, run, stop: threading.Event):
        for index, start, clean, views in denoised:
            if stop.is_set():
                return
            with self.timer("decode"):
                latent = r.output_type == "latent"
                frames = clean[0].float().cpu().numpy() if latent else self.decode_latents(clean[0], prep.refining)
            total = prep.features.total
            yield ChunkOutput(frames, start, index, _num_chunks(total, run), total, views.azimuth, views.elevation)

    @torch.no_grad()
    def _denoised_chunks(self, prep: _Prepared, r: GenerationRequest, guidance: Guidance, run, stop: threading.Event):
        """The autoregressive loop (``models/rollout.py``), steered per chunk: the views and the chunk
        length are read as each chunk starts; yields ``(index, start, clean latents [1,F,C,h,w], views)``."""
        with self.precision(r.precision), _CHUNK_LOCK:
            rollout = self._rollout(prep, r, guidance)
        start, index = 0, 0
        while not (stop.is_set() or run.cancelled.is_set()):
            features = _fetch(prep.features, start, start + run.controls["chunk_length"], stop, run.cancelled)
            if features is None or len(features) == 0:  # [F, W, M]
                return
            views = ViewTrack(*prep.steering.views(start, start + len(features), r.fps))
            run.rendered.append(views)
            with self.precision(r.precision), _CHUNK_LOCK:
                clean = rollout.chunk(*self._conditions(prep, features, views)).clean
            yield index, start, clean, views
            start, index = start + len(features), index + 1

    def _rollout(self, prep: _Prepared, r: GenerationRequest, guidance: Guidance) -> Rollout:
        """A run's rollout: its own scheduler copy (timesteps are per run), the reference portrait as the sink."""
        cfg = self.unet.config
        noise = NoiseSource((1, cfg.latent_channels, cfg.sample_size, cfg.sample_size), r.generator, self.device,
                            self.unet.dtype)  # fmt: skip
        sink = None
        if prep.reference_latents is not None:
            sink = Sink.at(prep.reference_latents, prep.identity, prep.reference_view)
        return Rollout(
            self.unet, copy.deepcopy(self.scheduler), noise, int(r.num_inference_steps), r.context_frames, sink,
            r.noise_sharing, guidance, recompute=r.context_mode == "recompute", timer=lambda name: self.timer(name),
        )  # fmt: skip

    @torch.no_grad()
    def __call__(
        self,
        audio: AudioSource,
        identity_embedding=None,
        image=None,
        azimuth: float | np.ndarray = GenerationRequest.azimuth,
        elevation: float | np.ndarray = GenerationRequest.elevation,
        camera_path: str | None = GenerationRequest.camera_path,
        chunk_length: int = GenerationRequest.chunk_length,
        num_inference_steps: int = GenerationRequest.num_inference_steps,
        guidance_scale_audio: float = GenerationRequest.guidance_scale_audio,
        guidance_scale_identity: float = GenerationRequest.guidance_scale_identity,
        guidance_scale_camera: float = GenerationRequest.guidance_scale_camera,
        generator: torch.Generator | None = None,
        fps: float = GenerationRequest.fps,
        output_type: str = GenerationRequest.output_type,
        callback_on_chunk_end: Callable[[STARCasterPipeline, ChunkOutput], None] | None = None,
        context_frames: int | None = GenerationRequest.context_frames,
        num_frames: int | None = GenerationRequest.num_frames,
        sweep_time: float | None = GenerationRequest.sweep_time,
        reference_view: tuple[float, float] = GenerationRequest.reference_view,
        context_mode: str = GenerationRequest.context_mode,
        trim_silence: bool = GenerationRequest.trim_silence,
        max_audio_seconds: float | None = GenerationRequest.max_audio_seconds,
        precision: str = GenerationRequest.precision,
        noise_sharing: float = GenerationRequest.noise_sharing,
        use_identity_prior: bool = GenerationRequest.use_identity_prior,
        use_refiner: bool = GenerationRequest.use_refiner,
        refiner_smoothing: float = GenerationRequest.refiner_smoothing,
        avatar: str = GenerationRequest.avatar,
    ) -> STARCasterPipelineOutput:
        # The options are defined once, in ``GenerationRequest`` (starcaster/request.py); this explicit
        # signature mirrors it for IDEs and help() (tests/test_request.py keeps the two equal), and
        # the docstring's Args section is generated from its help texts below the class.
        settings = {name: value for name, value in locals().items() if name not in ("self", "callback_on_chunk_end")}
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
            audio=run.audio if run.audio_file is None else load_audio(run.audio_file),
            sample_rate=SAMPLE_RATE,
            azimuth=run.views.azimuth,
            elevation=run.views.elevation,
            identity_embedding=run.identity_embedding,
        )

    __call__.__doc__ = (
        "Generate a whole clip (``start`` + collect the chunks); returns a ``STARCasterPipelineOutput``.\n\n"
        + options_docstring(" " * 4)
    )


def _fetch(features, start: int, stop: int, *cancels: threading.Event) -> np.ndarray | None:
    """The next chunk's features, waiting for live audio but never past a cancel (then None)."""
    while not any(c.is_set() for c in cancels):
        got = features.fetch(start, stop, timeout=0.1)
        if got is not None:
            return got
    return None


def _num_chunks(total: int | None, run: GenerationRun) -> int | None:
    """Chunks in the run at the current chunk length (None while a live run's length is unknown)."""
    if total is None:
        return None
    done = sum(len(t) for t in run.rendered)
    return len(run.rendered) + math.ceil(max(0, total - done) / run.controls["chunk_length"])
