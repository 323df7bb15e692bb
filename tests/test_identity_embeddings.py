"""Identity embeddings as inputs: every file format, every validation, sampling and slerp."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from starcaster.errors import InputError
from starcaster.identity import fit_identity_gaussian, load_embedding, random_identity, save_embedding, slerp


@pytest.fixture
def embedding() -> np.ndarray:
    return random_identity(0)


@pytest.mark.parametrize("suffix", [".npy", ".safetensors", ".json"])
def test_save_load_round_trip(tmp_path, embedding, suffix):
    path = save_embedding(embedding, tmp_path / f"id{suffix}")
    loaded = load_embedding(path)
    assert loaded.dtype == np.float32 and loaded.shape == (512,)
    np.testing.assert_allclose(loaded, embedding, atol=1e-6)


def test_torch_tensor_file(tmp_path, embedding):
    torch.save(torch.from_numpy(embedding * 3.0)[None], tmp_path / "id.pt")  # [1, 512], unnormalised
    loaded = load_embedding(tmp_path / "id.pt")
    np.testing.assert_allclose(loaded, embedding, atol=1e-6)


def test_json_object_with_embedding_key(tmp_path, embedding):
    (tmp_path / "id.json").write_text(json.dumps({"embedding": embedding.tolist(), "encoder": "builtin"}))
    np.testing.assert_allclose(load_embedding(tmp_path / "id.json"), embedding, atol=1e-6)


def test_arrays_and_lists_normalised(embedding):
    np.testing.assert_allclose(load_embedding((embedding * 7).astype(np.float16)), embedding, atol=2e-3)
    assert np.isclose(np.linalg.norm(load_embedding(list(range(1, 513)))), 1.0)


# --- bad embeddings: one test each -----------------------------------------------------------


class _Payload:
    """Unpickling this would call print: stands in for arbitrary code in a malicious .pt."""

    def __reduce__(self):
        return (print, ("unsafe code ran",))


def test_pickle_of_objects_refused(tmp_path, capsys):
    torch.save({"embedding": torch.ones(512), "payload": _Payload()}, tmp_path / "evil.pt")
    with pytest.raises(InputError, match="refused for safety.*Save just the tensor"):
        load_embedding(tmp_path / "evil.pt")
    assert "unsafe code ran" not in capsys.readouterr().out


def test_pt_dict_of_tensors_refused(tmp_path):
    torch.save({"embedding": torch.ones(512)}, tmp_path / "dict.pt")
    with pytest.raises(InputError, match="holds a dict, not a tensor.*Save just the tensor"):
        load_embedding(tmp_path / "dict.pt")


def test_npy_object_array_refused(tmp_path):
    with open(tmp_path / "obj.npy", "wb") as handle:
        np.save(handle, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="pickled Python objects.*numpy.save"):
        load_embedding(tmp_path / "obj.npy")


def test_wrong_size(embedding):
    with pytest.raises(InputError, match="has 256 values.*uses 512.*same encoder"):
        load_embedding(embedding[:256])


def test_two_dimensional_batch_refused(embedding):
    with pytest.raises(InputError, match=r"shape \(2, 512\).*one identity at a time"):
        load_embedding(np.stack([embedding, embedding]))


def test_nan_embedding(embedding):
    bad = embedding.copy()
    bad[3] = np.nan
    with pytest.raises(InputError, match="NaN or infinite.*Re-extract"):
        load_embedding(bad)


def test_zero_embedding():
    with pytest.raises(InputError, match="zero vector.*random identity"):
        load_embedding(np.zeros(512, np.float32))


def test_wrong_dtype():
    with pytest.raises(InputError, match="dtype .* not numbers"):
        load_embedding(np.array(["x"] * 512))
    with pytest.raises(InputError, match="dtype bool"):
        load_embedding(np.ones(512, bool))


def test_safetensors_with_two_tensors(tmp_path, embedding):
    save_file({"a": embedding, "b": embedding}, str(tmp_path / "two.safetensors"))
    with pytest.raises(InputError, match="2 tensors.*exactly one"):
        load_embedding(tmp_path / "two.safetensors")


def test_json_not_a_list(tmp_path):
    (tmp_path / "id.json").write_text('"hello"')
    with pytest.raises(InputError, match="expected a list of numbers"):
        load_embedding(tmp_path / "id.json")


def test_corrupt_file(tmp_path):
    (tmp_path / "id.npy").write_bytes(pickle.dumps("garbage")[:5])
    with pytest.raises(InputError, match="not a NumPy .npy file.*Re-save"):
        load_embedding(tmp_path / "id.npy")
    (tmp_path / "id.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(InputError, match="Could not read the embedding.*Re-save"):
        load_embedding(tmp_path / "id.safetensors")


def test_unsupported_suffix_and_missing(tmp_path):
    (tmp_path / "id.txt").write_text("1 2 3")
    with pytest.raises(InputError, match="Unsupported embedding file type '.txt'"):
        load_embedding(tmp_path / "id.txt")
    with pytest.raises(InputError, match="not found"):
        load_embedding(tmp_path / "none.npy")


# --- sampling and interpolation ------------------------------------------------------------------


def test_random_identity_seeded_unit(embedding):
    assert np.isclose(np.linalg.norm(embedding), 1.0)
    np.testing.assert_array_equal(random_identity(0), embedding)
    assert not np.allclose(random_identity(1), embedding)
    assert random_identity(np.random.default_rng(3), dim=64).shape == (64,)


def test_random_identity_from_fitted_gaussian():
    rng = np.random.default_rng(0)
    centre = random_identity(5)
    training = np.stack([centre + 0.05 * rng.standard_normal(512) for _ in range(50)])
    mean, factor = fit_identity_gaussian(training, rank=16)
    assert factor.shape == (512, 16)
    sample = random_identity(1, mean=mean, cov_factor=factor)
    assert np.isclose(np.linalg.norm(sample), 1.0) and float(sample @ centre) > 0.5  # stays near the data
    with pytest.raises(InputError, match="cov_factor"):
        random_identity(0, mean=mean)


def test_slerp_endpoints_and_path():
    a, b = random_identity(0), random_identity(1)
    np.testing.assert_array_equal(slerp(a, b, 0.0), a)
    np.testing.assert_array_equal(slerp(a, b, 1.0), b)
    middle = slerp(a, b, 0.5)
    assert np.isclose(np.linalg.norm(middle), 1.0)
    assert np.isclose(middle @ a, middle @ b, atol=1e-5)


def test_slerp_t_out_of_range():
    with pytest.raises(InputError, match=r"outside \[0, 1\]. Use 0 for the first"):
        slerp(random_identity(0), random_identity(1), 1.5)


def test_slerp_opposite_identities():
    a = random_identity(0)
    with pytest.raises(InputError, match="opposite.*Pick other"):
        slerp(a, -a, 0.5)
