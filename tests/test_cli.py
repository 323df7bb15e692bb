"""`python -m starcaster` end to end: a playable mp4 with audio, and one-line errors with exit 2."""

from __future__ import annotations

import re
import subprocess
import sys

import imageio_ffmpeg
import numpy as np
import pytest
import soundfile as sf

from starcaster.audio import num_video_frames
from starcaster.cli import main


def probe(path) -> dict:
    """Duration, frame count and stream codecs of a media file, from the bundled ffmpeg."""
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(path))
    info = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    ).stderr
    return dict(
        frames=frames,
        seconds=seconds,
        video=re.findall(r"Video: (\w+).*?(yuv\w+)", info),
        audio=re.findall(r"Audio: (\w+)", info),
    )


@pytest.fixture
def inputs(tmp_path, speech_wave, identity_vector):
    sf.write(tmp_path / "speech.wav", speech_wave, 16_000)
    np.save(tmp_path / "identity.npy", identity_vector)
    return tmp_path


def test_generate_writes_a_playable_mp4_with_audio(tiny_checkpoint, inputs, speech_wave, capsys):
    out = inputs / "out.mp4"
    code = main(
        ["generate", "--checkpoint", str(tiny_checkpoint), "--audio", str(inputs / "speech.wav"), "--embedding", str(inputs / "identity.npy"),
         "--chunk-length", "4", "--steps", "2", "--azimuth", "20", "--out", str(out), "--save-embedding", str(inputs / "used.npy")]
    )  # fmt: skip
    assert code == 0
    info = probe(out)
    assert info["frames"] == num_video_frames(len(speech_wave), 25)
    assert abs(info["seconds"] - len(speech_wave) / 16_000) < 0.1
    assert info["video"] == [("h264", "yuv420p")] and info["audio"] == ["aac"]
    np.testing.assert_allclose(np.load(inputs / "used.npy"), np.load(inputs / "identity.npy"), rtol=1e-5)
    assert [p.name for p in inputs.iterdir() if p.name.startswith(".")] == []  # no partial files left


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--embedding", "missing.npy"], "Embedding file not found"),
        (["--embedding", "identity.npy", "--chunk-length", "0"], "chunk_length"),
        (["--embedding", "identity.npy", "--elevation", "720"], "elevation must be between -90° and 90°"),
        (["--embedding", "identity.npy", "--steps", "51"], "num_inference_steps must be between 1 and 50"),
        (["--embedding", "identity.npy", "--out-ext"], None),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tiny_checkpoint, inputs, capsys, monkeypatch, args, message):
    monkeypatch.chdir(inputs)
    if message is None:
        with pytest.raises(SystemExit) as exc:  # argparse usage error
            main(["generate", "--checkpoint", str(tiny_checkpoint), "--audio", "speech.wav", *args, "--out", "o.mp4"])
        assert exc.value.code == 2
        return
    code = main(["generate", "--checkpoint", str(tiny_checkpoint), "--audio", "speech.wav", *args, "--out", "o.mp4"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and message in err and "\n" not in err
    assert not (inputs / "o.mp4").exists()


def test_missing_checkpoint_and_wrong_suffix(inputs, capsys):
    assert (
        main(
            [
                "generate",
                "--checkpoint",
                "./nope",
                "--audio",
                str(inputs / "speech.wav"),
                "--embedding",
                "x.npy",
                "--out",
                "o.mp4",
            ]
        )
        == 2
    )
    assert "Checkpoint folder not found" in capsys.readouterr().err
    assert main(["generate", "--audio", "a.wav", "--embedding", "x.npy", "--out", "o.avi"]) == 2
    assert ".mp4" in capsys.readouterr().err


def test_views_outside_the_trained_range_warn_on_stderr(tiny_pipe, inputs, tmp_path, capsys):
    from starcaster import STARCasterPipeline
    from tests.helpers import cli_generate

    declared = STARCasterPipeline(**tiny_pipe.components, trained_views={"azimuth": [-90, 90], "elevation": [-30, 30]})
    declared.save_pretrained(tmp_path / "declared")
    assert cli_generate(tmp_path / "declared", inputs, "side.mp4", "--azimuth", "120", "--steps", "1") == 0
    err = capsys.readouterr().err
    assert (
        "warning: The view (120°, 0°) is outside the range this checkpoint was trained on (azimuth -90° to 90°" in err
    )


def test_help_lists_every_subcommand():
    result = subprocess.run([sys.executable, "-m", "starcaster", "--help"], capture_output=True, text=True, check=True)
    for name in ("generate", "download", "convert"):
        assert name in result.stdout


def test_generate_in_a_fresh_process(tiny_checkpoint, inputs):
    """A new interpreter must load every component class the checkpoint names (diffusers imports nothing itself)."""
    out = inputs / "fresh.mp4"
    args = ["generate", "--checkpoint", str(tiny_checkpoint), "--audio", str(inputs / "speech.wav")]
    args += ["--embedding", str(inputs / "identity.npy"), "--steps", "1", "--out", str(out)]
    result = subprocess.run([sys.executable, "-m", "starcaster", *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert probe(out)["audio"] == ["aac"]
