"""HTTP request and response models, and their conversion from the classifier's dataclasses.

Pydantic lives only here, at the HTTP edge; the classifier works with frozen dataclasses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from classifier import DocumentResult, Evidence, PassageResult, Prediction
from service.loader import LoadedModel, Source

DEFAULT_EVIDENCE_TERMS = 5
MAX_EVIDENCE_TERMS = 50
# "Contains a character that is not white space", white space being exactly what Python's
# str.isspace() (and so str.strip(), which the check below uses) treats as such. Spelled out
# because \s differs between Python and the ECMA regexes JSON Schema tools use.
NOT_BLANK_PATTERN = (
    "[^\\u0009-\\u000d\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a"
    "\\u2028\\u2029\\u202f\\u205f\\u3000]"
)


def _usable_text(text: str) -> str:
    if not text.strip():
        raise ValueError("the text is empty or white space only")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # JSON "\ud800" escapes decode to lone surrogates, which cannot be encoded back.
        raise ValueError("the text contains invalid Unicode (an unpaired surrogate)") from None
    return text


def _integral(value: Any) -> Any:
    # JSON Schema counts 5.0 as an integer; strict validation alone would refuse it.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# The pattern is documentation only: the validator gives the clearer error message.
Text = Annotated[
    str, AfterValidator(_usable_text), Field(json_schema_extra={"pattern": NOT_BLANK_PATTERN})
]
_EXAMPLES = [
    {"text": "فرضت واشنطن عقوبات جديدة على شركات شحن", "explain": True},
    {"texts": ["أول نص", "نص ثان"]},
]


def _document_request(schema: dict[str, Any]) -> None:
    """Make the JSON schema say what is accepted: exactly one of text, texts, never null.

    The fields are plain optionals for validation (so errors name ``texts[3]``, not a union
    branch); the documented schema drops their null option, which the validator refuses too.
    """
    for name in ("text", "texts"):
        field = schema["properties"][name]
        options = [option for option in field.pop("anyOf", []) if option.get("type") != "null"]
        for option in options:
            field.update(option)
        field.pop("default", None)
    schema["oneOf"] = [{"required": ["text"]}, {"required": ["texts"]}]
    schema["examples"] = _EXAMPLES


def document_limits(openapi: dict[str, Any], max_texts: int, max_chars: int) -> None:
    """Write the configured limits into an app's OpenAPI document.

    Clients (and fuzzers) then see the limits the server enforces.

    Args:
        openapi: The OpenAPI document, changed in place.
        max_texts: Most texts per request.
        max_chars: Most characters per text.
    """
    fields = openapi["components"]["schemas"][ClassifyRequest.__name__]["properties"]
    fields["text"]["maxLength"] = max_chars
    fields["texts"]["maxItems"] = max_texts
    fields["texts"]["items"]["maxLength"] = max_chars


class ClassifyRequest(BaseModel):
    """Texts to classify and what to return about them. Give exactly one of ``text``, ``texts``."""

    # Strict: "yes" is not a boolean and "5" is not a number, as the schema says.
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_document_request)

    text: Text | None = Field(
        default=None,
        description=(
            "One text to classify. At most `max_chars` characters (setting"
            " NARRATIVES_MAX_CHARS, 20,000 by default); not empty or white space only."
        ),
    )
    texts: list[Text] | None = Field(
        default=None,
        min_length=1,
        description=(
            "Several texts to classify, answered in the same order. At most `max_texts` texts"
            " (NARRATIVES_MAX_TEXTS, 256 by default), each at most `max_chars` characters."
        ),
    )
    explain: bool = Field(
        default=False,
        description=(
            "Also return, per label, the terms of the text that raised its score, with their"
            " character offsets."
        ),
    )
    segment: bool = Field(
        default=False,
        description=(
            "Treat each text as a document: split it into passages (paragraphs, long ones into"
            " sentence windows), label each passage, and give the document-level aggregate as"
            " the result's labels and scores."
        ),
    )
    k: Annotated[int, BeforeValidator(_integral)] = Field(
        default=DEFAULT_EVIDENCE_TERMS,
        ge=1,
        le=MAX_EVIDENCE_TERMS,
        description="Most evidence terms per label when `explain` is true.",
    )

    @field_validator("text", "texts", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Runs only for values sent (defaults are not validated): leaving a field out is fine.
        if value is None:
            raise ValueError("give a value or leave the field out; null is not accepted")
        return value


class ModelRef(BaseModel):
    """Which model produced an answer."""

    name: str = Field(description="Registered model name (or the folder name of a local model).")
    version: str = Field(description='Registry version, or "local" for a local model folder.')
    run_id: str | None = Field(description="MLflow run that trained the model, when known.")


class EvidenceTerm(BaseModel):
    """A term of the text that pushed a label's score up."""

    term: str = Field(description="The normalised term (a word or a two-word phrase).")
    weight: float = Field(description="Its contribution to the label's log-odds; larger is more.")
    spans: list[tuple[int, int]] = Field(
        description=(
            "[start, end] offsets of each occurrence in the text, in Unicode code points,"
            " end exclusive."
        )
    )


