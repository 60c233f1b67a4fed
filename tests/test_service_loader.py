"""The model loader's URI handling and the service's import rules (no mlflow, no training)."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from classifier import ModelLoadError, NarrativeClassifier
from service.loader import (
    LOCAL_VERSION,
    RegistryRef,
    load,
    load_local,
    local_path,
    parse_registry_uri,
    redact_uri,
)
from tests.conftest import ROOT
from tests.service_fixtures import make_settings, save_test_model


@pytest.mark.parametrize(
    ("uri", "ref"),
    [
        ("models:/narrative-classifier@champion", RegistryRef("narrative-classifier", "champion")),
        ("models:/narrative-classifier/12", RegistryRef("narrative-classifier", version="12")),
        ("models:/m.v2_x@challenger-1", RegistryRef("m.v2_x", "challenger-1")),
    ],
)
def test_registry_uris_are_parsed(uri: str, ref: RegistryRef) -> None:
    assert parse_registry_uri(uri) == ref


@pytest.mark.parametrize(
    "uri",
    [
        "models:/",
        "models:/name",
        "models:/name/latest",
        "models:/name@",
        "models:/a/b/3",
        "models:/name@champion/2",
        "models:/../../etc@x",
    ],
)
def test_malformed_registry_uris_are_refused(uri: str) -> None:
    with pytest.raises(ModelLoadError, match="is not of the form"):
        parse_registry_uri(uri)


def test_local_paths_and_file_uris(tmp_path: Path) -> None:
    assert local_path(str(tmp_path)) == tmp_path
    assert local_path(tmp_path.as_uri()) == tmp_path
    assert local_path("file:///srv/models/my%20model") == Path("/srv/models/my model")
    assert local_path("relative/model") == Path("relative/model")
    for uri in ("s3://bucket/model", "https://host/model", "runs:/abc/model"):
        with pytest.raises(ModelLoadError, match="cannot load a model from"):
            local_path(uri)


def test_load_local_names_and_versions(tiny_model: NarrativeClassifier, tmp_path: Path) -> None:
    folder = save_test_model(tiny_model, tmp_path / "my-model", run_id="abc")
    model = load_local(folder)
    assert (model.name, model.version, model.run_id) == ("my-model", LOCAL_VERSION, "abc")
    assert model.classifier.labels == tiny_model.labels
    assert model.manifest.label_definitions
    assert model.loaded_at.tzinfo is not None
    named = load_local(save_test_model(tiny_model, tmp_path / "other", name="champion-model"))
    assert named.name == "champion-model"


def test_load_follows_the_settings(tiny_model: NarrativeClassifier, tmp_path: Path) -> None:
    folder = save_test_model(tiny_model, tmp_path / "model")
    assert load(make_settings(folder, tmp_path / "cache")).path == folder
    with pytest.raises(ModelLoadError, match="no model manifest"):
        load(make_settings(tmp_path / "nothing-here", tmp_path / "cache"))


def test_credentials_are_redacted_from_uris() -> None:
    assert (
        redact_uri("https://user:secret@mlflow.example:5000/x") == "https://mlflow.example:5000/x"
    )
    assert redact_uri("sqlite:////data/mlflow.db") == "sqlite:////data/mlflow.db"


@pytest.mark.slow
def test_serving_requests_never_imports_mlflow_or_training(
    tiny_model: NarrativeClassifier, tmp_path: Path
) -> None:
    """Import the service, load a local model and answer every route in a fresh interpreter."""
    folder = save_test_model(tiny_model, tmp_path / "model")
    script = textwrap.dedent(
        f"""
        import sys
        from fastapi.testclient import TestClient
        from service.app import create_app
        from service.server import run
        from service.settings import Settings

        app = create_app(Settings(model_uri={str(folder)!r}, cache_dir={str(tmp_path)!r}))
        with TestClient(app) as client:
            body = {{"text": "نص", "explain": True, "segment": True}}
            assert client.post("/v1/classify", json=body).status_code == 200
            for path in ("/v1/labels", "/v1/model", "/readyz", "/metrics", "/"):
                assert client.get(path).status_code == 200, path
        bad = sorted(m for m in sys.modules if m.split(".")[0] in {{"mlflow", "training"}})
        print(bad)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def _imports(tree: ast.AST) -> list[tuple[str, int]]:
    """(module, depth) of every import; depth 0 is module level, more is inside a function."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, depth: int) -> None:
        if isinstance(node, ast.Import):
            found.extend((alias.name, depth) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, depth))
        inner = depth + isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, 0)
    return found


def test_service_imports_no_training_and_mlflow_only_lazily_in_the_loader() -> None:
    for path in sorted((ROOT / "service").glob("*.py")):
        for module, depth in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            top = module.split(".")[0]
            assert top != "training", f"{path.name} imports {module}"
            if top == "mlflow":
                assert path.name == "loader.py", f"{path.name} imports {module}"
                assert depth > 0, f"loader.py imports {module} at module level"
