"""STARCaster demo: a Gradio Blocks app over ``STARCasterPipeline`` (also the Spaces entry point).

    python app.py [--host HOST] [--port PORT] [--share] [--checkpoint REPO[@REV]|FOLDER]
                  [--max-audio-seconds S] [--queue-size N]

``create_demo(pipe, info)`` builds the page; nothing is loaded at import time. The app is
thin: inputs are checked by the package's front ends (``STARCasterError`` → ``gr.Error``),
generation is ``pipe.start(...)`` whose chunks stream into a live player and an mp4. Named API
endpoints (``gradio_client``): ``/generate``, ``/extract_identity``, ``/sample_identity``,
``/blend_identities``. See docs/app.md.
"""

from __future__ import annotations

import argparse
import errno
import functools
import inspect
import json
import logging
import os
import random
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import numpy as np

from starcaster import STARCasterError, __version__
from starcaster.app_support import CheckpointInfo, gpu_seconds, load_app_pipeline, run_record
from starcaster.camera import ViewRange
from starcaster.request import DEFAULTS, OPTIONS

try:  # Hugging Face ZeroGPU; locally (no SPACES_ZERO_GPU) ``spaces.GPU`` returns the function unchanged
    import spaces
except Exception:  # noqa: BLE001 — e.g. SPACES_ZERO_GPU set outside a Space
    spaces = None

logger = logging.getLogger("starcaster.app")

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE / "examples"
CAMERA_PATHS = list(OPTIONS["camera_path"].choices)
FV_KINDS = ["sweep (one instant, many views)", "orbit video"]
FV_SOURCES = ["a portrait", "the identity from the 'From an identity' tab"]
MODES = ("portrait", "identity", "free", "live")
DEFAULT_MAX_AUDIO_SECONDS = 20.0
DEFAULT_QUEUE_SIZE = 16
MAX_SEED = 2**31 - 1
SWEEP_VIEWS = 16  # the page's default number of views of a sweep
SWEEP_VIEWS_MAX = 64
FIRST_SEGMENT_S = 0.3  # the live player starts after this much video (≈ one or two chunks)
SEGMENT_S = 0.5  # later pieces of the live stream: seconds of video each
LIVE_MIC_EVERY_S = 0.25  # the microphone's samples reach the server this often
LIVE_LEAD_S = 2.0  # the page's generation runs at most this far ahead of playback, so steering acts soon
RETURNED_FILES_TTL_S = 60.0
CACHE_SWEEP = (1800, 3600)  # delete_cache: every 30 min, files older than 1 h
EMBEDDING_TYPES = [".npy", ".pt", ".pth", ".safetensors", ".json"]
WORK_DIR_PREFIX = "starcaster-app-"  # + pid: a dead process's folder is removed by the next start
MAX_FILE_SIZE = "25mb"  # per upload: a long phone photo or 2 min of 48 kHz stereo WAV fit; more is refused

CSS = """
#random-banner {background:#b91c1c; color:white; border-radius:8px; padding:8px 14px; font-weight:600;}
#random-banner * {color:white !important;}
#random-banner code {background:rgba(0,0,0,0.3) !important;}
#checkpoint-note {font-size:0.9em; opacity:0.85;}
"""


def _gpu(duration):
    """``spaces.GPU(duration=...)`` when running on ZeroGPU, the identity elsewhere."""
    if spaces is None:
        return lambda fn: fn
    return spaces.GPU(duration=duration)


def _fail(message: str) -> gr.Error:
    """A user-facing error: shown in the page / returned to the API client, no server traceback."""
    return gr.Error(message, print_exception=False)


def _user_error(exc: Exception) -> gr.Error:
    return _fail(str(exc))


def _internal_error(exc: Exception) -> gr.Error:
    """A bug or a resource failure: the traceback goes to the server log, the client gets a clear
    message without internals (no paths, no exception text)."""
    logger.error("request failed", exc_info=exc)
    return _fail(
        f"The request failed on the server ({type(exc).__name__}); the details are in the server log. "
        "Try again, or with other inputs."
    )


