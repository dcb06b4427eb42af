"""``python -m tunedrop_local.vertex_emulator``: serve the emulator until SIGTERM or SIGINT.

Logs are JSON lines on stdout (``shared.logs``), one per call with ``--verbose``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Final

from shared.logs import configure_logging

from .config import ConfigError
from .server import SERVICE_NAME, serve
from .service import VertexEmulator

log = logging.getLogger(__name__)

DEFAULT_PORT: Final = 8089
STOP_GRACE_SECONDS: Final = 5


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tunedrop_local.vertex_emulator",
        description="Serve an emulated Vertex AI GenAiTuningService over insecure gRPC.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port to bind, 0 for any free port (default {DEFAULT_PORT})",
    )
    parser.add_argument("--verbose", action="store_true", help="also log every Get/List call")
    return parser.parse_args(argv)


class _StopSignals:
    """SIGTERM and SIGINT only set a flag that the main thread waits on."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self.received: str | None = None

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)

    def _request_stop(self, signum: int, _frame: FrameType | None) -> None:
        # Only record and flag here: logging from a signal handler can interleave with a log call
        # the main thread was in the middle of.
        if self.received is None:
            self.received = signal.Signals(signum).name
        self._stop.set()

    def wait(self) -> str | None:
        """Block until a signal came; its name."""
        # Poll rather than block forever so the signal handler always gets to run promptly.
        while not self._stop.wait(0.2):
            pass
        return self.received


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    configure_logging(logging.DEBUG if args.verbose else logging.INFO)
    try:
        emulator = VertexEmulator()
        server, port = serve(args.host, args.port, emulator=emulator)
    except (ConfigError, RuntimeError) as err:
        log.error(str(err))
        return 2
    signals = _StopSignals()
    signals.install()  # before "serving" is logged: whoever reads that line may signal at once
    config = emulator.config
    log.info(
        "Vertex AI tuning emulator serving",
        extra={
            "host": args.host,
            "port": port,
            "service": SERVICE_NAME,
            "quota": config.quota,
            "quota_mode": config.quota_mode,
            "job_seconds": config.job_seconds,
            "fail_rate": config.fail_rate,
            "unavailable_rate": config.unavailable_rate,
            "seed": config.seed,
            "dropped_examples": config.dropped_examples,
            "tuned_quality": config.tuned_quality,
            "tuned_noise": config.tuned_noise,
        },
    )
    received = signals.wait()
    log.info("stopping gracefully", extra={"signal": received})
    server.stop(grace=STOP_GRACE_SECONDS).wait()
    log.info("Vertex AI tuning emulator stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
