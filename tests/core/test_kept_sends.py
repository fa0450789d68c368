"""Requests that had not left when a session ended: kept as they were, read
back as input (what is not a request, or points at a mesh that is not ours,
is dropped), and in the queue they wait for the artist's Send, never going by
themselves."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hitem3d_blender.core import kept_sends
from hitem3d_blender.core.import_options import ImportOptions
from hitem3d_blender.core.kept_sends import Kept
from hitem3d_blender.core.kind_requests import KindRequest
from hitem3d_blender.core.prices import Estimate
from hitem3d_blender.core.send_queue import FetchBalance, Go, Send, SendQueue, Stage
from hitem3d_blender.core.submission import RequestType, Submission


@pytest.fixture
def exports(tmp_path: Path) -> Path:
    folder = tmp_path / "meshes"
    folder.mkdir()
    return folder


def some(exports: Path) -> list[Kept]:
    views = Submission("hitem3dv2.1", "1536fast", views={"front": "/pictures/f.png", "left": "/pictures/l.png"},
                       face=800_000, shading=0.5)
    texturing = Submission("hitem3dv1.5", "1024", request_type=RequestType.TEXTURE_MESH, image="/pictures/c.png",
                           mesh=str(exports / "Chair-1.glb"), mesh_name="Chair", mesh_box=(0, 0, 0, 1, 1, 1))
    split = KindRequest("split", {"part": "c", "joint": "dovetail"}, source_path="/models/knight.glb",
                        source_name="knight")
    return [Kept(views, "generate", "HITEM3D_OT_submit_generation", "/pictures/f.png",
                 ImportOptions(collection="Props", shade_smooth=True)),
            Kept(texturing, "generate", "HITEM3D_OT_texture_selection"),
            Kept(split, "parts", "HITEM3D_OT_split_parts")]


def test_what_is_kept_comes_back_as_it_was(exports: Path) -> None:
    kept = some(exports)
    assert kept_sends.decode(kept_sends.encode(kept), exports) == kept


def test_a_mesh_to_texture_that_is_not_one_of_our_exports_is_dropped(exports: Path, tmp_path: Path) -> None:
    planted = Submission("hitem3dv1.5", "1024", request_type=RequestType.TEXTURE_MESH, image="/p/c.png",
                         mesh=str(exports / ".." / "secret.glb"))
    data = kept_sends.encode([Kept(planted, "generate"), *some(exports)])
    assert [item.request for item in kept_sends.decode(data, exports)] == [item.request for item in some(exports)]


@pytest.mark.parametrize("raw", [
    b"not json", b"[]", b'{"requests": 3}', b'{"requests": [3, {"type": "kind"}, {"type": "x", "request": {}}]}',
    json.dumps({"requests": [{"type": "kind", "request": {"kind": "split"}, "panel": 7}]}).encode(),
    json.dumps({"requests": [{"type": "kind", "request": {"kind": "no-such-kind"}, "panel": ""}]}).encode(),
    "\ud800".encode("utf-8", "surrogatepass"),
])
def test_what_is_not_a_request_is_dropped_never_fatal(exports: Path, raw: bytes) -> None:
    assert kept_sends.decode(raw, exports) == []


def test_at_most_so_many_are_kept(exports: Path) -> None:
    many = [some(exports)[2]] * (kept_sends.MAX_KEPT + 5)
    assert len(kept_sends.decode(kept_sends.encode(many), exports)) == kept_sends.MAX_KEPT


def test_the_file_is_replaced_whole_and_removed_when_nothing_waits(exports: Path, tmp_path: Path) -> None:
    path = tmp_path / "waiting_requests.json"
    assert kept_sends.load(path, exports) == []
    kept_sends.write(path, kept_sends.encode(some(exports)))
    assert kept_sends.load(path, exports) == some(exports)
    kept_sends.write(path, kept_sends.encode([]))
    assert not path.exists()


@pytest.mark.skipif(os.name != "posix", reason="symlinks need privileges on Windows")
def test_a_symlinked_file_is_not_followed(exports: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_bytes(kept_sends.encode(some(exports)))
    link = tmp_path / "waiting_requests.json"
    link.symlink_to(elsewhere)
    assert kept_sends.load(link, exports) == []


# -- in the queue ------------------------------------------------------------------------------------


def test_a_kept_request_waits_for_its_send_holds_no_button_and_keeps_no_timer() -> None:
    queue = SendQueue()
    queue.add(Send("submit-1", Estimate(20), "generate", stage=Stage.KEPT))
    queue.add(Send("submit-2", Estimate(20), "split"))

    steps = queue.advance(balance=1000.0, balance_answered=True, balance_checking=False, running=0, limit=10,
                          now=0.0)

    assert steps == [Go("submit-2")]
    assert queue.get("submit-1").stage is Stage.KEPT  # type: ignore[union-attr]
    assert not queue.in_flight("generate") and not queue.waiting()
    assert [send.key for send in queue.unsent()] == ["submit-1"]
    assert queue.reserved() == 20.0  # only the one sent is set aside


def test_a_kept_request_sent_again_goes_like_a_new_one() -> None:
    queue = SendQueue()
    queue.add(Send("submit-1", Estimate(20), "generate", stage=Stage.KEPT))

    assert queue.resume("submit-1") and not queue.resume("submit-1")

    assert queue.advance(balance=None, balance_answered=False, balance_checking=False, running=0, limit=10,
                         now=0.0) == [FetchBalance()]
    assert queue.advance(balance=1000.0, balance_answered=True, balance_checking=False, running=0, limit=10,
                         now=0.0) == [Go("submit-1")]
    assert queue.unsent() == []
