"""The simulated-device bench's pure parts: replay keys, CPU attribution and the cost table."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import numpy as np
import pytest

from bench.accelerator import Ledger, blob_key, cost_table, idle_parts, split_native, stage_of


def test_blob_key_is_the_same_for_the_same_chunk_in_other_company() -> None:
    """A chunk's key depends on its own features and place, not on the batch it was stacked in."""
    rng = np.random.default_rng(0)
    a, b = rng.random((80, 3000), dtype=np.float32), rng.random((80, 3000), dtype=np.float32)
    alone, batch = np.stack([a]), np.stack([b, a])
    assert blob_key(alone[0], 30.0, 29.5, "opts") == blob_key(batch[1], 30.0, 29.5, "opts")
    assert blob_key(a, 30.0, 29.5, "opts") != blob_key(b, 30.0, 29.5, "opts")


def test_blob_key_changes_with_place_options_and_shape() -> None:
    """Offset, duration, decoding options and the array's shape are all part of the key."""
    x = np.zeros((80, 3000), dtype=np.float32)
    keys = {
        blob_key(x, 0.0, 30.0, "o"),
        blob_key(x, 30.0, 30.0, "o"),
        blob_key(x, 0.0, 29.0, "o"),
        blob_key(x, 0.0, 30.0, "word_timestamps=True"),
        blob_key(x.reshape(160, 1500), 0.0, 30.0, "o"),
    }
    assert len(keys) == 5


def test_stage_of_maps_thread_names() -> None:
    """Executor prefixes name the stage; Python threads without one are the loop; native are native."""
    assert stage_of("ytingest-asr_0") == "asr"
    assert stage_of("ytingest-speakers_1") == "speakers"
    assert stage_of("ytingest-embed_0") == "embed"
    assert stage_of("MainThread") == "loop"
    assert stage_of("asyncio_3") == "loop"
    assert stage_of("served-in-thread") == "bench"
    assert stage_of(None) == "native"


def test_split_native_is_proportional_to_positive_weights() -> None:
    """Native CPU goes to the stages that worked, in proportion; none worked: nothing is split."""
    assert split_native(3.0, {"embed": 1.0, "speakers": 2.0, "asr": -0.5}) == pytest.approx(
        {"embed": 1.0, "speakers": 2.0}
    )
    assert split_native(3.0, {"embed": 0.0}) == {}


def test_cost_table_per_audio_hour_and_cores() -> None:
    """CPU-s per audio hour, and cores at 300x = that x 300 / 3600."""
    table = cost_table({"decode": 30.0, "embed": 3.0}, audio_s=1800.0)
    assert table["decode"]["cpu_s_per_audio_hour"] == 60.0
    assert table["decode"]["cores_at_300x"] == 5.0
    assert table["embed"]["cores_at_300x"] == 0.5


def test_idle_parts_split_the_wall_around_the_calls() -> None:
    """Idle before the first call, between calls, after the last; no calls: all of it before."""
    parts = idle_parts([(2.0, 4.0), (5.0, 8.0)], wall=10.0)
    assert parts == {"before_first_call_s": 2.0, "between_calls_s": 1.0, "after_last_call_s": 2.0}
    assert idle_parts([], wall=3.0)["before_first_call_s"] == 3.0


def test_ledger_moves_a_calls_cpu_to_another_stage() -> None:
    """CPU spent inside ``moving`` on an ASR thread counts for speakers, not ASR."""
    ledger = Ledger()

    def work() -> None:
        with ledger.moving("speakers"):
            end = time.thread_time() + 0.05
            while time.thread_time() < end:
                pass

    t = threading.Thread(target=work, name="ytingest-asr_0")
    t.start()
    t.join()
    totals: defaultdict[str, float] = defaultdict(float, {"asr": 0.06})
    ledger.apply(totals, {})
    assert totals["speakers"] == pytest.approx(0.05, abs=0.01)
    assert totals["asr"] == pytest.approx(0.01, abs=0.01)


def test_a_wrapped_call_inside_another_takes_its_own_cpu_to_its_own_stage() -> None:
    """Segmentation inside a tagger's call: its CPU counts for segmentation, the rest of the
    tagger's for speakers, none for the thread's own stage."""
    ledger = Ledger()

    def spin(seconds: float) -> None:
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    def work() -> None:
        with ledger.moving("speakers"):
            spin(0.03)
            with ledger.moving("segmentation"):
                spin(0.05)
            spin(0.02)

    t = threading.Thread(target=work, name="ytingest-speakers_0")
    t.start()
    t.join()
    totals: defaultdict[str, float] = defaultdict(float, {"speakers": 0.1})
    ledger.apply(totals, {})
    assert totals["segmentation"] == pytest.approx(0.05, abs=0.01)
    assert totals["speakers"] == pytest.approx(0.05, abs=0.01)  # the thread's 0.1 less segmentation's
