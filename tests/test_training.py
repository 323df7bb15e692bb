"""The staged training recipe: every stage runs on a tiny config, resumes, and exports a pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from starcaster import STARCasterPipeline
from starcaster.camera import ViewRange
from starcaster.cli import main
from starcaster.models.configs import get_preset
from starcaster.models.unet import STARCasterUNet
from starcaster.training.checkpoint import load_state, save_state
from starcaster.training.config import STAGE_ORDER, load_config
from starcaster.training.view_adaptation import trainable_parameters
from tests.helpers import cli_generate


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from starcaster.data.synthtalk import SynthConfig, generate_dataset

    out = tmp_path_factory.mktemp("synthtalk")
    config = SynthConfig(
        out=out,
        clips=8,
        seconds=1.0,
        eval_seconds=1.0,
        resolution=32,
        supersample=1,
        views=8,
        test_views=2,
        eval_clips=2,
    )
    generate_dataset(config, progress=False)
    return out


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    """The whole tiny recipe, run once through the CLI, exported as a pipeline folder."""
    run_dir = tmp_path_factory.mktemp("run")
    export = run_dir / "export"
    assert _train(tiny_data, run_dir, "--export", str(export)) == 0
    return run_dir, export


def _train(data, run_dir, *extra: str) -> int:
    return main(["train", "--config", "configs/tiny.yaml", "--data", str(data), "--out", str(run_dir), *extra])


def test_every_stage_ran_and_logged(trained):
    run_dir, _ = trained
    for name in (
        "vae",
        "decoder",
        "identity_encoder",
        "identity_canonical",
        "motion",
        "reference",
        "self_forcing",
        "view",
    ):
        rows = (run_dir / name / "log.csv").read_text().strip().splitlines()
        assert rows[0].startswith("step,loss") and len(rows) >= 3, name
        assert np.isfinite([float(r.split(",")[1]) for r in rows[1:]]).all()
    header = (run_dir / "self_forcing" / "log.csv").read_text().splitlines()[0]
    assert "identity" in header  # the identity loss ran (tiny.yaml turns it on in self-forcing)
    # tiny's 32² portraits are below the identity front end's 64 px minimum: no samples, no crash
    assert not (run_dir / "motion" / "samples.mp4").exists()
    assert float((run_dir / "vae" / "psnr.txt").read_text()) > 0
    assert float((run_dir / "decoder" / "psnr.txt").read_text()) > 0


def test_decoder_refinement_keeps_the_latent_space(trained):
    """The exported VAE = the stage-0 encoder (latents the UNet was trained on) + the refined decoder."""
    from diffusers import AutoencoderKL

    run_dir, export = trained
    first = AutoencoderKL.from_pretrained(run_dir / "vae" / "final").state_dict()
    refined = AutoencoderKL.from_pretrained(run_dir / "decoder" / "final").state_dict()
    exported = STARCasterPipeline.from_pretrained(export).vae.state_dict()
    encoder_keys = [k for k in first if k.startswith(("encoder.", "quant_conv."))]
    decoder_keys = [k for k in first if k.startswith("decoder.")]
    assert encoder_keys and decoder_keys
    assert all(torch.equal(refined[k], first[k]) for k in encoder_keys)
    assert any(not torch.equal(refined[k], first[k]) for k in decoder_keys)
    # export stores fp16: compare at that precision
    assert all(torch.equal(exported[k].half(), refined[k].half()) for k in decoder_keys)


def test_exported_pipeline_loads_and_generates(trained, tiny_data):
    _, export = trained
    pipe = STARCasterPipeline.from_pretrained(export)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.unet.dtype == torch.float32 and pipe.identity_encoder is not None
    rendered = json.loads((tiny_data / "manifest.json").read_text())["config"]  # the views the data was drawn from
    az, el = rendered["max_azimuth"], rendered["max_elevation"]
    assert pipe.view_range == ViewRange((-az, az), (-el, el))  # the checkpoint declares them
    image = np.full((64, 64, 3), 128, np.uint8)  # a tight portrait: centre-cropped, resized to 32²
    out = pipe(np.zeros(6400, np.float32), image=image, generator=torch.Generator().manual_seed(0))
    assert out.frames.shape == (10, 32, 32, 3)


def test_stages_chain_from_previous_weights(trained):
    """Each stage starts from the previous one's final weights (it does not restart from scratch)."""
    from starcaster.models.unet import STARCasterUNet

    run_dir, _ = trained
    reference = STARCasterUNet.from_pretrained(run_dir / "reference" / "final")
    view = STARCasterUNet.from_pretrained(run_dir / "view" / "final")
    # The view stage trains only the camera stream: everything else is carried over unchanged.
    trained_ids = {id(p) for p in trainable_parameters(view, "camera")}
    frozen = [n for n, p in view.named_parameters() if id(p) not in trained_ids]
    self_forcing = STARCasterUNet.from_pretrained(run_dir / "self_forcing" / "final").state_dict()
    assert len(trained_ids) < len(frozen)
    assert all(torch.equal(view.state_dict()[n], self_forcing[n]) for n in frozen)
    assert any(not torch.equal(view.state_dict()[n], self_forcing[n]) for n in self_forcing)
    assert any(not torch.equal(reference.state_dict()[n], self_forcing[n]) for n in self_forcing)


