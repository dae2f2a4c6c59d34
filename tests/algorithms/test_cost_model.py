"""Tests for chimera_nb.algorithms.cost_model: the alpha-beta formulas against numbers worked
out by hand, and the ledger against spans written by hand (tests/masters/test_cost_ledger.py
reads a real fit's)."""

from __future__ import annotations

import math

import pytest

from chimera_nb.algorithms import (
    AlphaBeta,
    ledger,
    ring_round,
    round_seconds,
    sharded_round,
    star_round,
)
from chimera_nb.spans import Span

# 1 ms per message, 1 microsecond per byte (8 Mbit/s): easy to do by hand
NETWORK = AlphaBeta(alpha=1e-3, beta=1e-6)


def test_emulated_network_latency_is_a_round_trip_and_bandwidth_in_megabits() -> None:
    # Execute
    network = AlphaBeta.emulated(latency_ms=10.0, bandwidth_mbps=100.0)

    # Assert: 5 ms each way; 100 Mbit/s = 12.5 MB/s = 80 ns a byte
    assert network.alpha == pytest.approx(5e-3)
    assert network.beta == pytest.approx(80e-9)


def test_star_round_queues_n_messages_on_the_servers_link() -> None:
    # Execute: N = 4, d = 1000: 8000 bytes a message, 32,000 each way at the server
    cost = star_round(4, 1000, NETWORK)

    # Assert: 2 ms + 2 * 32,000 us = 66 ms
    assert cost.seconds == pytest.approx(0.066)
    assert (cost.server_bytes_sent, cost.server_bytes_received) == (32_000, 32_000)
    assert (cost.worker_bytes_sent, cost.worker_bytes_received) == (8_000, 8_000)


def test_star_round_with_calls_delayed_on_their_own_does_not_grow_with_n() -> None:
    # Execute
    costs = [star_round(n, 1000, NETWORK, queued=False).seconds for n in (2, 4, 8)]

    # Assert: 2 ms + 2 * 8,000 us = 18 ms, whatever N
    assert costs == pytest.approx([0.018] * 3)


def test_sharded_round_divides_the_servers_bytes_by_the_shards() -> None:
    # Execute: N = 4, d = 1000, S = 2
    cost = sharded_round(4, 1000, 2, NETWORK)

    # Assert: 16,000 bytes each way per shard; 2 ms + 2 * 16,000 us = 34 ms
    assert cost.server_bytes_sent == cost.server_bytes_received == 16_000
    assert cost.worker_bytes_sent == 8_000
    assert cost.seconds == pytest.approx(0.034)
    # S = N: the worker's own link sets the pace (18 ms); S = 1 is the star
    assert sharded_round(4, 1000, 4, NETWORK).seconds == pytest.approx(0.018)
    assert sharded_round(4, 1000, 1, NETWORK).seconds == pytest.approx(
        star_round(4, 1000, NETWORK).seconds
    )


def test_sharded_round_of_the_kits_calls_is_five_round_trips_and_two_slices() -> None:
    # Execute: N = 4, d = 1000, S = 2: slices of 500 values, 4,000 bytes
    cost = sharded_round(4, 1000, 2, NETWORK, queued=False)

    # Assert: step, pull, push, propose, commit: 5 * 2 ms + 2 * 4,000 us = 18 ms
    assert cost.seconds == pytest.approx(0.018)
    assert cost.server_bytes_received == 16_000


def test_sharded_round_follows_the_busiest_shard() -> None:
    # Execute: the hash ring put 600 of the 1000 parameters on one of the 2 shards
    kit = sharded_round(4, 1000, 2, NETWORK, queued=False, largest_shard=600)
    queued = sharded_round(4, 1000, 2, NETWORK, largest_shard=600)

    # Assert: 4,800 bytes a slice; that shard gets 4 of them
    assert kit.server_bytes_received == kit.server_bytes_sent == 19_200
    assert kit.worker_bytes_sent == 8_000
    assert kit.seconds == pytest.approx(0.010 + 2 * 0.0048)  # 19.6 ms
    # its link carries 19,200 bytes each way: 2 ms + 2 * 19,200 us = 40.4 ms
    assert queued.seconds == pytest.approx(0.0404)


