"""Time limits: a loop that never ends is stopped where it runs, limits nest, a swallowed
stop comes back, and cleanup in ``shielded()`` is never cut short."""

from __future__ import annotations

import threading
import time

import pytest

from chimera_nb.labs.limits import TimeLimitError, enforced, shielded, time_limit


def spin(seconds: float = 30.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_a_loop_that_never_ends_is_stopped_with_a_message_that_names_it():
    # Execute
    started = time.monotonic()
    with pytest.raises(TimeLimitError) as raised:
        with time_limit(0.2, "your aggregate()", hint="Look for a loop."):
            spin()
    # Assert
    assert time.monotonic() - started < 2
    assert (
        str(raised.value)
        == "your aggregate() ran longer than 0.2 s and was stopped. Look for a loop."
    )


def test_a_sleep_is_stopped_too():
    # Execute, Assert
    started = time.monotonic()
    with pytest.raises(TimeLimitError):
        with time_limit(0.2, "a sleep"):
            time.sleep(30)
    assert time.monotonic() - started < 2


def test_code_that_ends_in_time_is_left_alone_and_the_timer_is_off_after():
    # Execute
    with time_limit(5, "quick code"):
        value = sum(range(1000))
    time.sleep(0.3)  # no stray alarm comes later
    # Assert
    assert value == 499500


def test_the_inner_limit_names_itself_when_it_expires_first():
    # Execute, Assert
    with time_limit(10, "the fit"):
        with pytest.raises(TimeLimitError, match="the rule"):
            with time_limit(0.2, "the rule"):
                spin()
        spin(0.3)  # the outer limit still has time: nothing fires


def test_the_outer_limit_fires_inside_an_inner_block_with_more_time():
    # Execute, Assert
    with pytest.raises(TimeLimitError, match="the fit"):
        with time_limit(0.2, "the fit"):
            with time_limit(10, "the rule"):
                spin()


def test_code_that_swallows_the_error_gets_it_again_until_its_block_ends():
    # Prepare
    caught = 0
    # Execute
    with pytest.raises(TimeLimitError):
        with time_limit(0.2, "a stubborn loop"):
            while True:
                try:
                    spin()
                except TimeLimitError:
                    caught += 1
                    if caught == 3:
                        raise
    # Assert
    assert caught == 3


def test_shielded_cleanup_finishes_and_the_error_comes_right_after():
    # Prepare
    finished = []
    # Execute
    with pytest.raises(TimeLimitError):
        with time_limit(0.1, "a fit"):
            with shielded():
                time.sleep(0.4)  # past the limit, but shielded
                finished.append(True)
            spin()
    # Assert
    assert finished == [True]


def test_off_the_main_thread_limits_are_not_enforced_and_code_simply_runs():
    # Prepare
    outcome = []

    def in_a_thread() -> None:
        outcome.append(enforced())
        with time_limit(0.01, "in a thread"):
            time.sleep(0.1)
        outcome.append("ran")

    # Execute
    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    # Assert
    assert outcome == [False, "ran"]


def test_an_alarm_set_before_is_kept_and_restored_after():
    # Prepare
    import signal

    rang = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: rang.append(signum))
    previous_timer = signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        # Execute
        with time_limit(5, "a short block"):
            time.sleep(0.1)
        time.sleep(0.6)
        # Assert
        assert rang == [signal.SIGALRM]
    finally:
        signal.signal(signal.SIGALRM, previous)
        signal.setitimer(signal.ITIMER_REAL, *previous_timer)
