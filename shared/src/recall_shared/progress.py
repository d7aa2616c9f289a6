"""A progress bar for long command-line jobs, on stderr, without a dependency."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """``[#######.......]  70%  7,000/10,000  created 6,900 skipped 100  1,234/s``, redrawn in
    place.

    With no total (a stream of unknown length) it shows the count and rate only. On a stream that is
    not a terminal it prints a line at most every ``every_s`` seconds instead of redrawing.
    """

    def __init__(
        self,
        total: int | None,
        *,
        label: str = "",
        stream: TextIO | None = None,
        width: int = 30,
        every_s: float = 0.2,
    ) -> None:
        self.total = total
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.every_s = every_s if self.stream.isatty() else max(every_s, 5.0)
        self.done = 0
        self.counts: dict[str, int] = {}
        self.started = time.monotonic()
        self._drawn = 0.0

    def advance(self, n: int = 1, **outcomes: int) -> None:
        self.done += n
        for k, v in outcomes.items():
            self.counts[k] = self.counts.get(k, 0) + v
        now = time.monotonic()
        if now - self._drawn >= self.every_s:
            self._drawn = now
            self._draw(final=False)

    def close(self) -> None:
        self._draw(final=True)

    def line(self) -> str:
        rate = self.done / max(time.monotonic() - self.started, 1e-9)
        parts = [self.label] if self.label else []
        if self.total:
            filled = int(self.width * min(self.done / self.total, 1.0))
            parts.append(
                f"[{'#' * filled}{'.' * (self.width - filled)}] "
                f"{100 * self.done / self.total:3.0f}%"
            )
            parts.append(f"{self.done:,}/{self.total:,}")
        else:
            parts.append(f"{self.done:,}")
        parts += [f"{k} {v:,}" for k, v in self.counts.items()]
        parts.append(f"{rate:,.0f}/s")
        return "  ".join(parts)

    def _draw(self, *, final: bool) -> None:
        if self.stream.isatty():
            self.stream.write("\r\x1b[2K" + self.line() + ("\n" if final else ""))
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()
