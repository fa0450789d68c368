"""``python build.py sandbox`` as a newcomer runs it: one command, with any
Python and no venv, prints what to paste into Blender; the add-on's own client
follows every printed task to a result it would import; Ctrl+C stops it cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hitem3d_blender.core import settings
from hitem3d_blender.core.api import Hitem3DClient
from hitem3d_blender.core.errors import GenerationFailed
from hitem3d_blender.core.glb_check import check_cover, check_glb
from tests import sandbox

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"


class Running:
    def __init__(self, process: subprocess.Popen[str], text: str) -> None:
        self.process, self.text = process, text

    def field(self, name: str) -> str:
        found = re.search(rf"^\s+{name}\s+(\S+)$", self.text, re.MULTILINE)
        assert found is not None, f"{name!r} not printed:\n{self.text}"
        return found.group(1)


@pytest.fixture
def running() -> Iterator[Running]:
    """The sandbox started the way the README says, on free ports, with
    Python's own interpreter and no venv on the path."""
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONPATH")}
    process = subprocess.Popen([sys.executable, "build.py", "sandbox", "--port", "0"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Requests are listed below"):
            break
    try:
        yield Running(process, "".join(lines))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


def test_it_prints_the_address_the_credentials_and_a_task_of_every_kind(running: Running) -> None:
    assert running.process.poll() is None, running.text
    base_url = running.field("API base URL")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base_url)
    assert running.field("Client ID") == sandbox.CLIENT_ID
    assert running.field("Client Secret") == sandbox.CLIENT_SECRET
    for name in ("HITEM3D_API_BASE", "HITEM3D_CLIENT_ID", "HITEM3D_CLIENT_SECRET", "HITEM3D_UPLOAD_ENDPOINT",
                 "HITEM3D_UPLOAD_PUBLIC_BASE"):
        assert f"{name}=" in running.text and f'$env:{name}="' in running.text
    for task in sandbox.tasks():
        assert task.task_id in running.text
    kinds = {task.task_id.split("_")[0] for task in sandbox.tasks() if "_" in task.task_id}
    assert kinds == {"split", "segmentation", "depth", "multicolor"}


def test_the_add_ons_client_follows_every_printed_task_to_a_result_it_can_import(running: Running) -> None:
    client = Hitem3DClient(settings.resolve(base_url=running.field("API base URL"),
                                            client_id=running.field("Client ID"),
                                            client_secret=running.field("Client Secret"), environ={}))
    try:
        for task in sandbox.tasks():
            if task.states is sandbox.FAILED:
                with pytest.raises(GenerationFailed):
                    for _ in task.states:
                        client.query_task(task.task_id)
                continue
            states = [client.query_task(task.task_id) for _ in task.states]
            assert [status.state for status in states] == ["queueing", "processing", "processing", "success"]
            model = client.downloads.get(str(states[-1].model_url), timeout=10).content
            # A depth task has no cover (its page documents none).
            cover = client.downloads.get(states[-1].cover_url, timeout=10).content if states[-1].cover_url else PNG
            path = ROOT / "dist" / f"sandbox-check-{os.getpid()}.{task.extension}"
            path.parent.mkdir(exist_ok=True)
            try:
                path.write_bytes(model)
                if task.extension == "glb":
                    check_glb(path)  # raises for anything the add-on would refuse
                else:
                    assert model.startswith(PNG)
                assert cover.startswith(PNG)
                if len(cover) > len(PNG):
                    path.write_bytes(cover)
                    check_cover(path)
            finally:
                path.unlink(missing_ok=True)
    finally:
        client.close()


def test_ctrl_c_stops_it_cleanly_and_at_once(running: Running) -> None:
    assert running.process.stdout is not None
    started = time.monotonic()
    running.process.send_signal(signal.SIGINT)
    assert running.process.wait(timeout=10) == 0
    assert time.monotonic() - started < 5
    rest = running.process.stdout.read()
    assert rest.rstrip().endswith("Sandbox stopped."), rest
    assert "Traceback" not in rest


def test_a_taken_port_is_one_line_that_says_what_to_do() -> None:
    sim, _ = sandbox.start(0)
    try:
        result = subprocess.run([sys.executable, "build.py", "sandbox", "--port", str(sim.port)], cwd=ROOT,
                                capture_output=True, text=True, timeout=30)
    finally:
        sim.stop()
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert re.fullmatch(r"sandbox: cannot listen on 127\.0\.0\.1:\d+ or \d+ \(.+\): another sandbox may be "
                        r"running; choose other ports with --port\n", result.stderr), result.stderr
