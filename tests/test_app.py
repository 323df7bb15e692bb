"""The Gradio app through its public API: gradio_client against the app served on 127.0.0.1.

The app runs in this process (``prevent_thread_lock``) on the ``tiny`` preset; every test
talks to it over HTTP exactly as an API user would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PORTRAIT = ROOT / "examples" / "portraits" / "portrait_0.png"
FAST = dict(chunk_length=4, num_inference_steps=2, fps=10)  # the tiny model at 10 fps: a few frames per test


@pytest.fixture(scope="module")
def served(served_app):
    return served_app  # tests/conftest.py


@pytest.fixture(scope="module")
def client(api_client):
    return api_client


@pytest.fixture(scope="module")
def speech_file(speech_wave, tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "speech.wav"
    sf.write(path, speech_wave[:12_000], 16_000)  # 0.75 s
    return path


def _generate(client, image=None, embedding=None, audio=None, **overrides):
    from gradio_client import handle_file

    settings = dict(FAST, **overrides)
    return client.predict(
        handle_file(str(image)) if image else None,
        handle_file(str(embedding)) if embedding else None,
        handle_file(str(audio)) if audio else None,
        api_name="/generate",
        **{k: v for k, v in settings.items() if k not in ("image", "embedding", "audio")},
    )


def _video_frames(path: str) -> tuple[int, bool]:
    """(number of video frames, has an audio stream) of an mp4, via the bundled ffmpeg."""
    import imageio_ffmpeg

    frames, _ = imageio_ffmpeg.count_frames_and_secs(path)
    probe = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", path], capture_output=True, text=True
    )
    return frames, "Audio:" in probe.stderr


def test_api_lists_named_endpoints(client):
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/generate", "/extract_identity", "/sample_identity", "/blend_identities"} <= set(named)


def test_generate_from_portrait(client, speech_file, served):
    live, video, identity, settings, status, seed = _generate(client, image=PORTRAIT, audio=speech_file, seed=5)
    frames, has_audio = _video_frames(video)
    assert frames == 8 and has_audio  # 0.75 s at 10 fps → ceil = 8 frames
    playlist = Path(live).read_text()  # the live player's HLS playlist: one piece per segment handed out
    pieces = [float(line.split(":")[1].rstrip(",")) for line in playlist.splitlines() if line.startswith("#EXTINF")]
    assert Path(live).suffix == ".m3u8" and len(pieces) >= 2  # 0.4 s (the ≥ 0.3 s first piece), the rest, audio flush
    assert 0.75 <= sum(pieces) <= 1.0  # the whole 0.8 s of video went out live
    assert np.load(identity).shape == (512,)
    record = json.loads(Path(settings).read_text())
    assert record["settings"]["seed"] == seed == 5
    assert record["inputs"]["image"] == PORTRAIT.name and record["random_weights"] is True
    assert status.startswith("Done: 8 frames") and "azimuth 0° → 0°" in status
    # The run's own folder is gone once the files were handed to Gradio's cache.
    assert not [p for p in served[0].starcaster_app.work_dir.rglob("*.mp4")]


def test_generate_from_embedding_is_reproducible(client, speech_file, tmp_path):
    identity, _, _ = client.predict(3, False, api_name="/sample_identity")
    first = _generate(client, embedding=identity, audio=speech_file, seed=11, camera_path="orbit")
    second = _generate(client, embedding=identity, audio=speech_file, seed=11, camera_path="orbit")
    np.testing.assert_array_equal(np.load(first[2]), np.load(identity))
    assert Path(first[1]).read_bytes() == Path(second[1]).read_bytes()


def test_free_viewpoint_sweep(client, speech_file):
    _, video, _, settings, _status, _ = _generate(
        client, image=PORTRAIT, audio=speech_file, camera_path="sweep", sweep_views=6, azimuth=45
    )
    frames, has_audio = _video_frames(video)
    assert frames == 6 and not has_audio  # one frozen instant: no audio track
    assert "azimuth -45° → 45°" in _status
    assert json.loads(Path(settings).read_text())["settings"]["num_frames"] == 6


def test_randomize_seed_reports_the_seed_used(client, speech_file):
    *_, settings, _, seed = _generate(client, image=PORTRAIT, audio=speech_file, randomize_seed=True)
    assert json.loads(Path(settings).read_text())["settings"]["seed"] == seed


def test_identity_endpoints(client, tmp_path):
    from gradio_client import handle_file

    path, crop, note = client.predict(handle_file(str(PORTRAIT)), api_name="/extract_identity")
    assert np.load(path).shape == (512,) and "512-D" in note and Path(crop).is_file()
    first, seed, _ = client.predict(123, False, api_name="/sample_identity")
    again, _, _ = client.predict(123, False, api_name="/sample_identity")
    np.testing.assert_array_equal(np.load(first), np.load(again))
    assert seed == 123
    other, _, _ = client.predict(0, True, api_name="/sample_identity")
    mid, note = client.predict(handle_file(first), handle_file(other), 0.5, api_name="/blend_identities")
    assert abs(np.linalg.norm(np.load(mid)) - 1.0) < 1e-5 and "0.50" in note
    end, _ = client.predict(handle_file(first), handle_file(other), 1.0, api_name="/blend_identities")
    np.testing.assert_allclose(np.load(end), np.load(other), atol=1e-6)


@pytest.mark.parametrize(
    "case, expected",
    [
        ("no_audio", "Add speech audio"),
        ("no_identity", "Give exactly one identity"),
        ("both_identities", "not both"),
        ("long_audio", "the limit here is 3 s"),
        ("tiny_image", "only 4×4 px"),
        ("bad_embedding", "512"),
        ("not_audio", "not"),
        ("bad_steps", "less than minimum value 1"),
    ],
)
def test_bad_inputs_come_back_as_errors(client, speech_file, tmp_path, case, expected):
    from gradio_client.exceptions import AppError

    long_audio = tmp_path / "long.wav"
    sf.write(long_audio, np.zeros(16_000 * 4, np.float32) + 0.1, 16_000)
    wrong_dim = tmp_path / "wrong.npy"
    np.save(wrong_dim, np.ones(100, np.float32))
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("this is not audio")
    tiny_image = tmp_path / "tiny.png"
    Image.new("RGB", (4, 4)).save(tiny_image)
    kwargs = {
        "no_audio": dict(image=PORTRAIT),
        "no_identity": dict(audio=speech_file),
        "both_identities": dict(image=PORTRAIT, embedding=wrong_dim, audio=speech_file),
        "long_audio": dict(image=PORTRAIT, audio=long_audio),
        "tiny_image": dict(image=tiny_image, audio=speech_file),
        "bad_embedding": dict(embedding=wrong_dim, audio=speech_file),
        "not_audio": dict(image=PORTRAIT, audio=not_audio),
        "bad_steps": dict(image=PORTRAIT, audio=speech_file, num_inference_steps=0),
    }[case]
    with pytest.raises(AppError) as error:
        _generate(client, **kwargs)
    assert expected.lower() in str(error.value).lower()


def test_bad_identity_inputs(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (4, 4)).save(tiny)
    with pytest.raises(AppError, match="only 4×4 px"):
        client.predict(handle_file(str(tiny)), api_name="/extract_identity")
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not a picture")
    with pytest.raises(AppError, match="garbage.png is not an image"):  # our front end's message, not Gradio's
        client.predict(handle_file(str(garbage)), api_name="/extract_identity")
    with pytest.raises(AppError, match="two identity files"):
        client.predict(None, None, 0.5, api_name="/blend_identities")


def test_two_concurrent_requests_both_complete(client, speech_file):
    from gradio_client import handle_file

    jobs = [
        client.submit(
            handle_file(str(PORTRAIT)), None, handle_file(str(speech_file)), seed=seed, api_name="/generate", **FAST
        )
        for seed in (1, 2)
    ]
    results = [job.result(timeout=120) for job in jobs]
    assert [r[5] for r in results] == [1, 2]
    assert all(_video_frames(r[1])[0] == 8 for r in results)


def test_stop_cancels_a_run(served, speech_file, tiny_pipe, monkeypatch):
    """Cancelling a streaming job stops the generation between chunks, removes its files and frees the queue."""
    from gradio_client import Client, handle_file

    app = served[0].starcaster_app
    produced, inner = [0], app.generate_on_gpu

    def counting(*args, **kwargs):
        for item in inner(*args, **kwargs):
            produced[0] += 1
            yield item

    monkeypatch.setattr(app, "generate_on_gpu", counting)
    hello = ROOT / "examples" / "audio" / "hello.wav"  # 2.56 s at 20 fps, one frame per chunk: 52 chunks
    client = Client(served[1], verbose=False)
    job = client.submit(
        handle_file(str(PORTRAIT)), None, handle_file(str(hello)), api_name="/generate", chunk_length=1, fps=20
    )
    seen = threading.Event()
    while not job.done():
        time.sleep(0.05)
        if job.outputs():  # the first chunk's preview arrived
            seen.set()
            job.cancel()
            break
    assert seen.is_set()
    time.sleep(2.0)
    stopped_at = produced[0]
    time.sleep(1.0)
    assert produced[0] == stopped_at < 1 + 52 // 2  # it stopped, well before the end
    assert not [p for p in app.work_dir.rglob("*") if p.suffix in (".mp4", ".json") or ".partial" in p.name]
    after = _generate(client, image=PORTRAIT, audio=speech_file)  # the queue is free again
    assert after[4].startswith("Done")


def test_gpu_duration_scales_with_audio():
    from starcaster.demo.serving import GPU_MAX_SECONDS, gpu_seconds

    short, long = gpu_seconds(2, 25, 4, "static", 0, 20), gpu_seconds(10, 25, 4, "static", 0, 20)
    assert short < long <= GPU_MAX_SECONDS
    assert gpu_seconds(60, 25, 4, "static", 0, 20) == gpu_seconds(20, 25, 4, "static", 0, 20)  # capped by the limit
    assert gpu_seconds(10, 25, 4, "sweep", 16, 20) < long  # a sweep costs its views, not the audio


def test_checkpoint_fallbacks(tmp_path, monkeypatch, tiny_checkpoint):
    """Missing Hub checkpoint offline → message + random weights; env var and bundled folder load."""
    import starcaster.demo.checkpoint as support

    monkeypatch.setattr(support, "RANDOM_PRESET", "tiny")
    monkeypatch.setattr(support, "bundled_checkpoint", lambda: None)
    monkeypatch.delenv(support.CHECKPOINT_ENV, raising=False)
    loaded = support.load_app_pipeline("nobody/no-such-starcaster@v1", cache_dir=tmp_path)
    assert loaded.info.random_weights and "no-such-starcaster" in loaded.info.messages[0]
    assert "offline" in loaded.info.messages[0].lower()
    assert any((tmp_path).glob("random-tiny-*/model_index.json"))  # cached for the next start
    assert support.load_app_pipeline(None, cache_dir=tmp_path).info.random_weights

    monkeypatch.setenv(support.CHECKPOINT_ENV, str(tiny_checkpoint))
    from_env = support.load_app_pipeline(None, cache_dir=tmp_path)
    assert not from_env.info.random_weights and from_env.info.label == Path(tiny_checkpoint).name  # no server path

    monkeypatch.delenv(support.CHECKPOINT_ENV)
    monkeypatch.setattr(support, "bundled_checkpoint", lambda: Path(tiny_checkpoint))
    bundled = support.load_app_pipeline("nobody/no-such-starcaster", cache_dir=tmp_path)
    assert not bundled.info.random_weights and "Falling back to the bundled" in bundled.info.messages[0]


def test_page_shows_banner_and_checkpoint(served):
    import urllib.request

    config = json.loads(urllib.request.urlopen(served[1] + "config").read())
    texts = " ".join(str(c.get("props", {}).get("value", "")) for c in config["components"])
    assert "Untrained random weights — outputs are noise" in texts
    assert "tiny test pipeline" in texts


def test_import_builds_nothing():
    code = "import sys, app; assert 'torch' not in sys.modules, 'app import pulled in torch'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_identity_prior_preview_and_random_identities_from_its_distribution(tmp_path):
    """With an identity prior, the app shows the face an identity animates, and random identities are
    drawn where the prior's training embeddings lie (a uniform direction would decode to noise)."""
    import app
    from starcaster import build_pipeline
    from starcaster.demo.checkpoint import CheckpointInfo
    from starcaster.identity import save_embedding
    from starcaster.models.identity_prior import IdentityPrior

    pipe = build_pipeline("tiny", seed=0)
    centre = torch.nn.functional.normalize(torch.ones(512), dim=0)
    embeddings = torch.nn.functional.normalize(centre + 0.01 * torch.randn(64, 512), dim=1)  # an encoder's cluster
    prior = IdentityPrior(image_size=32, num_features=64, num_components=4)
    prior.fit(embeddings, np.random.default_rng(0).integers(0, 256, (64, 32, 32, 3), dtype=np.uint8))
    pipe.register_modules(identity_prior=prior.eval())
    demo_app = app.DemoApp(pipe, CheckpointInfo(label="tiny", revision=None, random_weights=True), 3.0, tmp_path)

    path = save_embedding(embeddings[0].numpy(), tmp_path / "identity.npy")
    preview = demo_app.imagine_identity(str(path))
    assert preview.shape == (96, 96, 3) and preview.dtype == np.uint8
    assert demo_app.imagine_identity(None) is None
    (tmp_path / "bad.npy").write_bytes(b"not an array")
    assert demo_app.imagine_identity(str(tmp_path / "bad.npy")) is None  # the note explains the file

    demo = app.create_demo(pipe, CheckpointInfo(label="tiny", revision=None, random_weights=True))
    assert any(getattr(block, "elem_id", None) == "imagined" for block in demo.blocks.values())

    drawn = pipe.random_identity(5)
    assert float(drawn @ centre.numpy()) > 0.9 and np.array_equal(drawn, pipe.random_identity(5))
    pipe.register_modules(identity_prior=None)
    assert abs(float(pipe.random_identity(5) @ centre.numpy())) < 0.3  # no prior: uniform on the sphere


