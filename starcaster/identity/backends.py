"""Identity backends: a portrait → a 512-D embedding in one encoder's space.

``builtin`` (the checkpoint's own ``IdentityEncoder`` behind the offline cascade) or
``insightface-antelopev2`` (SCRFD + 5-point alignment + ArcFace, as Arc2Face does it; files from
the Hub cache). ``make_identity_backend`` picks the one a checkpoint declares.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from ..errors import CheckpointError, InputError, OfflineError

if TYPE_CHECKING:  # torch and the model are imported lazily: loading an .npy needs neither
    from ..models.identity_encoder import IdentityEncoder

from .embeddings import _unit
from .faces import MIN_FACE_PX, FaceCrop, detect_and_crop_face
from .images import ImageSource, load_image

logger = logging.getLogger(__name__)

IDENTITY_BACKENDS = ("builtin", "insightface-antelopev2")


@dataclass
class IdentityResult:
    """An embedding together with the crop it was computed from (for previews and warnings)."""

    embedding: np.ndarray  # (embed_dim,) float32, L2-normalised
    crop: FaceCrop


@runtime_checkable
class IdentityBackend(Protocol):
    """Turns a portrait into an identity embedding in one encoder's space."""

    name: str

    def embed(self, image: Image.Image) -> np.ndarray:
        """``(512,)`` float32, L2-normalised."""
        ...


class BuiltinIdentityBackend:
    """The checkpoint's own ``IdentityEncoder`` behind the offline cascade detector.

    Crops follow ``detect_and_crop_face``'s rule (``detector="auto"`` by default, so square
    synthetic renders that fill the frame work too) and are resized to the encoder's
    ``image_size``.
    """

    name = "builtin"

    def __init__(self, encoder: IdentityEncoder, detector: str = "auto") -> None:
        self.encoder = encoder.eval()
        self.detector = detector

    def extract(self, image: ImageSource) -> IdentityResult:
        import torch

        crop = detect_and_crop_face(load_image(image), self.encoder.config.image_size, detector=self.detector)
        pixels = np.asarray(crop.image, dtype=np.float32) / 127.5 - 1.0  # [H, W, 3] in [-1, 1]
        param = next(self.encoder.parameters())
        batch = torch.from_numpy(pixels).permute(2, 0, 1)[None].to(param.device, param.dtype)  # [1, 3, H, W]
        with torch.no_grad():
            embedding = self.encoder(batch)[0].float().cpu().numpy()
        return IdentityResult(embedding=_unit(embedding), crop=crop)

    def embed(self, image: ImageSource) -> np.ndarray:
        return self.extract(image).embedding


@dataclass(frozen=True)
class HubFile:
    """One file on the Hugging Face Hub."""

    repo_id: str
    filename: str
    revision: str | None = None

    def fetch_command(self) -> str:
        revision = f" --revision {self.revision}" if self.revision else ""
        return f"hf download {self.repo_id} {self.filename}{revision}"


# Arc2Face's recipe: the antelopev2 SCRFD detector plus Arc2Face's own ArcFace (trained on
# WebFace42M; it replaces antelopev2's glintr100). Embeddings for Arc2Face-initialised
# checkpoints must come from exactly this pair. Documented in checkpoints.md.
ANTELOPEV2_REPO = "DIAMONIK7777/antelopev2"
ANTELOPEV2_FILES = (
    HubFile(ANTELOPEV2_REPO, "scrfd_10g_bnkps.onnx"),
    HubFile("FoivosPar/Arc2Face", "arcface.onnx"),
)


