"""How many videos a cluster worker claims (``ClaimRoom``): what its model works on plus what it
can start soon, adapted to what the model needs, never above WORKER_CLAIMS."""

from __future__ import annotations

from ytingest.workers.room import COOLDOWN, ClaimRoom, PipelineView


def view(
    taken: int,
    started: int = 0,
    *,
    idle: bool = False,
    worked: bool = True,
    waiting: bool = False,
    decoding: bool = False,
    ahead_most: int = 16,
) -> PipelineView:
    return PipelineView(taken, started, idle, worked, waiting, decoding or waiting, ahead_most)


def test_a_fresh_worker_claims_one_then_one_more_once_the_first_is_in_the_model() -> None:
    """Not a fixed 8: one on its way at a time, and another as soon as the model has the first."""
    room = ClaimRoom(most=8)
    assert room.has_room(view(0, worked=False))
    assert not room.has_room(view(1, 0, worked=False))  # downloading: nothing more yet
    assert room.has_room(view(1, 1))  # in the model: the next may download now
    assert not room.has_room(view(2, 1))


def test_a_long_video_in_the_model_keeps_the_worker_at_two_claims() -> None:
    """Hours of one video in the model, the next downloaded and waiting for the decoder: the
    worker neither claims a third nor grows its budget, however long it lasts."""
    room = ClaimRoom(most=8)
    for _second in range(5400):
        room.observe(view(2, 1, waiting=True))
    assert room.ahead == 1 and not room.has_room(view(2, 1, waiting=True))


def test_a_model_that_runs_dry_between_videos_takes_more_ahead_up_to_downloads_and_decode_queue() -> None:
    """Short videos, slow downloads: each time the model idles while videos are still on their
    way, one more may be ahead (more downloads in flight), up to IO_WORKERS + DECODE_QUEUE_SIZE."""
    room = ClaimRoom(most=64)
    for _ in range(10 * (COOLDOWN + 1)):
        room.observe(view(room.ahead + 1, 1, idle=True, ahead_most=5))
    assert room.ahead == 5
    assert room.has_room(view(5, 1, ahead_most=5)) and not room.has_room(view(6, 1, ahead_most=5))
    for _ in range(COOLDOWN + 1):
        room.observe(view(6, 1, waiting=True, ahead_most=5))  # a file waits: enough on its way
    assert room.ahead == 4


def test_one_slow_download_or_a_video_being_decoded_is_no_ramp() -> None:
    """The model idle for COOLDOWN seconds behind one slow download: one more ahead, not ten; the
    model idle while the next video's first window is decoded (a long video's start): none."""
    room = ClaimRoom(most=64)
    for _ in range(COOLDOWN):
        room.observe(view(room.ahead + 1, 1, idle=True))
    assert room.ahead == 2
    steady = ClaimRoom(most=64)
    for _ in range(100):
        steady.observe(view(2, 1, idle=True, decoding=True))
    assert steady.ahead == 1


def test_an_idle_model_before_its_first_video_does_not_grow_the_budget() -> None:
    """At the start every model waits for its first download: that is no reason to claim more."""
    room = ClaimRoom(most=8)
    for _ in range(30):
        room.observe(view(1, 0, idle=True, worked=False))
    assert room.ahead == 1 and not room.has_room(view(1, 0, worked=False))


def test_worker_claims_stays_the_upper_bound() -> None:
    """WORKER_CLAIMS caps what is held, videos in the model included, whatever the budget ahead."""
    room = ClaimRoom(most=2)
    assert not room.has_room(view(2, 2))
    room.observe(view(2, 1, idle=True))
    assert room.ahead == 1  # no growth at the cap


def test_the_budget_never_drops_below_one_nor_above_what_downloads_allow() -> None:
    room = ClaimRoom(most=8)
    for _ in range(5 * COOLDOWN):
        room.observe(view(1, 0, waiting=True))
    assert room.ahead == 1
    small = ClaimRoom(most=8, ahead=6)
    assert not small.has_room(view(2, 0, ahead_most=2))  # IO_WORKERS shrank: so does the budget