def test_rerun_resumes_instead_of_retraining(trained, tiny_data, capsys):
    run_dir, _ = trained
    before = (run_dir / "motion" / "log.csv").read_text()
    assert _train(tiny_data, run_dir, "--stage", "motion") == 0
    assert (run_dir / "motion" / "log.csv").read_text() == before  # finished stage: nothing re-run


def test_continue_from_an_exported_checkpoint(trained, tiny_data, tmp_path):
    """--init-from: a published checkpoint's VAE/encoder are kept and its UNet is the starting point."""
    _, export = trained
    assert _train(tiny_data, tmp_path / "more", "--init-from", str(export), "--stage", "motion") == 0
    assert (tmp_path / "more" / "motion" / "final" / "config.json").is_file()
    assert not (tmp_path / "more" / "vae").exists()  # nothing retrained before the video stage


def test_fresh_video_stages_on_an_exported_checkpoints_components(trained, tiny_data, tmp_path):
    """--components-from: the VAE/encoder are a published checkpoint's, the UNet starts fresh."""
    from starcaster.training.recipe import _initial_unet

    _, export = trained
    assert _train(tiny_data, tmp_path / "fresh", "--components-from", str(export), "--stage", "motion") == 0
    assert not (tmp_path / "fresh" / "vae").exists() and not (tmp_path / "fresh" / "identity_encoder").exists()
    config = load_config("configs/tiny.yaml", out=tmp_path / "unused", components_from=export)
    fresh, published = _initial_unet(config, 0), STARCasterPipeline.from_pretrained(export).unet
    assert not torch.equal(fresh.backbone.conv_in.weight, published.backbone.conv_in.weight.float())


def test_training_state_round_trip(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    save_state(tmp_path, model, optimizer, None, step=7)
    fresh = torch.nn.Linear(3, 2)
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=0.1)
    assert load_state(tmp_path, fresh, fresh_opt, None) == 7
    assert torch.equal(fresh.weight, model.weight)
    assert torch.equal(fresh_opt.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    assert not list(tmp_path.glob("*.bin")) and not list(tmp_path.glob("*.pt"))


def test_configs_parse_and_name_known_stages():
    names = ("tiny", "demo", "demo-gpu", "demo-concat", "demo-kl", "real", "ablations/no-lip", "ablations/id-first")
    for path in (*names, "ablations/first-chunk", "ablations/identity-loss", "ablations/view-on-5c"):
        config = load_config(f"configs/{path}.yaml")
        assert {s.name for s in config.stages} <= set(STAGE_ORDER)
        get_preset(config.preset)  # names a preset that exists
    with pytest.raises(ValueError, match="Unknown"):
        load_config("configs/tiny.yaml", bogus=1)


def test_train_without_data_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "--config", "configs/tiny.yaml", "--data", str(tmp_path)]) == 2
    assert "python -m starcaster synth" in capsys.readouterr().err


def test_stage_samples_show_truth_and_both_identity_modes(tmp_path):
    """``<stage>/samples.mp4`` + ``.png``: rows ground truth / reference image / identity only, a column per camera."""
    from starcaster.data.synthtalk import SynthConfig, generate_dataset
    from starcaster.presets import build_pipeline
    from starcaster.training.samples import write_stage_samples

    generate_dataset(
        SynthConfig(out=tmp_path / "data", splits=("val",), eval_clips=1, eval_seconds=0.6, test_views=2),
        progress=False,
    )
    pipe = build_pipeline("demo")
    pipe.vae.register_to_config(scaling_factor=2.7)
    (tmp_path / "motion").mkdir()
    video = write_stage_samples(pipe, tmp_path / "data", tmp_path / "motion", seconds=0.5)
    sheet = np.asarray(Image.open(tmp_path / "motion" / "samples.png"))
    assert sheet.shape == (3 * 64, 2 * 64, 3)
    truth = sheet[:64].astype(float)
    assert np.abs(truth - sheet[64:128]).mean() > 5  # a random model draws something else than the render
    import imageio_ffmpeg

    assert next(imageio_ffmpeg.read_frames(str(video)))["size"] == (2 * 64, 3 * 64)  # (width, height)


