"""The pipeline commits acks in order, loses nothing, and honours k and buffer changed mid-run."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import pytest

from cpviz.agent.lab import Lab
from cpviz.engine.events import Event, RunResult
from cpviz.engine.model import Model
from cpviz.workloads import pipeline
from cpviz.workloads.registry import Meter, RunContext, WorkloadError, catalogue, find


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(workloads=catalogue()) as running:
        yield running


def _until(lab: Lab, model: Model, run_id: int, ready: Callable[[], bool], what: str) -> None:
    """Feed the model until ``ready()``; fail (not hang) if the run ends first."""
    for _ in range(600):
        model.apply(lab.stream.drain())
        if ready():
            return
        view = model.runs.get(run_id)
        if view is not None and view.result is not None:
            pytest.fail(f"the run ended before {what}")
        threading.Event().wait(0.05)
    pytest.fail(f"gave up waiting for {what}")


def _readings(model: Model, run_id: int, name: str) -> list[float]:
    return [v for _t, v in model.metrics.get(run_id, {}).get(name, ())]


def _result(lab: Lab, model: Model, run_id: int) -> RunResult:
    result = lab.wait(run_id, timeout=60)
    assert result is not None, "the run did not end"
    model.apply(lab.stream.drain())
    return result


def _books_balance(extra: dict[str, Any]) -> None:
    assert extra["acks_in_order"] is True
    assert extra["lost"] == 0
    assert extra["duplicates"] == 0
    accounted = (
        extra["committed"] + extra["pending_acks"] + extra["in_flight"] + extra["unprocessed"]
    )
    assert extra["produced"] == accounted


def test_a_completed_run_commits_every_message_in_order(lab: Lab) -> None:
    model = Model(lab.cores)
    run_id = lab.launch("pipeline", "burst",
                        {"messages": 200, "k": 4, "buffer": 8, "process_ms": 10, "jitter": 0.9})
    result = _result(lab, model, run_id)
    assert result.outcome == "completed"
    extra = dict(result.extra)
    _books_balance(extra)
    assert extra["produced"] == extra["committed"] == 200
    assert extra["pending_acks"] == extra["in_flight"] == extra["unprocessed"] == 0
    # Processing times vary, so some messages finished before an earlier one: they had to
    # wait in 'unacked', and the commit still moved in order.
    assert extra["out_of_order_completions"] > 0
    assert extra["throughput_per_s"] > 0
    depth = _readings(model, run_id, "queue depth")
    assert depth and max(depth) <= 8 and extra["max_queue_depth"] <= 8
    assert set(_readings(model, run_id, "consumers")) <= {0.0, 1.0, 2.0, 3.0, 4.0}
    committed = _readings(model, run_id, "committed")
    assert committed == sorted(committed)


def test_stopping_mid_stream_keeps_a_contiguous_prefix_and_loses_nothing(lab: Lab) -> None:
    model = Model(lab.cores)
    run_id = lab.launch("pipeline", "steady", {"messages": 100_000, "rate": 400, "k": 3,
                                               "buffer": 5, "process_ms": 20})
    _until(lab, model, run_id,
           lambda: max(_readings(model, run_id, "committed"), default=0) >= 10, "10 commits")
    lab.stop_run(run_id)
    result = _result(lab, model, run_id)
    assert result.outcome == "stopped"
    extra = dict(result.extra)
    _books_balance(extra)
    assert 10 <= extra["committed"] < 100_000
    # 400 msg/s offered, 3 × 50 msg/s taken: the buffer was full when the run stopped.
    assert extra["unprocessed"] > 0
    assert "throughput_per_s" not in extra  # no measured wall for a run cut short


def test_raising_and_lowering_k_mid_run_changes_the_consumers(lab: Lab) -> None:
    model = Model(lab.cores)
    run_id = lab.launch("pipeline", "burst",
                        {"messages": 600, "k": 1, "buffer": 4, "process_ms": 10})
    _until(lab, model, run_id,
           lambda: max(_readings(model, run_id, "committed"), default=0) >= 5, "5 commits")
    assert lab.adjust("pipeline", "k", "6") == 6
    _until(lab, model, run_id, lambda: 6.0 in _readings(model, run_id, "consumers"),
           "6 consumers")
    lab.adjust("pipeline", "k", 2)
    _until(lab, model, run_id,
           lambda: _readings(model, run_id, "consumers")[-1:] == [2.0], "2 consumers")
    result = _result(lab, model, run_id)
    assert result.outcome == "completed"
    extra = dict(result.extra)
    _books_balance(extra)
    assert extra["committed"] == 600 and extra["consumers"] == 2
    # One measured throughput point for each stretch of constant k.
    assert [p.x for p in model.sweeps[run_id]] == [1.0, 6.0, 2.0]


def test_changing_the_buffer_mid_run_swaps_the_stream_without_loss(lab: Lab) -> None:
    model = Model(lab.cores)
    run_id = lab.launch("pipeline", "burst",
                        {"messages": 800, "k": 2, "buffer": 2, "process_ms": 5})
    _until(lab, model, run_id,
           lambda: max(_readings(model, run_id, "committed"), default=0) >= 5, "5 commits")
    assert max(_readings(model, run_id, "queue depth")) <= 2
    lab.adjust("pipeline", "buffer", 12)
    # In burst mode the producer fills whatever room there is: depth beyond the old size is
    # the new stream in use.
    _until(lab, model, run_id, lambda: max(_readings(model, run_id, "queue depth")) > 2,
           "a deeper queue")
    assert 12.0 in _readings(model, run_id, "buffer")
    lab.adjust("pipeline", "buffer", 3)
    _until(lab, model, run_id, lambda: _readings(model, run_id, "buffer")[-1:] == [3.0],
           "the smaller buffer")
    result = _result(lab, model, run_id)
    assert result.outcome == "completed"
    extra = dict(result.extra)
    _books_balance(extra)
    assert extra["committed"] == 800
    assert extra["buffer_swaps"] == 2 and extra["buffer"] == 3


class _Services:
    """Just enough of the lab for a RunContext used directly in a test."""

    run_id = 1

    def __init__(self) -> None:
        self.events: list[Event] = []

    def now(self) -> float:
        return 0.0

    def emit(self, event: Event) -> None:
        self.events.append(event)

    async def in_process(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def measure(self) -> AsyncIterator[Meter]:
        yield Meter()

    def process_pool(self, workers: int, method: str) -> Any:
        raise NotImplementedError

    def gauge(self, name: str, fn: Callable[[], float]) -> None:
        pass


def test_resizing_keeps_the_queue_in_order() -> None:
    ctx = RunContext("burst", {}, lambda done, total: None, _Services(), 0)
    pipe = pipeline._Pipe(ctx, pipeline._Books(), k=1, buffer=4)

    async def main() -> list[int]:
        for offset in range(4):
            await pipe.channels[-1].send.send(offset)
        # Growing: the four queued messages move into the new stream at once.
        pipe.want_buffer = 6
        pipe.resize_if_wanted()
        assert [ch.size for ch in pipe.channels] == [6]
        assert pipe.depth() == 4
        pipe.channels[-1].send.send_nowait(4)
        pipe.channels[-1].send.send_nowait(5)
        # Shrinking below what is queued: the old stream keeps its six and is read first.
        pipe.want_buffer = 2
        pipe.resize_if_wanted()
        assert [ch.size for ch in pipe.channels] == [6, 2]
        pipe.channels[-1].send.send_nowait(6)
        pipe.channels[-1].send.send_nowait(7)
        with pytest.raises(anyio.WouldBlock):
            pipe.channels[-1].send.send_nowait(8)  # the new size holds
        pipe.close_sending()
        taken = []
        while (channel := pipe.oldest()) is not None:
            try:
                taken.append(await channel.recv.receive())
            except anyio.EndOfStream:
                continue
        return taken

    assert anyio.run(main) == list(range(8))
    assert pipe.swaps == 2 and pipe.channels[-1].size == 2


@pytest.mark.parametrize(
    ("mode", "settings", "message"),
    [
        ("steady", {"k": "0"}, "k must be from 1 to 64, got 0"),
        ("steady", {"buffer": "x"}, "buffer must be an integer from 1 to 10000, got 'x'"),
        ("steady", {"rate": "0"}, "rate must be from 0.1 to 100000.0, got 0"),
        ("fast", {}, "unknown mode 'fast' for pipeline; choose one of: steady, burst"),
    ],
)
def test_bad_settings_say_what_is_accepted(
    mode: str, settings: dict[str, str], message: str
) -> None:
    with pytest.raises(WorkloadError) as err:
        find("pipeline").resolve(mode, settings)
    assert message in str(err.value)


def test_only_k_and_buffer_change_live(lab: Lab) -> None:
    with pytest.raises(WorkloadError, match="live parameters: k, buffer"):
        lab.adjust("pipeline", "rate", 10)
    with pytest.raises(WorkloadError, match="k must be from 1 to 64, got 65"):
        lab.adjust("pipeline", "k", 65)
