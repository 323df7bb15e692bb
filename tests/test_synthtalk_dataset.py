"""SynthTalk storage: generation, shard round trip, streaming windows, and the real-data folder dataset."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import soundfile

from starcaster.data.datasets import FolderDataset, SynthTalkDataset
from starcaster.data.shards import load_manifest, read_clip
from starcaster.data.synthtalk import SynthConfig, generate_dataset, make_clip, reference_portrait


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory) -> SynthConfig:
    config = SynthConfig(
        out=tmp_path_factory.mktemp("synthtalk"), clips=3, multiview_sets=2, eval_clips=1, identities=2,
        seconds=0.4, eval_seconds=0.4, resolution=32, views=6, test_views=2, speech="formant", shard_size=2,
    )  # fmt: skip
    generate_dataset(config, progress=False)
    return config


def test_manifest_lists_every_clip_by_split(tiny_config):
    manifest = load_manifest(tiny_config.out)
    kinds = [c["kind"] for c in manifest["splits"]["train"]["clips"]]
    assert kinds.count("talking") == 3 and kinds.count("multiview") == 2 and "talking4d" not in kinds
    test = load_manifest(tiny_config.out / "test")
    assert sorted(c["kind"] for c in test["clips"]) == ["multiview", "talking", "talking4d"]
    assert all((tiny_config.out / "test" / c["shard"]).is_file() for c in test["clips"])


def test_shards_round_trip_and_clips_regenerate_identically(tiny_config):
    entry = load_manifest(tiny_config.out / "train")["clips"][1]
    stored = read_clip(tiny_config.out / "train" / entry["shard"], entry["key"])
    index = int(entry["key"].rsplit("-", 1)[1])
    fresh = make_clip(tiny_config, "train", entry["kind"], index).arrays()
    assert stored.keys() == fresh.keys()
    for name, value in fresh.items():
        np.testing.assert_array_equal(stored[name], value, err_msg=name)


def test_parallel_workers_write_the_same_clips(tiny_config, tmp_path):
    parallel = replace(tiny_config, out=tmp_path, workers=2, eval_clips=0, multiview_sets=0)
    generate_dataset(parallel, progress=False)
    entry = load_manifest(tmp_path / "train")["clips"][2]
    serial = read_clip(tiny_config.out / "train" / entry["shard"], entry["key"])
    for name, value in read_clip(tmp_path / "train" / entry["shard"], entry["key"]).items():
        np.testing.assert_array_equal(value, serial[name], err_msg=name)
    assert np.array_equal(serial["reference"], reference_portrait(entry["identity"], size=32))


def test_stream_cuts_aligned_windows(tiny_config):
    dataset = SynthTalkDataset(tiny_config.out / "train", window=4, kinds=("talking", "multiview"))
    items = list(dataset)
    assert len(items) == 3 * 2 + 2 * 1  # 10 frames → 2 talking windows; 6 views → 1 multiview window
    talking, second = [i for i in items if i["has_audio"]][:2]
    assert talking["frames"].shape == (4, 32, 32, 3) and talking["audio"].shape == (4 * 640,)
    assert talking["mouth_open"].shape == (4,) and talking["head_rotation"].shape == (4, 3)
    entry = next(c for c in dataset.clips() if c["key"] == talking["key"])
    clip = read_clip(tiny_config.out / "train" / entry["shard"], talking["key"])
    np.testing.assert_array_equal(second["audio"], clip["audio"][4 * 640 : 8 * 640])
    np.testing.assert_array_equal(second["frames"], clip["frames"][4:8])
    multiview = [i for i in items if not i["has_audio"]][0]
    assert np.ptp(multiview["azimuth"]) > 0 and np.ptp(multiview["mouth_open"]) == 0


def test_talking4d_yields_one_sequence_per_camera(tiny_config):
    items = list(SynthTalkDataset(tiny_config.out / "test", kinds=("talking4d",)))
    assert [i["view"] for i in items] == [0, 1]
    assert items[0]["azimuth"][0] != items[1]["azimuth"][0]
    np.testing.assert_array_equal(items[0]["mouth_open"], items[1]["mouth_open"])


def test_shuffled_stream_is_seeded(tiny_config):
    def keys(seed):
        return [(i["key"], i["start"]) for i in SynthTalkDataset(tiny_config.out / "train", 4, shuffle=True, seed=seed)]

    assert keys(3) == keys(3)


def test_folder_dataset_reads_mp4_wav_json(tmp_path):
    import imageio.v2 as imageio

    frames = np.random.default_rng(0).integers(0, 255, (20, 48, 48, 3), dtype=np.uint8)
    frames[:] = frames[:1]  # a still picture survives lossy encoding well enough for the check below
    with imageio.get_writer(tmp_path / "clip.mp4", fps=25, codec="libx264", quality=9, macro_block_size=1) as writer:
        for frame in frames:
            writer.append_data(frame)
    soundfile.write(tmp_path / "clip.wav", np.zeros(44100, np.float32), 44100)  # 1 s at 44.1 kHz
    (tmp_path / "clip.json").write_text(json.dumps({"azimuth": 30.0, "elevation": list(range(20))}))
    items = list(FolderDataset(tmp_path, window=8, resolution=32))
    assert len(items) == 2
    item = items[1]
    assert item["frames"].shape == (8, 32, 32, 3) and item["audio"].shape == (8 * 640,)
    np.testing.assert_allclose(item["azimuth"], 30.0)
    np.testing.assert_allclose(item["elevation"], np.arange(8, 16))
    assert item["reference"].shape == (32, 32, 3) and item["has_audio"]
