"""The demo's page: ``create_demo(pipe, info)`` builds the Gradio Blocks around a loaded pipeline.

Tabs for the identity (a portrait, an identity file, free viewpoint, the live microphone),
the speech input, the controls (their ranges and defaults are ``GenerationRequest``'s, the view
sliders span the checkpoint's ``trained_views``) and the outputs; each event is wired to a
``DemoApp`` handler (``handlers.py``). Nothing is loaded at import time; ``create_demo`` does
not launch (``serving.launch``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import gradio as gr

from .. import __version__
from ..request import DEFAULTS, OPTIONS
from .checkpoint import CheckpointInfo
from .guards import MAX_SEED, guard_inputs
from .handlers import FV_KINDS, FV_SOURCES, SWEEP_VIEWS, DemoApp, hair_styles
from .live_stream import live_video
from .serving import DEFAULT_MAX_AUDIO_SECONDS, DEFAULT_QUEUE_SIZE, WORK_DIR_PREFIX, remove_stale_work_dirs

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CAMERA_PATHS = list(OPTIONS["camera_path"].choices)
MODES = ("portrait", "identity", "free", "live")
SWEEP_VIEWS_MAX = 64
LIVE_MIC_EVERY_S = 0.25  # the microphone's samples reach the server this often
CACHE_SWEEP = (1800, 3600)  # delete_cache: every 30 min, files older than 1 h
EMBEDDING_TYPES = [".npy", ".pt", ".pth", ".safetensors", ".json"]


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
        remove_stale_work_dirs(Path(tempfile.gettempdir()))
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
        # the progress bar on the finished-video slot only: on every output it would cover the live player
        running = dict(concurrency_id="generate", concurrency_limit=concurrency_limit, show_progress_on=outputs[1])
        ui_event = run_btn.click(
            app.generate_ui,
            inputs=[mode, ids["portrait"], ids["identity"], ids["fv_kind"], ids["fv_source"], ids["fv_portrait"]]
            + settings,
            outputs=outputs,
            api_visibility="private",
            **running,
        )
        api_event = api_btn.click(
            app.generate, inputs=[ids["portrait"], ids["identity"], *settings], outputs=outputs, api_name="generate",
            **running,
        )  # fmt: skip
        stop_btn.click(None, cancels=[ui_event, api_event], api_visibility="private")
        _wire_steering(app, controls)
        _wire_live(app, ids, controls, outputs)
        demo.unload(app.end_session)
    guard_inputs(demo)
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
    """The microphone streams to ``live_step`` every ``LIVE_MIC_EVERY_S``; ``live_play``, started with the
    recording, streams the live player (Gradio streams a video only out of a generator)."""
    live, status = outputs[0], outputs[4]
    inputs = [ids["live_mic"], ids["live_portrait"], controls[0], controls[1], controls[7]]
    ids["live_mic"].start_recording(
        app.live_play,
        None,
        live,
        concurrency_id="live_play",
        concurrency_limit=2,
        api_visibility="private",
        show_progress="hidden",
    )
    ids["live_mic"].stream(
        app.live_step,
        inputs,
        status,
        stream_every=LIVE_MIC_EVERY_S,
        time_limit=600,
        concurrency_id="live",
        concurrency_limit=2,
        api_visibility="private",
        show_progress="hidden",
    )
    ids["live_mic"].stop_recording(app.live_stop, None, status, api_visibility="private")


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
        with gr.Tab("Live mic", id="live") as ids["tab_live"]:
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
        read = gr.Markdown(elem_id="avatar-read")
        # shown once a photo has an avatar: a SynthTalk portrait (animated as it is) gets only the note above
        with gr.Column(visible=False, elem_id="avatar-editor") as editor:
            with gr.Row():
                photo = gr.Image(label="Your photo", interactive=False, height=160, elem_id="avatar-photo")
                avatar = gr.Image(label="Your avatar", type="filepath", interactive=False, height=160, elem_id="avatar")
            with gr.Row():
                hair = gr.ColorPicker(label="Hair colour")
                style = gr.Dropdown(hair_styles(), value="short", label="Hair style")
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
        [photo, avatar, identity, read, parameters, *controls, editor],
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
    live = live_video(
        label="Live: plays while later chunks are generated (sliders steer the camera)",
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


def _example_files(folder: str, pattern: str) -> list[str]:
    return [str(p) for p in sorted((EXAMPLES / folder).glob(pattern))]
