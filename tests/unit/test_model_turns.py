"""ModelTurns: ASR calls overlap each other, an embed call never overlaps anything."""

from __future__ import annotations

import asyncio

from ytingest.pipeline.turns import ModelTurns


async def test_asr_calls_overlap_and_embed_runs_alone() -> None:
    turns = ModelTurns()
    running: list[str] = []
    seen: list[tuple[str, ...]] = []
    order: list[str] = []

    async def call(kind: str, delay: float) -> None:
        await asyncio.sleep(delay)
        async with turns.asr() if kind == "asr" else turns.alone():
            running.append(kind)
            order.append(kind)
            seen.append(tuple(sorted(running)))
            await asyncio.sleep(0.02)
            running.remove(kind)

    await asyncio.gather(
        call("asr", 0), call("asr", 0.001), call("embed", 0.005), call("asr", 0.01), call("embed", 0.011)
    )
    assert ("asr", "asr") in seen  # two ASR workers at once
    assert all(s == ("embed",) for s in seen if "embed" in s)  # embed always alone
    # waiting embeds go before the ASR call that asked after them
    assert order == ["asr", "asr", "embed", "embed", "asr"]


async def test_a_cancelled_waiter_does_not_block_the_others() -> None:
    turns = ModelTurns()
    async with turns.asr():
        waiting = asyncio.create_task(turns.alone().__aenter__())
        await asyncio.sleep(0.01)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
    async with asyncio.timeout(1):
        async with turns.asr():
            pass
        async with turns.alone():
            pass
