"""Identity backends: the built-in encoder, insightface through the (offline) Hub cache, selection."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from starcaster.errors import CheckpointError, InputError, OfflineError
from starcaster.identity import (
    BuiltinIdentityBackend,
    HubFile,
    IdentityBackend,
    InsightFaceBackend,
    make_identity_backend,
)
from starcaster.models.identity_encoder import IdentityEncoder

onnx = pytest.importorskip("onnx")
pytest.importorskip("insightface")
from onnx import TensorProto, helper  # noqa: E402


@pytest.fixture(scope="module")
def encoder() -> IdentityEncoder:
    torch.manual_seed(0)
    return IdentityEncoder(image_size=32, embed_dim=512, channels=(8, 16))


# --- IdentityEncoder -------------------------------------------------------------------------


def test_encoder_default_config_size_and_output():
    model = IdentityEncoder()
    assert sum(p.numel() for p in model.parameters()) < 5_000_000
    out = model(torch.rand(2, 3, 64, 64) * 2 - 1)
    assert out.shape == (2, 512)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(2))


def test_encoder_save_load_round_trip(tmp_path, encoder):
    encoder.save_pretrained(tmp_path / "identity_encoder")
    loaded = IdentityEncoder.from_pretrained(tmp_path / "identity_encoder")
    images = torch.rand(1, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(loaded(images), encoder.eval()(images))
    assert (tmp_path / "identity_encoder" / "diffusion_pytorch_model.safetensors").exists()


def test_encoder_rejects_wrong_shape(encoder):
    with pytest.raises(ValueError, match=r"expects \[B, 3, 32, 32\]"):
        encoder(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="divisible"):
        IdentityEncoder(image_size=60)


# --- built-in backend ----------------------------------------------------------------------------


def test_builtin_backend_on_astronaut(encoder):
    backend = make_identity_backend("builtin", encoder)
    assert isinstance(backend, IdentityBackend) and backend.name == "builtin"
    result = backend.extract(data.astronaut())
    assert result.embedding.shape == (512,) and result.embedding.dtype == np.float32
    assert np.isclose(np.linalg.norm(result.embedding), 1.0)
    assert result.crop.image.size == (32, 32) and result.crop.method == "cascade"
    np.testing.assert_allclose(backend.embed(data.astronaut()), result.embedding, atol=1e-6)


def test_builtin_backend_on_synthetic_render(encoder):
    render = Image.new("RGB", (64, 64), (170, 130, 110))
    result = BuiltinIdentityBackend(encoder).extract(render)
    assert result.crop.method == "centre" and result.crop.warnings


def test_unknown_backend():
    with pytest.raises(CheckpointError, match="Unknown identity encoder 'facenet'.*known: builtin"):
        make_identity_backend("facenet", None)


def test_builtin_without_encoder():
    with pytest.raises(CheckpointError, match="no identity_encoder/ folder.*Re-download"):
        make_identity_backend("builtin", None)


# --- insightface backend, offline ---------------------------------------------------------------


def _tiny_scrfd(path: Path) -> None:
    """An SCRFD-shaped detector: 9 outputs (score/box/kps × strides 8/16/32), always score 0."""
    nodes, outputs = [], {"score": [], "bbox": [], "kps": []}
    for stride in (8, 16, 32):
        s = str(stride)
        nodes += [
            helper.make_node(
                "AveragePool", ["input.1"], [f"pool{s}"], kernel_shape=[stride, stride], strides=[stride, stride]
            ),
            helper.make_node("ReduceMean", [f"pool{s}"], [f"mean{s}"], axes=[1], keepdims=1),  # [1, 1, h, w]
            helper.make_node("Mul", [f"mean{s}", "zero"], [f"zeroed{s}"]),
            helper.make_node("Concat", [f"zeroed{s}"] * 2, [f"anchors{s}"], axis=1),  # 2 anchors per cell
            helper.make_node("Transpose", [f"anchors{s}"], [f"nhwc{s}"], perm=[0, 2, 3, 1]),
            helper.make_node("Reshape", [f"nhwc{s}", "column"], [f"score{s}"]),  # [h*w*2, 1]
            helper.make_node("Concat", [f"score{s}"] * 4, [f"bbox{s}"], axis=1),
            helper.make_node("Concat", [f"score{s}"] * 10, [f"kps{s}"], axis=1),
        ]
        for kind, width in (("score", 1), ("bbox", 4), ("kps", 10)):
            outputs[kind].append(helper.make_tensor_value_info(f"{kind}{s}", TensorProto.FLOAT, ["n", width]))
    graph = helper.make_graph(
        nodes,
        "tiny_scrfd",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "h", "w"])],
        outputs["score"] + outputs["bbox"] + outputs["kps"],
        initializer=[
            helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
            helper.make_tensor("column", TensorProto.INT64, [2], [-1, 1]),
        ],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def _tiny_arcface(path: Path) -> None:
    """An ArcFace-shaped recogniser: [1, 3, 112, 112] → [1, 512]."""
    weight = np.random.default_rng(0).standard_normal((3, 512)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["input.1"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("MatMul", ["flat", "weight"], ["embedding"]),
        ],
        "tiny_arcface",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 512])],
        initializer=[helper.make_tensor("weight", TensorProto.FLOAT, [3, 512], weight.ravel())],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def _fake_cached_repo(files: dict[str, callable]) -> str:
    """A model repo laid out as huggingface_hub's cache (refs/main → snapshot) inside the test HF cache."""
    from huggingface_hub import constants

    repo_id = f"starcaster-test/antelope-{uuid.uuid4().hex[:8]}"
    repo_dir = Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    commit = "0" * 40
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name, make in files.items():
        make(snapshot / name)
    return repo_id


