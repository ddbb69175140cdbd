"""Thread and process rows in the event stream, compactly: what the viewer's sampler read from
the OS, batched into :class:`~cpviz.engine.events.OsSamples` events that recordings keep and
replays feed back into a :class:`~cpviz.engine.osrows.Store`, the one the rows view reads.

The sampler reads the tree a hundred times a second, so one event per row and sample would
make rows most of a recording. A batch holds about a tenth of a second of samples (half a
second when idle), and each row's samples are one string with a token per sample:

* ``~``: the row was not sampled then (it did not exist yet, or any more);
* ``.``: the same as the token before it;
* otherwise three digits, the shares of the sample the row ran, waited for a CPU and waited in
  a futex while a sibling ran (``gil?``), each in sixty-firsts, written with :data:`DIGITS`;
  when it ran, the core follows: a digit (cores 0 to 61), ``(N)`` for core N past 61, or ``-``
  where the platform did not say.

A sleeping thread is then one character a sample, and a running one four.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping

from cpviz.engine.events import Event, OsRowName, OsSamples
from cpviz.engine.osrows import CAPACITY, MAX_ROWS, Key, RowInfo, Slice, Store

#: The digits a share or a core is written with: its index is its value.
DIGITS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_VALUE = {c: i for i, c in enumerate(DIGITS)}
#: Shares are written in this many parts (the view draws eight levels).
LEVELS = len(DIGITS) - 1
#: A batch is handed on after this many samples (0.1 s at 100 Hz) or this long (idle, 10 Hz).
BATCH_SAMPLES = 10
BATCH_S = 0.5
#: Every row's name is said again this often, for a recorder that joined late.
NAMES_S = 5.0
#: Largest core a recording may name: the store keeps cores as 16-bit numbers, and a
#: recording's header claims at most 4096 cores.
MAX_CORE = 4095

#: A decoded sample of one row: shares run, delay and gil, and the core (-1: unknown), or None.
Cell = tuple[float, float, float, int] | None


def _share(x: float) -> str:
    return DIGITS[min(LEVELS, max(0, round(x * LEVELS)))]


def token(s: Slice) -> str:
    """One sample of one row as its token."""
    run = _share(s.run)
    out = run + _share(s.delay) + _share(s.gil)
    if run == "0":
        return out
    if not 0 <= s.core <= MAX_CORE:
        return out + "-"
    return out + (DIGITS[s.core] if s.core < len(DIGITS) else f"({s.core})")


def decode_cells(cells: str, n: int) -> list[Cell]:
    """The ``n`` samples a row's string holds; ValueError saying what is wrong with it."""
    out: list[Cell] = []
    i, size = 0, len(cells)
    value = _VALUE
    while i < size:
        if len(out) >= n:
            raise ValueError(f"holds more than the {n} samples of its event")
        c = cells[i]
        if c == "~":
            out.append(None)
            i += 1
            continue
        if c == ".":
            if not out:
                raise ValueError("begins with '.', which repeats the sample before it")
            out.append(out[-1])
            i += 1
            continue
        digits = cells[i:i + 3]
        if len(digits) < 3 or any(d not in value for d in digits):
            raise ValueError(f"has {digits!r} at {i}, where three digits (0-9a-zA-Z) go")
        run, delay, gil = (value[d] / LEVELS for d in digits)
        i += 3
        core = -1
        if run > 0:
            c = cells[i:i + 1]
            if c in value:
                core = value[c]
                i += 1
            elif c == "-":
                i += 1
            elif c == "(":
                close = cells.find(")", i, i + 7)
                text = cells[i + 1:close] if close > 0 else ""
                if not text.isascii() or not text.isdigit() or int(text) > MAX_CORE:
                    raise ValueError(f"has a core at {i} that is not (62) to ({MAX_CORE})")
                core = int(text)
                i = close + 1
            else:
                raise ValueError(f"has no core at {i} after a sample that ran")
        # Rounding may make the three add up past one whole: running counts first.
        delay = min(delay, 1.0 - run)
        out.append((run, delay, min(gil, 1.0 - run - delay), core))
    if len(out) != n:
        raise ValueError(f"holds {len(out)} samples; its event has {n}")
    return out


def sample_times(ev: OsSamples) -> list[tuple[float, float]]:
    """Each sample's span, oldest first."""
    total = sum(ev.steps_us)
    start = ev.t - total / 1e6
    out: list[tuple[float, float]] = []
    done = 0
    for step in ev.steps_us:
        a = start + done / 1e6
        done += step
        out.append((a, start + done / 1e6 if done < total else ev.t))
    return out


def rows_of(ev: OsSamples) -> list[tuple[Key, list[Cell]]]:
    """Each row's key and samples; ValueError for a row string that does not fit."""
    n = len(ev.steps_us)
    return ([(("thread", tid), decode_cells(cells, n)) for tid, cells in ev.threads]
            + [(("process", pid), decode_cells(cells, n)) for pid, cells in ev.processes])


