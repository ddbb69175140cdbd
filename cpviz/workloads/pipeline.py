"""Producer → bounded channel → k consumers, acks committed in order (C14).

The channel is a real anyio memory object stream; queue depth and blocked senders are read from
its statistics. Consumers acknowledge a message only after processing it, and the committed
offset advances over the contiguous prefix of acknowledged messages, as a Kafka consumer commits.

Changing the buffer size mid-run: an anyio stream's size is fixed when it is made, so the
producer swaps to a new stream of the new size, between two sends (it is the only sender, so it
never swaps under its own feet). Whatever the old buffer holds is moved into the new one in the
same loop step when it fits, so nothing waits outside a stream; when the new buffer is smaller
than what is queued, the old stream keeps those messages, is closed for sending and is drained
first. No message is dropped or sent twice; right after shrinking, the depth can stay above the
new size until the already-queued messages are taken.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from cpviz.engine.contract import Param, RunContext, Workload
from cpviz.workloads._jobs import spin

EXPLANATION = (
    "A producer sends numbered messages into a bounded channel (an anyio memory stream of size "
    "buffer); k consumers take them, process each for about process_ms (± jitter) and "
    "acknowledge it. Acks are committed in order, like Kafka offsets: a message that finishes "
    "before an earlier one stays in 'unacked' until every earlier one is done, so 'committed' "
    "only moves over a gapless prefix. steady: the producer offers rate messages a second; when "
    "k consumers cannot keep up (k × 1000 / process_ms < rate) the queue depth climbs to the "
    "buffer size and the producer blocks, which is backpressure. burst: the producer sends as "
    "fast as it can, so the buffer is full at once and throughput is set by the consumers "
    "alone. Change k or buffer while it runs: more consumers drain the queue and lift the "
    "committed rate; a new buffer size applies to messages sent from then on, and anything "
    "already queued is still delivered first, so nothing is lost or sent twice."
)

MODES = ("steady", "burst")


@dataclass(eq=False)
class _Channel:
    """One stream of the pipeline and both of its master ends (consumers hold clones)."""

    size: int
    send: MemoryObjectSendStream[int]
    recv: MemoryObjectReceiveStream[int]

    @classmethod
    def open(cls, size: int) -> _Channel:
        send, recv = anyio.create_memory_object_stream[int](size)
        return cls(size, send, recv)

    def drained(self) -> bool:
        """Closed for sending and empty: no consumer will ever get anything from it again."""
        stats = self.recv.statistics()
        return stats.open_send_streams == 0 and stats.current_buffer_used == 0

    def close(self) -> None:
        self.send.close()
        self.recv.close()


@dataclass(eq=False)
class _Consumer:
    index: int
    #: Its own clone of a channel's receiving end; closing it wakes the consumer when idle.
    recv: MemoryObjectReceiveStream[int] | None = None
    channel: _Channel | None = None
    busy: bool = False
    retiring: bool = False


@dataclass
class _Books:
    """Every offset's fate, so a run can prove it lost nothing and committed in order.

    It holds a window, not a history: the committed watermark, and the offsets between it and
    the producer (in flight, or finished and waiting for an earlier one). Each commit is
    checked as it is made, so a run of a million messages keeps a few dozen numbers, not a log
    of every offset (that log once took 516 MB at a million messages).
    """

    #: Offsets made so far: 0 .. created-1.
    created: int = 0
    #: The offset inside the producer's ``send`` call, if any (delivered or not yet).
    sending: int | None = None
    #: Offsets a consumer has received and not yet finished processing.
    in_flight: set[int] = field(default_factory=set)
    #: Offsets processed but not committed because an earlier one is still open.
    pending: set[int] = field(default_factory=set)
    #: Everything below this offset is committed (the Kafka-style committed offset).
    committed: int = 0
    #: Commits that were not the next offset, or of an offset not yet processed (must be 0).
    misordered: int = 0
    duplicates: int = 0
    #: Completions that had to wait for an earlier offset before they could be committed.
    out_of_order: int = 0
    max_unacked: int = 0

    @property
    def unacked(self) -> int:
        return len(self.in_flight) + len(self.pending)

    def take(self, offset: int) -> None:
        if offset in self.in_flight or offset in self.pending or offset < self.committed:
            self.duplicates += 1
        self.in_flight.add(offset)
        self.max_unacked = max(self.max_unacked, self.unacked)

    def finish(self, offset: int) -> int:
        """Acknowledge a processed offset; returns how many offsets the commit advanced."""
        self.in_flight.discard(offset)
        self.pending.add(offset)
        before = self.committed
        while self.committed in self.pending:
            self._commit(self.committed)
        if self.committed == before:
            self.out_of_order += 1
        return self.committed - before

    def _commit(self, offset: int) -> None:
        """Commit ``offset``: it must be the next one, and processed (waiting in pending)."""
        if offset != self.committed or offset not in self.pending:
            self.misordered += 1
        self.pending.discard(offset)
        self.committed = offset + 1

    def acks_in_order(self) -> bool:
        """The commits formed 0, 1, 2, … and each came after that offset finished processing."""
        return self.misordered == 0


class _Pipe:
    """The channels, the consumers and the live changes of k and buffer."""

    def __init__(self, ctx: RunContext, books: _Books, k: int, buffer: int) -> None:
        self.ctx = ctx
        self.books = books
        #: Live channels, oldest first; the producer sends into the last.
        self.channels: list[_Channel] = [_Channel.open(buffer)]
        self.want_k = k
        self.want_buffer = buffer
        self.consumers: dict[int, _Consumer] = {}
        self.tg: TaskGroup | None = None
        self.open = True
        self.max_depth = 0
        self.swaps = 0
        #: Seeded, so a run's processing times repeat from one run to the next.
        self.rng = random.Random(0)
        #: Unprocessed offsets pulled out of the channels when the run ended.
        self.leftover: list[int] = []
        self._segment = (ctx.now(), 0, k)

    # -- readings (gauges) ---------------------------------------------------------------------

    def depth(self) -> int:
        return sum(ch.recv.statistics().current_buffer_used for ch in self.channels)

    def blocked_senders(self) -> int:
        return sum(ch.recv.statistics().tasks_waiting_send for ch in self.channels)

    def buffer_size(self) -> float:
        return self.channels[-1].recv.statistics().max_buffer_size if self.channels else 0.0

    def note_depth(self) -> None:
        self.max_depth = max(self.max_depth, self.depth())

    # -- channels -------------------------------------------------------------------------------

    def oldest(self) -> _Channel | None:
        """The channel consumers should read next, retiring channels that are drained."""
        while self.channels and self.channels[0].drained() and len(self.channels) > 1:
            self.channels.pop(0).close()
        if self.channels and self.channels[0].drained():
            return None
        return self.channels[0] if self.channels else None

    def resize_if_wanted(self) -> None:
        """Swap the producer to a stream of the wanted size (producer only, between sends)."""
        old = self.channels[-1]
        if self.want_buffer == old.size:
            return
        new = _Channel.open(self.want_buffer)
        queued = old.recv.statistics().current_buffer_used
        if queued <= new.size:
            # Move the queue over in one loop step: no consumer can run in between.
            for _ in range(queued):
                new.send.send_nowait(old.recv.receive_nowait())
        self.channels.append(new)
        old.send.close()  # wakes idle consumers with EndOfStream; they move to the oldest
        self.swaps += 1
        self.oldest()

    def close_sending(self) -> None:
        for ch in self.channels:
            ch.send.close()

    def drain_leftovers(self) -> None:
        """Take every message still queued, without waiting, so the books can account for it."""
        for ch in self.channels:
            while True:
                try:
                    self.leftover.append(ch.recv.receive_nowait())
                except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                    break
            ch.close()

    # -- consumers ------------------------------------------------------------------------------

    def alive(self) -> int:
        return len(self.consumers)

    def active(self) -> list[_Consumer]:
        return [c for c in self.consumers.values() if not c.retiring]

    def set_k(self, k: int) -> None:
        """Spawn consumers, or retire some: idle ones at once, busy ones after their message."""
        self.want_k = k
        if not self.open or self.tg is None:
            return
        active = self.active()
        if len(active) < k:
            free = (i for i in itertools.count() if i not in self.consumers)
            for _ in range(k - len(active)):
                self.spawn(next(free))
        elif len(active) > k:
            # Idle first, then the highest-numbered busy ones.
            order = sorted(active, key=lambda c: (c.busy, -c.index))
            for c in order[: len(active) - k]:
                c.retiring = True
                if not c.busy and c.recv is not None:
                    c.recv.close()  # an idle consumer wakes with ClosedResourceError

    def spawn(self, index: int) -> None:
        assert self.tg is not None
        consumer = _Consumer(index)
        self.consumers[index] = consumer
        self.tg.start_soon(_consume, self, consumer, name=f"consumer {index}")

    def on_change(self, name: str, value: Any) -> None:
        if name == "k":
            self.end_segment(next_k=int(value))
            self.set_k(int(value))
        elif name == "buffer":
            self.want_buffer = int(value)

    def end_segment(self, next_k: int) -> None:
        """One measured point of throughput against k: commits over the time k was unchanged."""
        start, committed0, k = self._segment
        now = self.ctx.now()
        if now > start:
            done = self.books.committed - committed0
            self.ctx.point(k, throughput_per_s=done / (now - start), seconds=now - start,
                           committed=done)
        self._segment = (now, self.books.committed, next_k)


async def _produce(ctx: RunContext, pipe: _Pipe, messages: int) -> None:
    books = pipe.books
    rate: float = ctx.params["rate"]
    steady = ctx.mode == "steady"
    start = anyio.current_time()
    try:
        for offset in range(messages):
            if steady:
                # A fixed schedule: after a stretch of backpressure the producer does not try to
                # catch up with a burst; it resumes the rate from where it is.
                due = start + offset / rate
                now = anyio.current_time()
                if due < now - 1.0 / rate:
                    start += now - due
                    due = now
                await anyio.sleep_until(due)
            pipe.resize_if_wanted()
            books.created = offset + 1
            books.sending = offset
            await pipe.channels[-1].send.send(offset)
            books.sending = None
            pipe.note_depth()
    finally:
        # Synchronous, so it also runs when the run is being cancelled: consumers waiting on an
        # empty channel wake with EndOfStream instead of waiting for ever.
        pipe.close_sending()


async def _consume(pipe: _Pipe, me: _Consumer) -> None:
    books = pipe.books
    ctx = pipe.ctx
    process_s = ctx.params["process_ms"] / 1000.0
    jitter: float = ctx.params["jitter"]
    work: int = ctx.params["cpu_work"]
    try:
        while not me.retiring:
            channel = pipe.oldest()
            if channel is None:
                return
            if me.channel is not channel or me.recv is None:
                if me.recv is not None:
                    me.recv.close()
                me.recv, me.channel = channel.recv.clone(), channel
            try:
                # Shielded: a cancel landing between the stream handing over a message and this
                # task resuming would drop the message. Stopping still ends the wait, because the
                # producer closes the channels when it is cancelled.
                with anyio.CancelScope(shield=True):
                    offset = await me.recv.receive()
            except anyio.EndOfStream:
                continue
            except anyio.ClosedResourceError:  # retired while idle
                continue
            books.take(offset)
            me.busy = True
            await anyio.sleep(process_s * pipe.rng.uniform(1.0 - jitter, 1.0 + jitter))
            if work:
                spin(work)  # the CPU part runs on the loop: a visible run slice per message
            me.busy = False
            advanced = books.finish(offset)
            if advanced:
                ctx.advance(advanced)
    finally:
        if me.recv is not None:
            me.recv.close()
        pipe.consumers.pop(me.index, None)


async def _run(ctx: RunContext) -> None:
    p = ctx.params
    messages: int = p["messages"]
    books = _Books()
    pipe = _Pipe(ctx, books, p["k"], p["buffer"])
    ctx.on_change(pipe.on_change)
    ctx.gauge("queue depth", pipe.depth)
    ctx.gauge("unacked", lambda: books.unacked)
    ctx.gauge("committed", lambda: books.committed)
    ctx.gauge("consumers", pipe.alive)
    ctx.gauge("blocked senders", pipe.blocked_senders)
    ctx.gauge("buffer", pipe.buffer_size)
    completed = False
    try:
        async with ctx.measure() as meter, anyio.create_task_group() as tg:
            pipe.tg = tg
            tg.start_soon(_produce, ctx, pipe, messages, name="producer")
            pipe.set_k(pipe.want_k)
        completed = True
        if meter.result is not None and meter.result.wall_s > 0:
            ctx.extra["throughput_per_s"] = round(books.committed / meter.result.wall_s, 3)
    finally:
        pipe.open = False
        pipe.close_sending()
        pipe.drain_leftovers()
        if completed:
            pipe.end_segment(pipe.want_k)
        _account(ctx, pipe)


def _account(ctx: RunContext, pipe: _Pipe) -> None:
    """Where every offset ended up; ``lost`` counts those found nowhere (must be 0).

    Offsets below the watermark are committed; the rest can only be in the small places
    (pending, in flight, still queued, inside the producer's send), so this counts without
    ever listing the offsets a run has made.
    """
    books = pipe.books
    low = books.committed
    above: set[int] = set()  # offsets at or past the watermark found somewhere
    overlap = 0
    for place in (books.pending, books.in_flight, set(pipe.leftover)):
        overlap += sum(1 for offset in place if offset < low or offset in above)
        above |= {offset for offset in place if offset >= low}
    unsent = 0
    sending = books.sending
    if sending is not None and sending >= low and sending not in above:
        unsent = 1  # the producer was stopped inside send() before the stream took it
        above.add(sending)
    lost = books.created - low - len(above)
    ctx.extra.update(
        # Accepted by the channel: committed + pending_acks + in_flight + unprocessed + lost.
        produced=books.created - unsent,
        committed=books.committed,
        pending_acks=len(books.pending),
        in_flight=len(books.in_flight),
        unprocessed=len(pipe.leftover),
        unsent=unsent,
        lost=lost,
        duplicates=books.duplicates + overlap,
        acks_in_order=books.acks_in_order(),
        out_of_order_completions=books.out_of_order,
        max_queue_depth=pipe.max_depth,
        max_unacked=books.max_unacked,
        consumers=pipe.want_k,
        buffer=pipe.want_buffer,
        buffer_swaps=pipe.swaps,
    )


WORKLOAD = Workload(
    key="pipeline",
    title="Producer → channel → k consumers",
    modes=MODES,
    params=(
        Param("k", int, 4, 1, 64, "consumers taking messages at once", live=True),
        Param("buffer", int, 16, 1, 10_000, "messages the channel holds before the producer "
              "blocks", live=True),
        Param("rate", float, 100.0, 0.1, 100_000.0, "messages a second the producer offers "
              "in steady mode"),
        Param("process_ms", float, 50.0, 0.0, 10_000.0, "time a consumer spends on each "
              "message (ms, simulated wait)"),
        Param("jitter", float, 0.5, 0.0, 1.0, "spread of processing times: each message "
              "takes process_ms × (1 ± jitter), drawn at random"),
        Param("cpu_work", int, 0, 0, 10_000_000, "pure-Python iterations each message also "
              "computes on the loop (0 = none)"),
        Param("messages", int, 1000, 1, 1_000_000, "messages the producer sends in all"),
    ),
    explanation=EXPLANATION,
    run=_run,
    total=lambda mode, params: int(params["messages"]),
)
