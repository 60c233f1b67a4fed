"""The ``narratives`` command line: the project's one composition root.

Each command parses options into typed config, calls a library function (the same ones the tests
call), and turns known errors into a one-line reason and a non-zero exit code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from classifier import ClassifierError, ModelConfig
from training.config import DEFAULT_DATA, DEFAULT_EXPERIMENT, DEFAULT_LABEL_DEFINITIONS, TrainConfig
from training.data import DataValidationError

if TYPE_CHECKING:
    from training.evaluation import Evaluation

app = typer.Typer(
    name="narratives",
    help="Label Arabic news passages by narrative; train, track, evaluate and serve models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, log_path=False)
out = Console()

TrackingOpt = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow store (default: $MLFLOW_TRACKING_URI, else ./mlflow.db).",
        show_default=False,
    ),
]
ExperimentOpt = Annotated[str, typer.Option("--experiment", help="MLflow experiment name.")]
ModelNameOpt = Annotated[str, typer.Option("--model-name", help="Registered model name.")]


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn the errors users can cause into a readable message and exit code 1."""
    from training.tracking import TrackingError

    try:
        yield
    except DataValidationError as exc:
        raise _fail(str(exc)) from exc
    except (ClassifierError, TrackingError, OSError) as exc:
        raise _fail(str(exc)) from exc


@contextmanager
def _spinner() -> Iterator[Callable[[str], None]]:
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task("starting", total=None)

        def step(message: str) -> None:
            bar.update(task, description=message)
            console.log(message)

        yield step


def _print_evaluation(ev: Evaluation, title: str, extra: str = "") -> None:
    """Print per-label scores as a table, then the headline figures."""
    table = Table(title=title)
    for col in ("label", "precision", "recall", "F1", "support"):
        table.add_column(col)
    for label, s in ev.per_label.items():
        table.add_row(label, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}", str(s.support))
    out.print(table)
    out.print(
        f"macro-F1 {ev.macro_f1:.3f}  micro-F1 {ev.micro_f1:.3f}"
        f"  no-label FP rate {ev.none_false_positive_rate:.3f}{extra}"
    )


@app.command()
def train(
    data: Annotated[
        list[Path] | None,
        typer.Option("--data", help="Labelled JSONL or CSV (repeatable).", show_default=False),
    ] = None,
    experiment: ExperimentOpt = DEFAULT_EXPERIMENT,
    c: Annotated[float | None, typer.Option("--c", help="Inverse regularisation.")] = None,
    estimator: Annotated[
        str | None, typer.Option("--estimator", help="logreg or svm.", show_default=False)
    ] = None,
    search: Annotated[bool, typer.Option("--search", help="Hyper-parameter search.")] = False,
    register: Annotated[
        bool, typer.Option("--register/--no-register", help="Register the model.")
    ] = True,
    force: Annotated[
        bool, typer.Option("--force", help="Promote even if it does not beat the champion.")
    ] = False,
    test_size: Annotated[float, typer.Option(help="Held-out share.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Split and fold seed.")] = 0,
    jobs: Annotated[int, typer.Option("--jobs", help="Parallel jobs (-1: all cores).")] = 1,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Dask scheduler address: run --search on that cluster.",
            show_default=False,
        ),
    ] = None,
    labels_file: Annotated[
        Path,
        typer.Option(
            "--labels-file",
            help="JSON of label definitions; labels outside it are errors. Ships with the model.",
        ),
    ] = DEFAULT_LABEL_DEFINITIONS,
    any_labels: Annotated[
        bool, typer.Option("--any-labels", help="Accept labels not in --labels-file.")
    ] = False,
    model_name: ModelNameOpt = "narrative-classifier",
    tracking_uri: TrackingOpt = None,
) -> None:
    """Train a model, track the run in MLflow, register it, and promote it if it is better.

    Examples:
        narratives train
        narratives train --data mine.jsonl --data more.csv --c 3
        narratives train --search --jobs -1 --experiment tuning
        narratives train --search --scheduler tcp://10.0.0.5:8786
    """
    if scheduler and not search:
        raise _fail("--scheduler runs the hyper-parameter search on a cluster: add --search")
    overrides: dict[str, Any] = {"c": c, "estimator": estimator}
    model = replace(ModelConfig(), **{k: v for k, v in overrides.items() if v is not None})
    if model.estimator not in ("logreg", "svm"):
        raise _fail(f"--estimator must be logreg or svm, not {model.estimator!r}")
    config = TrainConfig(
        data=tuple(data or [DEFAULT_DATA]),
        experiment=experiment,
        model_name=model_name,
        model=model,
        test_size=test_size,
        seed=seed,
        register=register,
        force=force,
        search=search,
        tracking_uri=tracking_uri,
        n_jobs=jobs,
        scheduler=scheduler,
        label_definitions=None if any_labels else labels_file,
    )
    from training.train import train as run_training

    with _errors(), _spinner() as step:
        outcome = run_training(config, step)
    ev = outcome.evaluation
    _print_evaluation(
        ev,
        f"run {outcome.run_id} — held-out evaluation ({ev.size} passages)",
        f"  CV macro-F1 {outcome.cv_macro_f1_mean:.3f} ± {outcome.cv_macro_f1_std:.3f}",
    )
    if outcome.model and outcome.decision:
        verdict = "promoted to champion" if outcome.decision.promoted else "not promoted"
        out.print(
            f"registered {outcome.model.name} v{outcome.model.version}: {verdict}"
            f" ({outcome.decision.reason})"
        )
        if outcome.decision.promoted:
            stage_for_serving(outcome.model.name, tracking_uri)