class InsightFaceBackend:
    """SCRFD detection + 5-point alignment + ArcFace, as Arc2Face extracts identities.

    Model files are resolved with ``hf_hub_download`` (HF cache, offline-aware) and loaded
    with ``insightface.model_zoo.get_model`` on those exact paths; that is what
    ``FaceAnalysis`` does per file, without its folder convention (our two files live in two
    repos) or its internet downloader. Loading is lazy: the first ``embed`` fetches.
    ``repo_id`` + ``filenames`` fetch every file from one repo (e.g. a full antelopev2
    mirror, whose ``glintr100.onnx`` then serves as the recogniser).
    """

    name = "insightface-antelopev2"

    def __init__(
        self,
        repo_id: str | None = None,
        filenames: Sequence[str] | None = None,
        revision: str | None = None,
        providers: Sequence[str] | None = None,
        *,
        files: Sequence[HubFile] | None = None,
        det_size: tuple[int, int] = (640, 640),
    ) -> None:
        if repo_id is not None:
            files = [
                HubFile(repo_id, name, revision) for name in (filenames or ("scrfd_10g_bnkps.onnx", "glintr100.onnx"))
            ]
        self.files = tuple(files or ANTELOPEV2_FILES)
        self.providers = list(providers) if providers else _default_providers()
        self.det_size = det_size

    def resolve_files(self) -> list[Path]:
        """Local paths of the model files (cache or Hub); ``OfflineError`` names what is missing."""
        return [_hub_path(spec, self.files) for spec in self.files]

    @cached_property
    def _models(self) -> tuple[object, object]:
        insightface_zoo = _import_insightface()
        models = {}
        for path in self.resolve_files():
            try:
                model = insightface_zoo.get_model(str(path), providers=self.providers)
            except Exception as exc:  # onnxruntime raises its own types for a bad file
                raise CheckpointError(
                    f"Could not load the ONNX model {path.name} ({exc}). Delete it from the HF cache and fetch it again."
                ) from exc
            if model is not None:
                models.setdefault(model.taskname, model)
        missing = [task for task in ("detection", "recognition") if task not in models]
        if missing:
            names = ", ".join(spec.filename for spec in self.files)
            raise CheckpointError(
                f"The insightface files ({names}) provide no {' or '.join(missing)} model. Check the repo id and filenames."
            )
        models["detection"].prepare(0, input_size=self.det_size, det_thresh=0.5)
        models["recognition"].prepare(0)
        return models["detection"], models["recognition"]

    def extract(self, image: ImageSource, *, min_face: int = MIN_FACE_PX) -> IdentityResult:
        detector, recogniser = self._models
        rgb = load_image(image)
        bgr = np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])  # insightface works in BGR
        boxes, landmarks = detector.detect(bgr, max_num=0)
        face_index, notes = _pick_insightface_face(boxes, min_face)
        face = _insightface_face(boxes[face_index], None if landmarks is None else landmarks[face_index])
        embedding = recogniser.get(bgr, face)
        aligned = _aligned_crop(bgr, face.kps, recogniser.input_size[0])
        box = tuple(int(round(v)) for v in boxes[face_index, :4])
        crop = FaceCrop(image=aligned, box=box, num_faces=len(boxes), warnings=notes, method="insightface")
        return IdentityResult(embedding=_unit(np.asarray(embedding, np.float32)), crop=crop)

    def embed(self, image: ImageSource) -> np.ndarray:
        return self.extract(image).embedding


def _default_providers() -> list[str]:
    """CUDA first when onnxruntime has it, always CPU as the fallback."""
    try:
        import onnxruntime
    except ImportError:
        return ["CPUExecutionProvider"]
    available = onnxruntime.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available] or ["CPUExecutionProvider"]


def _import_insightface():
    try:
        from insightface import model_zoo
    except ImportError as exc:
        raise CheckpointError(
            "The insightface backend needs `insightface` and `onnxruntime`: pip install -r requirements.txt "
            "(or use a checkpoint with a built-in identity encoder)."
        ) from exc
    return model_zoo


def _hub_path(spec: HubFile, all_files: Sequence[HubFile]) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return Path(hf_hub_download(spec.repo_id, spec.filename, revision=spec.revision))
    except LocalEntryNotFoundError as exc:
        commands = "; ".join(f.fetch_command() for f in all_files)
        raise OfflineError(
            f"The face model {spec.filename} from {spec.repo_id} is not in the Hugging Face cache and the Hub "
            f"cannot be reached (offline mode or no network). Fetch the files once while online: {commands} "
            "— or use a checkpoint with a built-in identity encoder, or give an identity embedding file."
        ) from exc
    except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise CheckpointError(
            f"{spec.repo_id} has no file {spec.filename} at revision {spec.revision or 'main'} ({exc}). Check the repo id and filenames."
        ) from exc


def _pick_insightface_face(boxes: np.ndarray, min_face: int) -> tuple[int, list[str]]:
    if len(boxes) == 0:
        raise InputError(
            "No face found in the image. Use a well-lit, frontal photo with one face at least 64 px across."
        )
    sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    index = int(np.argmax(sides))
    if sides[index] < min_face:
        raise InputError(
            f"The face is too small ({int(sides[index])} px; at least {min_face} px is needed). "
            "Use a closer or higher-resolution photo, or crop the image around the face."
        )
    notes = (
        [f"{len(boxes)} faces found; using the largest one. Crop the photo to choose another."]
        if len(boxes) > 1
        else []
    )
    for note in notes:
        logger.warning(note)
    return index, notes


def _insightface_face(box: np.ndarray, kps: np.ndarray | None):
    from insightface.app.common import Face

    if kps is None:
        raise CheckpointError(
            "The detection model returns no landmarks; use an SCRFD model with keypoints (e.g. scrfd_10g_bnkps.onnx)."
        )
    return Face(bbox=box[:4], kps=kps, det_score=box[4])


def _aligned_crop(bgr: np.ndarray, kps: np.ndarray, size: int) -> Image.Image:
    from insightface.utils import face_align

    return Image.fromarray(face_align.norm_crop(bgr, landmark=kps, image_size=size)[:, :, ::-1].copy())


def make_identity_backend(kind: str, encoder: IdentityEncoder | None = None, **kwargs) -> IdentityBackend:
    """The backend a checkpoint declares: ``"builtin"`` (needs ``encoder``) or ``"insightface-antelopev2"``."""
    if kind == "builtin":
        if encoder is None:
            raise CheckpointError(
                "This checkpoint declares a built-in identity encoder but has no identity_encoder/ folder. Re-download the checkpoint."
            )
        return BuiltinIdentityBackend(encoder, **kwargs)
    if kind == "insightface-antelopev2":
        return InsightFaceBackend(**kwargs)
    raise CheckpointError(
        f"Unknown identity encoder {kind!r} in the checkpoint config; known: {', '.join(IDENTITY_BACKENDS)}."
    )