def test_worker_audio_features_match_the_main_process(tiny_data):
    """Data-loader workers compute the same audio features as the main process, and prepare_batch uses them."""
    import functools

    from starcaster.audio import AudioFeatureConfig
    from starcaster.training.batches import prepare_batch
    from starcaster.training.data import audio_features, collate_audio_features, endless
    from starcaster.training.recipe import _components_from

    config = AudioFeatureConfig(n_mels=40, context=4)
    collate = functools.partial(collate_audio_features, frames=6, fps=25.0, config=config)
    batches = endless(tiny_data / "train", 6, 2, ("talking",), 0, num_workers=1, collate=collate)
    sample = next(batches)
    assert sample["audio_features"].shape[:2] == (2, 6)
    vae, encoder = _components_from(Path("checkpoints/starcaster-synth"))
    sample["frames"] = np.zeros((2, 6, 64, 64, 3), np.uint8)  # the bundled components expect 64² frames
    sample["reference"] = np.zeros((2, 64, 64, 3), np.uint8)
    from_workers = prepare_batch(sample, vae, encoder, 4.0)
    here = torch.from_numpy(audio_features(sample["audio"], 6, 25.0, config)).float()
    torch.testing.assert_close(from_workers.audio, here)
    assert from_workers.audio.abs().sum() > 0  # real speech features, not padding
    sample["audio_features"] = np.zeros_like(from_workers.audio.numpy())
    assert prepare_batch(sample, vae, encoder, 4.0).audio.abs().sum() == 0  # precomputed ones are used


def test_the_canonical_fine_tune_is_the_encoder_every_later_stage_uses(trained):
    """tiny.yaml fine-tunes the ArcFace encoder to describe the canonical face; the export ships that one."""
    from safetensors.torch import load_file

    run_dir, export = trained
    arcface = load_file(run_dir / "identity_encoder" / "final" / "diffusion_pytorch_model.safetensors")
    tuned = load_file(run_dir / "identity_canonical" / "final" / "diffusion_pytorch_model.safetensors")
    shipped = load_file(export / "identity_encoder" / "diffusion_pytorch_model.safetensors")
    assert any(not torch.equal(arcface[k], tuned[k]) for k in arcface)  # the fine-tune moved the weights
    assert all(torch.allclose(shipped[k].float(), tuned[k].float(), atol=1e-2) for k in tuned)  # fp16 export
    header = (run_dir / "identity_canonical" / "log.csv").read_text().splitlines()[0]
    assert "canonical" in header and "nce" in header


def test_refiner_stage_rolls_out_pairs_and_ships_in_the_export(trained):
    """The refiner trains on the finished video model's own frames paired with the truth, and is exported."""
    from starcaster.models.refiner import FrameRefiner

    run_dir, export = trained
    pairs = np.load(run_dir / "refiner" / "pairs.npz")
    # tiny.yaml: 4 windows, 2 chunks of 2 frames after the real context, 32² frames
    assert pairs["generated"].shape == pairs["truth"].shape == (4, 4, 32, 32, 3)
    assert pairs["portrait"].shape == (4, 32, 32, 3) and pairs["has_portrait"].dtype == bool
    assert not np.array_equal(pairs["generated"], pairs["truth"])  # the model's frames, not copies of the truth
    log = (run_dir / "refiner" / "log.csv").read_text().strip().splitlines()
    assert len(log) >= 3 and "critic" in log[0]  # tiny.yaml turns the adversarial term on
    pipe = STARCasterPipeline.from_pretrained(export)
    assert isinstance(pipe.refiner, FrameRefiner) and pipe.refiner.config.channels == [8, 16]


def test_identity_prior_is_trained_exported_and_anchors_identity_only_mode(trained):
    """The prior ships in the export; identity-only mode animates its portrait unless told not to."""
    from starcaster.errors import InputError

    _, export = trained
    pipe = STARCasterPipeline.from_pretrained(export)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.identity_prior is not None and pipe.identity_prior.dtype == torch.float32
    embedding = pipe.encode_identity(np.full((64, 64, 3), 90, np.uint8))
    portrait = pipe.imagine_portrait(embedding)
    assert portrait.shape == (32, 32, 3) and portrait.dtype == np.uint8

    def generate(**options):
        return pipe(
            np.zeros(3200, np.float32),
            identity_embedding=embedding,
            generator=torch.Generator().manual_seed(0),
            **options,
        ).frames

    anchored, alone = generate(), generate(use_identity_prior=False)
    assert not np.array_equal(anchored, alone)  # the portrait entered the cache sink / reference channels
    pipe.identity_prior = None  # a checkpoint without a prior: identity-only mode is the video model alone
    assert np.array_equal(generate(), alone)
    with pytest.raises(InputError, match="no identity prior"):
        pipe.imagine_portrait(embedding)