class PassageOut(BaseModel):
    """One passage of a segmented document and its labels."""

    start: int = Field(description="Offset of the passage's first character in the document.")
    end: int = Field(description="Offset one past its last character (code points).")
    text: str = Field(description="The passage, exactly document[start:end].")
    labels: list[str] = Field(description="Labels assigned to the passage, best first.")
    scores: dict[str, float] = Field(description="A score in [0, 1] for every label.")
    primary: str | None = Field(description="Best assigned label, or null when none applies.")
    warnings: list[str] = Field(description="Caveats about this passage, e.g. mostly_non_arabic.")


class ClassifyResult(BaseModel):
    """The labels of one text (the document aggregate when segmented)."""

    labels: list[str] = Field(description="Labels whose score reached their threshold, best first.")
    scores: dict[str, float] = Field(description="A score in [0, 1] for every label.")
    primary: str | None = Field(description="Best assigned label, or null when none applies.")
    warnings: list[str] = Field(
        description="Machine-readable caveats, e.g. mostly_non_arabic (the model saw Arabic only)."
    )
    evidence: dict[str, list[EvidenceTerm]] | None = Field(
        description="Per label, the strongest terms for it, strongest first; null unless explain."
    )
    passages: list[PassageOut] | None = Field(
        description="The document's passages with their labels; null unless segment."
    )


class ClassifyResponse(BaseModel):
    """Results in the order of the texts sent, and the model that produced them."""

    model: ModelRef = Field(description="The model that produced every result in this response.")
    results: list[ClassifyResult] = Field(description="One result per text, in request order.")


class LabelInfo(BaseModel):
    """A label the model assigns."""

    name: str = Field(description="Label identifier as used in results.")
    definition: str | None = Field(description="What the label means, when the model has it.")
    threshold: float = Field(description="Score at or above which the label is assigned.")


class LabelsResponse(BaseModel):
    """The labels of the serving model."""

    model: ModelRef = Field(description="The model these labels belong to.")
    labels: list[LabelInfo] = Field(description="Every label, in the model's order.")


_SOURCE_DESCRIPTION = (
    'Where the model came from: "registry" (resolved in the MLflow registry), "local" (a'
    ' configured folder) or "cache" (the last good local copy: after a fast start, until the'
    ' registry check confirms it, which turns this into "registry"; or, when degraded, because'
    " the tracking store could not be reached)."
)
_DEGRADED_DESCRIPTION = "True when the model serving is a fallback, not the one the settings name."
_REASON_DESCRIPTION = "Why the service is degraded; null when it is not."


class ModelInfo(BaseModel):
    """The serving model and how it was made."""

    name: str = Field(description="Registered model name (or the folder name of a local model).")
    version: str = Field(description='Registry version, or "local" for a local model folder.')
    run_id: str | None = Field(description="MLflow run that trained it, when known.")
    source_uri: str = Field(description="The model URI it was loaded from.")
    sha256: str = Field(description="SHA-256 of the pickled pipeline, verified at load.")
    labels: list[str] = Field(description="The labels it assigns.")
    created_at: str = Field(description="When the artifact was written (ISO 8601).")
    trained_at: str | None = Field(description="When training ran, when recorded (ISO 8601).")
    data_digest: str | None = Field(description="Digest of the training data, when recorded.")
    metrics: dict[str, float] = Field(
        description="Evaluation metrics recorded with the model (empty when none)."
    )
    loaded_at: datetime = Field(description="When this server process loaded it.")
    source: Source = Field(description=_SOURCE_DESCRIPTION)
    degraded: bool = Field(description=_DEGRADED_DESCRIPTION)
    reason: str | None = Field(description=_REASON_DESCRIPTION)


class ReloadResponse(BaseModel):
    """The outcome of a successful reload."""

    previous: ModelInfo | None = Field(description="The model served before, if any.")
    current: ModelInfo = Field(description="The model served now.")
    changed: bool = Field(description="Whether the version or artifact differs from before.")


