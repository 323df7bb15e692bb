"""The generation options are defined once (``starcaster.request``): everything else derives from or matches it."""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest

from starcaster.errors import InputError
from starcaster.request import DEFAULTS, OPTIONS, GenerationRequest, check_request, cli_options, command_line

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _parse_generate(words: list[str]):
    from starcaster.cli import build_parser, generate_settings

    args = build_parser().parse_args(["generate", "--audio", "a.wav", "--embedding", "e.npy", "--out", "o.mp4", *words])
    return args, generate_settings(args)


def test_call_signature_mirrors_the_request():
    """``__call__`` lists every option explicitly (IDEs, help()) with the request's defaults, and nothing else."""
    from starcaster import STARCasterPipeline

    params = dict(inspect.signature(STARCasterPipeline.__call__).parameters)
    assert params.pop("self") and params.pop("callback_on_chunk_end").default is None
    fields = {f.name: f for f in dataclasses.fields(GenerationRequest)}
    assert list(params) == [n for n in fields if n in params] and set(params) == set(fields)
    for name, param in params.items():
        assert param.default == fields[name].default or (
            param.default is inspect.Parameter.empty and fields[name].default is dataclasses.MISSING
        ), name
    doc = STARCasterPipeline.__call__.__doc__
    for name, spec in OPTIONS.items():
        assert f"{name}: {spec.help}" in doc  # the Args section is generated from the help texts


def test_start_takes_a_request_and_overrides(tiny_pipe, speech_wave, identity_vector):
    request = GenerationRequest(audio=speech_wave[:8000], identity_embedding=identity_vector, fps=10, chunk_length=2)
    run = tiny_pipe.start(request, chunk_length=3)
    assert run.controls["chunk_length"] == 3 and run.num_frames == 5 and request.chunk_length == 2


def test_cli_flags_follow_the_request():
    """Every flagged option parses to the request's default; each flag's help shows its range and default."""
    from starcaster.cli import build_parser

    _, settings = _parse_generate([])
    for name in cli_options():
        assert settings[name] == DEFAULTS[name], name
    sub = build_parser()._subparsers._group_actions[0].choices["generate"]
    helps = {a.dest: a.help for a in sub._actions}
    for name, spec in cli_options().items():
        if spec.range_text() and not spec.choices:
            assert spec.range_text() in helps[name], name
    assert set(OPTIONS) - set(cli_options()) == {
        "audio",  # --audio
        "identity_embedding",  # --embedding
        "image",  # --image
        "generator",  # --seed
        "output_type",  # the CLI writes an mp4
        "reference_view",
        "context_mode",
        "max_audio_seconds",  # the CLI has no length limit
    }


def test_command_line_round_trips_every_flag():
    """``command_line`` (the settings JSON's reproducing command) parses back to the same options."""
    changed = dict(
        azimuth=30.0, elevation=-12.5, camera_path="sweep", chunk_length=3, num_inference_steps=2,
        guidance_scale_audio=1.5, guidance_scale_identity=2.0, guidance_scale_camera=2.5, fps=12.0,
        context_frames=5, num_frames=7, sweep_time=0.25, trim_silence=True, precision="bf16",
        noise_sharing=0.5, use_identity_prior=False, use_refiner=False, refiner_smoothing=0.25, avatar="never",
    )  # fmt: skip
    assert set(changed) == set(cli_options())  # a new flagged option must be added here
    args, parsed = _parse_generate(command_line(changed, seed=7))
    assert {k: parsed[k] for k in changed} == changed and args.seed == 7
    _, defaults = _parse_generate(command_line(DEFAULTS))
    assert {k: defaults[k] for k in cli_options()} == {k: DEFAULTS[k] for k in cli_options()}


@pytest.mark.parametrize("name", [n for n, s in OPTIONS.items() if s.low is not None])
def test_ranges_are_checked_by_the_spec(name, identity_vector):
    spec = OPTIONS[name]
    request = GenerationRequest(audio=np.zeros(10), identity_embedding=identity_vector)
    check_request(dataclasses.replace(request, **{name: spec.low}))
    with pytest.raises(InputError, match=name):
        check_request(dataclasses.replace(request, **{name: spec.low - 1}))
    if spec.high is not None:
        top = spec.high - 0.01 if spec.high_open else spec.high
        check_request(dataclasses.replace(request, **{name: top}))
        with pytest.raises(InputError, match=name):
            check_request(dataclasses.replace(request, **{name: spec.high + (0 if spec.high_open else 1)}))


