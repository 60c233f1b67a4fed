"""Request limits: body size (enforced before any parsing) and the number and length of texts."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import InvalidInput, PayloadTooLarge, service_error_response


class BodyLimitMiddleware:
    """Refuse request bodies larger than ``max_bytes`` with 413, before anything parses them.

    A declared ``Content-Length`` over the limit is refused without reading a byte. Otherwise
    the body is read here while counting (a chunked upload declares no length, and a client may
    lie), then handed on to the application unchanged. Buffering costs nothing extra: the JSON
    parser needs the whole body anyway.

    Args:
        app: The wrapped ASGI application.
        max_bytes: Largest accepted body.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = PayloadTooLarge(
            f"the request body is larger than the limit of {self.max_bytes} bytes"
        )
        await service_error_response(error)(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away before finishing its body: nothing to answer.
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            # After the body, only a disconnect can come; wait for it like a plain receive.
            return await receive()

        await self.app(scope, replay, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def check_texts(texts: Sequence[str], field: str, max_texts: int, max_chars: int) -> None:
    """Enforce the configured limits on the texts of one request.

    Args:
        texts: The texts to classify.
        field: The request field they came from (``text`` or ``texts``), to name in errors.
        max_texts: Most texts per request.
        max_chars: Most characters per text.

    Raises:
        InvalidInput: A limit is exceeded (422, naming the field).
    """
    if len(texts) > max_texts:
        raise InvalidInput(
            f"{len(texts)} texts in one request; the limit is {max_texts}", field=field
        )
    for i, text in enumerate(texts):
        if len(text) > max_chars:
            name = field if field == "text" else f"{field}[{i}]"
            raise InvalidInput(
                f"{name} has {len(text)} characters; the limit is {max_chars}", field=name
            )