def test_refiner_checkbox_follows_the_checkpoint_and_reaches_the_command_line(tiny_pipe):
    """Checked and usable when the checkpoint has a frame refiner; greyed out without one; the
    downloadable settings reproduce an unrefined run with ``--no-refiner``."""
    import app
    from starcaster import STARCasterPipeline
    from starcaster.demo.checkpoint import CheckpointInfo
    from starcaster.demo.handlers import run_record
    from starcaster.models.refiner import FrameRefiner

    info = CheckpointInfo(label="tiny", revision=None, random_weights=True)

    def checkbox(pipe):
        demo = app.create_demo(pipe, info)
        return next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "refine-details")

    with_refiner = checkbox(STARCasterPipeline(**{**tiny_pipe.components, "refiner": FrameRefiner(channels=(8, 16))}))
    assert with_refiner.value is True and with_refiner.interactive
    without = checkbox(tiny_pipe)
    assert without.value is False and not without.interactive
    assert "--no-refiner" in run_record(info, {"seed": 1, "use_refiner": False}, inputs={})["command_line"]
    assert "--no-refiner" not in run_record(info, {"seed": 1, "use_refiner": True}, inputs={})["command_line"]


def test_view_sliders_span_the_views_the_checkpoint_was_trained_on(tiny_pipe):
    """The azimuth/elevation sliders read the checkpoint's declared ``trained_views`` (they read a
    ``max_azimuth`` key that no UNet config registers, so every checkpoint got ±90° / ±30°)."""
    import app
    from starcaster import STARCasterPipeline
    from starcaster.demo.checkpoint import CheckpointInfo

    pipe = STARCasterPipeline(**tiny_pipe.components, trained_views={"azimuth": [-45, 45], "elevation": [-20, 25]})
    demo = app.create_demo(pipe, CheckpointInfo(label="tiny", revision=None))
    sliders = {b.label: b for b in demo.blocks.values() if isinstance(b, __import__("gradio").Slider)}
    assert (sliders["Azimuth (°)"].minimum, sliders["Azimuth (°)"].maximum) == (-45, 45)
    assert (sliders["Elevation (°)"].minimum, sliders["Elevation (°)"].maximum) == (-20, 25)


