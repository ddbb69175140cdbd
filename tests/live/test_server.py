"""The server workload: real HTTP on the lab loop under an open-loop client, and tiny steps."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psutil
import pytest

from cpviz.agent.lab import Lab
from cpviz.engine.events import RunResult
from cpviz.engine.headless import finish
from cpviz.engine.model import Model
from cpviz.workloads import server
from cpviz.workloads._http import MAX_HEAD, BadRequest, Request, response, take_request
from cpviz.workloads._jobs import spin
from cpviz.workloads.registry import WorkloadError, catalogue, find
from cpviz.workloads.server import CLIENT_THREAD, ROUNDS, LoadStats, percentile, render

# -- the HTTP parser ----------------------------------------------------------------------------


def test_a_head_is_taken_only_once_it_is_complete() -> None:
    buf = bytearray(b"GET /a HTTP/1.1\r\nHost: x\r\n")
    assert take_request(buf) is None
    buf += b"\r\nGET /b HTTP/1.1\r\n\r\n"
    first = take_request(buf)
    assert first == Request("GET", "/a", "HTTP/1.1", (("host", "x"),))
    second = take_request(buf)
    assert second is not None and second.target == "/b"
    assert buf == bytearray()


@pytest.mark.parametrize(
    ("head", "keep"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nconnection: Upgrade, Close\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", True),
    ],
)
def test_keep_alive_follows_the_version_rules(head: bytes, keep: bool) -> None:
    request = take_request(bytearray(head))
    assert request is not None and request.keep_alive is keep


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/2\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", 413),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
        (b"GET /" + b"a" * MAX_HEAD + b" HTTP/1.1\r\n\r\n", 431),
        (b"GET /" + b"a" * (MAX_HEAD + 1), 431),
    ],
)
def test_bad_heads_are_refused_with_a_status(head: bytes, status: int) -> None:
    with pytest.raises(BadRequest) as err:
        take_request(bytearray(head))
    assert err.value.status == status


def test_a_body_length_is_read_from_the_head() -> None:
    request = take_request(bytearray(b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"))
    assert request is not None and request.content_length == 5


def test_responses_are_framed_by_content_length() -> None:
    full = response(200, b"42\n", keep_alive=True)
    head, _, body = full.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Length: 3" in head and b"Connection: keep-alive" in head
    assert body == b"42\n"
    bare = response(200, b"42\n", keep_alive=False, head_only=True)
    assert bare.endswith(b"\r\n\r\n") and b"Connection: close" in bare


# -- the pieces that measure ----------------------------------------------------------------------


def test_render_does_the_same_work_as_the_pool_job() -> None:
    # The loop and threads modes use render, the processes mode spin: the work must be equal.
    assert render(12_345) == spin(12_345)


def test_percentile_is_nearest_rank() -> None:
    data = [float(x) for x in range(1, 101)]
    assert percentile(data, 0.5) == 50.0
    assert percentile(data, 0.99) == 99.0
    assert percentile(data, 1.0) == 100.0
    assert percentile([7.0], 0.99) == 7.0


def test_the_live_window_forgets_old_answers() -> None:
    stats = LoadStats(window_s=2.0)
    stats.begin(100.0)
    for _ in range(3):
        stats.sent_one()
    stats.finished(100.5, 0.010, ok=True)
    stats.finished(101.0, 0.500, ok=True)
    stats.finished(101.2, 0.020, ok=False)
    assert stats.in_flight() == 0
    assert stats.recent_ms(0.99, now=101.5) == 500.0
    assert stats.recent_rps(now=101.5) == 2 / 1.5
    # At 102.7 the first answer has left the window; at 104 both have.
    assert stats.recent_ms(0.5, now=102.7) == 500.0
    with pytest.raises(LookupError):
        stats.recent_ms(0.5, now=104.0)
    assert stats.completed == 2 and stats.errors == 1
    assert stats.latencies == [0.010, 0.500]


# -- declarations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "settings", "message"),
    [
        ("loop", {"rate": "0"}, "rate must be from 1.0 to 2000.0, got 0"),
        ("loop", {"concurrency": "0"}, "concurrency must be from 1 to 1000, got 0"),
        ("loop", {"duration_s": "x"}, "duration_s must be a number"),
        ("nope", {}, "unknown mode 'nope' for server"),
        ("loop", {"cpu": "5"}, "unknown parameter 'cpu' for server"),
    ],
)
def test_bad_settings_are_refused(mode: str, settings: dict[str, str], message: str) -> None:
    with pytest.raises(WorkloadError, match=message):
        find("server").resolve(mode, settings)


def test_a_concurrency_the_file_limit_cannot_hold_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server, "ensure_open_files", lambda needed: (False, 256))
    with pytest.raises(WorkloadError, match="needs about 2064 open files"):
        find("server").resolve("processes", {"concurrency": "1000"})
    # tiny-steps opens no connection, so the limit does not matter there.
    find("server").resolve("tiny-steps", {"concurrency": "1000"})


# -- real runs ------------------------------------------------------------------------------------

#: The longest a run here may take before the test fails instead of hanging.
RUN_TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(threshold_s=0.05, workloads=catalogue()) as running:
        yield running


def _run(lab: Lab, model: Model, mode: str, **settings: object) -> RunResult:
    run_id = lab.launch("server", mode, dict(settings))
    result = finish(lab, model, run_id, timeout=RUN_TIMEOUT_S)
    return result


def _client_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == CLIENT_THREAD and t.is_alive()]


def _inet_sockets() -> set[tuple[object, object, str]]:
    return {(c.laddr, c.raddr, c.status) for c in psutil.Process().net_connections("inet")}


def test_processes_serve_every_request_and_report_latency(lab: Lab) -> None:
    model = Model(lab.cores)
    result = _run(lab, model, "processes", rate=20, duration_s=1.0, work=20_000, concurrency=4)
    assert result.outcome == "completed"
    extra = dict(result.extra)
    assert extra["completed"] > 0
    assert extra["errors"] == 0 and extra["unfinished"] == 0
    assert 0 < extra["p50_ms"] <= extra["p99_ms"] <= extra["max_ms"]
    assert extra["achieved_rps"] > 0
    # The server answered on the lab loop: its connection tasks were traced there.
    run = next(r for r in model.runs.values() if r.result is result)
    names = {t.name for t in model.tasks.values() if t.run_id == run.run_id}
    assert "http accept" in names
    assert any(name.startswith("http conn ") for name in names)
    # The live figures were sampled by the lab while the run went on.
    series = model.metrics[run.run_id]
    assert {"p50 ms", "p99 ms", "rps", "in flight"} <= set(series)
    assert _client_threads() == []


def test_cpu_on_the_loop_raises_the_alarm_at_the_render_line(lab: Lab) -> None:
    model = Model(lab.cores)
    # Each request computes for several times the lab's 50 ms threshold.
    result = _run(lab, model, "loop", rate=4, duration_s=1.0, work=2_000_000, concurrency=1)
    assert result.outcome == "completed"
    extra = dict(result.extra)
    assert extra["completed"] > 0 and extra["p99_ms"] is not None
    assert result.incidents, "CPU work on the loop must freeze it"
    culprits = {(i.file, i.function) for i in result.incidents}
    assert (server.__file__, "render") in culprits


@pytest.mark.parametrize("mode", ["loop", "threads"])
def test_stopping_mid_run_leaves_no_client_thread_and_no_socket(lab: Lab, mode: str) -> None:
    model = Model(lab.cores)
    before = _inet_sockets()
    run_id = lab.launch("server", mode, {"rate": 50, "duration_s": 60, "work": 20_000})
    # Wait until the server has answered a few requests: the run is really under way.
    for _ in range(600):  # a guard against hanging, not a timing assertion
        model.apply(lab.stream.drain())
        view = model.runs.get(run_id)
        if view is not None:
            assert view.result is None, "the run ended before it was stopped"
            if view.done >= 5:
                break
        threading.Event().wait(0.05)
    else:
        pytest.fail("the server never answered five requests")
    assert _client_threads()
    lab.stop_run(run_id)
    result = lab.wait(run_id, timeout=30)
    assert result is not None and result.outcome == "stopped"
    # What was measured before the stop is kept.
    assert dict(result.extra)["sent"] >= 5
    assert _client_threads() == []
    assert _inet_sockets() == before


def test_tiny_steps_time_plain_and_async_steps(lab: Lab) -> None:
    model = Model(lab.cores)
    result = _run(lab, model, "tiny-steps", steps=2_000)
    assert result.outcome == "completed"
    extra = dict(result.extra)
    assert extra["plain_ns_per_step"] > 0
    assert extra["await_ns_per_step"] > 0
    assert extra["async_ns_per_step"] > 0
    assert extra["overhead_x"] == pytest.approx(
        extra["async_ns_per_step"] / extra["plain_ns_per_step"], rel=0.01
    )
    run = next(r for r in model.runs.values() if r.result is result)
    series = model.metrics[run.run_id]
    assert len(series["plain ns/step"]) == ROUNDS
    assert len(series["async ns/step"]) == ROUNDS
    # Every yielding step was a real trip through the loop, so the tracer saw each one.
    assert result.steps >= ROUNDS * 2_000
