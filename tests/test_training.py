"""Training runs into a temporary MLflow store: tracking, registry, promotion gate, CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from classifier import ModelConfig
from tests.conftest import TINY_CORPUS, mlflow_state_kept
from training import tracking
from training.cli import app
from training.config import TrainConfig
from training.data import DataValidationError
from training.lifecycle import ensure_champion, evaluate_model, promote, resolve_model
from training.train import TrainOutcome, train

pytestmark = pytest.mark.slow


SEED_CORPUS = Path(__file__).resolve().parents[1] / "seeds" / "corpus.jsonl"
SUBSET = 6  # every 6th seed passage: enough to learn well, quick to fit


def _write_corpus(path: Path) -> Path:
    lines = SEED_CORPUS.read_text(encoding="utf-8").splitlines()[::SUBSET]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _size(config: TrainConfig) -> int:
    return len(config.data[0].read_text(encoding="utf-8").splitlines())


@pytest.fixture(scope="module", autouse=True)
def _restore_mlflow_env() -> Iterator[None]:
    with mlflow_state_kept():
        yield


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("store")


@pytest.fixture(scope="module")
def config(store: Path) -> TrainConfig:
    return TrainConfig(
        data=(_write_corpus(store / "corpus.jsonl"),),
        experiment="test",
        model=ModelConfig(cv_folds=3),
        tracking_uri=f"sqlite:///{store / 'mlflow.db'}",
        test_size=0.25,
    )


@pytest.fixture(scope="module")
def first(config: TrainConfig) -> TrainOutcome:
    return train(config)


def test_run_records_everything(first: TrainOutcome, config: TrainConfig) -> None:
    tracking.configure(config.tracking_uri)
    run = mlflow.get_run(first.run_id)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["model.c"] == "10.0" and params["split.test_size"] == "0.25"
    metrics = run.data.metrics
    for key in (
        "macro_f1",
        "micro_f1",
        "none_fpr",
        "f1_sanctions",
        "precision_diplomacy",
        "recall_election_interference",
        "cv_macro_f1_mean",
        "cv_macro_f1_std",
        "train_seconds",
        "predict_passages_per_second",
    ):
        assert key in metrics, key
    assert metrics["macro_f1"] == pytest.approx(first.evaluation.macro_f1)
    tags = run.data.tags
    assert tags["data_digest"] and tags["git_commit"]
    assert tags["promotion.decision"] == "promoted"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(first.run_id, "reports")}
    assert {
        "reports/confusion_matrices.png",
        "reports/precision_recall.png",
        "reports/f1_per_label.png",
        "reports/misclassified.csv",
        "reports/model_card.md",
    } <= artifacts
    contexts = {i.tags[0].value for i in run.inputs.dataset_inputs}
    assert contexts == {"training", "evaluation"}
    sizes = {json.loads(i.dataset.profile)["num_rows"] for i in run.inputs.dataset_inputs}
    held_out = first.evaluation.size
    assert sizes == {_size(config) - held_out, held_out}
    # iterative stratification balances labels first, so the split size is close, not exact
    assert abs(held_out - 0.25 * _size(config)) <= 0.02 * _size(config) + 2


def test_version_registered_and_aliased(first: TrainOutcome, config: TrainConfig) -> None:
    tracking.configure(config.tracking_uri)
    assert first.model is not None and first.decision is not None
    assert first.decision.promoted and first.decision.reason == "no champion yet"
    champion = tracking.get_alias(config.model_name)
    assert champion == first.model


def test_pyfunc_model_predicts_labels(first: TrainOutcome, config: TrainConfig) -> None:
    tracking.configure(config.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{config.model_name}@champion")
    frame = model.predict(pd.DataFrame({"text": ["فرضت الخزانة عقوبات على مصرف", "فاز الفريق"]}))
    assert list(frame.columns[:2]) == ["labels", "primary"]
    assert "sanctions" in list(frame.loc[0, "labels"])
    assert 0.0 <= frame.loc[0, "score_sanctions"] <= 1.0
    assert model.metadata.signature is not None


def test_worse_model_does_not_take_alias(first: TrainOutcome, config: TrainConfig) -> None:
    worse = replace(config, model=replace(config.model, c=1e-4, use_char=False))
    outcome = train(worse)
    assert outcome.model is not None and outcome.decision is not None
    assert outcome.evaluation.macro_f1 < first.evaluation.macro_f1
    assert not outcome.decision.promoted
    assert "does not beat" in outcome.decision.reason
    tracking.configure(config.tracking_uri)
    assert tracking.get_alias(config.model_name) == first.model
    run = mlflow.get_run(outcome.run_id)
    assert run.data.tags["promotion.decision"] == "kept champion"


def test_invalid_data_leaves_store_untouched(tmp_path: Path, config: TrainConfig) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "text": "نص", "labels": []}\n{broken\n', encoding="utf-8")
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    with pytest.raises(DataValidationError, match=r"bad.jsonl:2: malformed JSON"):
        train(replace(config, data=(bad,), tracking_uri=uri))
    assert not (tmp_path / "fresh.db").exists()


def test_manual_promotion_and_resolution(first: TrainOutcome, config: TrainConfig) -> None:
    assert first.model is not None
    ref = promote(first.model.version, config.model_name, config.tracking_uri)
    assert ref == first.model
    clf = resolve_model(None, config.model_name, config.tracking_uri)
    assert clf.labels == ("diplomacy", "election_interference", "sanctions")
    with pytest.raises(tracking.TrackingError, match="no version '99'"):
        promote("99", config.model_name, config.tracking_uri)


def test_ensure_champion_keeps_existing(first: TrainOutcome, config: TrainConfig) -> None:
    tracking.configure(config.tracking_uri)
    champion = tracking.get_alias(config.model_name)
    assert ensure_champion(config) == champion


def test_evaluate_logs_an_evaluation_run(first: TrainOutcome, config: TrainConfig) -> None:
    ev = evaluate_model(list(config.data), None, config)
    assert ev.size == _size(config)
    frame = tracking.recent_runs(config.experiment, 50)
    assert "evaluate" in set(frame["tags.kind"])


def test_search_logs_nested_runs(config: TrainConfig) -> None:
    from training.data import load_dataset
    from training.search import run_search

    ds = load_dataset(config.data)
    grid = [replace(config.model, c=c) for c in (0.5, 5.0)]
    tracking.configure(config.tracking_uri)
    with tracking.start_run(config.experiment, "search-parent") as parent:
        best = run_search(replace(config, n_jobs=2), ds, lambda _: None, grid)
    assert best.c in (0.5, 5.0)
    children = mlflow.search_runs(
        experiment_names=[config.experiment],
        filter_string=f"tags.mlflow.parentRunId = '{parent}'",
    )
    assert len(children) == 2
    assert "metrics.cv_macro_f1" in children.columns


def test_cli_commands(first: TrainOutcome, config: TrainConfig, tmp_path: Path) -> None:
    runner = CliRunner()
    uri = ["--tracking-uri", str(config.tracking_uri)]
    result = runner.invoke(
        app, ["predict", "فرضت الخزانة عقوبات على مصرف", "--model-name", config.model_name, *uri]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["labels"] == ["sanctions"]

    source = tmp_path / "in.jsonl"
    source.write_text(
        "\n".join(
            json.dumps({"id": i, "text": t}, ensure_ascii=False)
            for i, (t, _) in enumerate(TINY_CORPUS[:7])
        )
        + "\n",
        encoding="utf-8",
    )
    target = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["predict", "--input", str(source), "--output", str(target), *uri])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == list(range(7))
    assert all(
        set(r["scores"]) == {"diplomacy", "election_interference", "sanctions"} for r in rows
    )

    result = runner.invoke(
        app,
        [
            "evaluate",
            "--data",
            str(config.data[0]),
            "--json",
            "--experiment",
            config.experiment,
            *uri,
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["size"] == _size(config)

    result = runner.invoke(app, ["runs", "--experiment", config.experiment, *uri])
    assert result.exit_code == 0, result.output
    assert first.run_id[:8] in result.stdout

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": ""}\n', encoding="utf-8")
    result = runner.invoke(app, ["train", "--data", str(bad), *uri])
    assert result.exit_code == 1
    assert "bad.jsonl:1: field 'text' is empty" in result.stderr

    result = runner.invoke(app, ["promote", "77", *uri])
    assert result.exit_code == 1 and "no version '77'" in result.stderr

    for command in ("train", "evaluate", "predict", "runs", "promote", "ui", "serve"):
        assert runner.invoke(app, [command, "--help"]).exit_code == 0


def test_killed_run_registers_nothing(first: TrainOutcome, config: TrainConfig) -> None:
    import os
    import signal
    import subprocess
    import sys

    tracking.configure(config.tracking_uri)
    client = mlflow.MlflowClient()
    before = {v.version for v in client.search_model_versions(f"name='{config.model_name}'")}
    champion = tracking.get_alias(config.model_name)
    proc = subprocess.Popen(
        [sys.executable, "-m", "training.cli", "train", "--data", str(config.data[0]),
         "--experiment", config.experiment, "--tracking-uri", str(config.tracking_uri), "--force"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    assert proc.stderr is not None
    for line in proc.stderr:  # ends when the process does: bounded
        if "fitting on" in line:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    after = {v.version for v in client.search_model_versions(f"name='{config.model_name}'")}
    assert after == before
    assert tracking.get_alias(config.model_name) == champion


def test_cli_train_stages_the_new_champion_for_serving(
    config: TrainConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.loader import load_cached
    from service.settings import Settings

    monkeypatch.delenv("NARRATIVES_MODEL_URI", raising=False)
    monkeypatch.setenv("NARRATIVES_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()
    args = ["train", "--data", str(config.data[0]), "--experiment", config.experiment]
    args += ["--tracking-uri", str(config.tracking_uri)]
    settings = Settings(
        tracking_uri=config.tracking_uri, cache_dir=tmp_path / "cache", fast_start=True
    )
    assert settings.model_uri == f"models:/{config.model_name}@champion"

    result = runner.invoke(app, [*args, "--force"])
    assert result.exit_code == 0, result.output
    version = tracking.get_alias(config.model_name).version
    assert f"staged v{version} for `narratives serve`" in result.stdout
    # What `narratives serve` reads first, without MLflow: the copy of the new champion.
    cached = load_cached(settings)
    assert cached is not None and cached.version == version

    # A run that is not promoted stages nothing; the copy stays the champion's.
    result = runner.invoke(app, [*args, "--c", "0.0001"])
    assert result.exit_code == 0, result.output
    assert "not promoted" in result.stdout and "staged" not in result.stdout
    cached = load_cached(settings)
    assert cached is not None and cached.version == version

    # A service set up for another model is left alone.
    monkeypatch.setenv("NARRATIVES_MODEL_URI", "models:/another-model@champion")
    monkeypatch.setenv("NARRATIVES_CACHE_DIR", str(tmp_path / "other-cache"))
    result = runner.invoke(app, [*args, "--force"])
    assert result.exit_code == 0, result.output
    assert "staged" not in result.stdout
    assert not (tmp_path / "other-cache").exists()

    # A cache that cannot be written is reported; the run and its promotion stand.
    monkeypatch.delenv("NARRATIVES_MODEL_URI")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x", encoding="utf-8")
    monkeypatch.setenv("NARRATIVES_CACHE_DIR", str(blocker))
    result = runner.invoke(app, [*args, "--force"])
    assert result.exit_code == 0, result.output
    assert "promoted to champion" in result.stdout and "staged" not in result.stdout
    assert "its local copy for `narratives serve` could not be made" in result.stderr