def test_impossible_elevation_is_a_gr_error(tiny_pipe, tmp_path, speech_file):
    import gradio as gr

    import app
    from starcaster.demo.checkpoint import CheckpointInfo

    demo_app = app.DemoApp(tiny_pipe, CheckpointInfo(label="tiny", revision=None), 3.0, tmp_path)
    with pytest.raises(gr.Error, match="elevation must be between -90° and 90°"):
        list(demo_app.generate(str(PORTRAIT), None, str(speech_file), elevation=720, progress=lambda *a, **k: None))
    assert not list(tmp_path.rglob("*.mp4"))


def test_live_microphone_streams_each_chunk_as_it_finishes_as_one_stream_with_every_frame(served, speech_wave):
    """The live tab's handlers as the page drives them: ``live_play`` (started with the recording) yields
    the player's pieces while ``live_step`` takes 0.25 s microphone pieces; pieces come out while the
    speech is still arriving, hold whole chunks, form one MPEG-TS (one timeline), and the stop brings the
    rest and the summary."""
    import io
    import threading

    import av

    app = served[0].starcaster_app
    wave = np.tile(speech_wave, 2)[: 2 * 16_000]  # 2 s of speech
    pieces: list[tuple[bytes, float]] = []
    player = threading.Thread(
        target=lambda: pieces.extend((Path(p).read_bytes(), time.monotonic()) for p in app.live_play())
    )
    player.start()
    for start in range(0, len(wave), 4_000):
        samples = (wave[start : start + 4_000] * 32767).astype(np.int16)
        assert app.live_step((16_000, samples), str(PORTRAIT), 0.0, 0.0, 0).startswith("Live:")
        time.sleep(0.25)  # real-time pace
    speech_over = time.monotonic()
    status = app.live_stop()
    player.join(timeout=30)
    assert status.startswith("Live session over: 2.0 s of speech") and not player.is_alive()

    def video_times(data: bytes) -> list[float]:
        with av.open(io.BytesIO(data), format="mpegts") as stream:
            return [float(p.pts * p.time_base) for p in stream.demux(video=0) if p.size]

    counts = [len(video_times(p)) for p, _ in pieces]
    assert sum(at < speech_over for _, at in pieces) >= 4  # live: pieces while the speaker still talks
    # about a chunk each (the microphone's speech is only what was heard, not ahead of the frames, so the
    # muxer may keep a piece's newest frame for the next one)
    assert all(0 < c <= 8 for c in counts[:-1]), counts
    times = video_times(b"".join(p for p, _ in pieces))
    assert len(times) == 50 and np.allclose(np.diff(times), 1 / 25)  # 2 s at 25 fps, nothing lost, one timeline
    assert not app._live and not app._live_segments  # the session and its folder are let go
