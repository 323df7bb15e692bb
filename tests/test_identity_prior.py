"""The identity prior (embedding → portrait): a closed-form fit that decodes identity it never saw."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from starcaster.data.heads import sample_head
from starcaster.data.synthtalk import reference_portrait
from starcaster.models.identity_prior import IdentityPrior

SIZE = 32


@pytest.fixture(scope="module")
def heads():
    """Portraits of 560 SynthTalk identities and an ideal 512-D identity code of each.

    The code is a fixed random projection of the head's true parameters (an encoder that
    misses nothing), so what the prior can recover is limited only by the prior itself.
    """
    seeds = range(560)
    portraits = np.stack([reference_portrait(s, size=SIZE, supersample=1) for s in seeds])
    params = np.stack([sample_head(s).vector() for s in seeds])
    projection = np.random.default_rng(0).standard_normal((params.shape[1], 512)).astype(np.float32)
    codes = (params - params.mean(0)) / params.std(0).clip(1e-6) @ projection
    codes /= np.linalg.norm(codes, axis=1, keepdims=True)
    return torch.from_numpy(codes), portraits


def _prior(**overrides) -> IdentityPrior:
    settings = dict(image_size=SIZE, num_features=1024, bandwidth=0.01, num_components=48) | overrides
    return IdentityPrior(**settings).eval()


def _error(prior: IdentityPrior, codes: torch.Tensor, portraits: np.ndarray) -> float:
    guesses = np.stack([prior.portrait(c) for c in codes])
    return float(np.abs(guesses.astype(np.float32) - portraits).mean())


def test_prior_decodes_held_out_identities_far_better_than_the_average_face(heads):
    codes, portraits = heads
    prior = _prior()
    prior.fit(codes[:500], portraits[:500])
    held_out = _error(prior, codes[500:], portraits[500:])
    average_face = float(np.abs(portraits[:500].mean(0) - portraits[500:].astype(np.float32)).mean())
    assert held_out < 0.4 * average_face, (held_out, average_face)
    # and each portrait is closer to its own identity than to the next one's
    own = [np.abs(prior.portrait(c).astype(np.float32) - p).mean() for c, p in zip(codes[500:], portraits[500:])]
    other = [np.abs(prior.portrait(c).astype(np.float32) - p).mean() for c, p in zip(codes[500:], portraits[501:])]
    assert np.mean(np.array(own[:-1]) < np.array(other)) > 0.9


def test_fit_is_chunk_independent_and_round_trips_through_save_pretrained(heads, tmp_path):
    codes, portraits = heads
    whole, chunked = _prior(), _prior()
    whole.fit(codes[:200], portraits[:200], chunk=10_000)
    chunked.fit(codes[:200], portraits[:200], chunk=37)
    torch.testing.assert_close(whole(codes[200:210]), chunked(codes[200:210]), atol=2e-3, rtol=0)
    whole.save_pretrained(tmp_path)
    loaded = IdentityPrior.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(loaded(codes[200:210]), whole(codes[200:210]))  # frequencies re-drawn from the seed


def test_fit_does_not_touch_the_global_rng(heads):
    codes, portraits = heads
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    _prior().fit(codes[:64], portraits[:64])
    assert torch.equal(torch.rand(3), expected)
