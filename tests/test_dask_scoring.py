"""Batch scoring and the search on a real local Dask cluster of two worker processes.

Scoring gives exactly the labels of in-process prediction, in input order, loads the model once
per worker, and resumes after a crash by computing only the missing partitions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import mlflow
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from distributed import Client, LocalCluster
from typer.testing import CliRunner

import training.scoring as scoring
from classifier import ModelConfig, NarrativeClassifier, Prediction, save_model
from tests.conftest import ROOT, TINY_CORPUS, mlflow_state_kept
from training import tracking
from training.cli import app
from training.config import TrainConfig
from training.data import load_dataset
from training.scoring import ScoreOptions, ScoringError, score_corpus
from training.search import run_search
from training.train import train

pytestmark = pytest.mark.slow

ROWS = 20_000
SEED_CORPUS = ROOT / "seeds" / "corpus.jsonl"


@pytest.fixture(autouse=True)
def _mlflow_globals() -> Iterator[None]:
    with mlflow_state_kept():
        yield


@pytest.fixture(scope="module")
def cluster() -> Iterator[Client]:
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as local,
        Client(local) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def model_dir(tiny_model: NarrativeClassifier, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("model") / "classifier"
    save_model(tiny_model, folder)
    return folder


@pytest.fixture(scope="module")
def passages() -> list[str]:
    """The tiny corpus and the seed corpus: varied passages, some long, some short."""
    seeds = [json.loads(line)["text"] for line in SEED_CORPUS.read_text("utf-8").splitlines()]
    return [t for t, _ in TINY_CORPUS] + seeds


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def _rows(passages: list[str], n: int, prefix: str = "r") -> list[dict[str, Any]]:
    return [{"id": f"{prefix}{i}", "text": passages[i % len(passages)]} for i in range(n)]


def _read_output(folder: Path) -> pa.Table:
    """The partition files in name order, which is the input order."""
    parts = sorted(folder.glob("part-*.parquet"))
    return pa.concat_tables([pq.read_table(p) for p in parts])


def _expected(clf: NarrativeClassifier, texts: list[str]) -> list[Prediction]:
    # Prediction is row by row, so predicting each distinct text once gives every row's result.
    unique = sorted(set(texts))
    by_text = dict(zip(unique, clf.predict(unique), strict=True))
    return [by_text[t] for t in texts]


def _assert_same(table: pa.Table, clf: NarrativeClassifier, texts: list[str]) -> None:
    expected = _expected(clf, texts)
    assert table.column("labels").to_pylist() == [list(p.labels) for p in expected]
    assert table.column("primary").to_pylist() == [p.primary for p in expected]
    assert table.column("warnings").to_pylist() == [list(p.warnings) for p in expected]
    for label in clf.labels:
        assert table.column(f"score_{label}").to_pylist() == [p.scores[label] for p in expected]


def test_scoring_matches_in_process_prediction_in_order(
    cluster: Client,
    model_dir: Path,
    tiny_model: NarrativeClassifier,
    passages: list[str],
    tmp_path: Path,
) -> None:
    rows = _rows(passages, ROWS)
    source = _write_jsonl(tmp_path / "corpus.jsonl", rows)
    out = tmp_path / "scored"
    outcome = score_corpus(
        cluster, str(source), str(out), model_dir, ScoreOptions(partition_size=1000)
    )
    assert outcome.partitions >= 10
    assert outcome.computed == tuple(range(outcome.partitions))
    assert (outcome.rows, outcome.scored, outcome.empty, outcome.workers) == (ROWS, ROWS, 0, 2)

    names = sorted(p.name for p in out.glob("part-*.parquet"))
    assert names == [f"part-{i:06d}.parquet" for i in range(outcome.partitions)]
    table = _read_output(out)
    assert table.column("id").to_pylist() == [r["id"] for r in rows]
    _assert_same(table, tiny_model, [r["text"] for r in rows])
    # partition and row give the order back once the files are mixed up (e.g. read by an engine)
    order = list(
        zip(table.column("partition").to_pylist(), table.column("row").to_pylist(), strict=True)
    )
    assert order == sorted(order)
    assert json.loads((out / "_SUCCESS").read_text())["rows"] == ROWS

    # Each worker loaded the model once, however many partitions it scored.
    loads = cluster.run(scoring.worker_models)
    sha = json.loads((model_dir / "manifest.json").read_text())["sha256"]
    assert sorted(loads) == sorted(cluster.nthreads())
    assert all(counts[sha] == 1 for counts in loads.values()), loads


def test_parquet_folder_glob_empty_texts_and_missing_ids(
    cluster: Client,
    model_dir: Path,
    tiny_model: NarrativeClassifier,
    passages: list[str],
    tmp_path: Path,
) -> None:
    folder = tmp_path / "archive"
    (folder / "2024").mkdir(parents=True)
    first = _rows(passages, 300, "a")
    texts_b: list[str | None] = [passages[i] for i in range(200)]
    texts_b[5], texts_b[77] = None, "   "
    pq.write_table(pa.Table.from_pylist(first), folder / "2024" / "a.parquet", row_group_size=70)
    # No id column in this file: its ids are null, order still given by partition and row.
    pq.write_table(pa.table({"text": texts_b}), folder / "2024" / "b.parquet", row_group_size=64)
    pq.write_table(pa.table({"text": ["skipped"]}), folder / "_hidden.parquet")
    (folder / "README.txt").write_text("not data", "utf-8")

    out = tmp_path / "scored"
    outcome = score_corpus(
        cluster, str(folder), str(out), model_dir, ScoreOptions(partition_size=120)
    )
    assert outcome.partitions == 3 + 2 and (outcome.rows, outcome.empty) == (500, 2)
    table = _read_output(out)
    assert table.column("id").to_pylist() == [r["id"] for r in first] + [None] * 200
    ok = [i for i in range(500) if i not in (305, 377)]
    texts = [r["text"] for r in first] + texts_b
    _assert_same(table.take(ok), tiny_model, [str(texts[i]) for i in ok])
    empty = table.take([305, 377]).to_pylist()
    for row in empty:
        assert row["labels"] == [] and row["primary"] is None and row["warnings"] == ["empty_text"]
        assert all(row[f"score_{label}"] is None for label in tiny_model.labels)

    again = tmp_path / "again"
    glob = score_corpus(
        cluster, f"{folder}/*/*.parquet", str(again), model_dir, ScoreOptions(partition_size=120)
    )
    assert glob.partitions == 5 and _read_output(again).equals(table)

    # An output folder inside the input folder is never read as input, so a rerun resumes.
    inside = folder / "labelled"
    options = ScoreOptions(partition_size=120)
    assert score_corpus(cluster, str(folder), str(inside), model_dir, options).partitions == 5
    assert score_corpus(cluster, str(folder), str(inside), model_dir, options).computed == ()


def _fail_once(partition: int, marker: str) -> None:
    """Make the given partition fail the first time a worker reads it (a simulated crash)."""
    original = scoring.read_partition

    def failing(part: scoring.Partition, text_column: str, id_column: str) -> Any:
        path = Path(marker)
        if part.index == partition and not path.exists():
            path.touch()
            raise RuntimeError("simulated crash")
        return original(part, text_column, id_column)

    failing.original = original  # type: ignore[attr-defined]
    scoring.read_partition = failing


def _heal() -> None:
    scoring.read_partition = getattr(scoring.read_partition, "original", scoring.read_partition)


def test_resume_computes_only_missing_partitions(
    cluster: Client,
    model_dir: Path,
    tiny_model: NarrativeClassifier,
    passages: list[str],
    tmp_path: Path,
) -> None:
    rows = _rows(passages, 2000)
    source = _write_jsonl(tmp_path / "corpus.jsonl", rows)
    out = tmp_path / "scored"
    options = ScoreOptions(partition_size=200)

    cluster.run(_fail_once, 3, str(tmp_path / "failed-once"))
    try:
        with pytest.raises(
            ScoringError,
            match=r"partition\(s\) failed \(partition 3: RuntimeError: simulated crash\).*rerun",
        ):
            score_corpus(cluster, str(source), str(out), model_dir, options)
    finally:
        cluster.run(_heal)
    written = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert "part-000003.parquet" not in written and len(written) >= 9
    assert not (out / "_SUCCESS").exists()

    resumed = score_corpus(cluster, str(source), str(out), model_dir, options)
    assert resumed.computed == (3,) and resumed.skipped == resumed.partitions - 1
    assert resumed.rows == 2000
    for name, mtime in written.items():
        assert (out / name).stat().st_mtime_ns == mtime, f"{name} was computed again"
    table = _read_output(out)
    assert table.column("id").to_pylist() == [r["id"] for r in rows]
    _assert_same(table, tiny_model, [r["text"] for r in rows])

    # A crash that lost two outputs and left a half-written temporary file behind.
    (out / "part-000001.parquet").unlink()
    (out / "part-000007.parquet").unlink()
    stale = out / ".part-000001.parquet.0123abcd.tmp"
    stale.write_bytes(b"PAR1 half written")
    resumed = score_corpus(cluster, str(source), str(out), model_dir, options)
    assert resumed.computed == (1, 7) and not stale.exists()
    assert _read_output(out).equals(table)
    assert score_corpus(cluster, str(source), str(out), model_dir, options).computed == ()


def test_refusals_are_one_line_reasons(
    cluster: Client, model_dir: Path, passages: list[str], tmp_path: Path
) -> None:
    source = _write_jsonl(tmp_path / "corpus.jsonl", _rows(passages, 300))
    out = tmp_path / "scored"
    score_corpus(cluster, str(source), str(out), model_dir, ScoreOptions(partition_size=100))

    with pytest.raises(ScoringError, match=r"holds another scoring run .*partition size differ"):
        score_corpus(cluster, str(source), str(out), model_dir, ScoreOptions(partition_size=50))
    texts, labels = [t for t, _ in TINY_CORPUS], [ls for _, ls in TINY_CORPUS]
    other = save_model(
        NarrativeClassifier(ModelConfig(cv_folds=3, c=1.0)).fit(texts, labels), tmp_path / "other"
    )
    assert other.sha256 != json.loads((model_dir / "manifest.json").read_text())["sha256"]
    with pytest.raises(ScoringError, match=r"it was started with model .*classifier, not .*other"):
        score_corpus(
            cluster, str(source), str(out), tmp_path / "other", ScoreOptions(partition_size=100)
        )

    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine", "utf-8")
    with pytest.raises(ScoringError, match="is not empty and holds no scoring plan"):
        score_corpus(cluster, str(source), str(tmp_path / "busy"), model_dir)
    with pytest.raises(ScoringError, match="no Parquet or JSONL files at"):
        score_corpus(cluster, str(tmp_path / "nothing.jsonl"), str(tmp_path / "o1"), model_dir)
    with pytest.raises(ScoringError, match=r"has no .body. field .*pass --text-column"):
        score_corpus(
            cluster, str(source), str(tmp_path / "o2"), model_dir, ScoreOptions(text_column="body")
        )

    bad = tmp_path / "bad.jsonl"
    lines = source.read_text("utf-8").splitlines()
    lines[250] = '{"id": "x", "text": '
    bad.write_text("\n".join(lines) + "\n", "utf-8")
    with pytest.raises(
        ScoringError,
        match=r"1 of \d+ partition\(s\) failed \(partition \d+: ScoringError: .*bad.jsonl at byte"
        r" \d+: malformed JSON",
    ):
        score_corpus(
            cluster, str(bad), str(tmp_path / "o3"), model_dir, ScoreOptions(partition_size=100)
        )


def _task_prefixes(dask_scheduler: Any) -> list[str]:
    return list(dask_scheduler.task_prefixes)


def test_search_runs_on_the_cluster_and_logs_nested_runs(cluster: Client, tmp_path: Path) -> None:
    data = _write_jsonl(
        tmp_path / "tiny.jsonl",
        [{"id": f"t{i}", "text": t, "labels": ls} for i, (t, ls) in enumerate(TINY_CORPUS)],
    )
    config = TrainConfig(
        data=(data,),
        experiment="dask-search",
        model=ModelConfig(cv_folds=3),
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        scheduler=cluster.scheduler.address,
    )
    dataset = load_dataset(config.data)
    grid = [replace(config.model, c=c) for c in (0.5, 5.0)]
    tracking.configure(config.tracking_uri)
    messages: list[str] = []
    with tracking.start_run(config.experiment, "search-parent") as parent:
        best = run_search(config, dataset, messages.append, grid)
    assert best.c in (0.5, 5.0)
    assert any("on the Dask cluster at" in m for m in messages)
    children = mlflow.search_runs(
        experiment_names=[config.experiment],
        filter_string=f"tags.mlflow.parentRunId = '{parent}'",
    )
    assert len(children) == 2 and "metrics.cv_macro_f1" in children.columns
    assert mlflow.get_run(parent).data.params["search.backend"] == "dask"
    prefixes = cluster.run_on_scheduler(_task_prefixes)
    assert any("score_candidate" in p for p in prefixes), prefixes


def test_cli_scores_with_the_champion_and_fails_in_one_line(
    cluster: Client, passages: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _write_jsonl(
        tmp_path / "tiny.jsonl",
        [{"id": f"t{i}", "text": t, "labels": ls} for i, (t, ls) in enumerate(TINY_CORPUS)],
    )
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    outcome = train(
        TrainConfig(
            data=(data,), experiment="score", model=ModelConfig(cv_folds=3), tracking_uri=uri
        )
    )
    assert outcome.model is not None
    champion = tracking.load_registered(outcome.model)

    rows = _rows(passages, 500)
    source = _write_jsonl(tmp_path / "corpus.jsonl", rows)
    out = tmp_path / "scored"
    runner = CliRunner()
    address = cluster.scheduler.address
    args = ["score", "--input", str(source), "--output", str(out), "--scheduler", address]
    result = runner.invoke(app, [*args, "--partition-size", "100", "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    assert "500 rows in" in result.stdout and "narrative-classifier v1 (champion)" in result.stdout
    _assert_same(_read_output(out), champion, [r["text"] for r in rows])
    plan = json.loads((out / "_plan.json").read_text())
    assert plan["model"] == "narrative-classifier v1 (champion)"

    result = runner.invoke(app, [*args, "--partition-size", "100", "--tracking-uri", uri])
    assert result.exit_code == 0 and "(0 computed, " in result.stdout

    result = runner.invoke(app, [*args, "--partition-size", "7", "--tracking-uri", uri])
    assert result.exit_code == 1 and "holds another scoring run" in _error_line(result.stderr)

    other = ["--output", str(tmp_path / "o"), "--tracking-uri", uri]
    result = runner.invoke(app, [*args[:3], *other, "--model", "models:/nobody/1"])
    assert result.exit_code == 1 and "cannot download models:/nobody/1" in _error_line(
        result.stderr
    )

    monkeypatch.setattr("training.cluster.CONNECT_TIMEOUT_SECONDS", 1.0)
    result = runner.invoke(app, [*args[:3], *other, "--scheduler", "tcp://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in _error_line(result.stderr)

    result = runner.invoke(app, ["train", "--scheduler", address, "--tracking-uri", uri])
    assert result.exit_code == 1 and "add --search" in _error_line(result.stderr)
    assert runner.invoke(app, ["score", "--help"]).exit_code == 0


def _error_line(stderr: str) -> str:
    """The one error line (progress messages go to stderr too)."""
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]
