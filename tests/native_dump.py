"""Run linux_auditd over input files and save what it gives (used by tests/test_native.py).

``python -m tests.native_dump OUT INPUT...`` runs in a process of its own, so that the
compiled or the Python auditd modules are used as ``AUDITLENS_NATIVE`` says. For each input
it writes, under ``OUT``, the event and reject tables (Arrow IPC) and the counts, for two
option sets, in one process and with helpers; ``OUT/mode.json`` says which modules ran.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pyarrow as pa

from loaders.base import LoadOptions, Tuning
from loaders.linux_auditd import native
from tests.test_linux_auditd_fast import _table

# every file goes through the helpers too (when asked for), in chunks of 3 events
TUNING = Tuning(auditd_offload_bytes=0, auditd_chunk_events=3, auditd_ahead_chunks=2)
OPTIONS = {"default": LoadOptions(tuning=TUNING),
           "small": LoadOptions(batch_size=3, max_initial_rejects=3, tuning=TUNING)}


def _save(table: pa.Table | None, path: Path) -> None:
    if table is not None:
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
            w.write_table(table)


def main(out: Path, inputs: list[Path]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(inputs):
        for name, options in OPTIONS.items():
            for helpers in (0, 2):
                events, rejects, counts = _table(path, replace(options, helpers=helpers))
                stem = out / f"{i}-{name}-{helpers}"
                _save(events, stem.with_suffix(".events"))
                _save(rejects, stem.with_suffix(".rejects"))
                stem.with_suffix(".counts").write_text(json.dumps(counts))
    (out / "mode.json").write_text(json.dumps({"compiled": native.active(),
                                               "reason": native.STATE.reason}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
