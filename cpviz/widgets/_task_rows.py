"""Which tasks get a timeline row in a window, grouped by run, kept up to date cheaply."""

from __future__ import annotations

import itertools
import math

from cpviz.engine.model import FINAL, SPAWN, Model, TaskInfo


class TaskRows:
    """Tasks alive somewhere in [t0, t1], the going run's first, each run's in spawn order.

    Kept from the Model's journal: a frame folds the spawns and exits since the last one and
    drops rows whose task exited before the window, so its cost follows the rows in the window,
    not the tasks the Model keeps. A move back in time, a wider window, a new run order or a
    change of whose tasks show start afresh (a scan of the tasks, once).
    """

    def __init__(self, model: Model) -> None:
        self._model = model
        self._key: tuple[object, ...] | None = None
        self._groups: dict[int, list[TaskInfo]] = {}
        self._ids: set[int] = set()
        self._rows: list[TaskInfo] = []
        self._order: list[int] = []
        self._runs_version = -1
        self._read = 0
        self._t0 = -math.inf
        self._t1 = math.inf
        #: Earliest exit among the rows (when the window passes it, a row goes), and earliest
        #: spawn after the window's end (when the window reaches it, a row comes).
        self._next_leave = math.inf
        self._next_enter = math.inf
        #: Bumped whenever the list of rows changes.
        self.version = 0

    def rows(self, t0: float, t1: float, own: bool = False) -> list[TaskInfo]:
        """The rows for [t0, t1]; ``own`` includes cpviz's own tasks. Read, don't keep."""
        model = self._model
        if model.runs_version != self._runs_version:
            self._runs_version = model.runs_version
            order = model.run_order()
            if order != self._order:
                self._order = order
                self._key = None
        key = (id(model.journal), model.tasks_dropped, own)
        behind = model.journal_end - len(model.journal) > self._read
        if (key != self._key or behind or t0 < self._t0 or t1 < self._t1
                or t1 >= self._next_enter):
            self._rebuild(key, t0, t1, own)
            return self._rows
        self._t0, self._t1 = t0, t1
        changed = self._fold(t1, own)
        if t0 > self._next_leave:
            changed |= self._leave(t0)
        if changed:
            self._flatten()
        return self._rows

    def _visible(self, info: TaskInfo, own: bool) -> bool:
        return own or not info.own

    def _rebuild(self, key: tuple[object, ...], t0: float, t1: float, own: bool) -> None:
        model = self._model
        self._key = key
        self._t0, self._t1 = t0, t1
        self._groups = {}
        self._next_leave = self._next_enter = math.inf
        for info in model.tasks.values():
            if not self._visible(info, own):
                continue
            if info.spawn > t1:
                self._next_enter = min(self._next_enter, info.spawn)
            elif info.exit is None or info.exit >= t0:
                self._groups.setdefault(info.run_id, []).append(info)
                if info.exit is not None:
                    self._next_leave = min(self._next_leave, info.exit)
        self._read = model.journal_end
        self._flatten()

    def _fold(self, t1: float, own: bool) -> bool:
        """Take the spawns and exits since the last frame; whether a row came."""
        model = self._model
        new = model.journal_end - self._read
        self._read = model.journal_end
        if new <= 0:
            return False
        journal, tasks = model.journal, model.tasks
        changed = False
        for kind, task_id, _, _, end in itertools.islice(journal, len(journal) - new, None):
            if kind == SPAWN:
                info = tasks.get(task_id)
                if info is None or not self._visible(info, own):
                    continue
                if task_id in self._ids:  # an id reused: the old row's task is gone
                    self._key = None
                    continue
                if info.spawn > t1:
                    self._next_enter = min(self._next_enter, info.spawn)
                    continue
                self._groups.setdefault(info.run_id, []).append(info)
                self._ids.add(task_id)
                changed = True
            elif kind == FINAL and task_id in self._ids:
                self._next_leave = min(self._next_leave, end)
        return changed

    def _leave(self, t0: float) -> bool:
        """Drop the rows whose task exited before ``t0``; whether any went."""
        changed = False
        leave = math.inf
        for run_id, infos in list(self._groups.items()):
            kept = [i for i in infos if i.exit is None or i.exit >= t0]
            if len(kept) != len(infos):
                changed = True
                if kept:
                    self._groups[run_id] = kept
                else:
                    del self._groups[run_id]
            for info in kept:
                if info.exit is not None and info.exit < leave:
                    leave = info.exit
        self._next_leave = leave
        return changed

    def _flatten(self) -> None:
        groups = self._groups
        order = [r for r in self._order if r in groups]
        order += sorted((r for r in groups if r not in self._order), reverse=True)
        self._rows = [info for run_id in order for info in groups[run_id]]
        self._ids = {info.task_id for info in self._rows}
        self.version += 1