def stage_for_serving(model_name: str, tracking_uri: str | None) -> str | None:
    """Put the model `narratives serve` serves (the champion, by default) in its local cache.

    This is the download and the checks the service does on a start without a local copy. The
    next `narratives serve` on this machine then starts from that verified copy at once
    (without importing MLflow first) and confirms it with the registry once it is up. Only done
    when the service's settings name an alias of this model; a failure here is reported and
    leaves the registered model as it is.

    Args:
        model_name: The registered model that has just been promoted.
        tracking_uri: The store it was registered in (None: the default resolution).

    Returns:
        The version now in the cache, or None when nothing was staged.
    """
    from pydantic import ValidationError

    from service.loader import load, parse_registry_uri
    from service.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        console.print(
            f"[yellow]note:[/] not staged for serving: invalid NARRATIVES_ settings: {exc}",
            soft_wrap=True,
        )
        return None
    if tracking_uri:
        settings = settings.model_copy(update={"tracking_uri": tracking_uri})
    uri = settings.model_uri.strip()
    if not uri.startswith("models:/"):
        return None
    try:
        ref = parse_registry_uri(uri)
        if ref.name != model_name or ref.alias is None:
            return None
        loaded = load(settings)
    except (ClassifierError, OSError) as exc:
        console.print(
            f"[yellow]note:[/] the model is registered, but its local copy for"
            f" `narratives serve` could not be made: {exc}",
            soft_wrap=True,
        )
        return None
    out.print(f"staged v{loaded.version} for `narratives serve` in {settings.cache_dir}")
    return loaded.version


