"""The /v1 routes: classify, labels, model information, and the admin reload."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Depends, Request

from service.errors import InvalidInput, ReloadFailed, UnsupportedMediaType
from service.limits import check_texts
from service.loader import LoadedModel
from service.schemas import (
    ClassifyRequest,
    ClassifyResponse,
    ClassifyResult,
    ErrorResponse,
    LabelsResponse,
    ModelInfo,
    ReloadResponse,
    evidence_out,
    label_infos,
    model_info,
    model_ref,
    result_from_document,
    result_from_prediction,
)
from service.security import require_admin_key, require_api_key
from service.state import CurrentModel, State

_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "API keys are on and none was sent."},
    403: {"model": ErrorResponse, "description": "The key sent is not accepted here."},
}
_NO_MODEL: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorResponse, "description": "No model is loaded."},
}

# Requests with at most this many characters in all are scored on the event loop itself.
INLINE_MAX_CHARS = 2_000

router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)], responses=_UNAUTHORIZED)


async def require_json(request: Request) -> None:
    """Refuse bodies not declared as JSON with 415 (FastAPI would otherwise try them as JSON).

    Args:
        request: The current request.

    Raises:
        UnsupportedMediaType: The Content-Type is missing or not JSON.
    """
    header = request.headers.get("content-type", "")
    media_type = header.split(";", 1)[0].strip().lower()
    maintype, _, subtype = media_type.partition("/")
    if maintype == "application" and (subtype == "json" or subtype.endswith("+json")):
        return
    raise UnsupportedMediaType("send the body as JSON with Content-Type: application/json")


def _texts_of(body: ClassifyRequest) -> tuple[list[str], str]:
    if body.text is not None and body.texts is not None:
        raise InvalidInput("give either text or texts, not both", field="texts")
    if body.text is not None:
        return [body.text], "text"
    if body.texts is not None:
        return body.texts, "texts"
    raise InvalidInput("give the text to classify as text (one) or texts (a list)", field="text")


def _classify(model: LoadedModel, body: ClassifyRequest, texts: list[str]) -> list[ClassifyResult]:
    clf = model.classifier
    explained = [evidence_out(clf.explain(t, body.k)) if body.explain else None for t in texts]
    if body.segment:
        return [
            result_from_document(clf.classify_document(text), evidence)
            for text, evidence in zip(texts, explained, strict=True)
        ]
    # One batched call: the vectoriser and the model work on all texts at once.
    predictions = clf.predict(texts)
    return [
        result_from_prediction(prediction, evidence)
        for prediction, evidence in zip(predictions, explained, strict=True)
    ]


@router.post(
    "/classify",
    summary="Classify texts by narrative",
    dependencies=[Depends(require_json)],
    responses={
        413: {"model": ErrorResponse, "description": "The body is larger than the limit."},
        415: {"model": ErrorResponse, "description": "The body is not sent as JSON."},
        422: {"model": ErrorResponse, "description": "The body is invalid; `field` names where."},
        **_NO_MODEL,
    },
)
async def classify_texts(
    body: ClassifyRequest, model: CurrentModel, state: State
) -> ClassifyResponse:
    """Label each text with the narratives it carries, with scores and optional evidence.

    With `segment`, each text is split into passages that are labelled one by one, and the
    result's labels and scores are the document aggregate (a label's score is its best passage
    score). Offsets are in Unicode code points of the text as sent.
    """
    texts, field = _texts_of(body)
    settings = state.settings
    check_texts(texts, field, settings.max_texts, settings.max_chars)
    if body.segment or sum(map(len, texts)) > INLINE_MAX_CHARS:
        # Real work goes to a worker thread, so the event loop keeps answering other requests;
        # the limiter queues requests for the scoring threads instead of letting every request
        # start a thread that then fights the others for the GIL.
        results = await to_thread.run_sync(_classify, model, body, texts, limiter=state.scoring)
    else:
        # A passage or two scores in about a millisecond, less than the hand-off to a thread.
        results = _classify(model, body, texts)
    state.metrics.count_predictions([r.labels for r in results])
    return ClassifyResponse(model=model_ref(model), results=results)


@router.get("/labels", summary="Labels and their definitions", responses=_NO_MODEL)
def list_labels(model: CurrentModel) -> LabelsResponse:
    """List the labels the serving model assigns, with definitions and thresholds."""
    return LabelsResponse(model=model_ref(model), labels=label_infos(model))


@router.get("/model", summary="The serving model", responses=_NO_MODEL)
def model_details(model: CurrentModel) -> ModelInfo:
    """Describe the serving model: name, version, run, training time, data digest, metrics."""
    return model_info(model)


def _identity(model: LoadedModel) -> tuple[str, str, str | None, str]:
    return model.name, model.version, model.run_id, model.manifest.sha256


@router.post(
    "/model/reload",
    summary="Load the current champion and swap it in (admin)",
    dependencies=[Depends(require_admin_key)],
    responses={
        403: {
            "model": ErrorResponse,
            "description": "Not an admin key, or admin routes are disabled (no admin key set).",
        },
        503: {
            "model": ErrorResponse,
            "description": "Loading failed (the message says why); the old model keeps serving.",
        },
    },
)
async def reload_model(state: State) -> ReloadResponse:
    """Load the model the settings name (e.g. the current champion) and swap it in atomically.

    Requests already running finish on the model they started with. On failure the previous
    model keeps serving and the error says why.
    """
    try:
        swap = await state.holder.reload()
    except ReloadFailed:
        state.metrics.reloads.labels(outcome="failure").inc()
        raise
    state.metrics.reloads.labels(outcome="success").inc()
    previous, current = swap.previous, swap.current
    changed = previous is None or _identity(previous) != _identity(current)
    return ReloadResponse(
        previous=model_info(previous) if previous is not None else None,
        current=model_info(current),
        changed=changed,
    )
