"""Tests for chimera_nb.algorithms.compression: top-k with error feedback and QSGD, checked
against their definitions."""

from __future__ import annotations

import numpy as np
import pytest

from chimera_nb.algorithms import QSGD, EncoderState, TopK


def gradients(n_rounds: int, size: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=size) * rng.uniform(0.1, 10.0, size=size) for _ in range(n_rounds)]


# --- TopK -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ratio", "size", "k"), [(0.01, 12, 1), (0.1, 100, 10), (0.25, 10, 3)])
def test_top_k_keeps_exactly_ceil_ratio_times_size_coordinates(ratio, size, k) -> None:
    # Prepare
    vector = gradients(1, size)[0]

    # Execute
    sent = TopK(ratio, error_feedback=False).encode(vector, EncoderState())

    # Assert
    assert len(sent.indices) == len(set(sent.indices.tolist())) == k
    assert sent.size == size


def test_top_k_sends_the_largest_magnitudes_with_their_values() -> None:
    # Prepare
    vector = np.array([0.5, -7.0, 3.0, 0.1, -2.0, 6.0])

    # Execute
    sent = TopK(0.5, error_feedback=False).encode(vector, EncoderState())

    # Assert: |-7|, |6|, |3|, in index order
    assert sent.indices.tolist() == [1, 2, 5]
    assert sent.values.tolist() == [-7.0, 3.0, 6.0]
    assert TopK(0.5).decode(sent).tolist() == [0.0, -7.0, 3.0, 0.0, 0.0, 6.0]


def test_without_error_feedback_the_state_is_untouched() -> None:
    # Prepare
    state = EncoderState()

    # Execute
    TopK(0.2, error_feedback=False).encode(gradients(1, 20)[0], state)

    # Assert
    assert state.residual is None


def test_error_feedback_sends_plus_keeps_exactly_what_it_owes_each_round() -> None:
    # Prepare
    encoder, state = TopK(0.1), EncoderState()
    owed = np.zeros(50)

    for gradient in gradients(30, 50):
        # Execute
        owed = owed + gradient  # what the worker must eventually send: gradient + old residual
        sent = encoder.decode(encoder.encode(gradient, state))

        # Assert: bit for bit, sent + residual = gradient + previous residual
        assert np.array_equal(sent + state.residual, owed)
        owed = state.residual


def test_error_feedback_cumulative_sent_plus_residual_is_the_cumulative_gradient() -> None:
    # Prepare: integer-valued gradients, so that every sum is exact in float64
    rng = np.random.default_rng(1)
    encoder, state = TopK(0.05), EncoderState()
    total_sent, total_gradient = np.zeros(40), np.zeros(40)

    # Execute
    for _ in range(100):
        gradient = rng.integers(-1000, 1000, size=40).astype(float)
        total_gradient += gradient
        total_sent += encoder.decode(encoder.encode(gradient, state))

    # Assert
    assert np.array_equal(total_sent + state.residual, total_gradient)


def test_error_feedback_eventually_sends_a_coordinate_that_is_never_the_largest() -> None:
    # Prepare: coordinate 1 is always 100 times smaller than coordinate 0
    gradient = np.array([1.0, 0.01])
    with_memory, without = EncoderState(), EncoderState()

    # Execute
    sent = [TopK(0.5).encode(gradient, with_memory).indices[0] for _ in range(200)]
    forgotten = [TopK(0.5, False).encode(gradient, without).indices[0] for _ in range(200)]

    # Assert
    assert 1 in sent
    assert 1 not in forgotten


@pytest.mark.parametrize("ratio", [0.0, -0.1, 1.5])
def test_top_k_refuses_a_ratio_outside_zero_one(ratio) -> None:
    with pytest.raises(ValueError, match="ratio must be in"):
        TopK(ratio)


# --- QSGD -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [8, 4])
def test_qsgd_levels_are_integers_from_zero_to_two_to_the_bits_minus_one(bits) -> None:
    # Prepare
    vector = gradients(1, 1000)[0]
    rng = np.random.default_rng(0)

    # Execute
    quantized = QSGD(bits).encode(vector, EncoderState(), rng)

    # Assert
    assert quantized.n_levels == 2**bits - 1
    assert quantized.levels.min() >= 0 and quantized.levels.max() <= 2**bits - 1
    assert quantized.norm == pytest.approx(np.linalg.norm(vector))
    assert np.array_equal(quantized.negative, vector < 0)


@pytest.mark.parametrize("bits", [8, 4])
def test_qsgd_decodes_each_coordinate_to_one_of_the_two_levels_around_it(bits) -> None:
    # Prepare
    vector = gradients(1, 200)[0]
    s, norm = 2**bits - 1, np.linalg.norm(vector)

    # Execute
    decoded = QSGD(bits).decode(QSGD(bits).encode(vector, EncoderState(), np.random.default_rng(3)))

    # Assert: |decoded| is floor or ceil of s |v| / ||v||, in units of ||v|| / s
    scaled = np.abs(vector) / norm * s
    levels = np.round(np.abs(decoded) / norm * s)
    assert np.all((levels == np.floor(scaled)) | (levels == np.ceil(scaled)))


@pytest.mark.parametrize("bits", [8, 4])
def test_qsgd_is_unbiased_over_many_seeded_draws(bits) -> None:
    # Prepare
    vector = np.array([3.0, -1.0, 0.2, 0.0, -0.05, 2.5])
    encoder, rng = QSGD(bits), np.random.default_rng(42)
    n_draws = 20_000

    # Execute
    mean = sum(encoder.decode(encoder.encode(vector, EncoderState(), rng)) for _ in range(n_draws))
    mean = mean / n_draws

    # Assert: within 5 standard errors of a level's width (norm / s, the largest spread)
    tolerance = 5 * (np.linalg.norm(vector) / encoder.n_levels) / np.sqrt(n_draws)
    assert np.max(np.abs(mean - vector)) < tolerance


def test_qsgd_with_the_same_seed_gives_the_same_levels() -> None:
    # Prepare
    vector = gradients(1, 100)[0]

    # Execute
    first = QSGD(4).encode(vector, EncoderState(), np.random.default_rng(7))
    second = QSGD(4).encode(vector, EncoderState(), np.random.default_rng(7))

    # Assert
    assert np.array_equal(first.levels, second.levels)


def test_qsgd_of_a_zero_vector_is_zero() -> None:
    # Execute
    quantized = QSGD().encode(np.zeros(5), EncoderState(), np.random.default_rng(0))

    # Assert
    assert quantized.norm == 0.0
    assert QSGD().decode(quantized).tolist() == [0.0] * 5


def test_qsgd_refuses_other_bit_widths() -> None:
    with pytest.raises(ValueError, match="bits must be 8 or 4"):
        QSGD(2)
