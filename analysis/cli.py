"""The ``auditlens`` command: parses options and calls library functions, nothing more.

Exit status: 0 success, 1 failure (a file failed, the store is damaged), 2 bad usage.
Messages go to stderr and say what to do. Text that comes from logs is printed escaped.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # imported where used, so that each command imports only what it needs
    from loaders.ingest.pipeline import FileOutcome, IngestReport

DEFAULT_STORE = "auditlens-store"


class UsageError(Exception):
    """Bad usage: exit status 2."""


_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x00, 0x20), 0x7F] if c not in (0x09,)}
_CONTROL.update({c: f"\\u{c:04x}" for c in range(0x80, 0xA0)})


def safe(text: object) -> str:
    """Text with control characters and terminal escape sequences made visible (``\\x1b``)."""
    return str(text).translate(_CONTROL)


def _table(rows: list[list[str]], head: list[str], out: TextIO) -> None:
    rows = [[safe(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(head)]
    numeric = [all(r[i].replace(",", "").isdigit() for r in rows) and rows != []
               for i in range(len(head))]

    def fmt(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if n else c.ljust(w)
                         for c, w, n in zip(cells, widths, numeric, strict=True)).rstrip()

    print(fmt(head), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in rows:
        print(fmt(r), file=out)


# --- commands -------------------------------------------------------------------------


def cmd_sources(args: argparse.Namespace) -> int:
    import loaders

    rows = [[r["name"], r["description"], r["reads"]] for r in loaders.sources_table()]
    _table(rows, ["name", "description", "reads"], sys.stdout)
    return 0


class _Bar:
    """Progress on a terminal (tqdm), silent otherwise."""

    def __init__(self, total: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                        desc="ingest", file=sys.stderr, disable=not sys.stderr.isatty(),
                        leave=False, dynamic_ncols=True)

    def bytes_read(self, n: int) -> None:
        self.bar.update(n)

    def file_done(self, outcome: FileOutcome) -> None:
        self.bar.set_postfix_str(safe(Path(outcome.path).name)[-40:], refresh=False)

    def close(self) -> None:
        self.bar.close()


def _parse_map(items: Sequence[str]) -> dict[str, str]:
    mapping = {}
    for item in items:
        column, sep, fld = item.partition("=")
        if not sep or not column or not fld:
            raise UsageError(f"--map takes column=field, got {item!r}")
        mapping[column] = fld
    return mapping


def cmd_ingest(args: argparse.Namespace) -> int:
    import loaders
    from loaders import UnknownFormat
    from loaders.base import LoadOptions
    from loaders.ingest.pipeline import Progress, discover, ingest
    from loaders.store.store import Store, StoreBusy

    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        raise UsageError(f"no such file or directory: {', '.join(map(safe, missing))}")
    if args.jobs < 1:
        raise UsageError("--jobs must be 1 or more")
    total = sum(p.stat().st_size for p in discover(args.paths) if p.is_file())
    bar = _Bar(total)
    # helpers=None: a large file may use a second core (see loaders.parsing.offload)
    options = LoadOptions(year=args.year, mapping=_parse_map(args.map), helpers=None,
                          tz=args.tz, tz_for=_parse_tz_for(args.tz_for))
    try:
        options.check()
    except ValueError as exc:
        raise UsageError(str(exc)) from None

    class _P(Progress):
        def bytes_read(self, n: int) -> None:
            bar.bytes_read(n)

        def file_done(self, outcome: FileOutcome) -> None:
            bar.file_done(outcome)

    # everything imported so far lives as long as the process: keep the collector from
    # walking it again and again (~5% of a parse-heavy ingest); the loaders are imported on
    # first use, so import the ones this run needs first
    try:
        loaders.get_loader(args.format) if args.format else loaders.all_loaders()
    except UnknownFormat as exc:
        raise UsageError(f"{exc} (see `auditlens sources`)") from None
    gc.freeze()
    try:
        report = ingest(Store(args.store), args.paths, format=args.format, jobs=args.jobs,
                        options=options, progress=_P())
    except UnknownFormat as exc:
        raise UsageError(f"{exc} (see `auditlens sources`)") from None
    except StoreBusy as exc:
        print(f"auditlens: {exc}", file=sys.stderr)
        return 1
    finally:
        bar.close()
    print_ingest_summary(report, sys.stdout)
    if not report.ok:
        print("auditlens: some files failed; see the status column and messages above",
              file=sys.stderr)
        return 1
    unloaded = [f for f in report.files if f.unrecognised or f.status == "refused"]
    if args.strict and unloaded:
        print(f"auditlens: --strict: {len(unloaded)} inputs were not recognised or were "
              "refused (listed above)", file=sys.stderr)
        return 1
    return 0


def _parse_tz_for(items: list[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in items:
        pattern, sep, zone = item.rpartition("=")
        if not sep or not pattern or not zone:
            raise UsageError(f"--tz-for wants PATTERN=ZONE, got {safe(item)!r}")
        pairs.append((pattern, zone))
    return tuple(pairs)


def print_ingest_summary(report: IngestReport, out: TextIO) -> None:
    """The per-file table (loader, read, loaded, rejected, duplicates, status) and totals."""
    rows = [[f.path, f.loader or "-", f.status, f"{f.read:,}", f"{f.loaded:,}",
             f"{f.rejected:,}", f"{f.duplicate:,}", f.message] for f in report.files]
    _table(rows, ["file", "loader", "status", "read", "loaded", "rejected", "duplicate",
                  "note"], out)
    hosts = report.by_host()
    if hosts:
        print("\nby host:", file=out)
        _table([[h.host, f"{h.files:,}", f"{h.loaded:,}", ", ".join(h.sources),
                 _when(h.first), _when(h.last)] for h in hosts],
               ["host", "files", "loaded", "sources", "first", "last"], out)
    t = report.totals()
    metadata = report.metadata_files()
    skipped = (f"{t['skipped']} skipped ({metadata} as collection metadata)" if metadata
               else f"{t['skipped']} skipped")
    print(f"\n{len(report.files)} files: {t['ingested']} ingested, {t['stopped']} stopped, "
          f"{skipped}, {t['refused']} refused, {t['failed']} failed", file=out)
    print(f"records: {t['read']:,} read = {t['loaded']:,} loaded + {t['rejected']:,} rejected "
          f"+ {t['duplicate']:,} duplicate", file=out)
    print(f"store: {safe(report.store)}  (ingest {report.ingest_id})", file=out)
    if report.ledger_head:
        print(f"ledger chain head: {report.ledger_head}  (keep it with the case notes; "
              "`auditlens info --verify --head HASH` checks the store against it later)",
              file=out)
    _print_zones(report, out)
    changed = [f for f in report.files if f.changed]
    if changed:
        print(f"\nCHANGED DURING INGEST: {len(changed)} files changed while they were read "
              "(a log still being written?); each was read, hashed and recorded as it was "
              "when opened, and the manifest's input_changed says how:", file=out)
        for f in changed:
            print(f"  {safe(f.path)}: {safe(f.changed or '')}", file=out)
        print("Ingest them again once they are complete to store what was added: the "
              "records already stored are counted as duplicates.", file=out)
    text = [f for f in report.files if f.unrecognised == "text"]
    if text:
        print(f"\nNOT LOADED: {len(text)} files look like text logs, but no loader "
              "recognises them; none of their records is in the store:", file=out)
        for f in text:
            print(f"  {safe(f.path)}", file=out)
        print("Read their first lines; if they are logs of a known format, ingest them with "
              "--format NAME (`auditlens sources` lists the formats). --strict makes this "
              "an error.", file=out)


def _print_zones(report: IngestReport, out: TextIO) -> None:
    """Which zone the times without one were read in, per file; loud when it was assumed."""
    naive = [f for f in report.files if f.naive_times]
    assumed = [f for f in naive if f.zone_assumed]
    given = [f for f in naive if f not in assumed]
    if given:
        print(f"\ntimes without a zone: {len(given)} files, read in the zone given or inferred:",
              file=out)
        for f in given:
            print(f"  {safe(f.path)}: {f.naive_times:,} records, {safe(f.time_zone or '')}",
                  file=out)
    if assumed:
        print(f"\nTIMES WITHOUT A ZONE: {len(assumed)} files hold times with no zone; they "
              "were taken as UTC, and each such record says so in parse_warning:", file=out)
        for f in assumed:
            print(f"  {safe(f.path)}: {f.naive_times:,} records", file=out)
        print("If they are local times, ingest them again into a fresh store with --tz ZONE "
              "(or --tz-for PATTERN=ZONE for some files): a timeline hours off misleads.",
              file=out)


def _when(t: object) -> str:
    """A time of the summary by host: UTC to the second, ``-`` for none."""
    from datetime import datetime

    if not isinstance(t, datetime):
        return "-"
    return t.strftime("%Y-%m-%d %H:%M:%SZ")


def cmd_info(args: argparse.Namespace) -> int:
    from loaders.store.read import store_summary
    from loaders.store.store import Store

    store = Store(args.store)
    if not store.exists():
        if store.root.is_dir() and any(store.root.iterdir()):  # ingested into, nothing kept
            print(f"store: {safe(args.store)}\nno input file is stored: every file given to "
                  "`auditlens ingest` so far was skipped (unrecognised, or a repeat) or "
                  "refused; its summary said why")
            return 0
        print(f"auditlens: no store at {safe(args.store)}; create one with "
              "`auditlens ingest PATH --store DIR`", file=sys.stderr)
        return 1
    info = store_summary(store)
    out = sys.stdout
    head, entries = store.chain_head()
    print(f"store: {safe(args.store)}", file=out)
    print(f"events: {info['events']:,}   from {info['first']}   to {info['last']}", file=out)
    files = info["files"]
    print(f"input files: {len(files)}   rejected records: {info['rejects']:,}", file=out)
    print(f"ledger: {entries} runs sealed; chain head {head}\n", file=out)
    by_day = info["by_source_day"]
    if len(by_day):
        per_source = by_day.groupby("source").agg(events=("events", "sum"),
                                                  first=("first", "min"), last=("last", "max"))
        _table([[src, f"{r.events:,}", str(r.first), str(r.last)]
                for src, r in per_source.iterrows()],
               ["source", "events", "first", "last"], out)
        print("\nevents per day:", file=out)
        pivot = by_day.pivot_table(index="date", columns="source", values="events",
                                   aggfunc="sum", fill_value=0)
        _table([[str(day), *(f"{v:,}" for v in row)] for day, row in pivot.iterrows()],
               ["date", *pivot.columns], out)
    if len(files):
        print(file=out)
        _table([[r.path, r.loader, r.status, f"{r.records_read:,}", f"{r.records_loaded:,}",
                 f"{r.records_rejected:,}", f"{r.records_duplicate:,}", r.sha256[:16],
                 _note(r.message) if r.status != "ingested" else ""]
                for r in files.itertuples()],
               ["file", "loader", "status", "read", "loaded", "rejected", "duplicate",
                "sha256", "note"], out)
        unloaded = files[files["status"] != "ingested"]
        if len(unloaded):
            print(f"\n{len(unloaded)} files did not load to their end (stopped: what was "
                  "read is kept; failed: nothing loaded, their rejects are kept); the note "
                  "says why", file=out)
    reasons = info["reject_reasons"]
    if len(reasons):
        print("\nreject reasons:", file=out)
        _table([[r.source, f"{r.count:,}", r.reason] for r in reasons.head(20).itertuples()],
               ["source", "count", "reason"], out)
    status = _print_damage(info, store, out)
    if args.verify:
        return max(status, _verify(store, out, args.head))
    return status


def _print_damage(info: Any, store: Any, out: TextIO) -> int:
    """The damage `info` found (still summarising the rest): 1 if any, else 0."""
    from loaders.store.store import repair_hint

    if not info["damaged"] and not info["manifest_damaged"]:
        return 0
    if info["manifest_damaged"]:
        print(f"\nDAMAGED: {safe(info['manifest_damaged'])}", file=out)
    if info["damaged"]:
        print(f"\nDAMAGED: {len(info['damaged'])} stored files cannot be read; the counts "
              "above leave them out:", file=out)
        origin = {}
        for r in info["files"].itertuples():
            for rel in [*(r.parts if r.parts is not None else []), r.rejects_file]:
                origin[rel] = r.path
        for rel, why in info["damaged"]:
            source = f" (from the input {safe(origin[rel])})" if rel in origin else ""
            print(f"  {safe(rel)}{source}: {safe(why)}", file=out)
        print(f"{repair_hint(store.root)}.", file=out)
    print("auditlens: the store is damaged (listed above)", file=sys.stderr)
    return 1


def _note(message: object, limit: int = 120) -> str:
    text = "" if message is None or message != message else str(message)  # None or NaN
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _verify(store: Any, out: TextIO, head: str | None = None) -> int:
    from loaders.ingest.rehash import verify

    report = verify(store, head=head)
    print(f"\nverify: {report.parts_checked} stored files checked, {report.inputs_checked} "
          f"inputs re-hashed ({report.inputs_absent} no longer present"
          + (f", {report.inputs_unchecked} not checked" if report.inputs_unchecked else "")
          + ")", file=out)
    print(f"verify: ledger of {report.entries} runs, chain head {report.head}; "
          f"{report.rows_sealed} manifest rows as sealed"
          + (f", {report.in_progress} of the ingest running now" if report.in_progress else ""),
          file=out)
    if head is not None and not any(p.path == "head" for p in report.problems):
        print(f"verify: the head you kept is in the chain; {len(report.since_head)} runs "
              "sealed since" + (":" if report.since_head else ""), file=out)
        for line in report.since_head:
            print(f"  {safe(line)}", file=out)
    for note in report.notes:
        print(f"note: {safe(note)}", file=out)
    for p in report.problems:
        print(f"PROBLEM {p.kind}: {safe(p.path)}: {safe(p.detail)}", file=out)
    if report.ok:
        print("verify: OK, the store, its ledger and the inputs present match the manifest",
              file=out)
        return 0
    print(f"auditlens: verify found {len(report.problems)} problems; do not rely on the "
          "files listed; `auditlens repair` quarantines damaged files, but evidence that was "
          "altered must be re-ingested from the originals into a new store", file=sys.stderr)
    return 1


def cmd_repair(args: argparse.Namespace) -> int:
    from loaders.store.repair import repair
    from loaders.store.store import Store, StoreBusy

    store = Store(args.store)
    if not store.exists():
        print(f"auditlens: no store at {safe(args.store)}", file=sys.stderr)
        return 1
    try:
        report = repair(store, dry_run=args.dry_run)
    except StoreBusy as exc:
        print(f"auditlens: {exc}", file=sys.stderr)
        return 1
    out = sys.stdout
    would = "would be " if args.dry_run else ""
    if not report.changed:
        print("repair: nothing to do: every stored file reads and has its recorded SHA-256, "
              "and the manifest reads", file=out)
        return 0
    if report.manifest_rebuilt:
        print(f"repair: the manifest {would}rebuilt from the ledger "
              f"({safe(report.manifest_problem)})", file=out)
    for row in report.quarantined:
        print(f"repair: {safe(row['path'])}: {safe(report.reasons[row['path']])}; its stored "
              f"files {would}moved aside and its manifest row removed", file=out)
    for rel in report.strays:
        print(f"repair: {safe(rel)}: named by no manifest row; {would}moved aside", file=out)
    if args.dry_run:
        print("repair: --dry-run: nothing was changed", file=out)
        return 0
    print(f"repair: {len(report.moved)} files moved to {safe(report.quarantine)}; sealed in "
          f"the ledger, chain head {report.ledger_head}", file=out)
    if report.quarantined:
        print("ingest these inputs again to restore what they held:", file=out)
        # an archive member is ingested again through its archive: each file named once
        for again in dict.fromkeys(r["resolved_path"] or r["path"] for r in report.quarantined):
            print(f"  {safe(again)}", file=out)
    return 0


def _seal_report(store_dir: str | os.PathLike[str], path: Path, fmt: str, head: str) -> None:
    """Record a written report in the store's ledger: its path, SHA-256 and the chain head
    it quotes. A store that cannot be written (read-only evidence) is left as it is."""
    from datetime import UTC, datetime

    from loaders.store.store import Store, StoreBusy, StoreUnusable, sha256_file

    store = Store(store_dir)
    run = "report-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    try:
        with store.write_lock(run):
            store.seal("report", run, note={"path": str(path.resolve()), "format": fmt,
                                            "sha256": sha256_file(path), "quotes_head": head})
    except (StoreBusy, StoreUnusable) as exc:
        print(f"auditlens: the report was not recorded in the store's ledger: {exc}",
              file=sys.stderr)


# --- detect ---------------------------------------------------------------------------

_SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")


def _load_config(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    import tomllib

    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"no config file {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from None
    unknown = set(data) - {"detect", "params"}
    if unknown:
        raise UsageError(f"{path}: unknown sections {sorted(unknown)}; use [detect] and "
                         "[params.<detector>]")
    return data


def _detect_params(config: dict[str, Any], items: Sequence[str]) -> dict[str, dict[str, Any]]:
    params: dict[str, dict[str, Any]] = {}
    for det, values in (config.get("params") or {}).items():
        if not isinstance(values, dict):
            raise UsageError(f"[params.{det}] must be a table of parameter = value")
        params.setdefault(det, {}).update(values)
    for item in items:
        key, sep, value = item.partition("=")
        det, dot, name = key.partition(".")
        if not sep or not dot or not det or not name:
            raise UsageError(f"--param wants DETECTOR.NAME=VALUE, not {item!r}")
        params.setdefault(det, {})[name] = value
    return params


def cmd_detect_list(out: TextIO) -> int:
    from analysis.detect.base import registry_table

    rows = registry_table()
    _table([[r["name"], r["version"], r["kind"], ",".join(r["attack"]),
             ", ".join(f"{k}={v}" for k, v in r["params"].items()), r["title"]]
            for r in rows], ["detector", "version", "kind", "att&ck", "parameters", "what"],
           out)
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    if args.list:
        return cmd_detect_list(sys.stdout)
    from analysis.detect.base import run_detectors
    from analysis.findings import findings_table, save_run, write_findings
    from analysis.identities import NO_ALIASES, Identities
    from analysis.scope import EmptyStore, Scope, utc
    from loaders.store.store import Store, StoreBusy

    config = _load_config(args.config)
    section = config.get("detect") or {}
    only = args.only or section.get("only")
    skip = args.skip or section.get("skip")
    ident_path = args.identities or section.get("identities")
    try:
        identities = Identities.load(ident_path) if ident_path else NO_ALIASES
        params = _detect_params(config, args.param)
        scope = Scope(args.store, start=args.since or section.get("since"),
                      end=args.until or section.get("until"),
                      sources=_split(args.sources) or section.get("sources"),
                      where=args.where or section.get("where"))
        baseline = utc(args.baseline_start or section.get("baseline_start"))
        extra = _sigma_detectors(args.rules)
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if not Store(args.store).exists():
        print(f"auditlens: no store at {safe(args.store)}; create one with "
              "`auditlens ingest PATH --store DIR`", file=sys.stderr)
        return 1
    bar = _DetectBar()
    try:
        result = run_detectors(scope, only=only, skip=skip, params=params,
                               identities=identities, baseline_start=baseline,
                               progress=bar.step, extra=extra)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except EmptyStore as exc:
        print(f"auditlens: {exc}", file=sys.stderr)
        return 1
    finally:
        bar.close()
    try:
        run_id = save_run(args.store, result)
    except StoreBusy as exc:
        print(f"auditlens: {exc}", file=sys.stderr)
        return 1
    out = sys.stdout
    _print_detect_summary(result, run_id, out)
    if args.out:
        frame = findings_table(result.findings, run_id, result.params).to_pandas()
        try:
            path = write_findings(frame, args.out)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        print(f"findings written to {safe(path)}", file=out)
    if result.failed:
        print(f"auditlens: {len(result.failed)} detectors failed: "
              + ", ".join(f"{d.name} ({safe(d.message)})" for d in result.failed),
              file=sys.stderr)
        return 1
    return 0


def _sigma_detectors(paths: list[str] | None) -> list[Any]:
    """The ``--rules`` as one detector (none without ``--rules``); says what was skipped."""
    if not paths:
        return []
    from analysis.detect.sigma.engine import load_rules, sigma_detector

    rules = load_rules(paths)
    corr = f", {len(rules.correlations)} correlations" if rules.correlations else ""
    print(f"sigma: {len(rules.rules)} rules{corr} loaded, {len(rules.skipped)} skipped"
          + "".join(f"; {n} {safe(why)}" for why, n in rules.skip_reasons().items()),
          file=sys.stderr)
    return [sigma_detector(rules)]


def cmd_rules_check(args: argparse.Namespace) -> int:
    from analysis.detect.sigma.engine import check_rules

    try:
        rows = check_rules(args.path)
    except OSError as exc:
        raise UsageError(str(exc)) from None
    out = sys.stdout
    _table([[safe(r.rule_id or "-"), "yes" if r.parses else "no",
             "yes" if r.converts else "no", "yes" if r.runs else "no",
             safe(r.title)[:50], safe(r.reason)[:80]] for r in rows],
           ["rule", "parses", "converts", "runs", "title", "reason"], out)
    print(f"{len(rows)} rules: {sum(r.parses for r in rows)} parse, "
          f"{sum(r.converts for r in rows)} convert, {sum(r.runs for r in rows)} run",
          file=out)
    return 0


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


class _DetectBar:
    """One line per detector on a terminal (tqdm), silent otherwise."""

    def __init__(self) -> None:
        self.bar: Any = None

    def step(self, name: str, index: int, total: int) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="detector", desc="detect", file=sys.stderr,
                            disable=not sys.stderr.isatty(), leave=False, dynamic_ncols=True)
        self.bar.n = index
        self.bar.set_postfix_str(name, refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _print_detect_summary(result: Any, run_id: str, out: TextIO) -> None:
    from collections import Counter

    counts = Counter(f.severity for f in result.findings)
    print(f"detection run {run_id}: {len(result.findings)} findings ("
          + ", ".join(f"{counts[s]} {s}" for s in _SEVERITY_ORDER if counts[s]) + ")"
          if result.findings else f"detection run {run_id}: no findings", file=out)
    print(file=out)
    by = Counter((f.detector, f.severity) for f in result.findings)
    _table([[d.name, d.status, *(str(by[(d.name, s)]) for s in _SEVERITY_ORDER),
             f"{d.seconds:.2f}s", d.message[:60]] for d in result.detectors],
           ["detector", "status", *_SEVERITY_ORDER, "runtime", "note"], out)
    top = [f for f in result.findings if f.severity in ("critical", "high", "medium")]
    if top:
        print("\nfindings of medium severity and above:", file=out)
        _table([[f.severity, str(f.first_seen)[:19], f.detector, f.entity, f.title]
                for f in sorted(top, key=lambda f: (_SEVERITY_ORDER.index(f.severity),
                                                    f.first_seen))],
               ["severity", "first seen (UTC)", "detector", "entity", "title"], out)
    print("\nread them: auditlens detect --out findings.csv, or "
          "analysis.read_findings(STORE) in Python", file=out)


# --- report and demo ------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from analysis.findings import read_runs
    from analysis.report.model import build_report
    from analysis.report.render import format_of, render
    from loaders.store.store import Store, StoreBusy

    try:
        fmt = format_of(args.out)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.window_hours <= 0:
        raise UsageError("--window-hours must be positive")
    if not Store(args.store).exists():
        print(f"auditlens: no store at {safe(args.store)}; create one with "
              "`auditlens ingest PATH --store DIR`", file=sys.stderr)
        return 1
    if read_runs(args.store).empty:
        print("auditlens: the store has no findings yet; running the detectors first",
              file=sys.stderr)
    try:
        report = build_report(args.store, start=args.since, end=args.until,
                              principal=args.principal, ip=args.ip, incident=args.incident,
                              window=timedelta(hours=args.window_hours))
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except StoreBusy as exc:
        print(f"auditlens: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(report, fmt), encoding="utf-8")
    _seal_report(args.store, out, fmt, report["chain_head"])
    print(f"report: {len(report['incidents'])} incidents; written to {safe(out)}")
    print(f"store chain head quoted: {report['chain_head']}")
    for s in report["incidents"]:
        print(f"  {s['incident_id']}  {s['severity']:<8}  {safe(s['title'])}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import shutil

    from analysis.detect.base import run_detectors
    from analysis.findings import save_run
    from analysis.report.model import build_report
    from analysis.report.render import Format, render
    from analysis.scope import Scope
    from loaders.base import LoadOptions
    from loaders.ingest.pipeline import ingest
    from loaders.store.store import Store

    samples = Path(args.samples)
    if not samples.is_dir():
        raise UsageError(f"no data-samples directory at {samples}")
    out_dir = Path(args.out_dir)
    store = out_dir / "demo-store"
    shutil.rmtree(store, ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    ingest_report = ingest(Store(store), [samples], options=LoadOptions(year=2026), jobs=2)
    print_ingest_summary(ingest_report, sys.stdout)
    result = run_detectors(Scope(store))
    run_id = save_run(store, result)
    _print_detect_summary(result, run_id, sys.stdout)
    report = build_report(store, run=run_id)
    paths = []
    formats: tuple[Format, ...] = ("html", "md", "json")
    for fmt in formats:
        path = out_dir / f"demo-report.{fmt}"
        path.write_text(render(report, fmt), encoding="utf-8")
        _seal_report(store, path, fmt, report["chain_head"])
        paths.append(path)
    print(f"\nreport: {len(report['incidents'])} incidents")
    for s in report["incidents"]:
        print(f"  {s['incident_id']}  {s['severity']:<8}  {safe(s['title'])}")
    print(f"\nThe incident report: {paths[0]}  (also {paths[1].name}, {paths[2].name})")
    return 0 if ingest_report.ok and not result.failed else 1


# --- parser ---------------------------------------------------------------------------


def _version() -> str:
    from loaders.store.store import tool_version

    return tool_version()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="auditlens",
        description="Security incident forensics: load cloud, host and Kubernetes logs into "
                    "one Parquet evidence store and query it.",
    )
    parser.add_argument("--version", action="version",
                        version=f"auditlens {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def with_store(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--store", default=DEFAULT_STORE, metavar="DIR",
                       help=f"evidence store directory (default: ./{DEFAULT_STORE})")
        return p

    p = with_store(sub.add_parser("ingest", help="load files, directories and archives",
                                  description="Load evidence files into the store. Files "
                                  "already stored are skipped; repeated events are counted "
                                  "as duplicates."))
    p.add_argument("paths", nargs="+", metavar="PATH", help="files, directories, archives")
    p.add_argument("--format", metavar="NAME", help="force a loader (see `auditlens sources`)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="parse N files in parallel processes (default 1; with 1, a large "
                   "audit.log is mapped in a helper process, on a second core)")
    p.add_argument("--year", type=int, help="year for syslog timestamps that have none "
                   "(default: from the file's modification time)")
    p.add_argument("--tz", metavar="ZONE", help="the zone of times written without one "
                   "(RFC 3164 syslog, a collector's local time): an IANA name such as "
                   "Europe/Moscow, UTC, or an offset such as +03:00 (default: such times "
                   "are taken as UTC and each record says so in parse_warning)")
    p.add_argument("--tz-for", action="append", default=[], metavar="PATTERN=ZONE",
                   help="the zone of the files matching PATTERN (a file name such as "
                   "'*.evtx', or a path tail such as 'web1/var/log/*'); first match wins "
                   "over --tz (repeatable)")
    p.add_argument("--map", action="append", default=[], metavar="COLUMN=FIELD",
                   help="map a column of a tabular export to a schema field (repeatable)")
    p.add_argument("--strict", action="store_true",
                   help="exit with status 1 when any input is not recognised or is refused "
                   "(by default such inputs are listed and the run succeeds)")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("sources", help="list the loaders and what each reads")
    p.set_defaults(func=cmd_sources)

    p = with_store(sub.add_parser("info", help="counts per source and day, time range, "
                                  "input files and rejects"))
    p.add_argument("--verify", action="store_true",
                   help="also check every stored file against its recorded SHA-256, the "
                   "ledger's hash chain against the manifest, and re-hash the original "
                   "inputs that are still present")
    p.add_argument("--head", metavar="HASH", help="with --verify: a chain head kept outside "
                   "the store (printed by ingest, info and reports) that must still be in "
                   "the chain")
    p.set_defaults(func=cmd_info)

    p = with_store(sub.add_parser(
        "repair", help="quarantine damaged stored files, rebuild a damaged manifest",
        description="Move every stored file of an input whose part or rejects file is "
        "missing, unreadable or altered — and files no manifest row names — to "
        "<store>/quarantine/<repair id>/, remove those inputs' manifest rows and say which "
        "inputs to ingest again; rebuild a damaged manifest from the ledger. Nothing is "
        "deleted; the repair is sealed in the ledger."))
    p.add_argument("--dry-run", action="store_true", help="only say what would be done")
    p.set_defaults(func=cmd_repair)

    p = with_store(sub.add_parser(
        "detect", help="run the detectors over the store and store their findings",
        description="Run the detectors (login analytics, …) over the store; the findings "
        "are stored beside the events (read them with analysis.read_findings). Baselines "
        "learn only from events before the one judged."))
    p.add_argument("--list", action="store_true", help="print the detector registry and exit")
    p.add_argument("--since", metavar="TIME", help="judge events from this time (UTC ISO 8601)")
    p.add_argument("--until", metavar="TIME", help="judge events before this time")
    p.add_argument("--sources", metavar="A,B", help="only these sources")
    p.add_argument("--where", metavar="SQL", help="your own SQL condition on the events judged")
    p.add_argument("--only", action="append", metavar="DETECTOR", help="run only these "
                   "(repeatable)")
    p.add_argument("--skip", action="append", metavar="DETECTOR", help="skip these (repeatable)")
    p.add_argument("--param", action="append", default=[], metavar="DETECTOR.NAME=VALUE",
                   help="set a detector parameter (repeatable; see --list)")
    p.add_argument("--config", metavar="FILE", help="TOML: [detect] only/skip/since/until/"
                   "sources/identities/baseline_start, [params.DETECTOR] name = value")
    p.add_argument("--identities", metavar="FILE", help="alias table (CSV alias,principal"
                   "[,kind] or TOML [aliases])")
    p.add_argument("--baseline-start", metavar="TIME", help="baselines learn only from "
                   "events after this time (default: every earlier event)")
    p.add_argument("--out", metavar="FILE", help="also write the findings to .parquet, "
                   ".csv or .json")
    p.add_argument("--rules", action="append", metavar="PATH",
                   help="also run the Sigma rules of this file or folder (repeatable)")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("rules", help="Sigma rules: check that they parse, convert and run")
    rsub = p.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    p = rsub.add_parser("check", help="per rule: parses, converts, runs against the schema")
    p.add_argument("path", nargs="+", metavar="PATH", help="rule files or folders")
    p.set_defaults(func=cmd_rules_check)

    p = with_store(sub.add_parser(
        "report", help="write the incident report (HTML, Markdown or JSON)",
        description="Group the latest detection run's findings into incidents and write the "
        "report: summary, timeline, entities, findings with their evidence traced to file, "
        "SHA-256 and line, recommended actions, and an appendix of inputs, rejects, "
        "coverage and detectors. Runs the detectors first if the store has no findings."))
    p.add_argument("--out", required=True, metavar="FILE", help="report.html, .md or .json")
    p.add_argument("--since", metavar="TIME", help="only findings from this time (UTC)")
    p.add_argument("--until", metavar="TIME", help="only findings before this time")
    p.add_argument("--principal", metavar="P", help="only incidents involving this principal")
    p.add_argument("--ip", metavar="IP", help="only incidents involving this address")
    p.add_argument("--incident", metavar="ID", help="only this incident")
    p.add_argument("--window-hours", type=float, default=6.0, metavar="H",
                   help="findings sharing an entity at most H hours apart are one incident "
                   "(default 6)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo", help="ingest data-samples/, detect, and write the report",
                       description="Ingest data-samples/ into a fresh store under --out-dir, "
                       "run the detectors and write the incident report there.")
    p.add_argument("--samples", default="data-samples", metavar="DIR",
                   help="the samples directory (default: ./data-samples)")
    p.add_argument("--out-dir", default="out", metavar="DIR",
                   help="where the store and the report go (default: ./out)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``auditlens`` console script."""
    from loaders.store.store import Store, StoreDamaged, StoreUnusable

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "store", None) is not None:
            Store(args.store).check_path()
        return int(args.func(args))
    except UsageError as exc:
        print(f"auditlens {args.command}: {exc}", file=sys.stderr)
        return 2
    except StoreUnusable as exc:
        print(f"auditlens {args.command}: {exc}", file=sys.stderr)
        return 2
    except StoreDamaged as exc:
        print(f"auditlens {args.command}: {exc}", file=sys.stderr)
        return 1
    except PermissionError as exc:
        where = f" in the store {args.store}" if getattr(args, "store", None) else ""
        print(f"auditlens {args.command}: cannot read {exc.filename or 'a file'}{where}: "
              "permission denied; run as a user who may read it, or copy the store",
              file=sys.stderr)
        return 2
    except BrokenPipeError:  # piped into a command that stopped reading, e.g. `| head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("auditlens: interrupted; run the same command again to finish", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
