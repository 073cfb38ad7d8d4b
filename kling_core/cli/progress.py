"""Job progress on the terminal: a rich progress bar on a TTY, plain lines otherwise."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TYPE_CHECKING

import click

from kling_core.contract.status import JobStatus, Queued, Running

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID


def describe(status: JobStatus, *, percent: bool = True) -> str:
    """One status in words; ``percent=False`` for the bar, whose own column shows the percentage."""
    if isinstance(status, Queued):
        return "queued" + (f" (position {status.position})" if status.position is not None else "")
    if isinstance(status, Running):
        return "running" + (f" {status.progress:.0f}%" if percent and status.progress is not None else "")
    return status.state


class JobProgress:
    """Context manager fed with every status the client sees."""

    def __init__(self, *, enabled: bool = True, tty: bool | None = None, console: Console | None = None) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty() if tty is None else tty
        self._console = console
        self._last = ""
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> JobProgress:
        if self.enabled and self.tty:
            from rich.console import Console  # rich only for a bar: not for --quiet or a pipe
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                console=self._console or Console(stderr=True),
                transient=True,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("submitting", total=100)
        return self

    def submitted(self, job_id: str, provider: str) -> None:
        self.line(f"submitted {provider} job {job_id}")

    def line(self, text: str) -> None:
        if not self.enabled:
            return
        if self._progress is not None:
            self._progress.console.print(text)
        else:
            click.echo(text, err=True)

    def update(self, status: JobStatus) -> None:
        if not self.enabled:
            return
        text = describe(status)
        if self._progress is not None and self._task is not None:
            done = 100.0 if status.state == "succeeded" else (
                status.progress if isinstance(status, Running) and status.progress is not None else None
            )
            # The bar's own column shows the percentage: the description says the state only.
            self._progress.update(self._task, description=describe(status, percent=False), completed=done)
        elif text != self._last:
            click.echo(text, err=True)
        self._last = text

    def interrupted(self) -> None:
        """Ctrl-C: take the bar down and start a fresh line, so what follows is not printed
        after the bar (or after the terminal's ``^C``) on the same line."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self.enabled and self.tty:
            file = self._console.file if self._console is not None else sys.stderr
            file.write("\n")
            file.flush()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.__exit__(et, ev, tb)
