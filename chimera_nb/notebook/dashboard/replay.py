"""Slow motion: one round's steps and calls, replayed at human speed in the browser.

In slow motion the master holds each round's broadcast (``master.pacer``), but the round
itself still takes milliseconds: D to K would flash by. So the dashboard replays the round
that just ended: every step of the flowchart gets an equal share of the replay, and the calls
light up inside that frame at their true order and proportion (sends with the broadcast,
replies during the wait, the straggler last). The browser plays the frames by itself; the
kernel sends one small message per round.

The hold happens after the broadcast step was announced (the pacer holds the calls, not the
announcement), so steps announced before the first call are moved up to it: the replay shows
the round, not the hold.
"""

from __future__ import annotations

from bisect import bisect_right

from ...plots import TimelineRound

__all__ = ["replay_frames"]


def replay_frames(
    steps: list[tuple[str, float]], calls: TimelineRound | None, duration_ms: float
) -> list[list]:
    """Frames ``[at_ms, kind, what]`` of one round, ``kind`` being ``"step"`` (``what`` a
    letter), ``"send"``, ``"reply"`` or ``"fail"`` (``what`` a worker), in time order.

    ``steps`` are the round's (letter, time) in the order the master announced them;
    ``calls`` the round's calls (:func:`chimera_nb.plots.timeline_rounds`).
    """
    if not steps:
        return []
    first_send = calls.started if calls is not None and calls.calls else steps[0][1]
    times = [max(t, first_send) for _, t in steps]  # the hold left out
    slot = duration_ms / len(steps)

    def shown_at(moment: float) -> float:
        """The replay's clock for a moment of the round: within the step it fell in."""
        i = max(bisect_right(times, moment) - 1, 0)
        following = times[i + 1] if i + 1 < len(times) else None
        share = (
            (moment - times[i]) / (following - times[i])
            if following and following > times[i]
            else 0
        )
        return round(slot * (i + min(share, 1.0)), 1)

    frames: list[list] = [
        [round(i * slot, 1), "step", letter] for i, (letter, _) in enumerate(steps)
    ]
    for call in calls.calls if calls is not None else ():
        frames.append([shown_at(first_send + call.start_ms / 1e3), "send", call.worker])
        ended = first_send + call.end_ms / 1e3
        frames.append([shown_at(ended), "reply" if call.ok else "fail", call.worker])
    return sorted(frames, key=lambda frame: frame[0])
