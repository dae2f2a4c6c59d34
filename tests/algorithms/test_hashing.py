"""The hash ring places blocks the same way in every process, evenly, and moves few blocks
when a server joins or leaves; parameter blocks cut a model and join it back exactly."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from chimera_nb.algorithms import BIAS_BLOCK, HashRing, ParameterBlocks

FOUR = ["shard1", "shard2", "shard3", "shard4"]
BLOCKS = [f"w{index}" for index in range(4000)]


def test_placement_is_the_same_in_another_process():
    # Prepare: another interpreter, with another hash() salt
    code = (
        "import json; from chimera_nb.algorithms import HashRing;"
        f"print(json.dumps(HashRing({FOUR!r}).placement([f'w{{i}}' for i in range(200)])))"
    )
    # Execute
    answer = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PYTHONPATH": ":".join(sys.path)},
    )
    # Assert
    expected = HashRing(FOUR).placement([f"w{i}" for i in range(200)])
    assert json.loads(answer.stdout) == expected
    assert len(set(expected.values())) == 4


def test_64_virtual_nodes_give_each_of_four_servers_about_a_quarter():
    # Prepare
    ring = HashRing(FOUR, virtual_nodes=64, blocks=BLOCKS)
    # Execute
    shares = Counter(ring.placement().values())
    # Assert
    fractions = {server: count / len(BLOCKS) for server, count in shares.items()}
    assert set(fractions) == set(FOUR)
    assert all(0.25 - 0.07 <= fraction <= 0.25 + 0.07 for fraction in fractions.values()), fractions


def test_adding_a_fifth_server_moves_about_a_fifth_of_the_blocks_all_to_it():
    # Prepare
    ring = HashRing(FOUR, blocks=BLOCKS)
    before = ring.placement()
    # Execute
    moves = ring.add("shard5")
    # Assert
    after = ring.placement()
    changed = [block for block in BLOCKS if before[block] != after[block]]
    assert 0.10 <= len(moves) / len(BLOCKS) <= 0.30
    assert sorted(move.block for move in moves) == sorted(changed)
    assert all(move.target == "shard5" and move.source == before[move.block] for move in moves)
    assert all(after[block] == "shard5" for block in changed)


def test_removing_a_server_moves_only_its_blocks():
    # Prepare
    ring = HashRing([*FOUR, "shard5"], blocks=BLOCKS)
    before = ring.placement()
    # Execute
    moves = ring.remove("shard3")
    # Assert
    owned = sorted(block for block, server in before.items() if server == "shard3")
    assert sorted(move.block for move in moves) == owned
    assert all(move.source == "shard3" and move.target != "shard3" for move in moves)
    assert "shard3" not in ring.placement().values()


def test_adding_then_removing_a_server_restores_the_placement():
    # Prepare
    ring = HashRing(FOUR, blocks=BLOCKS)
    before = ring.placement()
    # Execute
    ring.add("shard5")
    ring.remove("shard5")
    # Assert
    assert ring.placement() == before


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: HashRing([]).owner("w0"), "no servers"),
        (lambda: HashRing(["a", "a"]), "already"),
        (lambda: HashRing(["a"]).remove("b"), "not on the ring"),
        (lambda: HashRing(["a"]).remove("a"), "last server"),
        (lambda: HashRing(["a"], virtual_nodes=0), "virtual_nodes"),
        (lambda: ParameterBlocks(1, 3, 4), "n_blocks"),
    ],
)
def test_misuse_is_refused_with_a_message_saying_what(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_blocks_split_a_softmax_model_and_join_it_back_exactly():
    # Prepare
    rng = np.random.default_rng(0)
    weights, bias = rng.normal(size=(3, 11)), rng.normal(size=3)
    layout = ParameterBlocks(n_outputs=3, n_features=11, n_blocks=4)
    # Execute
    blocks = layout.split(weights, bias)
    joined_weights, joined_bias = layout.join(blocks)
    # Assert
    assert list(blocks) == ["w0", "w1", "w2", "w3", BIAS_BLOCK]
    assert sum(block.size for block in blocks.values()) == weights.size + bias.size
    np.testing.assert_array_equal(joined_weights, weights)
    np.testing.assert_array_equal(joined_bias, bias)
    np.testing.assert_array_equal(blocks["w1"], weights[:, 3:6].ravel())
