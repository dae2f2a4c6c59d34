"""Tests for the non-IID splits of chimera_nb.algorithms.sharding: Dirichlet label skew,
by-label (pathological) shards and quantity skew."""

from __future__ import annotations

import numpy as np
import pytest

from chimera_nb.algorithms.sharding import dirichlet_shards, label_shards, quantity_skew, split

N_CLASSES = 10
LABELS = np.repeat(np.arange(N_CLASSES), 60)  # 600 rows, 60 per class
np.random.default_rng(0).shuffle(LABELS)


def _mean_label_entropy(shards: list[np.ndarray]) -> float:
    """The mean, over shards, of the entropy of the shard's labels, in units of log(n_classes):
    1 is a uniform mix of all classes (IID), 0 one class per shard."""
    entropies = []
    for shard in shards:
        counts = np.bincount(LABELS[shard], minlength=N_CLASSES)
        p = counts[counts > 0] / counts.sum()
        entropies.append(-(p * np.log(p)).sum() / np.log(N_CLASSES))
    return float(np.mean(entropies))


SPLITS = {
    "dirichlet": lambda seed: dirichlet_shards(LABELS, 5, 0.1, random_state=seed),
    "by label": lambda seed: label_shards(LABELS, 5, 2, random_state=seed),
    "quantity alpha": lambda seed: quantity_skew(len(LABELS), 5, 0.5, random_state=seed),
    "quantity ratios": lambda seed: quantity_skew(
        len(LABELS), 3, ratios=[0.7, 0.2, 0.1], random_state=seed
    ),
}


@pytest.mark.parametrize("name", SPLITS)
def test_every_row_lands_in_exactly_one_nonempty_shard(name: str) -> None:
    # Prepare
    expected = np.arange(len(LABELS))

    # Execute
    shards = SPLITS[name](3)

    # Assert
    np.testing.assert_array_equal(np.sort(np.concatenate(shards)), expected)
    assert all(len(shard) > 0 for shard in shards)


@pytest.mark.parametrize("name", SPLITS)
def test_the_same_seed_gives_the_same_shards_and_another_seed_others(name: str) -> None:
    # Execute
    first, again, other = SPLITS[name](7), SPLITS[name](7), SPLITS[name](8)

    # Assert
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_a_small_alpha_skews_the_labels_and_a_large_one_is_nearly_iid() -> None:
    # Execute: the mean label entropy over 5 seeded splits, for each alpha
    entropy = {
        alpha: np.mean(
            [_mean_label_entropy(dirichlet_shards(LABELS, 5, alpha, seed)) for seed in range(5)]
        )
        for alpha in (0.1, 1.0, 1000.0)
    }

    # Assert
    assert entropy[0.1] < 0.65 < entropy[1.0] < 0.95 < entropy[1000.0]


def test_a_large_alpha_gives_each_shard_about_a_fifth_of_each_class() -> None:
    # Execute
    shards = dirichlet_shards(LABELS, 5, 1000.0, random_state=1)
    counts = np.array([np.bincount(LABELS[shard], minlength=N_CLASSES) for shard in shards])

    # Assert: 60 rows per class, 12 per shard expected
    assert np.abs(counts - 12).max() <= 4


@pytest.mark.parametrize("labels_per_worker", [1, 2, 3])
def test_label_shards_give_each_worker_exactly_k_labels(labels_per_worker: int) -> None:
    # Execute
    shards = label_shards(LABELS, 10, labels_per_worker, random_state=0)

    # Assert
    assert [len(np.unique(LABELS[shard])) for shard in shards] == [labels_per_worker] * 10


def test_label_shards_refuse_too_few_labels_to_cover_every_class() -> None:
    with pytest.raises(ValueError, match="labels_per_worker to at least 3"):
        label_shards(LABELS, 4, 2)


def test_quantity_skew_with_ratios_gives_those_sizes_of_random_rows() -> None:
    # Execute
    shards = quantity_skew(100, 3, ratios=[0.5, 0.3, 0.2], random_state=0)

    # Assert
    assert [len(shard) for shard in shards] == [50, 30, 20]
    assert not np.array_equal(shards[0], np.arange(50))  # not a contiguous block


def test_quantity_skew_with_a_small_alpha_gives_unequal_sizes() -> None:
    # Execute
    sizes = [len(shard) for shard in quantity_skew(600, 5, 0.2, random_state=0)]

    # Assert
    assert max(sizes) > 3 * min(sizes)


def test_quantity_skew_needs_exactly_one_of_alpha_and_ratios() -> None:
    with pytest.raises(ValueError, match="exactly one of alpha and ratios"):
        quantity_skew(10, 2)


def test_split_deals_x_and_y_by_dirichlet_and_says_what_is_missing() -> None:
    # Prepare
    X = np.arange(len(LABELS) * 2.0).reshape(-1, 2)

    # Execute
    pairs = split(X, LABELS, 4, "dirichlet", alpha=0.5, random_state=0)

    # Assert
    for X_k, y_k in pairs:
        np.testing.assert_array_equal(LABELS[(X_k[:, 0] / 2).astype(int)], y_k)
    with pytest.raises(ValueError, match="needs alpha"):
        split(X, LABELS, 4, "dirichlet")
    with pytest.raises(ValueError, match="needs labels_per_worker"):
        split(X, LABELS, 4, "by_label")
