"""Building blocks of the generator: counted output files, ground truth, time streams.

Everything random comes from ``random.Random`` objects seeded from the run's seed, so the same
seed gives byte-identical output. Nothing here keeps more than one hour of timestamps or one
megabyte of text in memory, whatever the number of events.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

FLUSH_CHARS = 1 << 20


class Out:
    """One output file written in time order, counting the lines it has written.

    Text is buffered and written in ~1 MB chunks, which is what makes large runs fast.
    """

    def __init__(self, root: Path, rel: str) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.rel = rel
        self.lines = 0
        self.records = 0
        self._fh = path.open("w", encoding="utf-8", newline="")
        self._buf: list[str] = []
        self._size = 0

    def write(self, text: str, records: int = 1) -> tuple[int, int]:
        """Append ``text`` (whole lines); return its first and last 1-based line numbers."""
        start = self.lines + 1
        self.lines += text.count("\n")
        self.records += records
        self._buf.append(text)
        self._size += len(text)
        if self._size >= FLUSH_CHARS:
            self.flush()
        return start, self.lines

    def flush(self) -> None:
        self._fh.write("".join(self._buf))
        self._buf = []
        self._size = 0

    def close(self, mtime: float | None = None) -> None:
        """Flush and close; ``mtime`` sets the file's modification time (syslog year)."""
        self.flush()
        self._fh.close()
        if mtime is not None:
            import os
            os.utime(self.path, (mtime, mtime))


class Truth:
    """The ground truth, recorded as the files are written (never edited by hand)."""

    def __init__(self) -> None:
        self.refs: list[dict[str, Any]] = []
        self.bad: list[dict[str, Any]] = []

    def add(self, label: str, step: str, t: float, out: Out, span: tuple[int, int],
            expect: list[str]) -> None:
        """Record that lines ``span`` of ``out`` are one event of ``label``.

        Args:
            label: ``incident`` or the decoy's name.
            step: what the event is, in a few words.
            t: event time (epoch seconds).
            out: the file.
            span: first and last line of the record.
            expect: strings that occur in those lines (actor, IP …), for the tests.
        """
        self.refs.append({"label": label, "step": step, "time": iso(t, 3),
                          "file": out.rel, "line": span[0], "end_line": span[1],
                          "expect": expect})

    def bad_record(self, out: Out, line: int, reason: str) -> None:
        self.bad.append({"file": out.rel, "line": line, "reason": reason})


_SECOND: list[Any] = [-1, ""]


def iso(t: float, digits: int = 3, zone: str = "Z") -> str:
    """RFC 3339 UTC text with ``digits`` fraction digits (0–9)."""
    sec = int(t)
    if sec != _SECOND[0]:  # most calls fall in the same second as the previous one
        _SECOND[0], _SECOND[1] = sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    text: str = _SECOND[1]
    if digits:
        text += "." + str(int((t - sec) * 10 ** digits)).zfill(digits)
    return text + zone


def uuid4(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng`` (deterministic, unlike ``uuid.uuid4``)."""
    h = f"{rng.getrandbits(128):032x}"
    # version nibble 4, variant bits 10xx, as uuid.UUID(int=..., version=4) sets them
    return (f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-"
            f"{h[20:]}")


def hexid(rng: random.Random, n: int = 32) -> str:
    """``n`` lowercase hex digits (OpenStack ids, container ids, fingerprints)."""
    return f"{rng.getrandbits(4 * n):0{n}x}"


def rng_for(seed: int, name: str) -> random.Random:
    """An independent generator per source, so adding one source leaves the others as they were."""
    return random.Random(f"auditlens-sample:{seed}:{name}")


# Hour-of-day weights in UTC (the company works 09:00-19:00 Moscow time = 06-16 UTC).
def human_weight(hour: int, weekday: int) -> float:
    if weekday >= 5:
        return 0.06
    if 6 <= hour < 16:
        return 1.0
    if 16 <= hour < 19 or hour == 5:
        return 0.25
    return 0.03


def machine_weight(hour: int, weekday: int) -> float:
    return 1.0 + 0.3 * human_weight(hour, weekday)


def mixed_weight(hour: int, weekday: int) -> float:
    return 0.4 + human_weight(hour, weekday)


def times(rng: random.Random, start: float, days: int, n: int,
          weight: Callable[[int, int], float]) -> Iterator[float]:
    """About ``n`` sorted timestamps over ``days`` days from ``start``, shaped by ``weight``.

    Only one hour's timestamps are held at once, so memory does not grow with ``n``.
    """
    hours = days * 24
    day0 = int(start // 86400)
    weights = [weight(h % 24, (day0 + h // 24 + 3) % 7) for h in range(hours)]  # 1970-01-01: Thu
    total = sum(weights) or 1.0
    for h, w in enumerate(weights):
        expected = n * w / total
        k = int(expected) + (rng.random() < expected - int(expected))
        base = start + h * 3600
        for x in sorted([rng.random() for _ in range(k)]):
            yield base + x * 3600.0


Step = tuple[float, Callable[..., None]]


def run_stream(stamps: Iterator[float], background: Callable[[float], None],
               scripted: list[Step]) -> None:
    """Write background events at ``stamps``, with scripted events slotted in by time."""
    script = sorted(scripted, key=lambda s: s[0])
    i, n = 0, len(script)
    for t in stamps:
        while i < n and script[i][0] <= t:
            script[i][1](script[i][0])
            i += 1
        background(t)
    while i < n:
        script[i][1](script[i][0])
        i += 1


def weighted(rng: random.Random, table: list[tuple[Any, float]]) -> Callable[[], Any]:
    """A fast chooser over ``(value, weight)`` rows."""
    values = [v for v, _ in table]
    cum: list[float] = []
    acc = 0.0
    for _, w in table:
        acc += w
        cum.append(acc)
    import bisect
    rnd = rng.random
    last = len(values) - 1

    def pick() -> Any:
        return values[min(bisect.bisect(cum, rnd() * acc), last)]
    return pick
