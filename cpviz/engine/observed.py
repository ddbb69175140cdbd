"""The viewer's side of the observer split: start the observed process, talk to it, end it.

cpviz's screen must not share the process it watches: sharing its GIL and CPU made the screen's
own work show up as freezes and as the runs' CPU. So the lab and its probes run in a child
process (:mod:`cpviz.agent.main`) started with the same interpreter, in a session of its own,
joined by a socketpair that nobody else holds. This module:

* starts that process and hands it the probe settings and the catalogue to offer;
* reads its frames on a thread that does nothing else, so the observed side never waits on the
  screen; the frames are decoded into events only when the consumer drains the stream;
* charges each run with the observed tree's CPU, read from outside the moment the run starts and
  ends (see :mod:`cpviz.engine.accounting`), and reports the viewer's own CPU apart;
* samples the cores and the observed threads and workers from outside (``CoreSampler``);
* ends the observed side on quit, and waits until every process it started is gone; notices
  when it dies, says how, and starts a fresh one for the next run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from cpviz.engine import accounting
from cpviz.engine.affinity import pinned_cpus
from cpviz.engine.causes import Classifier, LoopSampler
from cpviz.engine.clock import MonotonicClock
from cpviz.engine.contract import Workload, WorkloadError, WorkloadInfo
from cpviz.engine.errors import CpvizError
from cpviz.engine.events import (
    CoreSample,
    Event,
    IncidentEnd,
    IncidentRecord,
    IncidentStart,
    Observed,
    Output,
    RunEnd,
    RunResult,
    RunStart,
)
from cpviz.engine.osrows import OsRows, Totals, Tree, run_figures
from cpviz.engine.recording import decode_event
from cpviz.engine.recording.os_samples import Batcher
from cpviz.engine.sampler import CoreSampler, Watched
from cpviz.engine.stream import EventStream
from cpviz.engine.wire import (
    CHANNEL_FD_ENV,
    COMMAND,
    EVENTS,
    FATAL,
    HELLO,
    MARK,
    SPAWNS,
    STEPS,
    THREADS,
    ChannelClosed,
    Sender,
    TaskIds,
    decode_spawns,
    decode_steps,
    json_frame,
    read_frames,
)

#: The catalogue the observed process offers, named as ``module:function`` so that the engine
#: never imports the workloads (the function is called with the user's spec, or None).
DEFAULT_CATALOGUE = "cpviz.workloads.registry:lab_catalogue"
#: How long the observed process may take to start (an interpreter, anyio, the workloads).
START_TIMEOUT_S = 30.0
#: How long it may take to stop its runs and pools after a quit before it is killed.
QUIT_TIMEOUT_S = 5.0
#: Lines of the observed process's own output kept, to say why it died.
OUTPUT_LINES = 200
#: The longest line of a program's output kept whole (a pane line, a recording line).
MAX_OUTPUT_LINE = 4000


class ObservedError(CpvizError):
    """The observed process could not start, or died; the message is one line."""


def describe_status(status: int) -> str:
    """An exit status as people say it: "exited with status 1", "killed by SIGSEGV"."""
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"killed by {name}"
    return f"exited with status {status}"


@dataclass
class _Run:
    run_id: int
    key: str
    mode: str
    params: dict[str, Any]
    started: bool = False
    ended: bool = False


@dataclass
class _Mark:
    """The observed tree's CPU and the viewer's own, the moment a run started or ended."""

    tree_cpu: float
    viewer_cpu: float
    #: The thread and process rows' running sums (None where they could not be read).
    rows: Totals | None = None


class _Child:
    """One observed process: its Popen, its channel, and the threads that read it."""

    def __init__(self, popen: subprocess.Popen[bytes] | None, sock: socket.socket,
                 pid: int = 0) -> None:
        #: None when cpviz did not start it: an application that embeds the agent.
        self.popen = popen
        self.pid = popen.pid if popen is not None else pid
        self.sock = sock
        self.sender = Sender(sock)
        self.hello: dict[str, Any] | None = None
        self.fatal: str | None = None
        self.ready = threading.Event()
        self.output: deque[str] = deque(maxlen=OUTPUT_LINES)
        #: Native id → (name, role) of its threads, as it last reported them.
        self.threads: list[tuple[int, str, str]] = []
        self.reader: threading.Thread | None = None
        self.echo: threading.Thread | None = None
        self.gone = threading.Event()


class ObservedLab:
    """The lab in its own process, driven from here: a Controller and the stream's owner."""

    def __init__(
        self,
        workloads: Sequence[Workload],
        *,
        threshold_s: float = 0.1,
        sample_hz: float = 10.0,
        stall_s: float = 1.0,
        pin_cores: int | None = None,
        sample: bool = True,
        catalogue: str = DEFAULT_CATALOGUE,
        user: str | None = None,
        process_workers: int | None = None,
        output: TextIO | None = None,
        python: str | None = None,
        program: Sequence[str] | None = None,
        stdin: bool = False,
        connection: tuple[socket.socket, dict[str, Any]] | None = None,
    ) -> None:
        #: An application's agent already connected to (``cpviz connect``) and its hello, in
        #: place of a process to start: its clock is the session's, and quitting only hangs up.
        self.connection = connection
        self.clock = MonotonicClock(None if connection is None
                                    else float(connection[1]["origin"]))
        self.stream = EventStream(self.clock)
        self.cores = os.cpu_count() or 1
        #: CPUs the observed side is pinned to, or None when not pinned.
        self.pinned: set[int] | None = None
        if pin_cores is not None:
            self.pinned = pinned_cpus(pin_cores)
        self._workloads = {w.key: w for w in workloads}
        self._order = tuple(workloads)
        self._config: dict[str, Any] = {
            "origin": self.clock.origin,
            "threshold_s": threshold_s,
            "stall_s": stall_s,
            "pin_cores": pin_cores,
            "catalogue": catalogue,
            "user": user,
            "process_workers": process_workers,
        }
        self._output = output
        self._python = python or sys.executable
        #: A program run as it is (``[script, args...]`` or ``["-m", module, args...]``) in
        #: place of the lab, and whether it reads this process's stdin (headless only).
        self.program = list(program) if program is not None else None
        self._stdin = stdin
        self._child: _Child | None = None
        self._lock = threading.RLock()
        self._runs: dict[int, _Run] = {}
        self._next_run = 1
        self._marks: dict[tuple[int, str], _Mark] = {}
        #: The tracer's task ids (addresses, reused) made unique; read on the consumer's thread.
        self._task_ids = TaskIds()
        #: Frames read and not yet decoded, and events made here, in arrival order.
        self._inbox: deque[tuple[int, Any]] = deque()
        self._closed = False
        self._hello: dict[str, Any] = {}
        self.sampler = (
            CoreSampler(self._sampled, self.clock, hz=sample_hz, roles=self._watched,
                        ctx_pids=self._observed_pids)
            if sample
            else None
        )
        #: Recent core samples, to say what held the cores while the loop waited for one.
        self._core_samples: deque[CoreSample] = deque(maxlen=600)
        #: The loop thread as the OS sees it, and the freeze causes read from it.
        self.loop_sampler = LoopSampler(self.clock)
        self.classifier = Classifier(self.loop_sampler, self.cores, self._samples_between)
        #: Every thread and process of the observed tree, as rows (see cpviz.engine.osrows).
        self.os_rows = OsRows(self.clock, self._tree, has_gil=lambda: self._hello.get("gil"))
        # One reader of the observed threads: the loop sampler takes its share from it.
        self.os_rows.listeners.append(self.loop_sampler.feed)
        # Its samples go into the event stream too, batched, so recordings keep the rows.
        self.os_rows.tap = Batcher(self.stream.put)
        self.stream.add_feed(self)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> ObservedLab:
        """Start the observed process and wait until it is ready; ObservedError if it is not."""
        child = self._spawn() if self.connection is None else self._attach(*self.connection)
        if not child.ready.wait(START_TIMEOUT_S):
            self._end_child(child)
            raise ObservedError(
                f"the observed process did not start within {START_TIMEOUT_S:.0f} s"
            )
        if child.hello is None:
            self._end_child(child)
            raise ObservedError(self._why(child))
        if self.sampler is not None:
            self.sampler.start()
        self.os_rows.start()
        return self

    def _argv(self) -> list[str]:
        config = json.dumps(self._config)
        if self.program is None:
            return [self._python, "-m", "cpviz.agent", config]
        return [self._python, "-m", "cpviz.agent.boot", config, "--", *self.program]

    def _spawn(self) -> _Child:
        mine, theirs = socket.socketpair()
        env = dict(os.environ)
        env[CHANNEL_FD_ENV] = str(theirs.fileno())
        # Another interpreter (--python, or the program's own) finds cpviz's probes here; they
        # need nothing but the standard library.
        home = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (home, env.get("PYTHONPATH")) if p)
        if self.program is not None:
            with self._lock:
                # The program's run starts with the process; both sides know it by this id.
                run_id = self._next_run
                self._next_run += 1
                self._runs[run_id] = _Run(run_id, self.program_name(), "program", {})
                self._config["run"] = run_id
                self.os_rows.busy(True)
        try:
            popen = subprocess.Popen(
                self._argv(),
                pass_fds=(theirs.fileno(),),
                env=env,
                stdin=None if self._stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                # Its own session: the terminal's Ctrl+C reaches the viewer alone, which then
                # stops the observed side in order; and the session names everything it started.
                start_new_session=True,
            )
        except OSError as exc:
            mine.close()
            theirs.close()
            raise ObservedError(f"cannot start {self._python}: {exc.strerror or exc}") from None
        theirs.close()
        child = _Child(popen, mine)
        child.reader = threading.Thread(
            target=self._read, args=(child,), name="cpviz-channel", daemon=True
        )
        child.echo = threading.Thread(
            target=self._echo, args=(child,), name="cpviz-output", daemon=True
        )
        with self._lock:
            self._child = child
        child.reader.start()
        child.echo.start()
        return child

    def _attach(self, sock: socket.socket, hello: dict[str, Any]) -> _Child:
        """Read an application's embedded agent (its hello already read) as the observed side."""
        child = _Child(None, sock, int(hello["pid"]))
        child.hello = self._hello = hello
        child.ready.set()
        run_id = int(hello.get("run", 1))
        with self._lock:
            self._runs[run_id] = _Run(run_id, str(hello.get("name", "application")),
                                      "program", {})
            self._next_run = run_id + 1
            self._child = child
        self.os_rows.busy(True)  # the application's one run lasts as long as the connection
        child.reader = threading.Thread(
            target=self._read, args=(child,), name="cpviz-channel", daemon=True
        )
        child.reader.start()
        return child

    def close(self) -> None:
        """Stop the observed side and wait until every process it started is gone."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            child = self._child
        if self.sampler is not None:
            self.sampler.stop()
        self.os_rows.stop()
        if child is not None:
            self._end_child(child)

    def _end_child(self, child: _Child) -> None:
        """Quit, wait, then make sure: nothing of the observed side outlives this call."""
        child.sender.send(json_frame(COMMAND, {"op": "quit"}))
        if child.popen is None:
            # An application's own agent: hang up (after its run's end), never stop it.
            child.gone.wait(QUIT_TIMEOUT_S)
            with contextlib.suppress(OSError):
                child.sock.shutdown(socket.SHUT_RDWR)
            if child.reader is not None:
                child.reader.join(timeout=2.0)
            with contextlib.suppress(OSError):
                child.sock.close()
            return
        try:
            child.popen.wait(QUIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                child.popen.kill()
            child.popen.wait()
        # Its workers, resource tracker, anything it started: all in its session.
        accounting.end_session(child.pid)
        if child.reader is not None:
            child.reader.join(timeout=2.0)
        if child.echo is not None:
            child.echo.join(timeout=2.0)
        with contextlib.suppress(OSError):
            child.sock.close()
        if child.popen.stdout is not None:
            with contextlib.suppress(OSError):
                child.popen.stdout.close()

    def __enter__(self) -> ObservedLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the channel ----------------------------------------------------------------------------

    def _read(self, child: _Child) -> None:
        """Read frames as fast as they come; decoding waits for the consumer."""
        inbox = self._inbox
        try:
            for kind, payload in read_frames(child.sock):
                if kind in (STEPS, SPAWNS, EVENTS):
                    inbox.append((kind, payload))
                elif kind == MARK:
                    self._mark(child, json.loads(payload))
                elif kind == THREADS:
                    child.threads = [(int(t), str(n), str(r)) for t, n, r in json.loads(payload)]
                    loop = next((t for t, _n, r in child.threads if r == "loop"), 0)
                    probes = [t for t, _n, r in child.threads if r == "probe"]
                    self.loop_sampler.watch(child.pid, loop, probes)
                elif kind == HELLO:
                    child.hello = self._hello = json.loads(payload)
                    child.ready.set()
                elif kind == FATAL:
                    child.fatal = str(json.loads(payload).get("error", "unknown error"))
        except (ChannelClosed, ValueError) as exc:
            child.fatal = child.fatal or str(exc)
        child.ready.set()
        self._gone(child)

    def _mark(self, child: _Child, mark: dict[str, Any]) -> None:
        # First thing: read the CPU figures, before anything else can happen in between.
        figures = _Mark(accounting.tree_cpu(child.pid), accounting.own_cpu())
        try:
            figures.rows = self.os_rows.mark()
        except Exception:  # a probe must never take the viewer down
            figures.rows = None
        with self._lock:
            self._marks[(int(mark["run"]), str(mark["at"]))] = figures

    def _echo(self, child: _Child) -> None:
        """Keep the observed process's own output (and pass it on, headless)."""
        stream = child.popen.stdout if child.popen is not None else None
        if stream is None:
            return
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            child.output.append(line)
            if self.program is not None:
                # A program's own output is part of what happened: the pane shows it, and a
                # recording keeps it. (The lab's output is cpviz's, said only when it dies.)
                self.stream.put(Output(self.clock.now(), line[:MAX_OUTPUT_LINE]))
            if self._output is not None:
                with contextlib.suppress(OSError, ValueError):
                    print(line, file=self._output, flush=True)

    def _gone(self, child: _Child) -> None:
        """The channel closed: learn how the observed side ended and say so."""
        if child.popen is None:
            self._hung_up(child)
            return
        status = child.popen.wait()
        accounting.end_session(child.pid)
        if child.echo is not None:
            child.echo.join(timeout=2.0)
        child.gone.set()
        with self._lock:
            if self._child is child:
                self._child = None
            quitting = self._closed
        if child.hello is None:
            return  # it never started; start() says why
        if quitting and status == 0:
            self._inbox.append((0, Observed(self.clock.now(), child.pid, "exited",
                                            "stopped with cpviz", status)))
            return
        why = describe_status(status)
        last = next((line for line in reversed(child.output) if line.strip()), "")
        subject = "your program" if self.program is not None else "the observed process"
        # Its last words say why it died; a program that ended well needs none.
        detail = f"{subject} {why}" + (f": {last.strip()}" if last and status != 0 else "")
        self._inbox.append((0, Observed(self.clock.now(), child.pid, "exited", detail, status)))

    def _hung_up(self, child: _Child) -> None:
        """An embedded agent's channel closed: the viewer left, or the application did."""
        with self._lock:
            if self._child is child:
                self._child = None
            quitting = self._closed
        child.gone.set()
        if quitting:
            detail = "stopped with cpviz"
        else:
            try:
                os.kill(child.pid, 0)
                detail = f"the application (pid {child.pid}) closed the connection"
            except ProcessLookupError:
                detail = f"the application (pid {child.pid}) exited"
            except OSError:
                detail = f"the application (pid {child.pid}) closed the connection"
        self._inbox.append((0, Observed(self.clock.now(), child.pid, "exited", detail, 0)))

    def _why(self, child: _Child) -> str:
        if child.fatal:
            return child.fatal
        child.gone.wait(2.0)
        status = child.popen.poll() if child.popen is not None else None
        last = next((line for line in reversed(child.output) if line.strip()), "")
        how = describe_status(status) if status is not None else "did not answer"
        return f"the observed process {how}" + (f": {last.strip()}" if last else "")

    def drain(self, out: list[Event]) -> int:
        """Decode what the reader received (the stream's feed; the consumer's thread)."""
        inbox = self._inbox
        origin = self.clock.origin
        ids = self._task_ids
        for _ in range(len(inbox)):
            kind, payload = inbox.popleft()
            if kind == STEPS:
                decode_steps(payload, origin, out, ids)
            elif kind == SPAWNS:
                decode_spawns(payload, origin, out, ids)
            elif kind == EVENTS:
                for line in payload.decode().splitlines():
                    event = decode_event(json.loads(line))
                    if isinstance(event, IncidentStart) and event.task_id:
                        event = dataclasses.replace(event, task_id=ids.of(event.task_id))
                    out.append(self._settle(event))
            elif isinstance(payload, Observed):
                ids.forget()
                self._observed_ended(payload, out)
        return 0

    def _sampled(self, sample: Event) -> None:
        if isinstance(sample, CoreSample):
            self._core_samples.append(sample)
        self.stream.put(sample)

    def _samples_between(self, a: float, b: float) -> list[CoreSample]:
        return [s for s in list(self._core_samples) if a <= s.t <= b + 0.1]

    def _settle(self, event: Event) -> Event:
        """Bookkeeping on the way through: a run's start and end, its CPU from outside, and
        each freeze's cause."""
        if isinstance(event, IncidentStart):
            verdict = self.classifier.started(event, self.clock.now())
            return dataclasses.replace(event, cause=verdict.cause, shares=verdict.shares,
                                       cause_detail=verdict.detail)
        if isinstance(event, IncidentEnd):
            final = self.classifier.ended(event)
            if final is None:
                return event
            return dataclasses.replace(event, cause=final.cause, shares=final.shares,
                                       cause_detail=final.detail)
        if isinstance(event, RunStart):
            with self._lock:
                run = self._runs.get(event.run_id)
                if run is not None:
                    run.started = True
        elif isinstance(event, RunEnd):
            with self._lock:
                run = self._runs.get(event.run_id)
                if run is not None:
                    run.ended = True
                self.os_rows.busy(any(not r.ended for r in self._runs.values()))
                start = self._marks.pop((event.run_id, "start"), None)
                end = self._marks.pop((event.run_id, "end"), None)
            result = dataclasses.replace(
                event.result, incidents=tuple(self._explained(r) for r in event.result.incidents)
            )
            hello = self.interpreter()
            if hello:
                # Which interpreter ran it, and whether its GIL was on (a free-threaded build's
                # threads run Python in parallel: C19).
                extra = dict(result.extra)
                extra["python"] = hello.get("python")
                extra["gil"] = hello.get("gil")
                result = dataclasses.replace(result, extra=tuple(extra.items()))
            if start is not None and end is not None:
                cpu = max(0.0, end.tree_cpu - start.tree_cpu)
                extra = dict(result.extra)
                extra["observer_cpu_s"] = round(max(0.0, end.viewer_cpu - start.viewer_cpu), 6)
                if start.rows is not None and end.rows is not None:
                    # Read from outside: who ran at once, and who waited for a CPU.
                    extra.update(run_figures(start.rows, end.rows))
                result = dataclasses.replace(
                    result, cpu_s=cpu, parallelism=cpu / max(result.wall_s, 1e-9),
                    extra=tuple(extra.items()),
                )
            return RunEnd(event.t, event.run_id, result)
        return event

    def _explained(self, record: IncidentRecord) -> IncidentRecord:
        """A run's incident with the cause its freeze was given here."""
        verdict = self.classifier.verdict(record.incident_id, record.duration_s)
        if verdict is None:
            return record
        return dataclasses.replace(record, cause=verdict.cause, shares=verdict.shares,
                                   cause_detail=verdict.detail)

    def _observed_ended(self, ended: Observed, out: list[Event]) -> None:
        """Runs the dead process had going end here, failed, saying how it died."""
        with self._lock:
            lost = [r for r in self._runs.values() if not r.ended]
            for run in lost:
                run.ended = True
        for run in lost:
            params = tuple(sorted(run.params.items()))
            if not run.started:
                out.append(RunStart(ended.t, run.run_id, run.key, run.mode, params, 0))
            outcome = f"failed: {ended.detail}"
            out.append(RunEnd(ended.t, run.run_id, RunResult(
                run.key, run.mode, params, 0.0, 0.0, 0.0, None, None, (), outcome)))
        if ended.detail != "stopped with cpviz":
            out.append(ended)

    # -- sampling from outside ------------------------------------------------------------------

    def _observed_pids(self) -> list[int]:
        child = self._child
        if child is None:
            return []
        return [child.pid, *accounting.descendants(child.pid)]

    def _tree(self) -> Tree:
        child = self._child
        if child is None:
            return 0, {}
        return child.pid, {tid: (name, role) for tid, name, role in child.threads}

    def _watched(self) -> list[Watched]:
        out = [Watched("ui", os.getpid(), "cpviz (viewer)", True)]
        child = self._child
        if child is None:
            return out
        for tid, name, role in child.threads:
            out.append(Watched(role, tid, name, False, child.pid))  # type: ignore[arg-type]
        for pid in accounting.descendants(child.pid):
            out.append(Watched("process", pid, f"worker {pid}", True))
        return out

    # -- the controller -------------------------------------------------------------------------

    def program_name(self) -> str:
        """What the program's run is called: its script's file name, or its module."""
        assert self.program is not None
        return self.program[1] if self.program[0] == "-m" else os.path.basename(self.program[0])

    def restart(self) -> int:
        """Run the program again once its last run has ended; the run id that is going."""
        with self._lock:
            going = [r.run_id for r in self._runs.values() if not r.ended]
            if going or self._closed or self.connection is not None:
                return going[-1] if going else 0
        child = self._spawn()
        run_id = int(self._config["run"])
        del child
        return run_id

    def interrupt(self) -> None:
        """Ctrl+C for the program (it runs in a session of its own, away from the terminal's
        signals): SIGINT, which it handles as it would without cpviz. Never an application
        cpviz only connected to."""
        child = self._child
        if child is not None and child.popen is not None:
            with contextlib.suppress(OSError):
                os.kill(child.pid, signal.SIGINT)

    def wait_exit(self, timeout: float | None = None) -> int | None:
        """Wait for the observed process to end by itself; its status, or None if it runs on."""
        child = self._child
        if child is None or child.popen is None:
            return None
        try:
            return child.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    @property
    def pid(self) -> int | None:
        """The observed process's pid, while there is one."""
        child = self._child
        return child.pid if child is not None else None

    @property
    def python(self) -> str:
        """The interpreter the observed side runs in (``--python``, or this one's)."""
        return self._python

    def interpreter(self) -> dict[str, Any]:
        """What the observed process said about itself (pid, python, gil), or {}: the last one
        that started, even once it has ended (its run's result still names it)."""
        return dict(self._hello)

    def workloads(self) -> Sequence[WorkloadInfo]:
        return [w.info() for w in self._order]

    def workload(self, key: str) -> Workload:
        try:
            return self._workloads[key]
        except KeyError:
            raise WorkloadError(
                f"unknown workload {key!r}; choose one of: " + ", ".join(self._workloads)
            ) from None

    def _send(self, command: dict[str, Any]) -> None:
        """Send a command, starting a fresh observed process first if the last one died."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the lab is closed")
            child = self._child
            if child is None and self.connection is not None:
                raise ObservedError("the application is no longer connected")
            if child is None:
                child = self._spawn()
        child.sender.send(json_frame(COMMAND, command))

    def start_run(self, workload: Workload, mode: str, params: dict[str, Any]) -> int:
        """Start a run of an already-validated mode and parameters; returns its run id."""
        with self._lock:
            run_id = self._next_run
            self._next_run += 1
            self._runs[run_id] = _Run(run_id, workload.key, mode, dict(params))
        self.os_rows.busy(True)
        self._send({"op": "start", "run": run_id, "key": workload.key, "mode": mode,
                    "params": params})
        return run_id

    def launch(self, key: str, mode: str | None, settings: dict[str, Any]) -> int:
        """Validate ``key``, ``mode`` and ``settings`` (raises WorkloadError) and start a run."""
        workload = self.workload(key)
        mode, params = workload.resolve(mode, settings)
        return self.start_run(workload, mode, params)

    def stop(self, key: str) -> None:
        if self._child is not None:
            self._send({"op": "stop", "key": key})

    def stop_run(self, run_id: int) -> None:
        if self._child is not None:
            self._send({"op": "stop_run", "run": run_id})

    def adjust(self, key: str, name: str, value: Any) -> Any:
        parsed = self.workload(key).live_value(name, value)
        if self._child is not None:
            self._send({"op": "adjust", "key": key, "name": name, "value": parsed})
        return parsed

    def pin(self, cores: int | None) -> int | None:
        checked = pinned_cpus(cores or 1, "pinning")
        self.pinned = None if cores is None else checked
        self._send({"op": "pin", "cores": cores})
        return None if self.pinned is None else len(self.pinned)

    def running(self) -> set[str]:
        with self._lock:
            return {r.key for r in self._runs.values() if not r.ended}


class ProgramController:
    """A program run as it is, as the screen's one workload: its key starts it again once it
    has ended; pressed while it runs, it interrupts it (as Ctrl+C would)."""

    def __init__(self, lab: ObservedLab) -> None:
        assert lab.program is not None
        self.lab = lab
        self._info = WorkloadInfo(
            lab.program_name(), f"your program: {' '.join(lab.program)}", ("program",), (),
            "Your program runs as it is, with every probe on: each asyncio loop it makes is "
            "traced, its threads and processes are on the lanes, and a freeze names its cause. "
            "Its own output is in the pane that o shows.",
        )

    def workloads(self) -> Sequence[WorkloadInfo]:
        return [self._info]

    def start(self, key: str, mode: str, params: dict[str, Any]) -> int:
        return self.lab.restart()

    def stop(self, key: str) -> None:
        self.lab.interrupt()

    def adjust(self, key: str, name: str, value: Any) -> Any:
        raise WorkloadError("a program run as it is has no live parameters")

    def pin(self, cores: int | None) -> int | None:
        return self.lab.pin(cores)

    def running(self) -> set[str]:
        return self.lab.running()

    def close(self) -> None:
        self.lab.close()


class ObservedController:
    """An :class:`ObservedLab` as the UI's :class:`~cpviz.engine.source.Controller`."""

    def __init__(self, lab: ObservedLab) -> None:
        self.lab = lab

    def workloads(self) -> Sequence[WorkloadInfo]:
        return self.lab.workloads()

    def start(self, key: str, mode: str, params: dict[str, Any]) -> int:
        return self.lab.launch(key, mode, params)

    def stop(self, key: str) -> None:
        self.lab.stop(key)

    def adjust(self, key: str, name: str, value: Any) -> Any:
        return self.lab.adjust(key, name, value)

    def pin(self, cores: int | None) -> int | None:
        return self.lab.pin(cores)

    def running(self) -> set[str]:
        return self.lab.running()

    def close(self) -> None:
        self.lab.close()

