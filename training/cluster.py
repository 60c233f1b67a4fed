"""Dask clusters for batch scoring and the hyper-parameter search.

``--scheduler ADDRESS`` connects to a running ``dask scheduler`` (any machine the client can
reach); without it a local cluster of worker processes is started on loopback and closed after
use. Workers must run this project's environment (``uv sync``), since tasks call its functions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from distributed import Client, LocalCluster

# Long enough for a scheduler across a network, short enough that a wrong address fails soon.
CONNECT_TIMEOUT_SECONDS = 20.0


class ClusterError(ConnectionError):
    """The Dask scheduler cannot be reached, or a local cluster cannot be started.

    A :class:`ConnectionError` (so an :class:`OSError`): callers that report I/O failures as
    one-line reasons report this one too.
    """


def available_cores() -> int:
    """Cores this process may run on (the affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def connect(address: str, timeout: float | None = None) -> Client:
    """Connect to a running Dask scheduler.

    Args:
        address: Scheduler address, e.g. ``tcp://10.0.0.5:8786`` (``tcp://`` may be omitted).
        timeout: Seconds to wait for the connection (default :data:`CONNECT_TIMEOUT_SECONDS`).

    Returns:
        A connected client (also the default client, so joblib's Dask backend finds it).

    Raises:
        ClusterError: The scheduler does not answer within ``timeout``.
    """
    try:
        return Client(  # type: ignore[no-untyped-call]
            address, timeout=timeout or CONNECT_TIMEOUT_SECONDS
        )
    except (OSError, ValueError) as exc:  # TimeoutError is an OSError
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc


@contextmanager
def dask_client(address: str | None = None, workers: int | None = None) -> Iterator[Client]:
    """A client of the cluster at ``address``, or of a local cluster started for the block.

    Args:
        address: Scheduler address; None starts a local cluster.
        workers: Worker processes of a local cluster (default: one per available core); ignored
            with ``address``.

    Yields:
        The client; a local cluster is shut down when the block ends.

    Raises:
        ClusterError: The scheduler cannot be reached or the local cluster cannot start.
    """
    if address:
        with connect(address) as client:
            yield client
        return
    try:
        # One thread per process: prediction is Python-bound, so processes are what scale.
        # Loopback only, and no dashboard: nothing of this cluster listens beyond this machine.
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers or available_cores(),
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
    except (OSError, RuntimeError) as exc:
        raise ClusterError(f"cannot start a local Dask cluster: {exc}") from exc
    with cluster, Client(cluster) as client:  # type: ignore[no-untyped-call]
        yield client
