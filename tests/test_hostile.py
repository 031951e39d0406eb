"""Hostile input for every loader: nothing crashes, nothing vanishes, memory stays bounded.

Each loader is forced (``format=``) onto every hostile variant of its own smallest real
fixture and onto generic garbage. A run may load, reject or fail the file with a clear error,
but no exception may escape, no loader may crash internally, and
``read == loaded + rejected + duplicate`` must hold.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

import loaders
from loaders.schema import event_schema, validate
from tests.conftest import provenance_rows

ROOT = Path(__file__).resolve().parent.parent
NAMES = sorted(loaders.LOADERS)


def fixture_of(name: str) -> Path:
    """The smallest real (or, failing that, any) fixture of a loader."""
    rows = [r for r in provenance_rows() if r["loader"] == name]
    real = [r for r in rows if "synthetic" not in r["repo"]] or rows
    return min((Path(r["path"]) for r in real), key=lambda p: p.stat().st_size)


def _is_binary(data: bytes) -> bool:
    return data.startswith(b"ElfFile\x00") or b"\x00" in data[:64]


def _shift_times(data: bytes, replacement: bytes) -> bytes:
    iso = re.sub(rb"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}", replacement, data)
    return re.sub(rb"audit\(\d+\.\d+:", b"audit(" + (b"-5.000:" if replacement.startswith(b"-")
                                                       else b"253402300800.000:"), iso)


def _dup_keys(data: bytes) -> bytes:
    return re.sub(rb'^(\s*\{\s*)("[^"]+"\s*:\s*"[^"]*"\s*,)', rb"\1\2\2", data, flags=re.M)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<Events><Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System>
<EventID>1</EventID><Computer>&lol4;</Computer></System></Event></Events>
"""

Variant = Callable[[bytes], bytes]
VARIANTS: dict[str, Variant] = {
    "empty": lambda d: b"",
    "truncated": lambda d: d[: int(len(d) * 0.6)],
    "truncated-mid-line": lambda d: d[: d.rfind(b"\n", 0, len(d) // 2) + 7],
    "binary-garbage": lambda d: random.Random(7).randbytes(200_000),
    "invalid-utf8": lambda d: b"\xff\xfe\xfa".join(d.split(b"e", 5)),
    "utf16": lambda d: d if _is_binary(d) else d.decode("utf-8", "replace").encode("utf-16"),
    "crlf": lambda d: d if _is_binary(d) else d.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"),
    "nul-bytes": lambda d: d.replace(b"\n", b"\x00\n", 3) + b"\x00" * 4096,
    "unclosed-array": lambda d: b'[{"a": 1}, {"b": 2},\n {"c"',
    "deep-nesting": lambda d: b"[" * 200_000 + b"\n" + b"{" * 50_000,
    "year-1601": lambda d: _shift_times(d, b"1601-01-01T00:00:00"),
    "year-9999": lambda d: _shift_times(d, b"9999-12-31T23:59:59"),
    "epoch-0": lambda d: _shift_times(d, b"1970-01-01T00:00:00"),
    "negative-year": lambda d: _shift_times(d, b"-001-01-01T00:00:00"),
    "duplicate-keys": _dup_keys,
    "xml-bomb": lambda d: BILLION_LAUGHS,
    "repeated-file": lambda d: d + (b"" if _is_binary(d) else b"\n" + d),
    # damaged heads and middles (tests/test_damage.py asserts what loads, exactly)
    "leading-nul": lambda d: b"\x00" + d,
    "leading-nul-run": lambda d: b"\x00" * 65536 + d,
    "leading-garbage-line": lambda d: b"\x8f\x03 garbage\n" + d,
    "mid-file-bom": lambda d: d[: d.find(b"\n", len(d) // 2) + 1] + b"\xef\xbb\xbf"
    + d[d.find(b"\n", len(d) // 2) + 1:],
    "mid-file-random-block": lambda d: d[: d.find(b"\n", len(d) // 2) + 1]
    + random.Random(5).randbytes(300_000) + b"\n" + d[d.find(b"\n", len(d) // 2) + 1:],
}


def _check(name: str, path: Path) -> loaders.LoadResult:
    result = loaders.load(path, format=name)
    c = result.counts
    assert c.read == c.loaded + c.rejected + c.duplicate, c
    assert len(result.events) == c.loaded and len(result.rejects) == c.rejected
    assert not (result.error or "").startswith(f"{name} loader error"), result.error
    if result.status == "failed":
        assert result.error
    if len(result.rejects):
        assert result.rejects["reason"].str.len().min() > 0
        assert (result.rejects["source_line"] >= 0).all()
    if len(result.events):
        validate(pa.Table.from_pandas(result.events, preserve_index=False), event_schema())
    return result


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("name", NAMES)
def test_hostile_variant(name: str, variant: str, tmp_path: Path) -> None:
    data = fixture_of(name).read_bytes()
    path = tmp_path / ("input" + "".join(fixture_of(name).suffixes))
    path.write_bytes(VARIANTS[variant](data))
    result = _check(name, path)
    if variant in ("crlf", "utf16") and not _is_binary(data):
        original = loaders.load(fixture_of(name), format=name)
        assert result.counts.loaded == original.counts.loaded, (variant, result.rejects.head())


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_50mb_single_line_in_bounded_memory(name: str, tmp_path: Path) -> None:
    path = tmp_path / "huge.log"
    with path.open("wb") as fh:
        fh.write(b'{"message": "')
        for _ in range(50):
            fh.write(b"A" * (1 << 20))
        fh.write(b'"}\n')
    code = (
        "import re, sys, loaders\n"
        "r = loaders.load(sys.argv[1], format=sys.argv[2])\n"
        "c = r.counts\n"
        "assert c.read == c.loaded + c.rejected + c.duplicate\n"
        # VmHWM, not ru_maxrss, which keeps the peak of the pytest process it forked from
        "status = open('/proc/self/status').read()\n"
        "print(int(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1)) // 1024, c.read)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path), name], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    peak_mb = int(out.stdout.split()[0])
    assert peak_mb < 1024, f"{name}: peak RSS {peak_mb} MB on a 50 MB line"
