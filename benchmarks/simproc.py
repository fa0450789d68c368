"""The Hitem3D simulator in a child process, driven over stdin/stdout.

Benchmarks measure the client: a server in the same process would take the
GIL from the code under test and count its buffers in our memory. So the
simulator runs here, in its own interpreter, and takes one JSON command per
line on stdin, answering one JSON line on stdout:

    {"op": "add_task", "task_id": "...", "states": [...], "glb": "/path"}
    {"op": "requests"}        -> every recorded request (method, path, query, connection_id, time)
    {"op": "rate", "bytes_per_s": 2e7}   file bodies are throttled (null: full speed)
    {"op": "delay", "path": "/open-api/v1/query-task", "seconds": 8}   the next such answer waits
    {"op": "stop"}
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
API = "/open-api/v1"


def _serve() -> int:
    sys.path.insert(0, str(REPO_ROOT))
    from tests.support import simulator
    from tests.support.simulator import Fault, Hitem3DSimulator

    # NOTE: http.server leaves Nagle's algorithm on and writes headers and body
    # separately: a small body on a reused keep-alive connection then waits
    # ~40 ms for the client's delayed ACK. CDNs send with TCP_NODELAY; so do we.
    simulator._Handler.disable_nagle_algorithm = True

    with Hitem3DSimulator() as sim:
        hello = {"base_url": sim.base_url, "client_id": sim.client_id, "client_secret": sim.client_secret}
        print(json.dumps(hello), flush=True)
        for line in sys.stdin:
            command = json.loads(line)
            op = command["op"]
            reply: Any = None
            if op == "add_task":
                glb = command.get("glb")
                sim.add_task(command["task_id"], command["states"], glb=Path(glb) if glb else None)
            elif op == "requests":
                reply = [
                    {"method": r.method, "path": r.path, "query": r.query,
                     "connection_id": r.connection_id, "time": r.time}
                    for r in sim.requests
                ]
            elif op == "rate":
                sim.file_rate_limit = command["bytes_per_s"]
            elif op == "delay":
                sim.inject(command["path"], Fault.delay(command["seconds"]))
            elif op == "stop":
                print(json.dumps({"ok": True}), flush=True)
                break
            else:
                reply = {"error": f"unknown op {op!r}"}
            print(json.dumps({"ok": True, "reply": reply}), flush=True)
    return 0


class SimulatorProcess:
    """A handle on the child: start it with ``with SimulatorProcess() as sim``."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self.base_url = ""
        self.client_id = ""
        self.client_secret = ""

    def __enter__(self) -> SimulatorProcess:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.simproc"],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        hello = json.loads(self._read_line())
        self.base_url, self.client_id, self.client_secret = hello["base_url"], hello["client_id"], hello["client_secret"]
        return self

    def __exit__(self, *exc_info: object) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            assert process.stdin is not None
            process.stdin.write(json.dumps({"op": "stop"}) + "\n")
            process.stdin.flush()
            process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def _read_line(self) -> str:
        assert self._process is not None and self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the simulator process ended")
        return line

    def _call(self, op: str, **args: Any) -> Any:
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self._process.stdin.flush()
        answer = json.loads(self._read_line())
        if isinstance(answer.get("reply"), dict) and "error" in answer["reply"]:
            raise RuntimeError(answer["reply"]["error"])
        return answer.get("reply")

    def add_task(self, task_id: str, states: list[Any], glb: Path | None = None) -> None:
        self._call("add_task", task_id=task_id, states=states, glb=str(glb) if glb else None)

    def requests(self) -> list[dict[str, Any]]:
        return list(self._call("requests"))

    def set_file_rate(self, bytes_per_s: float | None) -> None:
        self._call("rate", bytes_per_s=bytes_per_s)

    def delay_next(self, path: str, seconds: float) -> None:
        """The next request under ``path`` gets its answer ``seconds`` late."""
        self._call("delay", path=path, seconds=seconds)

    def model_url(self, task_id: str) -> str:
        """The signed GLB link of a task whose next answer is success, asked
        for the way a client would (token, then query-task)."""
        with requests.Session() as session:
            pair = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
            token = session.post(f"{self.base_url}{API}/auth/token", headers={"Authorization": f"Basic {pair}"},
                                 timeout=10).json()["data"]["accessToken"]
            data = session.get(f"{self.base_url}{API}/query-task", params={"task_id": task_id},
                               headers={"Authorization": f"Bearer {token}"}, timeout=10).json()["data"]
        if data.get("state") != "success":
            raise RuntimeError(f"task {task_id} is {data.get('state')!r}, not success")
        return str(data["url"])


if __name__ == "__main__":
    sys.exit(_serve())
