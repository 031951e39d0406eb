"""Issue 19, the rough edges: a store inside the input folder is not read as evidence,
``--year`` has sane bounds, ``auditlens --version``."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from analysis.cli import main
from loaders.base import LoadOptions
from loaders.ingest.pipeline import ingest
from loaders.store.read import read_manifest
from loaders.store.store import Store, tool_version

AUTH = Path(__file__).parent / "fixtures/linux-auth/plaso_syslog_ssh.log"


def test_a_store_inside_the_inputs_is_not_read(tmp_path: Path) -> None:
    case = tmp_path / "case"
    case.mkdir()
    shutil.copy(AUTH, case / "auth.log")
    store = Store(case / "store")  # the store lives in the folder being ingested
    first = ingest(store, [case])
    assert [(f.path, f.status) for f in first.files] == [(str(case / "auth.log"), "ingested")]
    other = case / "old-store"
    shutil.copytree(store.root, other)  # another auditlens store among the inputs
    (case / "auth2.log").write_bytes(AUTH.read_bytes() + b"\n")
    second = ingest(store, [case])
    outcomes = {f.path: (f.status, f.message) for f in second.files}
    assert outcomes[str(case / "auth.log")][0] == "skipped"  # already stored
    assert outcomes[str(case / "auth2.log")][0] == "ingested"
    n_other = sum(1 for p in other.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.parts))
    assert outcomes[str(other)] == ("skipped", f"an auditlens evidence store, not evidence: "
                                    f"its {n_other:,} files were not read")
    assert len(second.files) == 3  # the store written to is left out without a word
    assert sorted(read_manifest(store)["path"]) == [str(case / "auth.log"),
                                                   str(case / "auth2.log")]


def test_year_bounds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    latest = datetime.now(UTC).year + 1
    for year in (99999, 1969, latest + 1, 0, -5):
        assert main(["ingest", str(AUTH), "--store", str(tmp_path / "s"), "--year",
                     str(year)]) == 2
        assert (f"year {year} is out of range: syslog without a year is taken to be from "
                f"1970 to {latest}") in capsys.readouterr().err
        with pytest.raises(ValueError, match="out of range"):
            LoadOptions(year=year).check()
    assert not (tmp_path / "s").exists()
    assert main(["ingest", str(AUTH), "--store", str(tmp_path / "s"), "--year", "2015"]) == 0


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"auditlens {tool_version()}\n"
