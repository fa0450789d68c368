"""One download through the add-on's own ``stream_to_file``, in a process of its own.

    python -m benchmarks.download_probe URL DEST [--memory]

Prints one JSON line: bytes, seconds and, with ``--memory``, the resident set
before the download and its peak during it. A fresh process per download, so
the peak is ours alone (not the simulator's, not an earlier run's).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, ContextManager
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parents[1]


def _status_kib(field: str) -> int:
    """A ``kB`` line of /proc/self/status (VmRSS, VmHWM), in KiB; 0 where there is no /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class RssSampler:
    """Samples VmRSS every few milliseconds on a thread: the peak even where
    VmHWM cannot be reset."""

    def __init__(self, period_s: float = 0.002) -> None:
        self.period_s = period_s
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, _status_kib("VmRSS"))
            self._stop.wait(self.period_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, _status_kib("VmRSS"))


def _product_download_setup(url: str) -> tuple[Any, Any, Callable[[Any], ContextManager[Any]]]:
    """The download session, cancel token and cancel scope the add-on's worker
    uses, so the figure is the add-on's, not a plain ``requests`` loop's."""
    from hitem3d_blender.core.api import Hitem3DClient
    from hitem3d_blender.core.settings import ApiSettings

    try:
        from hitem3d_blender.core.cancel import CancelToken, cancel_scope

        scope: Callable[[Any], ContextManager[Any]] = cancel_scope
    except ImportError:  # before core.cancel existed
        from hitem3d_blender.core.downloader import CancelToken

        scope = lambda token: contextlib.nullcontext()  # noqa: E731
    parts = urlsplit(url)
    client = Hitem3DClient(ApiSettings(f"{parts.scheme}://{parts.netloc}", "bench", "bench"))
    session = getattr(client, "downloads", None)
    if session is None:  # before the client owned the download session
        import requests

        session = requests.Session()
    return session, CancelToken(), scope


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.download_probe")
    parser.add_argument("url")
    parser.add_argument("dest", type=Path)
    parser.add_argument("--memory", action="store_true", help="measure resident memory during the download")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO_ROOT))
    from hitem3d_blender.core.downloader import stream_to_file

    session, token, scope = _product_download_setup(args.url)
    report: dict[str, object] = {}
    if args.memory:
        # Everything a download needs is imported and allocated before the baseline.
        with session.get(args.url, stream=True, timeout=30) as response:
            next(response.iter_content(256 * 1024), b"")
        rss_before = _status_kib("VmRSS")
        report["hwm_reset"] = _reset_peak()
        with RssSampler() as sampler:
            started = time.perf_counter()
            with scope(token):
                result = stream_to_file(session, args.url, args.dest, cancel=token,
                                        on_progress=lambda done, total: None, max_bytes=4 * 1024**3)
            seconds = time.perf_counter() - started
        peak = max(sampler.peak_kib, _status_kib("VmHWM") if report["hwm_reset"] else 0)
        report.update(rss_before_kib=rss_before, rss_peak_kib=peak, rss_growth_kib=peak - rss_before)
    else:
        started = time.perf_counter()
        with scope(token):
            result = stream_to_file(session, args.url, args.dest, cancel=token,
                                    on_progress=lambda done, total: None, max_bytes=4 * 1024**3)
        seconds = time.perf_counter() - started
    report.update(bytes=result.size, seconds=seconds)
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
