"""Workload declarations: parameters are checked, and impossible real runs are refused early."""

from __future__ import annotations

import resource

import pytest

from cpviz.workloads import _server
from cpviz.workloads.registry import WorkloadError, catalogue, find, parse_settings


def test_catalogue_order_and_declarations() -> None:
    keys = [w.key for w in catalogue()]
    assert keys == [
        "io", "cpu", "blocking", "pipeline", "shared-state", "deadlock", "oversubscribe",
        "amdahl", "server",
    ]
    for w in catalogue():
        assert w.modes and w.explanation and w.title
        for p in w.params:
            assert p.help
            if p.choices:
                assert p.default in p.choices
            elif p.kind is not bool:
                assert p.low <= p.default <= p.high


def test_resolve_fills_defaults_and_parses_text() -> None:
    mode, params = find("io").resolve(None, {"n": "12", "real": "no", "latency_ms": "2.5"})
    assert mode == "concurrent"
    assert params == {"n": 12, "latency_ms": 2.5, "k": 100, "real": False}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"n": "20001"}, "n must be from 1 to 20000, got 20001"),
        ({"jobs": "x"}, "jobs must be an integer from 1 to 256, got 'x'"),
        (
            {"nope": "1"},
            "unknown parameter 'nope' for cpu; accepted: jobs, work, kind, start, fresh",
        ),
    ],
)
def test_bad_settings_say_what_is_accepted(settings: dict[str, str], message: str) -> None:
    key = "io" if "n" in settings else "cpu"
    with pytest.raises(WorkloadError) as err:
        find(key).resolve(None, settings)
    assert message in str(err.value)


def test_parse_settings_rejects_a_bare_word() -> None:
    assert parse_settings(["a=1", " b = two "]) == {"a": "1", "b": "two"}
    with pytest.raises(WorkloadError, match="key=value"):
        parse_settings(["a"])


def test_real_io_that_cannot_open_enough_files_is_refused_before_it_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _which: (256, 256))

    def refuse(_which: int, _limits: tuple[int, int]) -> None:
        raise ValueError("not allowed")

    monkeypatch.setattr(resource, "setrlimit", refuse)
    with pytest.raises(WorkloadError) as err:
        find("io").resolve("concurrent", {"real": "true", "n": "1000"})
    text = str(err.value)
    assert "needs about 2064 open files" in text and "allows 256" in text
    # Bounded to 50 connections it fits, and simulated runs never need the files.
    find("io").resolve("bounded", {"real": "true", "n": "1000", "k": "50"})
    find("io").resolve("concurrent", {"n": "1000"})


def test_the_soft_limit_is_raised_when_the_hard_limit_allows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "getrlimit", lambda _which: (1024, 4096))
    monkeypatch.setattr(resource, "setrlimit", lambda _which, limits: calls.append(limits))
    assert _server.ensure_open_files(2064) == (True, 2064)
    assert calls == [(2064, 4096)]
