"""The demo's behaviour: ``DemoApp`` and its handlers (one instance per ``create_demo``).

Every Gradio event of the page and every named API endpoint calls a ``DemoApp`` method:
identity endpoints (extract, sample, blend), photo → avatar, generation (``generate``: the
pipeline's chunks stream into a live player and an mp4, with the settings JSON beside it), the
steering sliders and the live microphone (its handlers: ``microphone.py``; the live player's
pieces and pacing: ``live_player.py``). The Blocks layout that wires them is ``layout.py``;
error mapping is ``guards.py``; serving settings are ``serving.py``.
"""

from __future__ import annotations

import json
import random
import shutil
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import numpy as np

from .. import STARCasterError, __version__
from ..camera import ViewRange
from ..request import DEFAULTS
from .checkpoint import CheckpointInfo
from .guards import MAX_SEED, checked_seed, fail, next_or_error, reported, user_error
from .live_player import LIVE_LEAD_S, Pacer, Segments
from .microphone import MicrophoneHandlers
from .serving import gpu, gpu_seconds

FV_KINDS = ["sweep (one instant, many views)", "orbit video"]
FV_SOURCES = ["a portrait", "the identity from the 'From an identity' tab"]
SWEEP_VIEWS = 16  # the page's default number of views of a sweep
RETURNED_FILES_TTL_S = 60.0


