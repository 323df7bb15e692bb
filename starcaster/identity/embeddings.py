"""Identity embedding files: load, validate, save, sample and interpolate 512-D unit vectors.

Whatever comes in (``.npy`` / ``.pt`` / ``.safetensors`` / ``.json``, arrays, lists) leaves as a
float32 unit vector of the size the checkpoint expects; a bad file is an ``InputError``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError

EMBED_DIM = 512

EMBEDDING_SUFFIXES = (".npy", ".pt", ".pth", ".safetensors", ".json")


def load_embedding(source: str | Path | np.ndarray | Sequence[float], expected_dim: int = EMBED_DIM) -> np.ndarray:
    """Read and validate an identity embedding; return it float32 and L2-normalised.

    Accepts ``.npy``, ``.pt``/``.pth`` (a tensor only, read with ``weights_only=True``),
    ``.safetensors`` (exactly one tensor), ``.json`` (a list of numbers), an array or a list.
    Shape ``(dim,)`` or ``(1, dim)``.
    """
    if isinstance(source, str | Path):
        path = Path(source)
        name = path.name
        values = _read_embedding_file(path)
    else:
        name = "the embedding"
        values = source
    return validate_embedding(values, expected_dim, name=name)


def validate_embedding(values: object, expected_dim: int = EMBED_DIM, *, name: str = "the embedding") -> np.ndarray:
    """Shape, dtype, finiteness and norm checks shared by every embedding source."""
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu().float().numpy()
    try:
        array = np.asarray(values)
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"{name} is not a list of numbers ({exc}). Save it as a flat list of {expected_dim} floats."
        ) from exc
    if (
        array.dtype == object
        or not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer))
        or array.dtype == np.bool_
    ):
        raise InputError(f"{name} has dtype {array.dtype}, not numbers. Save it as {expected_dim} float32 values.")
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 1:
        raise InputError(
            f"{name} has shape {array.shape}; expected ({expected_dim},) or (1, {expected_dim}). Give one identity at a time."
        )
    if array.shape[0] != expected_dim:
        raise InputError(
            f"{name} has {array.shape[0]} values but this checkpoint's identity encoder uses {expected_dim}. "
            "Extract the embedding with the same encoder as the checkpoint (use image mode)."
        )
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise InputError(f"{name} contains NaN or infinite values. Re-extract it from a photo.")
    if np.linalg.norm(array) < 1e-8:
        raise InputError(
            f"{name} is a zero vector and names no identity. Re-extract it from a photo or use a random identity."
        )
    return _unit(array)


def _read_embedding_file(path: Path) -> object:
    if not path.is_file():
        raise InputError(f"Embedding file not found: {path}. Check the path and try again.")
    suffix = path.suffix.lower()
    readers = {
        ".npy": _read_npy,
        ".pt": _read_torch,
        ".pth": _read_torch,
        ".safetensors": _read_safetensors,
        ".json": _read_json,
    }
    if suffix not in readers:
        raise InputError(f"Unsupported embedding file type {suffix!r}; use one of {', '.join(EMBEDDING_SUFFIXES)}.")
    try:
        return readers[suffix](path)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            f"Could not read the embedding {path.name} ({type(exc).__name__}: {exc}). Re-save it as .npy or .json."
        ) from exc


def _read_npy(path: Path) -> np.ndarray:
    with open(path, "rb") as handle:
        if handle.read(6) != b"\x93NUMPY":
            raise InputError(
                f"{path.name} is not a NumPy .npy file. Re-save the embedding with numpy.save (or as .json)."
            )
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise InputError(
                f"{path.name} holds pickled Python objects, which are refused for safety. Save a plain float array with numpy.save."
            ) from exc
        raise


def _read_torch(path: Path):
    import pickle

    import torch

    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise InputError(
            f"{path.name} contains Python objects other than tensors and is refused for safety "
            "(read with weights_only=True). Save just the tensor: torch.save(embedding_tensor, path)."
        ) from exc
    if not isinstance(value, torch.Tensor):
        raise InputError(
            f"{path.name} holds a {type(value).__name__}, not a tensor. Save just the tensor: torch.save(embedding_tensor, path)."
        )
    return value


def _read_safetensors(path: Path) -> np.ndarray:
    from safetensors.numpy import load_file

    tensors = load_file(str(path))
    if len(tensors) != 1:
        raise InputError(
            f"{path.name} holds {len(tensors)} tensors ({', '.join(sorted(tensors)) or 'none'}); it must hold exactly one embedding."
        )
    return next(iter(tensors.values()))


def _read_json(path: Path) -> object:
    value = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(value, dict) and "embedding" in value:
        value = value["embedding"]
    if not isinstance(value, list):
        raise InputError(
            f'{path.name} holds a JSON {type(value).__name__}; expected a list of numbers (or {{"embedding": [...]}}).'
        )
    return value


def save_embedding(embedding: np.ndarray, path: str | Path) -> Path:
    """Write an embedding as ``.npy``, ``.safetensors`` (key ``"embedding"``) or ``.json`` so it can be reused."""
    path = Path(path)
    array = validate_embedding(embedding, expected_dim=np.asarray(embedding).reshape(-1).shape[0])
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npy":
        np.save(path, array)
    elif suffix == ".safetensors":
        from safetensors.numpy import save_file

        save_file({"embedding": array}, str(path))
    elif suffix == ".json":
        path.write_text(json.dumps([float(v) for v in array]), encoding="utf-8")
    else:
        raise InputError(f"Cannot save an embedding as {suffix!r}; use .npy, .safetensors or .json.")
    return path


def random_identity(
    generator: np.random.Generator | int | None = None,
    dim: int = EMBED_DIM,
    mean: np.ndarray | None = None,
    cov_factor: np.ndarray | None = None,
) -> np.ndarray:
    """Sample an identity embedding.

    Without ``mean``: a direction uniform on the unit sphere (normalised standard normal) —
    a valid but "average-less" identity. With ``mean`` (``[dim]``) and ``cov_factor``
    (``[dim, k]``, so the covariance is ``F Fᵀ``): a draw from the Gaussian fitted to a
    checkpoint's training embeddings (``fit_identity_gaussian``), projected to the sphere,
    which stays inside the region the model has seen.
    """
    rng = generator if isinstance(generator, np.random.Generator) else np.random.default_rng(generator)
    if mean is None:
        return _unit(rng.standard_normal(dim))
    mean = np.asarray(mean, np.float64).reshape(-1)
    if cov_factor is None:
        raise InputError("random_identity needs cov_factor together with mean (see fit_identity_gaussian).")
    cov_factor = np.asarray(cov_factor, np.float64)
    if cov_factor.shape[0] != mean.shape[0]:
        raise InputError(f"cov_factor has {cov_factor.shape[0]} rows but mean has {mean.shape[0]} values.")
    return _unit(mean + cov_factor @ rng.standard_normal(cov_factor.shape[1]))


def fit_identity_gaussian(embeddings: np.ndarray, rank: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and a low-rank covariance factor ``F`` (``Σ ≈ F Fᵀ``) of ``[N, dim]`` embeddings.

    ``F`` comes from the SVD of the centred data (top ``rank`` components), so a checkpoint
    can ship ``dim × rank`` numbers instead of a full covariance.
    """
    data = np.asarray(embeddings, np.float64)
    if data.ndim != 2 or data.shape[0] < 2:
        raise InputError(
            f"Need at least two embeddings as an [N, dim] array to fit a Gaussian; got shape {data.shape}."
        )
    mean = data.mean(axis=0)
    _, singular, vt = np.linalg.svd(data - mean, full_matrices=False)
    rank = min(rank or len(singular), len(singular))
    factor = (vt[:rank].T * singular[:rank]) / math.sqrt(data.shape[0] - 1)  # [dim, rank]
    return mean.astype(np.float32), factor.astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation between two identities; ``t=0`` gives ``a``, ``t=1`` gives ``b``.

    Walking the great circle keeps every intermediate a unit vector, i.e. a plausible
    identity — the "soft identity" between two people.
    """
    if not 0.0 <= float(t) <= 1.0:
        raise InputError(
            f"Interpolation weight t={t} is outside [0, 1]. Use 0 for the first identity, 1 for the second."
        )
    a = validate_embedding(a, np.asarray(a).reshape(-1).shape[0], name="the first identity")
    b = validate_embedding(b, a.shape[0], name="the second identity")
    if t == 0.0:
        return a
    if t == 1.0:
        return b
    cos = float(np.clip(np.dot(a.astype(np.float64), b), -1.0, 1.0))
    if cos < -0.9999:
        raise InputError(
            "The two identities are opposite vectors, so the path between them is undefined. Pick other identities."
        )
    omega = math.acos(cos)
    if omega < 1e-6:
        return a
    mixed = (math.sin((1 - t) * omega) * a + math.sin(t * omega) * b) / math.sin(omega)
    return _unit(mixed)


def _unit(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, np.float64)
    return (vector / np.linalg.norm(vector)).astype(np.float32)