def _listing(folder: Path) -> set[str]:
    return set(os.listdir(folder)) if folder.exists() else set()


def test_offline_missing_files_message_and_no_writes(tmp_path, monkeypatch):
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    monkeypatch.chdir(tmp_path)
    had_insightface_dir = (Path.home() / ".insightface").exists()
    backend = make_identity_backend("insightface-antelopev2", None)
    with pytest.raises(OfflineError) as info:
        backend.embed(data.astronaut())
    message = str(info.value)
    assert "scrfd_10g_bnkps.onnx" in message and "hf download DIAMONIK7777/antelopev2 scrfd_10g_bnkps.onnx" in message
    assert "hf download FoivosPar/Arc2Face arcface.onnx" in message
    assert _listing(tmp_path) == set()  # nothing in the working directory
    assert (Path.home() / ".insightface").exists() == had_insightface_dir  # insightface's downloader never ran


def test_insightface_loads_from_offline_cache_and_reports_no_face(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    repo = _fake_cached_repo({"scrfd_10g_bnkps.onnx": _tiny_scrfd, "glintr100.onnx": _tiny_arcface})
    backend = InsightFaceBackend(repo_id=repo, providers=["CPUExecutionProvider"])
    assert [p.name for p in backend.resolve_files()] == ["scrfd_10g_bnkps.onnx", "glintr100.onnx"]
    with pytest.raises(InputError, match="No face found.*frontal photo"):
        backend.embed(data.astronaut())
    assert _listing(tmp_path) == set()


def test_insightface_files_without_a_detector(tmp_path):
    repo = _fake_cached_repo({"rec.onnx": _tiny_arcface})
    backend = InsightFaceBackend(files=[HubFile(repo, "rec.onnx")], providers=["CPUExecutionProvider"])
    with pytest.raises(CheckpointError, match="no detection model.*Check the repo id"):
        backend.embed(data.astronaut())


def test_insightface_corrupt_onnx(tmp_path):
    repo = _fake_cached_repo(
        {"scrfd_10g_bnkps.onnx": lambda p: p.write_bytes(b"not onnx"), "glintr100.onnx": _tiny_arcface}
    )
    with pytest.raises(CheckpointError, match="Could not load the ONNX model scrfd_10g_bnkps.onnx.*fetch it again"):
        InsightFaceBackend(repo_id=repo, providers=["CPUExecutionProvider"]).embed(data.astronaut())


class _FakeDetector:
    """Stands in for SCRFD: fixed boxes ``[N, 5]`` and 5-point landmarks ``[N, 5, 2]``."""

    def __init__(self, boxes: np.ndarray, kps: np.ndarray):
        self.boxes, self.kps = boxes, kps

    def detect(self, img, max_num=0):
        return self.boxes, self.kps


_ASTRONAUT_KPS = np.array([[203, 106], [241, 106], [222, 126], [207, 143], [237, 143]], np.float32)


def _backend_with_detector(tmp_path, boxes, kps) -> InsightFaceBackend:
    from insightface import model_zoo

    _tiny_arcface(tmp_path / "rec.onnx")
    recogniser = model_zoo.get_model(str(tmp_path / "rec.onnx"), providers=["CPUExecutionProvider"])
    recogniser.prepare(0)
    backend = InsightFaceBackend(providers=["CPUExecutionProvider"])
    backend.__dict__["_models"] = (
        _FakeDetector(np.asarray(boxes, np.float32), np.asarray(kps, np.float32)),
        recogniser,
    )
    return backend


def test_insightface_aligns_largest_face_and_warns(tmp_path):
    small = _ASTRONAUT_KPS * 0.5 + 300
    boxes = [[350, 350, 400, 400, 0.9], [177, 71, 262, 156, 0.95]]
    backend = _backend_with_detector(tmp_path, boxes, [small, _ASTRONAUT_KPS])
    result = backend.extract(data.astronaut())
    assert result.crop.box == (177, 71, 262, 156) and result.crop.num_faces == 2
    assert "using the largest" in result.crop.warnings[0]
    assert result.crop.image.size == (112, 112) and np.isclose(np.linalg.norm(result.embedding), 1.0)


def test_insightface_tiny_face(tmp_path):
    backend = _backend_with_detector(tmp_path, [[10, 10, 40, 40, 0.9]], [_ASTRONAUT_KPS * 0.3])
    with pytest.raises(InputError, match=r"too small \(30 px.*closer or higher-resolution"):
        backend.embed(data.astronaut())