class DemoApp(MicrophoneHandlers):
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
        self.generate_on_gpu = gpu(self._gpu_duration)(self._chunks)
        self._runs: dict[str, object] = {}  # session → the run it is streaming (steered by the sliders)
        self._live: dict[str, object] = {}  # session → its LiveSession (microphone mode)
        self._live_segments: dict[str, Segments] = {}  # session → its live player's pieces (and their folder)
        self._live_ended: dict[str, threading.Event] = {}  # session → set when its live_play has finished

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
        key = getattr(request, "session_hash", None) or ""
        if (live := self._live.get(key)) is not None:
            segments = self._live_segments.get(key)
            self._release_live(key, live, segments)
            if segments is not None:
                shutil.rmtree(segments.folder, ignore_errors=True)
        if request is not None and request.session_hash:
            shutil.rmtree(self.work_dir / request.session_hash, ignore_errors=True)

    # -- identity endpoints -----------------------------------------------------------------
    @reported
    def extract_identity(self, image: str | None, request: gr.Request = None):
        """Portrait → (identity .npy, the face crop used, a note)."""
        if not image:
            raise fail("Upload a portrait (or pick an example) to extract its identity.")
        try:
            with self._lock:
                result = self.pipe.identity_backend().extract(image)
        except STARCasterError as exc:
            raise user_error(exc) from exc
        path = self._save_identity(result.embedding, "identity_extracted.npy", request)
        note = f"Extracted a {result.embedding.shape[0]}-D identity ({self.pipe.identity_space} encoder)."
        note += "".join(f"\n\n⚠️ {w}" for w in result.crop.warnings)
        return path, np.asarray(result.crop.image), note

    @reported
    def sample_identity(self, seed: float, randomize: bool, request: gr.Request = None):
        """A random identity (``pipe.random_identity``) → (identity .npy, the seed used, a note)."""
        seed = random.randint(0, MAX_SEED) if randomize else checked_seed(seed)
        embedding = self.pipe.random_identity(seed)
        path = self._save_identity(embedding, f"identity_random_{seed}.npy", request)
        return path, seed, f"Random identity, seed {seed}."

    @reported
    def blend_identities(self, first: str | None, second: str | None, weight: float, request: gr.Request = None):
        """Spherical blend of two embedding files → (identity .npy, a note)."""
        from ..identity import load_embedding, slerp

        if not first or not second:
            raise fail("Give two identity files (identity A and identity B) to blend.")
        dim = int(self.pipe.unet.config.identity_embed_dim)
        try:
            mixed = slerp(load_embedding(first, dim), load_embedding(second, dim), float(weight))
        except STARCasterError as exc:
            raise user_error(exc) from exc
        path = self._save_identity(mixed, f"identity_blend_{float(weight):.2f}.npy", request)
        return path, f"Blended {Path(first).name} and {Path(second).name} at t = {float(weight):.2f}."

    def describe_identity(self, path: str | None) -> str:
        from ..identity import load_embedding

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
        from ..identity import save_embedding

        return str(save_embedding(embedding, self._returned_dir(request) / name))

    # -- photo → avatar (starcaster.avatar) -------------------------------------------------
    @reported
    def photo_to_avatar(self, image: str | None, request: gr.Request = None):
        """Photo → (avatar portrait .png, avatar identity .npy, what was read, head parameters as JSON)."""
        if not image:
            raise fail("Upload a photo with a face to make its avatar.")
        with self._lock:
            fit = self.pipe.photo_to_avatar(image)
        return self._avatar_files(fit, request)

    @reported
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
        from ..avatar import head_from_parameters

        if not parameters:
            raise fail("Make an avatar from a photo first.")
        values = json.loads(parameters)
        values.update(hair=_rgb(hair), skin=_rgb(skin), glasses=bool(glasses), beard=float(beard))
        values["hair_style"] = hair_styles().index(hair_style) if hair_style in hair_styles() else values["hair_style"]
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
        from ..avatar import hex_colour
        from ..avatar_domain import THRESHOLD, domain_score
        from ..identity import load_image

        if not image:
            return (gr.skip(),) * 11
        hidden = gr.update(visible=False)  # the editor: only for a photo's avatar
        try:
            score = domain_score(load_image(image))
            if score >= THRESHOLD:
                note = f"This is a SynthTalk-like portrait (domain score {score:.2f}): it is animated as it is."
                return (gr.skip(), gr.skip(), gr.skip(), note, *(gr.skip(),) * 6, hidden)
            portrait, identity, text, parameters = self.photo_to_avatar(image, request)
        except gr.Error as exc:
            return (gr.skip(), gr.skip(), gr.skip(), f"⚠️ {exc.message}", *(gr.skip(),) * 6, hidden)
        values = json.loads(parameters)
        controls = (hex_colour(values["hair"]), values["hair_style_name"], hex_colour(values["skin"]))
        shown = gr.update(visible=True)
        return (image, portrait, identity, text, parameters, *controls, values["glasses"], values["beard"], shown)

    # -- generation -----------------------------------------------------------------------
    @reported
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
            raise fail(
                "Give exactly one identity: a portrait image or an identity embedding file."
                if image is None
                else "Give a portrait image or an identity embedding file, not both."
            )
        seed = random.randint(0, MAX_SEED) if randomize_seed else checked_seed(seed)
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
        from ..audio import read_audio

        if not audio:
            raise fail("Add speech audio: upload a file, record with the microphone, or pick an example clip.")
        try:
            return read_audio(audio, max_seconds=self.max_audio_seconds)
        except STARCasterError as exc:
            raise user_error(exc) from exc

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
        from ..video import VideoWriter

        pacer = Pacer(LIVE_LEAD_S)
        started, seed = time.perf_counter(), settings["seed"]
        header = next_or_error(chunks)
        video_path = run_dir / f"starcaster_seed{seed}.mp4"
        segments = Segments(run_dir, header["fps"])
        progress((0, header["num_frames"]), desc="starting", unit="frames")
        for warning in header["warnings"]:  # e.g. views outside the checkpoint's trained range
            gr.Warning(warning)
        footer: dict = {}
        with VideoWriter(video_path, header["fps"], header["audio"]) as writer:
            while (chunk := next_or_error(chunks)) is not None:
                if type(chunk) is dict:  # after the last chunk: the views rendered (ChunkOutput is a dict subclass)
                    footer = chunk
                    continue
                writer.write(chunk.frames)
                done = chunk.start + len(chunk.frames)
                eta = (time.perf_counter() - started) / done * (chunk.total_frames - done)
                desc = f"chunk {chunk.index + 1}/{chunk.num_chunks} · ETA {eta:.0f} s"
                progress((done, chunk.total_frames), desc=desc, unit="frames")
                status = f"Generating… {desc} · frames {chunk.start}–{done - 1} · azimuth {chunk.azimuth[-1]:.0f}°"
                piece = segments.add(chunk.frames, header["audio"])
                # one update per chunk (a Stop or a dropped client is noticed between yields)
                yield (str(piece) if piece else gr.skip()), gr.skip(), gr.skip(), gr.skip(), status, seed
                if piece and paced:
                    pacer.wait(done / header["fps"])
        last = segments.add(None, header["audio"], last=True)
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

    # -- UI routing ------------------------------------------------------------------------
    @reported
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
            raise fail("Upload a portrait (or pick an example) in the 'Animate a portrait' tab.")
        if mode == "live":
            raise fail("In the live tab, record with the microphone: the video follows as you speak.")
        if mode == "identity" and not identity_file:
            raise fail("Set an identity first: upload an embedding file, sample a random one, or blend two.")
        if mode == "free":
            camera_path = "sweep" if fv_kind == FV_KINDS[0] else "orbit"
            use_portrait = fv_source == FV_SOURCES[0]
            image, embedding = (fv_portrait, None) if use_portrait else (None, identity_file)
            if not (image or embedding):
                where = "a portrait in this tab" if use_portrait else "an identity in the 'From an identity' tab"
                raise fail(f"Free viewpoint needs {where}.")
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
    raise fail(f"Not a colour: {value!r}; use #rrggbb.")


def hair_styles() -> list[str]:
    from ..avatar import HAIR_STYLES

    return list(HAIR_STYLES)


def _name(path) -> str | None:
    return Path(path).name if path else None


def run_record(info: CheckpointInfo, settings: dict, *, inputs: dict) -> dict:
    """The settings JSON offered for download: everything needed to reproduce the run.

    ``settings`` are ``GenerationRequest`` options (+ ``seed``); the command line gets one
    ``generate`` flag for each (``request.command_line``: the same spec the CLI parses).
    """
    from ..request import command_line, quoted

    checkpoint = info.label + (f"@{info.revision}" if info.revision else "")
    words = ["--checkpoint", checkpoint, *command_line(settings, seed=settings.get("seed"))]
    tail = "--audio AUDIO (--image IMAGE | --embedding identity.npy) --out out.mp4"
    return {
        "starcaster_version": __version__,
        "checkpoint": info.label,
        "revision": info.revision,
        "random_weights": info.random_weights,
        "inputs": inputs,
        "settings": settings,
        "command_line": f"python -m starcaster generate {quoted(words)} {tail}",
    }