class Batcher:
    """The sampler's tap: gathers its samples into :class:`OsSamples` events and hands each
    to ``put`` (the event stream's), from the sampler's thread."""

    def __init__(self, put: Callable[[Event], None], *, samples: int = BATCH_SAMPLES,
                 span_s: float = BATCH_S, names_s: float = NAMES_S) -> None:
        self._put = put
        self.samples = samples
        self.span_s = span_s
        self.names_s = names_s
        self._start = 0.0
        #: Each sample's end since the batch began, and each row's tokens (one per sample).
        self._ends: list[float] = []
        self._tokens: dict[Key, list[str]] = {}
        #: The sampler's names of its rows, as of the last sample.
        self._infos: Mapping[Key, RowInfo] = {}
        #: What each row's name was said to be, and when every name was said last.
        self._said: dict[Key, tuple[str, str, str]] = {}
        self._said_all = -math.inf
        self._lock = threading.Lock()

    def add(self, t0: float, t1: float, slices: Mapping[Key, Slice],
            infos: Mapping[Key, RowInfo]) -> None:
        """One sample, as the store got it."""
        with self._lock:
            if self._ends and abs(t0 - self._ends[-1]) > 1e-6:
                self._flush()  # not contiguous: a batch covers one unbroken stretch
            ends = self._ends
            if not ends:
                self._start = t0
            n = len(ends)
            tokens = self._tokens
            for key, s in slices.items():
                row = tokens.get(key)
                if row is None:
                    row = tokens[key] = ["~"] * n
                row.append(token(s))
            for row in tokens.values():
                if len(row) == n:
                    row.append("~")
            ends.append(t1)
            self._infos = infos
            if len(ends) >= self.samples or t1 - self._start >= self.span_s:
                self._flush()

    def flush(self) -> None:
        """Hand on the batch gathered so far (a run's start or end, the sampler's stop)."""
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        ends = self._ends
        if not ends:
            return
        start, t = self._start, ends[-1]
        cum = [max(0, round((end - start) * 1e6)) for end in ends]
        steps = tuple(max(0, b - a) for a, b in zip([0, *cum], cum, strict=False))
        threads: list[tuple[int, str]] = []
        processes: list[tuple[int, str]] = []
        # Names that changed, and every one now and then (for a recorder that joined late).
        every = t - self._said_all >= self.names_s
        if every:
            self._said_all = t
        names: list[OsRowName] = []
        for key, row in self._tokens.items():
            if all(tok == "~" for tok in row):
                continue
            (threads if key[0] == "thread" else processes).append((key[1], _squeeze(row)))
            info = self._infos.get(key)
            if info is None:
                continue
            said = (info.label, info.role, info.note)
            if every or self._said.get(key) != said:
                self._said[key] = said
                names.append(OsRowName(key[0], key[1], *said))  # type: ignore[arg-type]
        if len(self._said) > 4 * MAX_ROWS:
            self._said = {k: self._said[k] for k in self._tokens if k in self._said}
        event = OsSamples(t, steps, tuple(threads), tuple(processes), tuple(names))
        self._ends = []
        self._tokens = {}
        self._put(event)


def _squeeze(tokens: list[str]) -> str:
    """A row's tokens as its string, a repeat written as ``.``."""
    out: list[str] = []
    last = None
    for tok in tokens:
        out.append("." if tok == last else tok)
        last = tok
    return "".join(out)


class Replayed:
    """A store filled from recorded :class:`OsSamples`, for a replay's rows view."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.store = Store(capacity)
        self._infos: dict[Key, RowInfo] = {}

    def clear(self) -> None:
        """Forget everything (a replay going back reads its file again from the start)."""
        self.store.clear()
        self._infos.clear()

    def apply(self, ev: OsSamples) -> None:
        """Append the event's samples; one that does not decode is left out whole."""
        try:
            rows = rows_of(ev)
        except ValueError:
            return
        infos = self._infos
        for name in ev.names:
            key: Key = (name.kind, name.ident)
            infos[key] = RowInfo(key, name.label, name.role, name.note)
        for key, _cells in rows:
            if key not in infos:
                infos[key] = (RowInfo(key, f"thread {key[1]}", "") if key[0] == "thread"
                              else RowInfo(key, f"process {key[1]}", "process"))
        store = self.store
        for i, (a, b) in enumerate(sample_times(ev)):
            slices = {key: Slice(c[0], c[1], c[2], c[3])
                      for key, cells in rows if (c := cells[i]) is not None}
            store.append(a, b, slices, infos)
        if len(infos) > 2 * MAX_ROWS:
            self._infos = {k: v for k, v in infos.items() if k in store.rows}
