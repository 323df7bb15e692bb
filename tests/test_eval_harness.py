"""The benchmark on a tiny generated test split: ceilings beat floors, and a GT-returning model hits the ceiling."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from starcaster.data.synthtalk import SynthConfig, generate_dataset
from starcaster.eval.experts import WEIGHTS_DIR
from starcaster.eval.harness import EvalConfig, evaluate_pipeline, format_table, load_sequences, run_benchmark

pytestmark = pytest.mark.skipif(not (WEIGHTS_DIR / "sync.safetensors").is_file(), reason="expert weights not trained")


class GroundTruthPipe:
    """Stands in for STARCasterPipeline: returns the GT render for the requested audio and camera."""

    def __init__(self, sequences):
        self.frames = {(s["audio"].tobytes(), float(s["azimuth"][0])): s["frames"] for s in sequences}
        self.calls = []

    def encode_identity(self, image):
        return np.ones(512, np.float32)

    def __call__(self, *, audio, identity_embedding, image, azimuth, elevation, **kwargs):
        self.calls.append(kwargs)
        return SimpleNamespace(frames=self.frames[(audio.tobytes(), float(azimuth[0]))])


@pytest.fixture(scope="module")
def bench_results(tmp_path_factory):
    config = SynthConfig(
        out=tmp_path_factory.mktemp("synth"),
        clips=0,
        eval_clips=2,
        eval_seconds=2.0,
        test_views=2,
        seed=5,
        splits=("test",),
    )
    generate_dataset(config, progress=False)
    split = config.out / "test"
    return split, run_benchmark(split)


def test_every_metric_separates_ceiling_from_its_floor(bench_results):
    _, results = bench_results
    gt, still, mouth, other = (
        results["rows"][n] for n in ("ground truth", "still image", "random mouth", "other identity")
    )
    assert (
        gt["lip_sync_corr"] > 0.6
        and still["lip_sync_corr"] == 0.0
        and mouth["lip_sync_corr"] < gt["lip_sync_corr"] - 0.4
    )
    assert gt["sync_conf"] > max(still["sync_conf"], mouth["sync_conf"]) and gt["sync_dist"] < mouth["sync_dist"]
    assert gt["view_error_deg"] < 10.0 < still["view_error_deg"]
    assert gt["identity_cos"] > other["identity_cos"] + 0.1
    assert gt["motion_ratio"] == 1.0 and still["motion_ratio"] == 0.0
    assert gt["ssim"] == 1.0 and still["ssim"] < 0.95  # a frontal portrait is not the frame at other views
    assert gt["fid_own"] < 1e-6 < min(still["fid_own"], other["fid_own"])
    assert "| lip_sync_corr ↑ |" in format_table(results)


def test_a_model_that_returns_ground_truth_scores_the_ceiling(bench_results):
    split, results = bench_results
    sequences, _ = load_sequences(split, EvalConfig())
    pipe = GroundTruthPipe(sequences)
    scores = evaluate_pipeline(pipe, split, EvalConfig(num_inference_steps=2))
    assert len(pipe.calls) == len(sequences) and pipe.calls[0]["num_inference_steps"] == 2
    for metric, value in results["rows"]["ground truth"].items():
        assert scores[metric] == pytest.approx(value, abs=1e-6), metric


def test_sequences_can_be_cut_to_fewer_views_and_seconds(bench_results):
    split, _ = bench_results
    sequences, fps = load_sequences(split, EvalConfig(max_clips=1, max_views=1, seconds=1.0))
    (seq,) = sequences
    assert len(seq["frames"]) == len(seq["mouth_open"]) == 25 and len(seq["audio"]) == 16000


@pytest.mark.parametrize("mode", ["reference", "embedding"])
def test_harness_drives_the_real_pipeline(bench_results, mode):
    """The model row on a real (tiny, random) STARCasterPipeline: every metric is a finite number."""
    from starcaster import build_pipeline

    split, _ = bench_results
    pipe = build_pipeline("tiny")
    result = evaluate_pipeline(
        pipe, split, EvalConfig(max_clips=1, max_views=1, seconds=0.4, mode=mode, num_inference_steps=1)
    )
    core = ("lip_sync_corr", "sync_conf", "sync_dist", "view_error_deg", "identity_cos", "motion_ratio")
    assert all(np.isfinite(result[name]) for name in core), result


def test_embedding_mode_scores_the_identity_prior_anchor_when_the_checkpoint_has_one(bench_results):
    import torch

    from starcaster import build_pipeline
    from starcaster.models.identity_prior import IdentityPrior

    split, _ = bench_results
    pipe = build_pipeline("tiny")
    size = pipe.image_size
    prior = IdentityPrior(image_size=size, num_features=32, num_components=4)
    embeddings = torch.nn.functional.normalize(torch.randn(16, 512), dim=1)
    prior.fit(embeddings, np.random.default_rng(0).integers(0, 256, (16, size, size, 3), dtype=np.uint8))
    pipe.register_modules(identity_prior=prior.eval())
    settings = dict(max_clips=1, max_views=1, seconds=0.4, mode="embedding", num_inference_steps=1)
    rows = run_benchmark(split, pipe, EvalConfig(**settings))["rows"]
    assert np.isfinite(rows["identity prior portrait"]["identity_cos"]) and "model (embedding)" in rows
    rows = run_benchmark(split, pipe, EvalConfig(**settings, use_identity_prior=False))["rows"]
    assert "identity prior portrait" not in rows