@app.command()
def evaluate(
    data: Annotated[list[Path], typer.Option("--data", help="Labelled JSONL or CSV.")],
    model: Annotated[
        str | None,
        typer.Option("--model", help="Model URI (default: the champion).", show_default=False),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    experiment: ExperimentOpt = DEFAULT_EXPERIMENT,
    model_name: ModelNameOpt = "narrative-classifier",
    tracking_uri: TrackingOpt = None,
) -> None:
    """Evaluate a model on labelled data; the result is logged as an evaluation run.

    Examples:
        narratives evaluate --data labelled.jsonl
        narratives evaluate --data labelled.jsonl --model models:/narrative-classifier/3 --json
    """
    from training.lifecycle import evaluate_model

    config = TrainConfig(experiment=experiment, model_name=model_name, tracking_uri=tracking_uri)
    with _errors():
        ev = evaluate_model(list(data), model, config)
    if as_json:
        payload: dict[str, Any] = {
            "size": ev.size,
            "macro_f1": ev.macro_f1,
            "micro_f1": ev.micro_f1,
            "none_false_positive_rate": ev.none_false_positive_rate,
            "per_label": {k: vars(v) for k, v in ev.per_label.items()},
        }
        out.print_json(json.dumps(payload))
        return
    _print_evaluation(ev, f"evaluation on {ev.size} passages")


@app.command()
def predict(
    text: Annotated[str | None, typer.Argument(help="A passage to label.")] = None,
    input_path: Annotated[
        Path | None, typer.Option("--input", help="JSONL or CSV with a text field.")
    ] = None,
    output_path: Annotated[
        Path | None, typer.Option("--output", help="Where to write the labelled rows.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="Model URI (default: the champion).", show_default=False),
    ] = None,
    model_name: ModelNameOpt = "narrative-classifier",
    tracking_uri: TrackingOpt = None,
) -> None:
    """Label one passage, or every row of a file.

    Examples:
        narratives predict "فرضت واشنطن عقوبات جديدة على شركات شحن"
        narratives predict --input articles.jsonl --output labelled.jsonl
    """
    from training.batch import predict_file
    from training.lifecycle import resolve_model

    if (text is None) == (input_path is None):
        raise _fail("give either TEXT or --input FILE (with --output FILE)")
    if input_path is not None and output_path is None:
        raise _fail("--input needs --output")
    with _errors():
        clf = resolve_model(model, model_name, tracking_uri)
        if text is not None:
            [pred] = clf.predict([text])
            out.print_json(
                json.dumps(
                    {
                        "labels": list(pred.labels),
                        "primary": pred.primary,
                        "scores": pred.scores,
                        "warnings": list(pred.warnings),
                    },
                    ensure_ascii=False,
                )
            )
            return
        assert input_path is not None and output_path is not None
        with Progress(
            TextColumn("labelling"),
            BarColumn(),
            TextColumn("{task.completed} rows"),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("rows", total=None)
            rows = predict_file(
                clf,
                input_path,
                output_path,
                on_batch=lambda n: bar.update(task, completed=n),
            )
    out.print(f"labelled {rows} rows -> {output_path}")


@app.command()
def score(
    input_path: Annotated[
        str,
        typer.Option(
            "--input", help="Parquet or JSONL: a file, a folder or a glob; a path or fsspec URL."
        ),
    ],
    output_path: Annotated[
        str, typer.Option("--output", help="Folder for the Parquet partitions (path or URL).")
    ],
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Dask scheduler address (default: a local cluster, one worker per core).",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", help="Model URI or folder (default: the champion).", show_default=False
        ),
    ] = None,
    text_column: Annotated[str, typer.Option("--text-column", help="Text field.")] = "text",
    id_column: Annotated[str, typer.Option("--id-column", help="Id field.")] = "id",
    partition_size: Annotated[
        int, typer.Option("--partition-size", min=1, help="Rows per partition (about, in JSONL).")
    ] = 10_000,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Local cluster processes.", show_default=False),
    ] = None,
    model_name: ModelNameOpt = "narrative-classifier",
    tracking_uri: TrackingOpt = None,
) -> None:
    """Label a large corpus on a Dask cluster into Parquet; a rerun resumes where it stopped.

    Examples:
        narratives score --input archive/ --output labelled/
        narratives score --input 'news/*.parquet' --output out/ --scheduler tcp://10.0.0.5:8786
        narratives score --input s3://bucket/news/ --output s3://bucket/out --model models:/m/3
    """
    from training.scoring import RichProgress, ScoreConfig, ScoreOptions, ScoringError, run_scoring

    config = ScoreConfig(
        source=input_path,
        output=output_path,
        scheduler=scheduler,
        workers=workers,
        model=model,
        model_name=model_name,
        tracking_uri=tracking_uri,
        options=ScoreOptions(text_column, id_column, partition_size),
    )
    with _errors():
        try:
            with RichProgress(console) as progress:
                outcome = run_scoring(config, progress)
        except ScoringError as exc:
            raise _fail(str(exc)) from exc
    out.print(
        f"{outcome.rows} rows in {outcome.partitions} partitions ({len(outcome.computed)} computed,"
        f" {outcome.skipped} already done) -> {outcome.output}\n"
        f"labelled {outcome.scored} rows with {outcome.model} on {outcome.workers} worker(s) in"
        f" {outcome.seconds:.1f}s ({outcome.scored / max(outcome.seconds, 1e-9):.0f} passages/s)"
    )


