"""Chain of custody (issue 18): readers see consistent snapshots while a writer commits.

``info`` (:func:`store_summary`), ``verify``, :func:`read_events` and the manifest, run again
and again while an ingest commits hundreds of files, see the last committed state: no
``FileNotFoundError`` on a manifest record folded meanwhile, no part "missing" or "stray"
because a commit was half done, no row "not sealed" because its run has not ended yet.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from loaders.store.read import read_events, read_manifest, store_summary
from loaders.store.store import Store
from loaders.store.verify import verify_store
from tests.helpers import k8s_audit_events

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 8
FILES = 300


def _small_file(path: Path, tag: str) -> int:
    """Four events of one day with ids of their own: one part file per input."""
    events = [e for e in k8s_audit_events()
              if e.get("requestReceivedTimestamp", "").startswith("2018-10-26")][:4]
    lines = [json.dumps({**e, "auditID": str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                         f"{tag}/{e['auditID']}"))})
             for e in events]
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def _reader_rounds(s: Store, proc: subprocess.Popen[str], seen: int) -> tuple[int, int]:
    """Run every reader again and again until the ingest ends; count the rounds run while
    the writer held the store, from start to end of the round."""
    during = 0
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        if not s.manifest_path.exists() and not s.manifest_dir.is_dir():
            time.sleep(0.05)
            continue
        writing = s.active_writer() is not None
        summary = store_summary(s)
        report = verify_store(s, check_inputs=False)
        events = read_events(s, columns=["event_uid"])
        manifest = read_manifest(s)
        assert report.problems == [], report.problems
        assert len(events) >= seen  # never a state older than one seen
        seen = len(events)
        assert summary["events"] <= int(manifest["records_loaded"].sum())
        if writing and s.active_writer() is not None:
            during += 1
    return during, seen


# The ingest runs in its own process; each commit waits a little first (outside the commit
# lock), so that on any machine the readers get many rounds in while the writer holds the store.
SLOW_WRITER = """
import sys, time
from loaders.store.store import Store
commit = Store.commit
def slow_commit(self, *args, **kwargs):
    time.sleep(0.03)
    return commit(self, *args, **kwargs)
Store.commit = slow_commit
from analysis.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_readers_during_an_ingest_see_no_error_and_no_false_problem(tmp_path: Path) -> None:
    ev = tmp_path / "evidence"
    ev.mkdir()
    total = sum(_small_file(ev / f"f{i:03d}.jsonl", f"snap-{i}") for i in range(FILES))
    store = tmp_path / "store"
    s = Store(store)
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, "ingest", str(ev),
                             "--store", str(store)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ})
    try:
        during, _ = _reader_rounds(s, proc, 0)
    finally:
        _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert during >= ROUNDS, f"only {during} rounds of readers ran during the ingest"
    final = verify_store(s)
    assert final.ok and final.rows_sealed == FILES and final.in_progress == 0
    assert len(read_events(s, columns=["event_uid"])) == total
