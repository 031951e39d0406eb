"""selectel_auth: authorization-log exports (CSV in English and Russian, JSON)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import loaders
from loaders.base import LoadOptions
from loaders.ingest.runner import NO_ZONE_WARNING
from loaders.parsing.inputs import read_head
from loaders.selectel_auth.headers import (
    MissingColumnsError,
    match_columns,
    parse_time,
    result_outcome,
)
from loaders.selectel_auth.loader import LOADER

DIR = Path(__file__).parent / "fixtures" / "selectel-auth"
CHROME = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like "
          "Gecko) Chrome/129.0.0.0 Safari/537.36")
SAME = ["timestamp", "category", "action", "outcome", "user", "src_ip", "user_agent",
        "parse_warning", "source_line"]


def _counts(result: loaders.LoadResult) -> tuple[int, int, int, int]:
    c = result.counts
    return c.read, c.loaded, c.rejected, c.duplicate


def test_english_csv_full_record() -> None:
    result = loaders.load(DIR / "auth-log-en.csv")
    assert result.source == "selectel_auth"
    assert _counts(result) == (6, 5, 1, 0)
    assert result.rejects[["source_line", "reason"]].values.tolist() == [[
        7, "unreadable time 'yesterday' (expected ISO 8601, DD.MM.YYYY HH:MM[:SS] or "
           "epoch seconds)"]]
    row = result.events.iloc[1]
    assert row["timestamp"] == pd.Timestamp("2025-10-14 08:16:39", tz="UTC")
    assert (row["category"], row["action"], row["outcome"]) == (
        "authentication", "login", "failure")
    assert (row["user"], row["src_ip"], row["user_agent"]) == (
        "alice@example.com", "198.51.100.23", CHROME)
    assert row["message"] == ("alice@example.com login to the control panel from "
                              "198.51.100.23 -> Failed: wrong password")
    assert row["selectel_login_result"] == "Failed: wrong password"
    # the panel's CSV writes its times without a zone: taken as UTC, and each record says so
    assert pd.isna(row["selectel_login_other"]) and row["parse_warning"] == NO_ZONE_WARNING
    assert row["source_line"] == 3
    assert row["raw"] == f'2025-10-14 08:16:39,alice@example.com,198.51.100.23,"{CHROME}",' \
                         "Failed: wrong password"
    # IPv6 is canonicalised; "unknown" is a placeholder for "no address", not damage
    assert result.events["src_ip"].tolist()[3] == "2001:db8::17"
    assert pd.isna(result.events["src_ip"][4])
    assert result.events["parse_warning"][4] == NO_ZONE_WARNING  # the placeholder is no damage


def test_russian_csv_loads_the_same_as_english() -> None:
    en = loaders.load(DIR / "auth-log-en.csv")
    ru = loaders.load(DIR / "auth-log-ru.csv")
    assert _counts(ru) == (6, 5, 1, 0)
    same = [c for c in SAME if c != "parse_warning"]
    pd.testing.assert_frame_equal(en.events[same], ru.events[same])
    # the Russian export writes one time with its offset (+03:00): only that one is zoned
    assert [None if pd.isna(w) else w for w in ru.events["parse_warning"]] == [
        NO_ZONE_WARNING, NO_ZONE_WARNING, NO_ZONE_WARNING, None, NO_ZONE_WARNING]
    assert ru.events["selectel_login_result"].tolist() == [
        "Успешно", "Неуспешно: неверный пароль", "Неуспешно: неверный пароль", "Успешно",
        "Успешно"]
    assert ru.events["outcome"].tolist() == [
        "success", "failure", "failure", "success", "success"]
    assert ru.rejects["source_line"].tolist() == [7]


def test_json_export() -> None:
    result = loaders.load(DIR / "auth-log.json")
    assert _counts(result) == (5, 5, 0, 0)
    en = loaders.load(DIR / "auth-log-en.csv")
    cols = [c for c in SAME if c not in ("source_line", "parse_warning")]
    pd.testing.assert_frame_equal(en.events[cols], result.events[cols])
    assert result.events["parse_warning"].isna().all()  # its times carry their zone (Z)
    assert result.events["source_line"].tolist() == [2, 10, 18, 26, 34]
    assert result.events["selectel_login_other"][0] == '{"location": "Saint Petersburg, RU"}'
    assert result.events["selectel_login_result"].tolist()[:2] == ["success", "failed"]


def test_missing_columns_fail_the_file_with_found_and_expected(tmp_path: Path) -> None:
    path = tmp_path / "logins.csv"
    path.write_text("Когда;Откуда;Кто\n14.10.2025 08:14:55;203.0.113.7;alice\n",
                    encoding="utf-8")
    result = loaders.load(path, format="selectel_auth")
    assert result.status == "failed"
    assert _counts(result) == (0, 0, 0, 0)
    assert result.error is not None
    message = result.error
    assert "Columns found: 'Когда', 'Откуда', 'Кто'" in message
    assert "no recognisable time and IP columns" in message
    assert "a time column (one of: Timestamp" in message and "Дата" in message
    assert "an IP column (one of: IP, IP address, IP-адрес" in message
    assert "--map column=field" in message and "--map 'Когда=timestamp'" in message
    with pytest.raises(MissingColumnsError):
        match_columns(["Когда", "Откуда"])


def test_user_mapping(tmp_path: Path) -> None:
    path = tmp_path / "logins.csv"
    path.write_text("Когда;Откуда;Кто\n14.10.2025 08:14:55 MSK;203.0.113.7;alice\n",
                    encoding="utf-8")
    opts = LoadOptions(mapping={"Когда": "timestamp", "Откуда": "src_ip", "кто": "user"})
    result = loaders.load(path, format="selectel_auth", options=opts)
    assert _counts(result) == (1, 1, 0, 0)
    row = result.events.iloc[0]
    assert (row["timestamp"], row["src_ip"], row["user"]) == (
        pd.Timestamp("2025-10-14 05:14:55", tz="UTC"), "203.0.113.7", "alice")
    bad = loaders.load(path, format="selectel_auth",
                       options=LoadOptions(mapping={"Когда": "when"}))
    assert bad.status == "failed" and "unknown field 'when'" in (bad.error or "")
    absent = loaders.load(path, format="selectel_auth",
                          options=LoadOptions(mapping={"Дата": "timestamp"}))
    assert "the file has no column 'Дата'" in (absent.error or "")


def test_tab_cp1251_separate_date_and_time(tmp_path: Path) -> None:
    path = tmp_path / "export.tsv"
    text = ("Дата\tВремя\tЛогин\tIP\tСтатус\n"
            "14.10.2025\t08:14:55\talice\t203.0.113.7\tОшибка входа\n")
    path.write_bytes(text.encode("cp1251"))
    assert LOADER.sniff(read_head(path), path.name)
    result = loaders.load(path)
    assert _counts(result) == (1, 1, 0, 0)
    row = result.events.iloc[0]
    assert (row["timestamp"], row["user"], row["outcome"]) == (
        pd.Timestamp("2025-10-14 08:14:55", tz="UTC"), "alice", "failure")


def test_excel_sep_line_and_quoted_newline(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text('sep=;\r\nTime;Email;IP address;User agent;Result\r\n'
                    '2025-10-14T08:14:55+03:00;a@b.c;10.0.0.1;"multi\r\nline";OK\r\n'
                    '2025-10-14T08:15:55Z;a@b.c;10.0.0.1;curl;denied\r\n', encoding="utf-8")
    result = loaders.load(path)
    assert _counts(result) == (2, 2, 0, 0)
    assert result.events["source_line"].tolist() == [3, 5]
    assert result.events["user_agent"][0] == "multi\r\nline"
    assert result.events["outcome"].tolist() == ["success", "denied"]
    assert result.events["timestamp"][0] == pd.Timestamp("2025-10-14 05:14:55", tz="UTC")


@pytest.mark.parametrize(("value", "expected"), [
    ("Success", "success"), ("Успешно", "success"), ("Неуспешно", "failure"),
    ("Failed: wrong password", "failure"), ("Неверный пароль", "failure"),
    ("Заблокирован", "denied"), ("true", "success"), ("maybe", "unknown"), (None, "unknown"),
])
def test_result_values(value: str | None, expected: str) -> None:
    assert result_outcome(value) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("14.10.2025 08:14:55", "2025-10-14T08:14:55+00:00"),
    ("14.10.2025, 11:14 +0300", "2025-10-14T08:14:00+00:00"),
    ("2025-10-14 08:14", "2025-10-14T08:14:00+00:00"),
    ("1760429695", "2025-10-14T08:14:55+00:00"),
])
def test_time_forms(text: str, expected: str) -> None:
    assert parse_time(text).isoformat() == expected


def test_sniff_is_specific(tmp_path: Path) -> None:
    for path in DIR.glob("*"):
        if path.suffix != ".tsv":
            assert LOADER.sniff(read_head(path), path.name), path.name
    no_ip = tmp_path / "no_ip.csv"
    no_ip.write_text("Date,User,Browser,Result\n2025-10-14,a,b,c\n")
    assert not LOADER.sniff(read_head(no_ip), no_ip.name)
    for other in (Path(__file__).parent / "fixtures").rglob("*"):
        if other.is_file() and "selectel-auth" not in str(other) and other.suffix != ".tsv":
            assert not LOADER.sniff(read_head(other), other.name), other
