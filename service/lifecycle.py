"""The served model's lifecycle: the first load at start-up, and reloads swapped in atomically."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from classifier.errors import ModelLoadError
from service import loader
from service.errors import ReloadFailed
from service.loader import LoadedModel
from service.settings import Settings

logger = logging.getLogger(__name__)

Loader = Callable[[Settings], LoadedModel]


@dataclass(frozen=True, slots=True)
class Swap:
    """What a successful reload changed."""

    previous: LoadedModel | None
    current: LoadedModel


class ModelHolder:
    """Holds the one model reference that requests read.

    Requests read :attr:`current` once (through a dependency) and keep that object for their whole
    duration, so swapping the reference never changes the model under a running request. Loads
    happen in a worker thread, off the event loop; reloads are serialised so two admins cannot
    interleave them.

    Args:
        settings: Where to load the model from.
        load: The loading function (:func:`service.loader.load` unless a test injects another).
        initial: A model loaded before the server started, served instead of a first load.
    """

    def __init__(
        self,
        settings: Settings,
        load: Loader = loader.load,
        initial: LoadedModel | None = None,
    ) -> None:
        self._settings = settings
        self._load = load
        self._initial = initial
        self._current: LoadedModel | None = None
        # Made on first use, inside the event loop that serves the app.
        self._reload_lock: asyncio.Lock | None = None
        self.last_error: str | None = None
        # True while a model started from the local copy awaits its registry check.
        self.pending_check = False

    @property
    def current(self) -> LoadedModel | None:
        """The model serving now, or None before the first successful load."""
        return self._current

    async def load_initial(self) -> None:
        """Load the configured model at start-up.

        A failure is logged and remembered (readiness reports it); with ``require_model`` set it
        is raised instead, so the server refuses to start.

        Raises:
            ModelLoadError: The model cannot be loaded and ``settings.require_model`` is set.
        """
        model, self._initial = self._initial, None
        if model is None and self._settings.fast_start:
            model = await run_in_threadpool(loader.load_cached, self._settings)
        if model is None:
            try:
                model = await run_in_threadpool(self._load, self._settings)
            except ModelLoadError as exc:
                self.last_error = str(exc)
                if self._settings.require_model:
                    raise
                logger.error("no model loaded, serving unready until a reload succeeds: %s", exc)
                return
        self._current = model
        self.last_error = None
        # A local copy served at start-up (fast start) is checked against the registry next.
        self.pending_check = model.source == loader.SOURCE_CACHE and not model.degraded
        if model.degraded:
            logger.warning(
                "serving model %s version %s, degraded: %s",
                model.name,
                model.version,
                model.degraded_reason,
            )
        else:
            logger.info("serving model %s version %s (%s)", model.name, model.version, model.source)

    async def check_registry(self) -> None:
        """After a fast start, ask the registry whether the local copy is still the champion.

        The copy keeps serving while the check runs. If the alias now names another version,
        that version is loaded and swapped in; if the store cannot be reached or no longer knows
        the alias, the copy keeps serving marked degraded, with the reason. The check holds the
        reload lock, so an admin reload asked for meanwhile runs after it, never interleaved.
        """
        if not self.pending_check or self._current is None:
            return
        if self._reload_lock is None:
            self._reload_lock = asyncio.Lock()
        async with self._reload_lock:
            started_from = self._current
            try:
                checked = await run_in_threadpool(loader.revalidate, started_from, self._settings)
            except ModelLoadError as exc:
                self.last_error = str(exc)
                logger.error(
                    "registry check: the champion could not be loaded, still serving %s version"
                    " %s: %s",
                    started_from.name,
                    started_from.version,
                    exc,
                )
                checked = None
            finally:
                self.pending_check = False
            if checked is not None:
                self._current = checked
                if checked.degraded:
                    logger.warning("registry check: degraded: %s", checked.degraded_reason)

    async def reload(self) -> Swap:
        """Load the configured model again (e.g. a new champion) and swap it in.

        A load that could only fall back to the last good local copy (the tracking store is
        unreachable) counts as a failure when a model is already serving: the reload could not
        find out what the settings name now. It is swapped in only when nothing is serving.

        Returns:
            The previous and the new model.

        Raises:
            ReloadFailed: Loading failed; the previous model keeps serving.
        """
        if self._reload_lock is None:
            self._reload_lock = asyncio.Lock()
        async with self._reload_lock:
            try:
                model = await run_in_threadpool(self._load, self._settings)
            except ModelLoadError as exc:
                raise self._failed(str(exc)) from exc
            if model.degraded and self._current is not None:
                raise self._failed(f"only a fallback could be loaded: {model.degraded_reason}")
            previous = self._current
            # One reference assignment: atomic, so a request sees either model, never a mix.
            self._current = model
            self.last_error = None
            # A reload asks the registry itself: nothing is left for a pending start-up check.
            self.pending_check = False
            logger.info("reloaded: now serving %s version %s", model.name, model.version)
            return Swap(previous, model)

    def _failed(self, reason: str) -> ReloadFailed:
        """Record and log a failed reload, and build the error saying what keeps serving."""
        self.last_error = reason
        kept = self._current
        serving = (
            f"still serving {kept.name} version {kept.version}"
            if kept is not None
            else "no model is loaded"
        )
        logger.error("reload failed (%s): %s", serving, reason)
        return ReloadFailed(f"reload failed, {serving}: {reason}")