def _reported(fn):
    """Endpoint decorator: ``STARCasterError`` → its message, anything else → ``_internal_error``."""

    def convert(exc: Exception) -> gr.Error:
        if isinstance(exc, gr.Error):
            return exc
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            logger.error("disk full", exc_info=exc)
            return _fail("The server's disk is full, so the result could not be saved. Try again later.")
        return _user_error(exc) if isinstance(exc, STARCasterError) else _internal_error(exc)

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                raise convert(exc) from exc

        return generator

    @functools.wraps(fn)
    def function(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise convert(exc) from exc

    return function


def _can_stream() -> bool:
    """Gradio's streaming video output runs the system's ffmpeg and ffprobe (packages.txt on a Space)."""
    return bool(shutil.which("ffmpeg") and shutil.which("ffprobe"))


class DemoApp:
    """The app's behaviour (one instance per ``create_demo``); the Blocks layout is in ``create_demo``."""

    def __init__(self, pipe, info: CheckpointInfo, max_audio_seconds: float, work_dir: Path):
        self.pipe, self.info = pipe, info
        self.max_audio_seconds = float(max_audio_seconds)
        self.work_dir = work_dir
        self._lock = threading.Lock()  # the scheduler is shared: one chunk computes at a time
        self._sweep_lock = threading.Lock()
        self._returned: deque[tuple[float, Path]] = deque()
        weakref.finalize(self, shutil.rmtree, str(work_dir), True)  # at exit or when the app goes away
        self.views = pipe.view_range or ViewRange()  # the sliders span the trained views (undeclared: all views)
        self.max_context = int(pipe.unet.config.max_context_frames) - 1
        self.generate_on_gpu = _gpu(self._gpu_duration)(self._chunks)
        self._runs: dict[str, object] = {}  # session → the run it is streaming (steered by the sliders)
        self._live: dict[str, object] = {}  # session → its LiveSession (microphone mode)
        self._live_dirs: dict[str, Path] = {}
        self.streaming = _can_stream()

    # -- files ----------------------------------------------------------------------------
    def _run_dir(self, request: gr.Request | None) -> Path:
        session = getattr(request, "session_hash", None) or "api"
        folder = self.work_dir / session / uuid.uuid4().hex[:12]
        folder.mkdir(parents=True)
        return folder

    def _returned_dir(self, request: gr.Request | None) -> Path:
        """A folder for files a plain (non-streaming) endpoint returns: Gradio copies them into
        its own cache (cleaned by ``delete_cache``) on return, so ours are swept a minute later."""
        now = time.monotonic()
        with self._sweep_lock:
            while self._returned and now - self._returned[0][0] > RETURNED_FILES_TTL_S:
                shutil.rmtree(self._returned.popleft()[1], ignore_errors=True)
            folder = self._run_dir(request)
            self._returned.append((now, folder))
        return folder

    def _retire(self, folder: Path) -> None:
        """Remove ``folder`` with the returned files, a minute from now."""
        with self._sweep_lock:
            self._returned.append((time.monotonic(), folder))

    def end_session(self, request: gr.Request) -> None:
        """``demo.unload``: drop whatever a closed page left behind (a live session included)."""
        if request is not None and (live := self._live.pop(request.session_hash or "", None)) is not None:
            live.close()
            self._runs.pop(request.session_hash, None)
            shutil.rmtree(self._live_dirs.pop(request.session_hash), ignore_errors=True)
        if request is not None and request.session_hash:
            shutil.rmtree(self.work_dir / request.session_hash, ignore_errors=True)

    # -- identity endpoints -----------------------------------------------------------------
    @_reported
    def extract_identity(self, image: str | None, request: gr.Request = None):
        """Portrait → (identity .npy, the face crop used, a note)."""
        if not image:
            raise _fail("Upload a portrait (or pick an example) to extract its identity.")
        try:
            with self._lock:
                result = self.pipe.identity_backend().extract(image)
        except STARCasterError as exc:
            raise _user_error(exc) from exc
        path = self._save_identity(result.embedding, "identity_extracted.npy", request)
        note = f"Extracted a {result.embedding.shape[0]}-D identity ({self.pipe.identity_space} encoder)."
        note += "".join(f"\n\n⚠️ {w}" for w in result.crop.warnings)
        return path, np.asarray(result.crop.image), note

    @_reported
    def sample_identity(self, seed: float, randomize: bool, request: gr.Request = None):
        """A random identity (``pipe.random_identity``) → (identity .npy, the seed used, a note)."""
        seed = random.randint(0, MAX_SEED) if randomize else _seed(seed)
        embedding = self.pipe.random_identity(seed)
        path = self._save_identity(embedding, f"identity_random_{seed}.npy", request)
        return path, seed, f"Random identity, seed {seed}."

    @_reported
    def blend_identities(self, first: str | None, second: str | None, weight: float, request: gr.Request = None):
        """Spherical blend of two embedding files → (identity .npy, a note)."""
        from starcaster.identity import load_embedding, slerp

        if not first or not second:
            raise _fail("Give two identity files (identity A and identity B) to blend.")
        dim = int(self.pipe.unet.config.identity_embed_dim)
        try:
            mixed = slerp(load_embedding(first, dim), load_embedding(second, dim), float(weight))
        except STARCasterError as exc:
            raise _user_error(exc) from exc
        path = self._save_identity(mixed, f"identity_blend_{float(weight):.2f}.npy", request)
        return path, f"Blended {Path(first).name} and {Path(second).name} at t = {float(weight):.2f}."

    def describe_identity(self, path: str | None) -> str:
        from starcaster.identity import load_embedding

        if not path:
            return "No identity yet: upload an embedding file, sample a random one, blend two, or extract one."
        try:
            load_embedding(path, int(self.pipe.unet.config.identity_embed_dim))
        except STARCasterError as exc:
            return f"⚠️ {exc}"
        return f"Current identity: `{Path(path).name}` (valid, {self.pipe.unet.config.identity_embed_dim}-D)."

    def imagine_identity(self, path: str | None) -> np.ndarray | None:
        """The identity prior's portrait of an embedding file (enlarged for display), or None."""
        if not path or self.pipe.identity_prior is None:
            return None
        try:
            with self._lock:
                portrait = self.pipe.imagine_portrait(path)  # validates the file as generation does
        except STARCasterError:
            return None  # describe_identity explains what is wrong with the file
        return np.kron(portrait, np.ones((3, 3, 1), np.uint8))  # 64² → 192², sharp pixels

    def _save_identity(self, embedding: np.ndarray, name: str, request) -> str:
        from starcaster.identity import save_embedding

        return str(save_embedding(embedding, self._returned_dir(request) / name))

    # -- photo → avatar (starcaster.avatar) -------------------------------------------------
    @_reported
    def photo_to_avatar(self, image: str | None, request: gr.Request = None):
        """Photo → (avatar portrait .png, avatar identity .npy, what was read, head parameters as JSON)."""
        if not image:
            raise _fail("Upload a photo with a face to make its avatar.")
        with self._lock:
            fit = self.pipe.photo_to_avatar(image)
        return self._avatar_files(fit, request)

    @_reported
    def adjust_avatar(
        self,
        parameters: str | None,
        hair: str,
        hair_style: str,
        skin: str,
        glasses: bool,
        beard: float,
        request: gr.Request = None,
    ):
        """An avatar's parameters (JSON) with the page's edits → the same four outputs as ``photo_to_avatar``."""
        from starcaster.avatar import head_from_parameters

        if not parameters:
            raise _fail("Make an avatar from a photo first.")
        values = json.loads(parameters)
        values.update(hair=_rgb(hair), skin=_rgb(skin), glasses=bool(glasses), beard=float(beard))
        values["hair_style"] = (
            _hair_styles().index(hair_style) if hair_style in _hair_styles() else values["hair_style"]
        )
        with self._lock:
            fit = self.pipe.render_avatar(head_from_parameters(values), values.get("domain_score"))
        return self._avatar_files(fit, request)

    def _avatar_files(self, fit, request) -> tuple:
        from PIL import Image

        folder = self._returned_dir(request)
        portrait = folder / "avatar.png"
        Image.fromarray(fit.portrait).save(portrait)
        identity = self._save_identity(fit.embedding, "avatar_identity.npy", request)
        notes = "".join(f"\n\n⚠️ {n}" for n in fit.notes)
        score = "" if fit.domain_score is None else f" · domain score {fit.domain_score:.2f} (1 = SynthTalk-like)"
        text = f"**Read from the photo:** {fit.description}{score}{notes}"
        parameters = dict(fit.parameters(), domain_score=fit.domain_score)
        return str(portrait), identity, text, json.dumps(parameters)

    def avatar_panel_update(self, image: str | None, request: gr.Request = None):
        """The portrait input changed: fill the avatar panel for a real photo; say so for a SynthTalk portrait."""
        from starcaster.avatar import hex_colour
        from starcaster.avatar_domain import THRESHOLD, domain_score
        from starcaster.identity import load_image

        if not image:
            return (gr.skip(),) * 10
        try:
            score = domain_score(load_image(image))
            if score >= THRESHOLD:
                note = f"This is a SynthTalk-like portrait (domain score {score:.2f}): it is animated as it is."
                return (gr.skip(), gr.skip(), gr.skip(), note, *(gr.skip(),) * 6)
            portrait, identity, text, parameters = self.photo_to_avatar(image, request)
        except gr.Error as exc:
            return (gr.skip(), gr.skip(), gr.skip(), f"⚠️ {exc.message}", *(gr.skip(),) * 6)
        values = json.loads(parameters)
        controls = (hex_colour(values["hair"]), values["hair_style_name"], hex_colour(values["skin"]))
        return (image, portrait, identity, text, parameters, *controls, values["glasses"], values["beard"])

    # -- generation -----------------------------------------------------------------------
    @_reported
    def generate(
        self,
        image: str | None,
        embedding: str | None,
        audio: str | None,
        azimuth: float = DEFAULTS["azimuth"],
        elevation: float = DEFAULTS["elevation"],
        camera_path: str = DEFAULTS["camera_path"],
        chunk_length: int = DEFAULTS["chunk_length"],
        num_inference_steps: int = DEFAULTS["num_inference_steps"],
        guidance_scale_audio: float = DEFAULTS["guidance_scale_audio"],
        guidance_scale_identity: float = DEFAULTS["guidance_scale_identity"],
        seed: float = 0,
        randomize_seed: bool = False,
        fps: float = DEFAULTS["fps"],
        context_frames: int = DEFAULTS["context_frames"],
        sweep_views: int = SWEEP_VIEWS,
        sweep_moment: float = 0.5,
        refine_details: bool = DEFAULTS["use_refiner"],
        progress=gr.Progress(),  # noqa: B008 — Gradio injects the tracker through this default
        request: gr.Request = None,
        paced: bool = False,
    ) -> Iterator[tuple]:
        """Yield (live segment, video, identity.npy, settings.json, status, seed): live pieces, then the files."""
        loaded = self._load_audio(audio)  # decoded and checked once: the pipeline takes it as it is
        if (image is None) == (embedding is None):
            raise _fail(
                "Give exactly one identity: a portrait image or an identity embedding file."
                if image is None
                else "Give a portrait image or an identity embedding file, not both."
            )
        seed = random.randint(0, MAX_SEED) if randomize_seed else _seed(seed)
        settings = self._settings(locals(), loaded.info.duration_s)
        for warning in loaded.info.warnings:
            gr.Warning(warning)
        run_dir = self._run_dir(request)
        try:
            session = getattr(request, "session_hash", None)
            yield from self._stream(settings, loaded, run_dir, image, embedding, audio, progress, session, paced)
        finally:  # the files were copied into Gradio's cache when the last value was sent
            shutil.rmtree(run_dir, ignore_errors=True)

    def _load_audio(self, audio: str | None):
        from starcaster.audio import read_audio

        if not audio:
            raise _fail("Add speech audio: upload a file, record with the microphone, or pick an example clip.")
        try:
            return read_audio(audio, max_seconds=self.max_audio_seconds)
        except STARCasterError as exc:
            raise _user_error(exc) from exc

    def _settings(self, given: dict, seconds: float) -> dict:
        """The run's ``GenerationRequest`` options (+ ``seed``): what ``pipe.start`` gets and the settings JSON records."""
        path = given["camera_path"] or "static"
        settings = dict(
            azimuth=float(given["azimuth"]),
            elevation=float(given["elevation"]),
            camera_path=path,
            chunk_length=int(given["chunk_length"]),
            num_inference_steps=int(given["num_inference_steps"]),
            guidance_scale_audio=float(given["guidance_scale_audio"]),
            guidance_scale_identity=float(given["guidance_scale_identity"]),
            seed=int(given["seed"]),
            fps=float(given["fps"]),
            context_frames=int(given["context_frames"]),
            use_refiner=bool(given["refine_details"]),
        )
        if path == "sweep":  # the moment as a fraction of the clip → seconds, the last frame at most
            moment = min(float(given["sweep_moment"]) * seconds, max(0.0, seconds - 1.0 / settings["fps"]))
            settings.update(num_frames=int(given["sweep_views"]), sweep_time=round(moment, 4))
        return settings

    def _stream(
        self, settings, loaded, run_dir: Path, image, embedding, audio, progress, session, paced=False
    ) -> Iterator[tuple]:
        """Write the mp4 as chunks arrive and hand the live player a segment every ``SEGMENT_S`` s.

        ``paced`` (the page): generation waits while it is more than ``LIVE_LEAD_S`` of video ahead
        of real time since the first segment, so a slider moved while it plays turns the camera
        within about that much video, and the CPU is free for other visitors meanwhile."""
        chunks = self.generate_on_gpu(settings, loaded, image, embedding, session)
        try:
            yield from self._write_stream(chunks, settings, run_dir, image, embedding, audio, progress, paced)
        finally:  # an error or a Stop: the run's worker threads end now, not when garbage-collected
            chunks.close()

    def _write_stream(self, chunks, settings, run_dir, image, embedding, audio, progress, paced) -> Iterator[tuple]:
        from starcaster.video import VideoWriter

        pacer = _Pacer(LIVE_LEAD_S)
        started, seed = time.perf_counter(), settings["seed"]
        header = _next_or_error(chunks)
        video_path = run_dir / f"starcaster_seed{seed}.mp4"
        segments = _Segments(run_dir, header["fps"], header["audio"])
        progress((0, header["num_frames"]), desc="starting", unit="frames")
        for warning in header["warnings"]:  # e.g. views outside the checkpoint's trained range
            gr.Warning(warning)
        footer: dict = {}
        with VideoWriter(video_path, header["fps"], header["audio"]) as writer:
            while (chunk := _next_or_error(chunks)) is not None:
                if type(chunk) is dict:  # after the last chunk: the views rendered (ChunkOutput is a dict subclass)
                    footer = chunk
                    continue
                writer.write(chunk.frames)
                done = chunk.start + len(chunk.frames)
                eta = (time.perf_counter() - started) / done * (chunk.total_frames - done)
                desc = f"chunk {chunk.index + 1}/{chunk.num_chunks} · ETA {eta:.0f} s"
                progress((done, chunk.total_frames), desc=desc, unit="frames")
                status = f"Generating… {desc} · frames {chunk.start}–{done - 1} · azimuth {chunk.azimuth[-1]:.0f}°"
                piece = segments.add(chunk.frames) if self.streaming else None
                # one update per chunk (a Stop or a dropped client is noticed between yields)
                yield (str(piece) if piece else gr.skip()), gr.skip(), gr.skip(), gr.skip(), status, seed
                if piece and paced:
                    pacer.wait(done / header["fps"])
        last = segments.flush() if self.streaming else None
        elapsed = time.perf_counter() - started
        views = footer.get("views")
        identity_path, settings_path = self._write_record(
            run_dir, header, settings, elapsed, image, embedding, audio, views
        )
        first, last_view = (views.azimuth[0], views.azimuth[-1]) if views is not None else header["azimuth"]
        status = (
            f"Done: {writer.frames_written} frames at {header['fps']:g} fps in {elapsed:.1f} s · seed {seed} · "
            f"azimuth {first:.0f}° → {last_view:.0f}°"
        ) + "".join(f"\n\n⚠️ {w}" for w in header["warnings"])
        yield (str(last) if last else gr.skip()), str(video_path), str(identity_path), str(settings_path), status, seed

    def _write_record(
        self, run_dir: Path, header, settings, elapsed, image, embedding, audio, views=None
    ) -> tuple[Path, Path]:
        """Save the identity used (.npy) and the settings JSON (with the per-frame views rendered) next to the video."""
        identity_path = run_dir / "identity.npy"
        np.save(identity_path, header["identity_embedding"])
        inputs = {"image": _name(image), "embedding": _name(embedding), "audio": _name(audio)}
        record = run_record(self.info, settings, inputs=inputs)
        record["seconds"] = round(elapsed, 2)
        if views is not None:  # what the camera did, including any steering while it streamed
            record["views"] = {
                "azimuth": [round(float(a), 2) for a in views.azimuth],
                "elevation": [round(float(e), 2) for e in views.elevation],
            }
        settings_path = run_dir / f"settings_seed{settings['seed']}.json"
        settings_path.write_text(json.dumps(record, indent=2) + "\n")
        return identity_path, settings_path

    def _gpu_duration(self, settings: dict, loaded, image, embedding, session=None) -> int:
        return gpu_seconds(
            loaded.info.duration_s,
            settings["fps"],
            settings["num_inference_steps"],
            settings["camera_path"],
            settings.get("num_frames", 0),
            self.max_audio_seconds,
        )

    def _chunks(self, settings: dict, loaded, image, embedding, session: str | None = None) -> Iterator:
        """The GPU part (``spaces.GPU``): a header dict, every ``ChunkOutput``, then ``{"views": ...}``.

        While it runs, the page's sliders steer it (``steer``) through ``self._runs[session]``.
        """
        import torch

        kwargs = {k: v for k, v in settings.items() if k != "seed"}
        kwargs.update(
            audio=loaded,  # a LoadedAudio: the pipeline does not decode or validate it again
            image=image,
            identity_embedding=embedding,
            generator=torch.Generator().manual_seed(settings["seed"]),
        )
        with self._lock:
            run = self.pipe.start(**kwargs)
        yield {
            "num_frames": run.num_frames,
            "fps": run.fps,
            "audio": run.audio,
            "identity_embedding": run.identity_embedding,
            "azimuth": (float(run.views.azimuth[0]), float(run.views.azimuth[-1])),
            "warnings": list(run.warnings),
        }
        steerable = session is not None and settings["camera_path"] == "static"
        if steerable:
            self._runs[session] = run
        try:
            yield from run.chunks  # the pipeline computes one chunk at a time across runs
        finally:
            if steerable and self._runs.get(session) is run:
                del self._runs[session]
            run.cancel()
            run.chunks.close()
        yield {"views": run.views}

    def steer(self, azimuth: float, elevation: float, chunk_length: float, request: gr.Request = None) -> None:
        """A slider moved: the run this page is streaming turns its camera for the chunks to come."""
        run = self._runs.get(getattr(request, "session_hash", None) or "")
        if run is None:
            return
        try:
            run.steer(azimuth=float(azimuth), elevation=float(elevation), chunk_length=int(chunk_length))
        except STARCasterError as exc:
            gr.Warning(str(exc))

    # -- live microphone -------------------------------------------------------------------
    @_reported
    def live_step(
        self, recorded, portrait: str | None, azimuth: float, elevation: float, seed: float, request: gr.Request = None
    ):
        """A piece of microphone audio arrived: feed it, hand the player the chunks finished since."""
        key = getattr(request, "session_hash", None) or "api"
        session = self._live.get(key)
        if session is None:
            session = self._start_live(key, portrait, azimuth, elevation, seed)
        if recorded is not None:
            rate, samples = recorded
            session.push(samples, int(rate))
        done, _ = session.collect()
        return self._live_segment(key, session, done)

    def _start_live(self, key: str, portrait, azimuth, elevation, seed):
        import torch

        from starcaster.live import LiveSession

        if not portrait:
            raise _fail("Upload a portrait (or pick an example) for the live mode first, then speak.")
        with self._lock:
            session = LiveSession(
                self.pipe,
                image=portrait,
                azimuth=float(azimuth),
                elevation=float(elevation),
                generator=torch.Generator().manual_seed(_seed(seed)),
            )
        self._live[key], self._runs[key] = session, session.run
        self._live_dirs[key] = self._run_dir(None)
        return session

    def _live_segment(self, key: str, session, done: list) -> tuple:
        from starcaster.video import encode_segment

        latency = np.mean(session.latencies[-25:]) if session.latencies else float("nan")
        status = f"Live: {session.received / 16_000:.1f} s heard · latency {latency:.2f} s"
        if not done:
            return gr.skip(), status
        frames = np.concatenate([c.chunk.frames for c in done])
        audio = np.concatenate([c.audio for c in done])
        folder = self._live_dirs[key]
        for old in folder.glob("live_*.mp4"):  # Gradio read it when it was returned
            old.unlink(missing_ok=True)
        path = encode_segment(folder / f"live_{done[0].chunk.start:06d}.mp4", frames, session.fps, audio)
        return str(path), status

    @_reported
    def live_stop(self, request: gr.Request = None):
        """The microphone stopped: the last frames are drawn from what was heard, then the session ends."""
        key = getattr(request, "session_hash", None) or "api"
        session = self._live.pop(key, None)
        if session is None:
            return gr.skip(), "Live: not running."
        session.end()
        done, over = [], False
        while not over:
            more, over = session.collect(wait=10.0)
            done += more
        session.close()
        self._runs.pop(key, None)
        heard = session.received / 16_000
        latency = np.mean(session.latencies) if session.latencies else float("nan")
        segment, _ = self._live_segment(key, session, done)
        self._retire(self._live_dirs.pop(key))  # its last segment is still being handed out
        return segment, f"Live session over: {heard:.1f} s of speech, mean latency {latency:.2f} s per frame."

    # -- UI routing ------------------------------------------------------------------------
    @_reported
    def generate_ui(
        self,
        request: gr.Request,  # positional: Gradio injects special arguments only there (not after *settings)
        mode: str,
        portrait: str | None,
        identity_file: str | None,
        fv_kind: str,
        fv_source: str,
        fv_portrait: str | None,
        audio: str | None,
        azimuth: float,
        elevation: float,
        camera_path: str,
        *settings,
        progress=gr.Progress(),  # noqa: B008
    ) -> Iterator[tuple]:
        """The page's Generate button: pick the identity and camera path from the active tab."""
        image, embedding = (portrait, None) if mode == "portrait" else (None, identity_file)
        if mode == "portrait" and not portrait:
            raise _fail("Upload a portrait (or pick an example) in the 'Animate a portrait' tab.")
        if mode == "live":
            raise _fail("In the live tab, record with the microphone: the video follows as you speak.")
        if mode == "identity" and not identity_file:
            raise _fail("Set an identity first: upload an embedding file, sample a random one, or blend two.")
        if mode == "free":
            camera_path = "sweep" if fv_kind == FV_KINDS[0] else "orbit"
            use_portrait = fv_source == FV_SOURCES[0]
            image, embedding = (fv_portrait, None) if use_portrait else (None, identity_file)
            if not (image or embedding):
                where = "a portrait in this tab" if use_portrait else "an identity in the 'From an identity' tab"
                raise _fail(f"Free viewpoint needs {where}.")
        yield from self.generate(
            image,
            embedding,
            audio,
            azimuth,
            elevation,
            camera_path,
            *settings,
            progress=progress,
            request=request,
            paced=camera_path == "static",  # a steerable run plays as it is made
        )


def _next_or_error(iterator):
    try:
        return next(iterator, None)
    except STARCasterError as exc:
        raise _user_error(exc) from exc


def _guard_inputs(demo: gr.Blocks) -> None:
    """Make every input component fail with a ``gr.Error`` that names the field.

    Gradio turns a value it cannot read (``"ninety"`` for a slider, ``NaN`` sent through the
    raw HTTP API, an undecodable upload) into an anonymous server error; clients then see only
    "the upstream app has raised an exception". Here each component's ``preprocess`` is
    wrapped: numbers must be finite, anything else that fails is reported with the field's
    label. Portrait images are passed on as the uploaded file's path without being decoded:
    ``starcaster.identity.load_image`` opens them lazily, refuses bombs before decoding and
    names every failure (empty, truncated, not an image), so decoding happens once, safely.
    """
    for block in demo.blocks.values():
        if isinstance(block, gr.components.Component) and hasattr(block, "preprocess"):
            block.preprocess = _guarded_preprocess(block)


def _guarded_preprocess(component):
    original = component.preprocess
    label = component.label or component.elem_id or type(component).__name__
    is_number = isinstance(component, gr.Slider | gr.Number)
    pass_path = isinstance(component, gr.Image) and component.type == "filepath"

    def preprocess(payload):
        if is_number and payload is not None:
            if isinstance(payload, bool) or not isinstance(payload, int | float):
                raise _fail(f"{label}: expected a number; got {payload!r}.")
            if isinstance(payload, float) and not np.isfinite(payload):
                raise _fail(f"{label}: expected a finite number; got {payload!r}.")
        is_data_url = str(getattr(payload, "url", None) or "").startswith("data:")
        if pass_path and getattr(payload, "path", None) and not is_data_url:
            return str(payload.path)  # uploaded file, inside Gradio's cache (checked by Gradio)
        try:
            return original(payload)
        except gr.Error:
            raise
        except Exception as exc:
            raise _fail(f"{label}: the value could not be read ({type(exc).__name__}: {exc}).") from exc

    return preprocess


def _seed(value) -> int:
    try:
        seed = int(value)
    except (TypeError, ValueError) as exc:
        raise _fail(f"The seed must be a whole number between 0 and {MAX_SEED}; got {value!r}.") from exc
    if not 0 <= seed <= MAX_SEED:
        raise _fail(f"The seed must be between 0 and {MAX_SEED}; got {seed}.")
    return seed


class _Pacer:
    """Keeps generation at most ``lead`` seconds of video ahead of the wall clock (from the first call)."""

    def __init__(self, lead: float):
        self.lead, self.started = lead, None

    def wait(self, video_seconds: float) -> None:
        now = time.perf_counter()
        self.started = self.started or now
        ahead = video_seconds - (now - self.started) - self.lead
        if ahead > 0:
            time.sleep(ahead)


class _Segments:
    """Groups finished chunks into the live player's pieces (mp4 segments with their audio slice)."""

    def __init__(self, folder: Path, fps: float, audio: np.ndarray | None):
        self.folder, self.fps, self.audio = folder, float(fps), audio
        self.frames: list[np.ndarray] = []
        self.start = 0  # first frame of the piece being gathered
        self.count = 0

    def add(self, frames: np.ndarray) -> Path | None:
        """Gather a chunk; return a segment file once enough video for the next piece is there."""
        self.frames.append(np.asarray(frames))
        target = FIRST_SEGMENT_S if self.count == 0 else SEGMENT_S
        return self.flush() if sum(len(f) for f in self.frames) >= target * self.fps else None

    def flush(self) -> Path | None:
        from starcaster.audio import frame_samples
        from starcaster.video import encode_segment

        if not self.frames:
            return None
        frames = np.concatenate(self.frames)
        stop = self.start + len(frames)
        audio = None if self.audio is None else frame_samples(self.audio, self.start, stop, self.fps)
        path = encode_segment(self.folder / f"live_{self.count:05d}.mp4", frames, self.fps, audio)
        self.frames, self.start, self.count = [], stop, self.count + 1
        return path


def _rgb(value: str) -> tuple[float, float, float]:
    """A colour picker's value (``#rrggbb`` or ``rgba(r, g, b, a)``) → RGB in [0, 1]."""
    value = str(value or "").strip()
    try:
        if value.startswith("#") and len(value) == 7:
            return tuple(int(value[i : i + 2], 16) / 255 for i in (1, 3, 5))  # type: ignore[return-value]
        if value.startswith("rgb"):
            parts = [float(v) for v in value[value.index("(") + 1 : value.index(")")].split(",")[:3]]
            return tuple(min(max(v / 255, 0.0), 1.0) for v in parts)  # type: ignore[return-value]
    except ValueError:
        pass
    raise _fail(f"Not a colour: {value!r}; use #rrggbb.")


def _hair_styles() -> list[str]:
    from starcaster.avatar import HAIR_STYLES

    return list(HAIR_STYLES)


def _name(path) -> str | None:
    return Path(path).name if path else None


def _example_files(folder: str, pattern: str) -> list[str]:
    return [str(p) for p in sorted((EXAMPLES / folder).glob(pattern))]


# ---------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------


def create_demo(
    pipe,
    info: CheckpointInfo | None = None,
    *,
    max_audio_seconds: float = DEFAULT_MAX_AUDIO_SECONDS,
    queue_size: int = DEFAULT_QUEUE_SIZE,
    concurrency_limit: int = 1,
    work_dir: Path | None = None,
) -> gr.Blocks:
    """Build the Blocks app around a loaded ``STARCasterPipeline`` (does not launch it)."""
    info = info or CheckpointInfo(label=str(pipe.config.get("_name_or_path") or "in-memory pipeline"), revision=None)
    if work_dir is None:
        _remove_stale_work_dirs(Path(tempfile.gettempdir()))
        work_dir = Path(tempfile.mkdtemp(prefix=f"{WORK_DIR_PREFIX}{os.getpid()}-"))
    work_dir = Path(work_dir)
    pipe.warm_up()  # the first visitor should not wait for librosa's start-up
    app = DemoApp(pipe, info, max_audio_seconds, work_dir)
    with gr.Blocks(title="STARCaster", delete_cache=CACHE_SWEEP) as demo:
        _header(app)
        mode = gr.State("portrait")
        with gr.Row():
            with gr.Column(scale=5):
                ids = _identity_tabs(app, mode)
                audio = _audio_input(app)
                controls = _controls(app)
                _track_mode(ids, mode, controls[2])
                with gr.Row():
                    run_btn = gr.Button("Generate", variant="primary", elem_id="generate-btn")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-btn")
                api_btn = gr.Button("generate (API)", visible=False)
            with gr.Column(scale=5):
                outputs = _outputs()
        settings = [audio, *controls]
        ui_event = run_btn.click(
            app.generate_ui,
            inputs=[mode, ids["portrait"], ids["identity"], ids["fv_kind"], ids["fv_source"], ids["fv_portrait"]]
            + settings,
            outputs=outputs,
            api_visibility="private",
            concurrency_id="generate",
            concurrency_limit=concurrency_limit,
        )
        api_event = api_btn.click(
            app.generate,
            inputs=[ids["portrait"], ids["identity"], *settings],
            outputs=outputs,
            api_name="generate",
            concurrency_id="generate",
            concurrency_limit=concurrency_limit,
        )
        stop_btn.click(None, cancels=[ui_event, api_event], api_visibility="private")
        _wire_steering(app, controls)
        _wire_live(app, ids, controls, outputs)
        demo.unload(app.end_session)
    _guard_inputs(demo)
    demo.queue(max_size=queue_size, default_concurrency_limit=concurrency_limit)
    demo.starcaster_app = app  # for tests and tools
    return demo


def _wire_steering(app: DemoApp, controls: list) -> None:
    """Azimuth, elevation and chunk length steer the run this page is streaming (not queued)."""
    azimuth, elevation, chunk = controls[0], controls[1], controls[3]
    for slider in (azimuth, elevation, chunk):
        slider.change(
            app.steer, [azimuth, elevation, chunk], None, api_visibility="private", queue=False, show_progress="hidden"
        )


def _wire_live(app: DemoApp, ids: dict, controls: list, outputs: list) -> None:
    """The microphone streams to ``live_step`` every ``LIVE_MIC_EVERY_S``; its pieces go to the live player."""
    live, status = outputs[0], outputs[4]
    inputs = [ids["live_mic"], ids["live_portrait"], controls[0], controls[1], controls[7]]
    ids["live_mic"].stream(
        app.live_step,
        inputs,
        [live, status],
        stream_every=LIVE_MIC_EVERY_S,
        time_limit=600,
        concurrency_id="live",
        concurrency_limit=2,
        api_visibility="private",
        show_progress="hidden",
    )
    ids["live_mic"].stop_recording(app.live_stop, None, [live, status], api_visibility="private")


def _remove_stale_work_dirs(root: Path) -> None:
    """Delete the work dirs of app processes that died without cleaning up (SIGKILL, OOM, power)."""
    for folder in root.glob(f"{WORK_DIR_PREFIX}*-*"):
        pid = folder.name[len(WORK_DIR_PREFIX) :].split("-")[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _header(app: DemoApp) -> None:
    gr.Markdown(
        "# STARCaster: talking portraits\n"
        "Give an identity (a portrait or an identity embedding) and speech; get a talking-portrait video "
        "from the view you choose, generated chunk by chunk. [How it works](https://arxiv.org/abs/2512.13247)"
    )
    if app.info.random_weights:
        gr.Markdown(
            "⚠️ **Untrained random weights — outputs are noise.** No trained checkpoint was found; "
            "set `STARCASTER_CHECKPOINT` or pass `--checkpoint` to load one.",
            elem_id="random-banner",
        )
    messages = list(app.info.messages)
    if not app.streaming:
        messages.append("No system ffmpeg/ffprobe here, so the live player is off: the video appears when it is done.")
    notes = "".join(f"\n\nℹ️ {m}" for m in messages)
    size = app.pipe.image_size
    gr.Markdown(
        f"Checkpoint: {app.info.describe()} · identity encoder `{app.pipe.identity_space}` · "
        f"{size}×{size} frames · STARCaster {__version__}{notes}",
        elem_id="checkpoint-note",
    )


def _identity_tabs(app: DemoApp, mode: gr.State) -> dict:
    ids = {}
    with gr.Tabs():
        with gr.Tab("Animate a portrait", id="portrait") as ids["tab_portrait"]:
            ids["portrait"] = gr.Image(label="Reference portrait", type="filepath", height=256, elem_id="portrait")
            if examples := _example_files("portraits", "*.png"):
                gr.Examples(examples, inputs=ids["portrait"], label="Example portraits (SynthTalk test identities)")
            _avatar_panel(app, ids["portrait"])
        with gr.Tab("From an identity", id="identity") as ids["tab_identity"]:
            ids["identity"] = _identity_tab(app)
        with gr.Tab("Free viewpoint", id="free") as ids["tab_free"]:
            ids.update(_free_viewpoint_tab())
        with gr.Tab("Live microphone", id="live") as ids["tab_live"]:
            ids.update(_live_tab())
    return ids


def _live_tab() -> dict:
    gr.Markdown(
        "Speak into the microphone: the portrait lip-syncs your speech chunk by chunk while you talk, in the player "
        "on the right (the azimuth and elevation sliders turn the camera live). Stop the recording to end."
    )
    portrait = gr.Image(label="Portrait", type="filepath", height=200, elem_id="live-portrait")
    if examples := _example_files("portraits", "*.png"):
        gr.Examples(examples, inputs=portrait, label="Example portraits")
    mic = gr.Audio(label="Microphone (live)", sources=["microphone"], streaming=True, type="numpy", elem_id="live-mic")
    return {"live_portrait": portrait, "live_mic": mic}


def _track_mode(ids: dict, mode: gr.State, camera_path: gr.Dropdown) -> None:
    """Remember the active tab; the free-viewpoint tab picks its own camera path, so hide the dropdown there."""
    for name in MODES:
        ids[f"tab_{name}"].select(
            lambda name=name: (name, gr.update(visible=name != "free")),
            None,
            [mode, camera_path],
            api_visibility="private",
            queue=False,
        )


def _identity_tab(app: DemoApp) -> gr.File:
    identity = gr.File(label="Identity embedding (512-D: .npy .pt .safetensors .json)", file_types=EMBEDDING_TYPES)
    note = gr.Markdown(app.describe_identity(None))
    identity.change(app.describe_identity, identity, note, api_visibility="private", queue=False)
    if app.pipe.identity_prior is not None:
        imagined = gr.Image(
            label="The face this identity animates (identity prior)", interactive=False, height=160, elem_id="imagined"
        )
        identity.change(app.imagine_identity, identity, imagined, api_visibility="private", queue=False)
    if examples := _example_files("embeddings", "*.npy"):
        gr.Examples(examples, inputs=identity, label="Example identities")
    with gr.Accordion("Random identity", open=True):
        with gr.Row():
            seed = gr.Number(0, label="Identity seed", precision=0, minimum=0, maximum=MAX_SEED)
            randomize = gr.Checkbox(True, label="Randomize")
        sample = gr.Button("Sample a random identity")
    sample.click(
        app.sample_identity, [seed, randomize], [identity, seed, note], api_name="sample_identity", concurrency_limit=4
    )
    with gr.Accordion("Blend two identities", open=False):
        with gr.Row():
            first = gr.File(label="Identity A", file_types=EMBEDDING_TYPES)
            second = gr.File(label="Identity B", file_types=EMBEDDING_TYPES)
        weight = gr.Slider(0, 1, 0.5, step=0.05, label="Blend (0 = A, 1 = B)")
        blend = gr.Button("Blend")
    blend.click(
        app.blend_identities,
        [first, second, weight],
        [identity, note],
        api_name="blend_identities",
        concurrency_limit=4,
    )
    with gr.Accordion("Extract from a portrait", open=False):
        with gr.Row():
            source = gr.Image(label="Portrait", type="filepath", height=160)
            crop = gr.Image(label="Face crop used", interactive=False, height=160)
        extract = gr.Button("Extract identity")
    extract.click(
        app.extract_identity, source, [identity, crop, note], api_name="extract_identity", concurrency_limit=4
    )
    return identity


def _avatar_panel(app: DemoApp, portrait: gr.Image) -> None:
    """Photo → avatar: what was read, a few edits, downloads, and "animate this avatar" (API: /photo_to_avatar)."""
    with gr.Accordion("Your avatar (for a real photo)", open=True):
        gr.Markdown(
            "The bundled model draws SynthTalk heads, so a real photo is animated as **your SynthTalk avatar**, "
            "read from the photo (real-scale weights that draw real faces: see `checkpoints.md`).",
            elem_id="avatar-note",
        )
        with gr.Row():
            photo = gr.Image(label="Your photo", interactive=False, height=160, elem_id="avatar-photo")
            avatar = gr.Image(label="Your avatar", type="filepath", interactive=False, height=160, elem_id="avatar")
        read = gr.Markdown(elem_id="avatar-read")
        with gr.Row():
            hair = gr.ColorPicker(label="Hair colour")
            style = gr.Dropdown(_hair_styles(), value="short", label="Hair style")
            skin = gr.ColorPicker(label="Skin")
            glasses = gr.Checkbox(False, label="Glasses")
            beard = gr.Slider(0, 1, 0, step=0.05, label="Beard")
        with gr.Row():
            update = gr.Button("Update avatar")
            use = gr.Button("Animate this avatar", elem_id="use-avatar")
        with gr.Row():
            identity = gr.File(label="Avatar identity (.npy)")
            parameters = gr.Textbox(label="Avatar parameters (JSON)", lines=2, max_lines=4)
    controls = [hair, style, skin, glasses, beard]
    portrait.change(
        app.avatar_panel_update,
        portrait,
        [photo, avatar, identity, read, parameters, *controls],
        api_visibility="private",
        concurrency_limit=4,
    )
    update.click(
        app.adjust_avatar,
        [parameters, *controls],
        [avatar, identity, read, parameters],
        api_name="adjust_avatar",
        concurrency_limit=4,
    )
    use.click(lambda path: path, avatar, portrait, api_visibility="private", queue=False)
    api_source = gr.Image(type="filepath", visible=False)
    gr.Button(visible=False).click(
        app.photo_to_avatar,
        api_source,
        [avatar, identity, read, parameters],
        api_name="photo_to_avatar",
        concurrency_limit=4,
    )


def _free_viewpoint_tab() -> dict:
    gr.Markdown(
        "One moment of the speech seen from a smooth camera sweep (±azimuth, the number of views and the moment "
        "are under Advanced), or a talking video with the camera orbiting the head."
    )
    kind = gr.Radio(FV_KINDS, value=FV_KINDS[0], label="Render")
    source = gr.Radio(FV_SOURCES, value=FV_SOURCES[0], label="Identity from")
    portrait = gr.Image(label="Portrait", type="filepath", height=200, elem_id="fv-portrait")
    if examples := _example_files("portraits", "*.png"):
        gr.Examples(examples, inputs=portrait, label="Example portraits")
    return {"fv_kind": kind, "fv_source": source, "fv_portrait": portrait}


def _audio_input(app: DemoApp) -> gr.Audio:
    audio = gr.Audio(
        label=f"Speech (upload or record; at most {app.max_audio_seconds:g} s)",
        sources=["upload", "microphone"],
        type="filepath",
        elem_id="speech",
    )
    if examples := _example_files("audio", "*.wav"):
        gr.Examples(examples, inputs=audio, label="Example speech (espeak-ng)")
    return audio


def _controls(app: DemoApp) -> list:
    """Azimuth, elevation, path, chunk, steps, audio/identity guidance, seed, randomize, fps, context, sweep, refiner."""
    with gr.Row():
        azimuth = gr.Slider(*app.views.azimuth, DEFAULTS["azimuth"], step=1, label="Azimuth (°)", elem_id="azimuth")
        elevation = gr.Slider(*app.views.elevation, DEFAULTS["elevation"], step=1, label="Elevation (°)")
    camera_path = gr.Dropdown(
        CAMERA_PATHS, value=DEFAULTS["camera_path"], label="Camera path", info="sweep freezes time and moves the camera"
    )
    with gr.Row():
        seed = gr.Number(0, label="Seed", precision=0, minimum=0, maximum=MAX_SEED)
        randomize = gr.Checkbox(False, label="Randomize seed")
    with gr.Accordion("Advanced", open=False):
        with gr.Row():
            chunk = _slider("chunk_length", "Chunk length (frames per AR chunk; steers live)")
            steps = _slider("num_inference_steps", "Denoising steps per chunk (1 is enough)")
        with gr.Row():
            guidance_audio = _slider("guidance_scale_audio", "Audio guidance (1 = off)", step=0.1)
            guidance_identity = _slider("guidance_scale_identity", "Identity guidance (1 = off)", step=0.1)
        with gr.Row():
            fps = _slider("fps", "Frames per second")
            context = _slider("context_frames", "Context frames (KV cache)", high=app.max_context)
        with gr.Row():
            # at most SWEEP_VIEWS_MAX views here (the spec allows more): a sweep's views are one batch of work
            sweep_views = _slider("num_frames", "Sweep: number of views", high=SWEEP_VIEWS_MAX, value=SWEEP_VIEWS)
            sweep_moment = gr.Slider(0, 1, 0.5, step=0.05, label="Sweep: moment in the clip (0 = start, 1 = end)")
        refine = gr.Checkbox(
            app.pipe.refiner is not None,
            label="Sharpen details (frame refiner)",
            info="redraws eyes, brows and nose from the identity's portrait; off: the video model's own frames",
            interactive=app.pipe.refiner is not None,
            elem_id="refine-details",
        )
    return [
        azimuth,
        elevation,
        camera_path,
        chunk,
        steps,
        guidance_audio,
        guidance_identity,
        seed,
        randomize,
        fps,
        context,
        sweep_views,
        sweep_moment,
        refine,
    ]


def _slider(name: str, label: str, *, high: float | None = None, value=None, step: float = 1) -> gr.Slider:
    """A slider over a ``GenerationRequest`` option: its range (``high`` may narrow it) and default."""
    spec = OPTIONS[name]
    top = spec.high if high is None else min(high, spec.high if spec.high is not None else high)
    value = DEFAULTS[name] if value is None else value
    return gr.Slider(spec.low, top, min(value, top), step=step, label=label)


def _outputs() -> list:
    live = gr.Video(
        label="Live: plays while later chunks are generated (sliders steer the camera)",
        streaming=True,
        autoplay=True,
        interactive=False,
        height=300,
        elem_id="live-video",
    )
    video = gr.Video(label="Finished video (mp4 with audio, to download)", elem_id="result-video", height=240)
    with gr.Row():
        identity = gr.File(label="Identity used (.npy)")
        settings = gr.File(label="Settings + seed + views (.json)", elem_id="settings-file")
    status = gr.Markdown(elem_id="status")
    seed_used = gr.Number(label="Seed used", precision=0, interactive=False)
    return [live, video, identity, settings, status, seed_used]


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="STARCaster demo app (Gradio).")
    parser.add_argument("--host", default=None, help="interface to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=None, help="port (default 7860 or $GRADIO_SERVER_PORT)")
    parser.add_argument("--share", action="store_true", help="create a public gradio.live link")
    parser.add_argument("--checkpoint", default=None, help="Hub repo id[@revision] or folder ($STARCASTER_CHECKPOINT)")
    parser.add_argument(
        "--max-audio-seconds",
        type=float,
        default=float(os.environ.get("STARCASTER_MAX_AUDIO_SECONDS", DEFAULT_MAX_AUDIO_SECONDS)),
        help="longest speech clip accepted",
    )
    parser.add_argument("--queue-size", type=int, default=DEFAULT_QUEUE_SIZE, help="requests waiting at most")
    return parser.parse_args(argv)


def launch(demo: gr.Blocks, *, host: str | None = None, port: int | None = None, **overrides):
    """``demo.launch`` with the app's serving settings (used by ``main`` and by the tests).

    Uploads above ``MAX_FILE_SIZE`` are refused before they reach any handler; no folder is
    added to ``allowed_paths``, so the server only hands out files it wrote itself (uploads,
    results, example files). ``show_error=True`` lets clients see why Gradio itself refused a
    request (a path that was not uploaded, a blocked URL, a wrong number of inputs); the app's
    own handlers never let raw exception text out (``_reported``), and no traceback is sent.
    """
    options = dict(
        server_name=host,
        server_port=port,
        css=CSS,
        theme=gr.themes.Soft(),
        max_file_size=MAX_FILE_SIZE,
        show_error=True,
    )
    options.update(overrides)
    return demo.launch(**options)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    loaded = load_app_pipeline(args.checkpoint)
    demo = create_demo(loaded.pipe, loaded.info, max_audio_seconds=args.max_audio_seconds, queue_size=args.queue_size)
    launch(demo, host=args.host, port=args.port, share=args.share)


if __name__ == "__main__":
    main()
