"""``auditlens report`` over the 10M-event store of ``bench_detect`` once its findings exist
(issue 16: under a minute; the HTML under 10 MB whatever the store size). The baseline, in
the same run, is the same DuckDB scan as the detect suite's."""

from __future__ import annotations

from benchmarks.bench_detect import BASELINE, _store
from benchmarks.harness import PY, WORK, Measurement, run_measured

SUITE = "report"


def measure(scale: int) -> list[Measurement]:
    store, events, size = _store(scale)
    findings = store / "findings" / "runs"  # type: ignore[operator]
    if not any(findings.glob("*.parquet")):
        run_measured([PY, "-m", "analysis.cli", "detect", "--store", str(store)])
    wall, rss = run_measured([PY, "-c", BASELINE, str(store)])
    out = [Measurement(SUITE, "DuckDB scan: users and addresses of every event", "baseline",
                       events, size, wall, rss)]
    html = WORK / "report-bench.html"
    wall, rss = run_measured([PY, "-m", "analysis.cli", "report", "--store", str(store),
                              "--out", str(html)])
    mb = html.stat().st_size / 1e6
    out.append(Measurement(SUITE, f"auditlens report → HTML ({mb:.1f} MB)", "auditlens",
                           events, size, wall, rss))
    return out