class HealthResponse(BaseModel):
    """The process is up."""

    status: Literal["ok"] = Field(description='Always "ok".')


class ReadyResponse(BaseModel):
    """A model is loaded and requests can be served."""

    status: Literal["ready"] = Field(description='Always "ready".')
    model: ModelRef = Field(description="The model serving now.")
    source: Source = Field(description=_SOURCE_DESCRIPTION)
    degraded: bool = Field(description=_DEGRADED_DESCRIPTION)
    reason: str | None = Field(description=_REASON_DESCRIPTION)


class ErrorDetail(BaseModel):
    """What went wrong."""

    code: str = Field(description="Stable machine-readable code, e.g. invalid_input.")
    message: str = Field(description="Human-readable explanation.")
    field: str | None = Field(
        default=None,
        description="The request field at fault, e.g. texts[3]; absent when not one field.",
    )


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorDetail = Field(description="The error.")


def model_ref(model: LoadedModel) -> ModelRef:
    """Identify a loaded model in a response."""
    return ModelRef(name=model.name, version=model.version, run_id=model.run_id)


def _optional_str(metadata: Mapping[str, Any], key: str) -> str | None:
    value = metadata.get(key)
    return value if isinstance(value, str) and value else None


def _finite_metrics(raw: Any) -> dict[str, float]:
    # Training metadata is free-form: keep flat, finite numbers only (JSON has no NaN).
    if not isinstance(raw, Mapping):
        return {}
    return {
        str(key): float(value)
        for key, value in raw.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    }


def model_info(model: LoadedModel) -> ModelInfo:
    """Describe a loaded model from its registry identity and manifest metadata."""
    metadata = model.manifest.metadata
    return ModelInfo(
        name=model.name,
        version=model.version,
        run_id=model.run_id,
        source_uri=model.source_uri,
        sha256=model.manifest.sha256,
        labels=list(model.classifier.labels),
        created_at=model.manifest.created_at,
        trained_at=_optional_str(metadata, "trained_at"),
        data_digest=_optional_str(metadata, "data_digest"),
        metrics=_finite_metrics(metadata.get("metrics")),
        loaded_at=model.loaded_at,
        source=model.source,
        degraded=model.degraded,
        reason=model.degraded_reason,
    )


def ready_response(model: LoadedModel) -> ReadyResponse:
    """The readiness answer for a loaded model, saying whether it is a fallback and why."""
    return ReadyResponse(
        status="ready",
        model=model_ref(model),
        source=model.source,
        degraded=model.degraded,
        reason=model.degraded_reason,
    )


def label_infos(model: LoadedModel) -> list[LabelInfo]:
    """The serving model's labels with their definitions and thresholds."""
    definitions = model.manifest.label_definitions
    return [
        LabelInfo(
            name=label,
            definition=definitions.get(label) or None,
            threshold=model.classifier.thresholds[label],
        )
        for label in model.classifier.labels
    ]


def evidence_out(evidence: Mapping[str, tuple[Evidence, ...]]) -> dict[str, list[EvidenceTerm]]:
    """Convert :meth:`NarrativeClassifier.explain` output."""
    return {
        label: [EvidenceTerm(term=e.term, weight=e.weight, spans=list(e.spans)) for e in items]
        for label, items in evidence.items()
    }


def _passage_out(result: PassageResult) -> PassageOut:
    p, pred = result.passage, result.prediction
    return PassageOut(
        start=p.start,
        end=p.end,
        text=p.text,
        labels=list(pred.labels),
        scores=dict(pred.scores),
        primary=pred.primary,
        warnings=list(pred.warnings),
    )


def result_from_prediction(
    prediction: Prediction, evidence: dict[str, list[EvidenceTerm]] | None = None
) -> ClassifyResult:
    """Convert a :class:`Prediction` (and optional evidence) into a result."""
    return ClassifyResult(
        labels=list(prediction.labels),
        scores=dict(prediction.scores),
        primary=prediction.primary,
        warnings=list(prediction.warnings),
        evidence=evidence,
        passages=None,
    )


def result_from_document(
    document: DocumentResult, evidence: dict[str, list[EvidenceTerm]] | None = None
) -> ClassifyResult:
    """Convert a :class:`DocumentResult` (and optional evidence) into a result with passages."""
    return ClassifyResult(
        labels=list(document.labels),
        scores=dict(document.scores),
        primary=document.primary,
        warnings=list(document.warnings),
        evidence=evidence,
        passages=[_passage_out(p) for p in document.passages],
    )