@app.command()
def runs(
    limit: Annotated[int, typer.Option(help="How many runs.")] = 15,
    experiment: ExperimentOpt = DEFAULT_EXPERIMENT,
    tracking_uri: TrackingOpt = None,
) -> None:
    """List recent runs with their key metrics.

    Example:
        narratives runs --limit 5
    """
    from training import tracking

    with _errors():
        tracking.configure(tracking_uri)
        frame = tracking.recent_runs(experiment, limit)
    if frame.empty:
        out.print(f"no runs in experiment {experiment!r}")
        return
    table = Table(title=f"latest runs of {experiment!r}")
    columns = {
        "run_id": "run",
        "start_time": "started",
        "tags.kind": "kind",
        "status": "status",
        "metrics.macro_f1": "macro-F1",
        "metrics.none_fpr": "no-label FPR",
        "metrics.cv_macro_f1_mean": "CV macro-F1",
        "tags.promotion.decision": "promotion",
    }
    for key, title in columns.items():
        table.add_column(title, no_wrap=key in {"run_id", "start_time"})
    for _, row in frame.iterrows():
        cells = []
        for key in columns:
            value = row.get(key)
            if value is None or value != value:  # NaN: metric absent for this run
                cells.append("")
            elif isinstance(value, float):
                cells.append(f"{value:.3f}")
            elif key == "start_time":
                cells.append(str(value)[5:16])
            elif key == "run_id":
                cells.append(str(value)[:8])
            else:
                cells.append(str(value))
        table.add_row(*cells)
    out.print(table)


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="Registered version number.")],
    model_name: ModelNameOpt = "narrative-classifier",
    tracking_uri: TrackingOpt = None,
) -> None:
    """Move the champion alias to a version by hand.

    Example:
        narratives promote 3
    """
    from training.lifecycle import promote as move_alias

    with _errors():
        ref = move_alias(version, model_name, tracking_uri)
    out.print(f"{ref.name} v{ref.version} is now the champion")


@app.command()
def ui(
    port: Annotated[int, typer.Option(help="Port of the MLflow UI.")] = 5000,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    tracking_uri: TrackingOpt = None,
) -> None:
    """Start the MLflow UI on the project's store to compare runs.

    Example:
        narratives ui --port 5000
    """
    from training import tracking

    uri = tracking.configure(tracking_uri)
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        host,
        "--port",
        str(port),
    ]
    console.print(f"MLflow UI on http://{host}:{port} (store {uri}); Ctrl-C to stop")
    raise typer.Exit(subprocess.call(command))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    tracking_uri: TrackingOpt = None,
) -> None:
    """Serve predictions over HTTP; trains and registers the default model first if none exists.

    Settings come from NARRATIVES_* environment variables (see the README).

    Example:
        narratives serve --port 8000
    """
    from service.loader import load_cached
    from service.server import run
    from service.settings import Settings

    overrides: dict[str, object] = {
        "host": host,
        "port": port,
        "workers": workers,
        "tracking_uri": tracking_uri,
    }
    # `narratives serve` promises a model: refuse to start without one unless told otherwise.
    if "NARRATIVES_REQUIRE_MODEL" not in os.environ:
        overrides["require_model"] = True
    # A restart serves the champion it served before at once; the registry is checked once up.
    if "NARRATIVES_FAST_START" not in os.environ:
        overrides["fast_start"] = True
    # model_copy keeps the NARRATIVES_* environment and replaces only what was given here.
    settings = Settings().model_copy(update={k: v for k, v in overrides.items() if v is not None})
    initial = load_cached(settings) if settings.fast_start else None
    if initial is not None:
        # A champion existed when this copy was recorded: MLflow (seconds to import) is not
        # needed before the service is up, and the service confirms the champion itself.
        console.print(
            f"champion: {initial.name} v{initial.version}, the local copy recorded last;"
            " the registry is checked once the service is up",
            soft_wrap=True,
        )
    elif settings.model_uri.startswith("models:/"):
        from training.lifecycle import ensure_champion
        from training.tracking import TrackingError

        # An unreachable server should fail in seconds, not after MLflow's minutes of retries.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
        config = TrainConfig(tracking_uri=settings.tracking_uri)
        try:
            with _spinner() as step:
                champion = ensure_champion(config, step)
        except TrackingError as exc:
            # The service can still start from its last good cached copy of the champion.
            console.print(
                f"[yellow]warning:[/] tracking store unreachable ({exc}); serving the last good"
                " cached champion if there is one",
                soft_wrap=True,
            )
        except (DataValidationError, ClassifierError, OSError) as exc:
            raise _fail(str(exc)) from exc
        else:
            console.print(f"champion: {champion.name} v{champion.version}")
    run(settings, initial=initial)


def main() -> None:
    """Entry point for ``python -m training.cli``."""
    app()


if __name__ == "__main__":
    main()