def test_cli_generate_can_switch_the_identity_prior_off(trained, tmp_path):
    import soundfile as sf

    from starcaster.identity import save_embedding

    _, export = trained
    sf.write(tmp_path / "speech.wav", np.random.default_rng(0).standard_normal(4000).astype(np.float32) * 0.1, 16_000)
    save_embedding(np.random.default_rng(1).standard_normal(512), tmp_path / "identity.npy")

    def video(name: str, *extra: str) -> bytes:
        assert cli_generate(export, tmp_path, name, *extra) == 0
        return (tmp_path / name).read_bytes()

    anchored = video("anchored.mp4")
    assert video("again.mp4") == anchored  # deterministic, so a difference below is the flag's
    assert video("alone.mp4", "--no-identity-prior") != anchored


def test_distill_stages_make_a_lighter_student_and_refiner(trained, tiny_data, tmp_path):
    """Three ``distill`` stages (teacher-forced, then on the student's own rollouts, then the same student
    caching its own denoising passes) on the tiny recipe's export as the teacher, and a refiner distilled
    from its refiner (pairs from the own-context student's rollouts): a narrower live pipeline comes out."""
    import yaml

    from starcaster.models.refiner import FrameRefiner
    from starcaster.pixels import to_pixels, to_uint8

    _, teacher = trained
    stage = dict(kind="distill", steps=2, batch_size=2, chunk_length=2, rollout_chunks=2, train_window=2)
    stage |= dict(num_inference_steps=1, noise_sharing=1.0)
    narrow = {"block_out_channels": [8, 16], "attention_heads": 1, "norm_num_groups": 4}
    recipe = dict(preset="tiny", bf16=False, log_every=1, save_every=2, ema_decay=0.9, sample_seconds=0)
    recipe |= dict(init_from=str(teacher), vae={"steps": 0}, decoder={"steps": 0})
    recipe["stages"] = [
        {**stage, "name": "distill", "student": narrow},
        {**stage, "name": "own", "on_policy_prob": 1.0},
        {**stage, "name": "live", "on_policy_prob": 0.5, "student": {"context_source": "denoiser"}},
        {**stage, "name": "live_view", "on_policy_prob": 0.5, "view_weight": 0.05},  # the view loss's expert loads
    ]
    recipe["refiner"] = dict(steps=2, batch_size=4, windows=4, rollout_batch=2, chunks=2, chunk_length=2)
    recipe["refiner"] |= dict(rollout_steps=1, channels=[4, 8], teacher=str(teacher / "refiner"))
    config, run_dir, export = tmp_path / "distill.yaml", tmp_path / "run", tmp_path / "export"
    config.write_text(yaml.safe_dump(recipe))
    args = ["train", "--config", str(config), "--data", str(tiny_data), "--out", str(run_dir), "--export", str(export)]
    assert main(args) == 0

    pipe = STARCasterPipeline.from_pretrained(export)
    assert pipe.unet.config.block_out_channels == [8, 16] and pipe.unet.config.attention_heads == 1
    assert pipe.refiner.config.channels == [4, 8] and pipe.unet.context_from_denoiser
    own = STARCasterUNet.from_pretrained(run_dir / "own" / "final")
    assert own.config.context_source == "reference"  # the stage before: the same student, reference context
    for name in ("distill", "own", "live", "live_view"):
        assert len((run_dir / name / "log.csv").read_text().strip().splitlines()) == 3  # header + 2 steps
    assert "view" in (run_dir / "live_view" / "log.csv").read_text().splitlines()[0].split(",")
    pairs = np.load(run_dir / "refiner" / "pairs.npz")  # targets: the teacher refiner's output, not the truth
    refiner = FrameRefiner.from_pretrained(teacher / "refiner")
    generated = to_pixels(torch.from_numpy(pairs["generated"]).flatten(0, 1))
    portraits = to_pixels(torch.from_numpy(pairs["portrait"])).repeat_interleave(pairs["generated"].shape[1], 0)
    has = torch.from_numpy(pairs["has_portrait"]).repeat_interleave(pairs["generated"].shape[1], 0)
    with torch.no_grad():
        expected = to_uint8(refiner(generated, portraits, has)).reshape(pairs["truth"].shape)
    difference = np.abs(expected.astype(int) - pairs["truth"].astype(int))  # the inputs were rounded to uint8 since
    assert difference.max() <= 3 and difference.mean() < 0.5 and not np.array_equal(pairs["truth"], pairs["generated"])