def test_choices_are_checked_by_the_spec(identity_vector):
    request = GenerationRequest(audio=np.zeros(10), identity_embedding=identity_vector)
    for name, spec in OPTIONS.items():
        if spec.choices:
            with pytest.raises(InputError, match=f"{name} must be one of"):
                check_request(dataclasses.replace(request, **{name: "nonsense"}))


def test_camera_paths_are_written_once():
    import app
    from starcaster.camera import CAMERA_PATHS
    from starcaster.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices["generate"]
    cli_choices = next(a.choices for a in sub._actions if a.dest == "camera_path")
    assert list(cli_choices) == list(CAMERA_PATHS) == app.CAMERA_PATHS == list(OPTIONS["camera_path"].choices)


def test_eval_harness_calls_the_model_with_the_request_defaults():
    """``EvalConfig``'s generation settings default to the request's, except where a comment says why."""
    from starcaster.eval.harness import EvalConfig

    on_purpose = {"avatar": "never"}  # SynthTalk references are the model's own domain: animate them as they are
    for f in dataclasses.fields(EvalConfig):
        if f.name in DEFAULTS:
            assert f.default == on_purpose.get(f.name, DEFAULTS[f.name]), f.name


def test_app_settings_reproduce_on_the_command_line(tiny_pipe, tmp_path, speech_wave):
    """The app's settings (a sweep's views and moment included) → the JSON's command line → the same request."""
    import app
    from starcaster.demo.checkpoint import CheckpointInfo
    from starcaster.demo.handlers import run_record

    demo_app = app.DemoApp(tiny_pipe, CheckpointInfo(label="tiny", revision=None), 3.0, tmp_path)
    given = dict(
        azimuth=20, elevation=-5, camera_path="sweep", chunk_length=3, num_inference_steps=2,
        guidance_scale_audio=1.5, guidance_scale_identity=1.0, seed=9, fps=10, context_frames=4,
        sweep_views=6, sweep_moment=0.5, refine_details=False,
    )  # fmt: skip
    settings = demo_app._settings(given, seconds=1.0)
    assert settings["num_frames"] == 6 and settings["sweep_time"] == 0.5
    record = run_record(CheckpointInfo(label="tiny", revision=None), settings, inputs={})
    from starcaster.cli import build_parser, generate_settings

    line = record["command_line"].replace("(--image IMAGE | --embedding identity.npy)", "--embedding identity.npy")
    args = build_parser().parse_args(["generate", *shlex.split(line.split(" generate ", 1)[1])])
    parsed = generate_settings(args)
    assert {k: parsed[k] for k in settings if k != "seed"} == {k: v for k, v in settings.items() if k != "seed"}
    assert args.seed == 9 and json.dumps(record)


def test_bundled_checkpoint_declares_the_views_synthtalk_trains_on():
    from starcaster import BUNDLED_CHECKPOINT
    from starcaster.data.synthtalk import SynthConfig

    index = json.loads((ROOT / BUNDLED_CHECKPOINT / "model_index.json").read_text())
    data = SynthConfig()
    assert index["trained_views"] == {
        "azimuth": [-data.max_azimuth, data.max_azimuth],
        "elevation": [-data.max_elevation, data.max_elevation],
    }


def test_views_outside_the_trained_range_warn_and_impossible_ones_fail(tiny_pipe, speech_wave, identity_vector, caplog):
    from starcaster import STARCasterPipeline

    pipe = STARCasterPipeline(**tiny_pipe.components, trained_views={"azimuth": [-90, 90], "elevation": [-30, 30]})
    base = dict(audio=speech_wave[:8000], identity_embedding=identity_vector, fps=10)
    assert pipe.start(**base, azimuth=60, elevation=20).warnings == []
    with caplog.at_level(logging.WARNING, logger="starcaster.pipeline"):
        run = pipe.start(**base, azimuth=120)
    assert len(run.warnings) == 1 and "trained on (azimuth -90° to 90°" in run.warnings[0]
    assert run.warnings[0] in caplog.text
    steered = pipe.start(**base)
    with caplog.at_level(logging.WARNING, logger="starcaster.pipeline"):
        steered.steer(azimuth=150)  # turning the camera mid-stream past the trained range says so too
    assert "The view (150°, 0°) is outside" in caplog.text
    assert "2 of 5 views" in pipe.start(**base, camera_path="orbit").warnings[0]  # the back of the head
    with pytest.raises(InputError, match="elevation must be between -90"):
        pipe.start(**base, elevation=720)
    assert tiny_pipe.start(**base, azimuth=120).warnings == []  # nothing declared: nothing to warn about
