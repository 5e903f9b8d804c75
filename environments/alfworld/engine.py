"""The parent side of an ALFWorld engine: one worker process per environment, spoken to over a pipe.

:class:`EngineProcess` starts :func:`environments.alfworld.worker.serve` in a new process (``spawn`` or
``forkserver``: never ``fork``, which would copy the parent's threads and locks). Requests are asynchronous:
:meth:`EngineProcess.submit` sends one and returns at once, :meth:`EngineProcess.result` waits for its reply, so a
caller can keep several engines busy at the same time.
"""

from __future__ import annotations

import multiprocessing
import weakref
from typing import Any

from environments.alfworld.dataset import GameDataError
from environments.alfworld.dependencies import INSTALL_HINT

#: Start methods an engine process may use.
START_METHODS: tuple[str, ...] = ("spawn", "forkserver")


def _died(exitcode: int | None) -> str:
    return (
        f"The ALFWorld engine process died (exit code {exitcode}). Its worker is started with multiprocessing's "
        'spawn: in a script, create environments under `if __name__ == "__main__":` (see the error above this one).'
    )


class EngineError(RuntimeError):
    """The engine process failed a request or died; the message carries the worker's error."""


def _stop(process: Any, conn: Any) -> None:
    """Ask the worker to exit, then make sure it does (also run by the finalizer at garbage collection or exit)."""
    try:
        if process.is_alive():
            conn.send(("close",))
            if conn.poll(5.0):
                conn.recv()
    except (EOFError, OSError, BrokenPipeError):
        pass
    process.join(timeout=5.0)
    if process.is_alive():
        process.terminate()
        process.join(timeout=5.0)
    conn.close()


class EngineProcess:
    """An ALFWorld text engine in a worker process of its own.

    Args:
        alfworld_data: ``ALFWORLD_DATA`` for the worker when it is unset (``alfworld`` creates this folder on import;
            without it, it writes to ``~/.cache/alfworld``).
        start_method: ``"spawn"`` (default) or ``"forkserver"``.
        timeout: Seconds to wait for one reply before giving up (loading a large data-set game takes about a second).

    Raises:
        ValueError: for an unknown start method.

    """

    def __init__(self, alfworld_data: str, start_method: str = "spawn", timeout: float = 600.0) -> None:
        if start_method not in START_METHODS:
            raise ValueError(f"start_method must be one of {START_METHODS}, got {start_method!r}.")
        from environments.alfworld.worker import serve

        context = multiprocessing.get_context(start_method)
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(
            target=serve,
            args=(child_conn, alfworld_data),
            name="alfworld-engine",
            daemon=not multiprocessing.current_process().daemon,
        )
        self._process.start()
        child_conn.close()
        self.timeout = float(timeout)
        self._pending = False
        self._finalizer = weakref.finalize(self, _stop, self._process, self._conn)

    @property
    def pid(self) -> int | None:
        """The worker's process id."""
        return self._process.pid

    @property
    def pending(self) -> bool:
        """Whether a request waits for its reply."""
        return self._pending

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return not self._finalizer.alive

    def submit(self, *request: Any) -> None:
        """Send a request without waiting for its reply.

        Raises:
            EngineError: if the engine is closed, dead or still busy with the previous request.
        """
        if self.closed:
            raise EngineError("The ALFWorld engine is closed.")
        if self._pending:
            raise EngineError("The ALFWorld engine is busy: wait for the previous request's result first.")
        try:
            self._conn.send(request)
        except (OSError, BrokenPipeError) as error:
            raise EngineError(f"The ALFWorld engine process is gone (exit code {self._process.exitcode}).") from error
        self._pending = True

    def result(self) -> Any:
        """Wait for the reply to the submitted request and return its payload.

        Raises:
            ImportError: when the worker cannot import the engine (the ``alfworld`` extra is missing there).
            GameDataError: when a game cannot be built or loaded.
            EngineError: for any other failure, a dead worker or a timeout.
        """
        if not self._pending:
            raise EngineError("No request is pending.")
        waited = 0.0
        while not self._conn.poll(1.0):
            waited += 1.0
            if not self._process.is_alive():
                self._pending = False
                raise EngineError(_died(self._process.exitcode))
            if waited >= self.timeout:
                self._pending = False
                self.close()
                raise EngineError(f"The ALFWorld engine gave no reply within {self.timeout:.0f} s; it was stopped.")
        try:
            reply = self._conn.recv()
        except (EOFError, OSError) as error:
            self._pending = False
            raise EngineError(_died(self._process.exitcode)) from error
        self._pending = False
        if reply[0] == "ok":
            return reply[1]
        _, kind, message, trace = reply
        if kind in ("ImportError", "ModuleNotFoundError"):
            raise ImportError(f"The ALFWorld engine cannot start: {message}. {INSTALL_HINT}")
        if kind == "GameDataError":
            raise GameDataError(message)
        raise EngineError(f"The ALFWorld engine failed: {kind}: {message}\nWorker traceback:\n{trace}")

    def call(self, *request: Any) -> Any:
        """Send a request and wait for its reply (:meth:`submit` then :meth:`result`)."""
        self.submit(*request)
        return self.result()

    def close(self) -> None:
        """Stop the worker process (idempotent)."""
        self._pending = False
        self._finalizer()
