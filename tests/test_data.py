from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import TINY_CORPUS
from training.data import DataValidationError, load_dataset


def _jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows)
        + "\n",
        encoding="utf-8",
    )
    return path


def _good_rows() -> list[dict[str, object]]:
    return [{"id": f"t{i}", "text": t, "labels": ls} for i, (t, ls) in enumerate(TINY_CORPUS)]


def _problems(paths: list[Path], **kw: object) -> list[str]:
    with pytest.raises(DataValidationError) as info:
        load_dataset(paths, **kw)
    return [str(p) for p in info.value.problems]


def test_valid_jsonl(tmp_path: Path) -> None:
    ds = load_dataset([_jsonl(tmp_path / "a.jsonl", _good_rows())])
    assert len(ds) == len(TINY_CORPUS)
    assert ds.labels == ("diplomacy", "election_interference", "sanctions")
    assert ds.label_counts["(none)"] == 11
    again = load_dataset([_jsonl(tmp_path / "b.jsonl", _good_rows())])
    assert again.digest == ds.digest


def test_every_problem_reported_with_file_and_line(tmp_path: Path) -> None:
    rows: list[object] = list(_good_rows())
    rows[2] = "{not json"
    rows[4] = {"id": "x4", "labels": []}
    rows[5] = {"id": "x5", "text": 42, "labels": []}
    rows[6] = {"id": "x6", "text": "   ", "labels": []}
    rows[7] = {"id": "x7", "text": "نص", "labels": "diplomacy"}
    rows[8] = {"id": "t0", "text": "نص مكرر المعرف", "labels": []}
    rows[9] = {"id": "x9", "text": "نص", "labels": ["diplomacy", 3]}
    rows[10] = [1, 2]
    path = _jsonl(tmp_path / "bad.jsonl", rows)
    problems = _problems([path])
    p = str(path)
    expected = [
        f"{p}:3: malformed JSON",
        f"{p}:5: missing field 'text'",
        f"{p}:6: field 'text' must be a string, got int",
        f"{p}:7: field 'text' is empty",
        f"{p}:9: duplicate id 't0' (first at {p}:1)",
        f"{p}:10: label 3 is not a non-empty string",
        f"{p}:11: expected a JSON object, got list",
    ]
    for fragment in expected:
        assert any(pr.startswith(fragment) for pr in problems), (fragment, problems)
    # a plain string is read as a |-separated list, as in CSV, so row 8 is valid
    assert not any(pr.startswith(f"{p}:8:") for pr in problems)


def test_rare_label_rejected(tmp_path: Path) -> None:
    rows = _good_rows()
    rows[0]["labels"] = ["propaganda"]
    problems = _problems([_jsonl(tmp_path / "a.jsonl", rows)])
    assert any("label 'propaganda' is used 1 time(s)" in pr for pr in problems)


def test_csv_with_json_and_pipe_labels(tmp_path: Path) -> None:
    import csv

    path = tmp_path / "a.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "text", "labels"])
        for i, (text, labels) in enumerate(TINY_CORPUS):
            cell = json.dumps(labels) if i % 2 else "|".join(labels)
            writer.writerow([f"c{i}", text, cell])
    ds = load_dataset([path])
    assert [r.labels for r in ds.records] == [tuple(ls) for _, ls in TINY_CORPUS]
    assert ds.records[3].line == 5


def test_csv_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("id,body\n1,نص\n", encoding="utf-8")
    assert any("CSV header needs 'text' and 'labels'" in p for p in _problems([path]))


def test_bom_accepted_and_bad_utf8_located(tmp_path: Path) -> None:
    good = _jsonl(tmp_path / "a.jsonl", _good_rows())
    good.write_bytes(b"\xef\xbb\xbf" + good.read_bytes())
    assert len(load_dataset([good])) == len(TINY_CORPUS)
    lines = good.read_bytes().split(b"\n")
    lines[3] = '{"id": "w", "text": "نص", "labels": []}'.encode("cp1256")
    bad = tmp_path / "b.jsonl"
    bad.write_bytes(b"\n".join(lines))
    problems = _problems([bad])
    assert any(p.startswith(f"{bad}:4: not valid UTF-8") for p in problems)


def test_several_files_and_duplicates_across_them(tmp_path: Path) -> None:
    rows = _good_rows()
    a = _jsonl(tmp_path / "a.jsonl", rows[:20])
    b = _jsonl(tmp_path / "b.jsonl", rows[20:])
    assert len(load_dataset([a, b])) == len(rows)
    c = _jsonl(tmp_path / "c.jsonl", rows[:1])
    problems = _problems([a, b, c])
    assert any(p.startswith(f"{c}:1: duplicate id 't0' (first at {a}:1)") for p in problems)


def test_missing_file(tmp_path: Path) -> None:
    assert any("no such file" in p for p in _problems([tmp_path / "nope.jsonl"]))


def test_unknown_label_named_with_line(tmp_path: Path) -> None:
    rows = _good_rows()
    rows[3]["labels"] = ["sanction"]  # a typo must not become a label of its own
    path = _jsonl(tmp_path / "a.jsonl", rows)
    known = {"diplomacy", "election_interference", "sanctions"}
    problems = _problems([path], known_labels=known)
    assert any(
        p.startswith(f"{path}:4: unknown label 'sanction' (known: diplomacy,") for p in problems
    )
    assert len(load_dataset([_jsonl(tmp_path / "b.jsonl", _good_rows())], known_labels=known)) == 40


@pytest.mark.slow
def test_huge_file_reports_the_right_line(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    good = json.dumps({"text": "نص قصير عن الاقتصاد المحلي", "labels": []}, ensure_ascii=False)
    labelled = json.dumps(
        {"text": "فرضت عقوبات على مصرف", "labels": ["sanctions"]}, ensure_ascii=False
    )
    with path.open("w", encoding="utf-8") as fh:
        for i in range(200_000):
            fh.write((labelled if i % 10 == 0 else good) + "\n")
            if i == 187_654:
                fh.write('{"text": "نص", "labels": [}\n')
    problems = _problems([path])
    assert problems == [f"{path}:187656: malformed JSON: Expecting value at column 27"]
