"""Identity front end: portrait images → aligned face crops → 512-D identity embeddings.

Three ways in, one way out. A user gives either a portrait (``image`` mode), or an identity
embedding file (``.npy`` / ``.pt`` / ``.safetensors`` / ``.json``), or asks for a random or
interpolated identity. Whatever comes in leaves as a float32 unit vector of the size the
checkpoint expects, because every conditioning path downstream assumes exactly that.

One module per job, in the order a portrait flows through them:

* ``images.py``: open, validate, orient, convert and downscale an image (``load_image``);
* ``faces.py``: find the largest face and cut its crop (``detect_and_crop_face``, ``recrop``);
* ``backends.py``: crop → embedding in one encoder's space. Embeddings only mean something in
  the space of the encoder that made them, so there are two backends and the checkpoint picks
  one (``make_identity_backend``): ``insightface-antelopev2`` (SCRFD detection with 5
  landmarks, ArcFace alignment and ArcFace ONNX, as Arc2Face does it; files from the Hub cache,
  never insightface's own downloader) and ``builtin`` (the small ``IdentityEncoder`` a
  checkpoint ships, behind the offline cascade detector);
* ``embeddings.py``: embedding files and vectors (load, validate, save, sample, interpolate).

Every bad input raises ``InputError`` with what was wrong and what to do. The names below are
the package's public API (``from starcaster.identity import load_image`` etc.).
"""

from __future__ import annotations

from .backends import (
    ANTELOPEV2_FILES,
    ANTELOPEV2_REPO,
    IDENTITY_BACKENDS,
    BuiltinIdentityBackend,
    HubFile,
    IdentityBackend,
    IdentityResult,
    InsightFaceBackend,
    make_identity_backend,
)
from .embeddings import (
    EMBED_DIM,
    EMBEDDING_SUFFIXES,
    fit_identity_gaussian,
    load_embedding,
    random_identity,
    save_embedding,
    slerp,
    validate_embedding,
)
from .faces import (
    CROP_SCALE,
    CROP_SHIFT_Y,
    DETECTORS,
    MIN_FACE_PX,
    TIGHT_PORTRAIT_MAX_SIDE,
    FaceCrop,
    detect_and_crop_face,
    detect_faces,
    recrop,
)
from .images import MAX_DECODE_PIXELS, MAX_WORKING_SIDE, ImageSource, load_image

__all__ = [
    "ANTELOPEV2_FILES",
    "ANTELOPEV2_REPO",
    "CROP_SCALE",
    "CROP_SHIFT_Y",
    "DETECTORS",
    "EMBEDDING_SUFFIXES",
    "EMBED_DIM",
    "IDENTITY_BACKENDS",
    "MAX_DECODE_PIXELS",
    "MAX_WORKING_SIDE",
    "MIN_FACE_PX",
    "TIGHT_PORTRAIT_MAX_SIDE",
    "BuiltinIdentityBackend",
    "FaceCrop",
    "HubFile",
    "IdentityBackend",
    "IdentityResult",
    "ImageSource",
    "InsightFaceBackend",
    "detect_and_crop_face",
    "detect_faces",
    "fit_identity_gaussian",
    "load_embedding",
    "load_image",
    "make_identity_backend",
    "random_identity",
    "recrop",
    "save_embedding",
    "slerp",
    "validate_embedding",
]