@pytest.mark.parametrize("n_workers", [2, 4, 8])
def test_ring_round_sends_two_n_minus_one_chunks_per_worker(n_workers) -> None:
    # Execute: d = 1000
    cost = ring_round(n_workers, 1000, NETWORK)

    # Assert
    chunk = 8000 / n_workers
    assert cost.worker_bytes_sent == pytest.approx(2 * (n_workers - 1) / n_workers * 8000)
    assert cost.server_bytes_received == 0
    assert cost.seconds == pytest.approx(2 * (n_workers - 1) * (1e-3 + chunk * 1e-6))


def test_ring_round_at_four_workers_by_hand() -> None:
    # 6 steps of (1 ms + 2,000 us) = 18 ms; 6 chunks of 2,000 bytes = 12,000 bytes
    cost = ring_round(4, 1000, NETWORK)
    assert cost.seconds == pytest.approx(0.018)
    assert cost.worker_bytes_received == pytest.approx(12_000)


def test_ring_round_of_the_kits_calls_counts_round_trips_and_the_sample_count() -> None:
    # Execute: N = 4, d = 999: the kit reduces 1000 values, chunks of 250 (2,000 bytes)
    cost = ring_round(4, 999, NETWORK, queued=False)

    # Assert: the master's call (2 ms) around 6 steps of (2 ms + 2,000 us) = 26 ms
    assert cost.seconds == pytest.approx(0.026)
    assert cost.worker_bytes_sent == cost.worker_bytes_received == pytest.approx(12_000)
    assert cost.server_bytes_received == 0


def test_ring_round_of_the_kits_calls_at_two_workers_by_hand() -> None:
    # N = 2, d = 999: chunks of 500 values (4,000 bytes); 2 ms + 2 * (2 ms + 4,000 us) = 14 ms
    cost = ring_round(2, 999, NETWORK, queued=False)
    assert cost.seconds == pytest.approx(0.014)
    assert cost.worker_bytes_sent == pytest.approx(8_000)
    # the textbook's one-way steps: 2 * (1 ms + 3,996 us), 7,992 bytes
    assert ring_round(2, 999, NETWORK).seconds == pytest.approx(0.009992)


def spans_of_two_star_rounds() -> list[Span]:
    """Two workers, two rounds; 80 bytes of weights out, 80 of gradients back per call."""
    spans = []
    for round_number in (1, 2):
        for index, worker in enumerate(["w1", "w2"]):
            start = 10.0 * round_number + index
            spans.append(
                Span(
                    worker,
                    "/fit-step",
                    start,
                    start + 2.5,
                    "200",
                    round_number,
                    bytes_sent=80,
                    bytes_received=80,
                )
            )
    spans.append(Span("w1", "/statistics", 0.0, 1.0, "200", None, bytes_sent=0, bytes_received=999))
    return spans


def test_ledger_sums_each_nodes_bytes_per_round_beside_the_prediction() -> None:
    # Execute
    table = ledger(spans_of_two_star_rounds(), star_round(2, 10, NETWORK)).set_index("node")

    # Assert: the statistics call is outside the rounds and not counted
    assert table.loc["master", "received_per_round"] == 160
    assert table.loc["master", "sent_per_round"] == 160
    assert table.loc["w1", "received_per_round"] == 80
    assert table.loc["master", "predicted_received"] == 160
    assert table.loc["w2", "predicted_sent"] == 80
    assert (table["sent_ratio"] == 1.0).all() and (table["received_ratio"] == 1.0).all()
    assert table.attrs["n_rounds"] == 2


def test_ledger_credits_a_workers_call_to_its_peer() -> None:
    # Prepare: w1 sends a 500-byte chunk to w2 (a ring step), no master in the round
    spans = [
        Span("w2", "/ring/step", 0.0, 1.0, "200", 1, bytes_sent=500, bytes_received=4, peer="w1")
    ]

    # Execute
    table = ledger(spans, ring_round(2, 10, NETWORK)).set_index("node")

    # Assert
    assert table.loc["w1", "sent_per_round"] == 500
    assert table.loc["w2", "received_per_round"] == 500
    assert table.loc["w2", "sent_per_round"] == 4
    assert "master" not in table.index


def test_round_seconds_spans_from_the_first_start_to_the_last_end() -> None:
    # Execute
    seconds = round_seconds(spans_of_two_star_rounds())

    # Assert: round 1 from 10.0 to 13.5, round 2 from 20.0 to 23.5
    assert seconds.to_dict() == {1: pytest.approx(3.5), 2: pytest.approx(3.5)}
    assert not math.isnan(seconds.median())
