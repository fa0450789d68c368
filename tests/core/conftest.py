"""Fixtures the core's tests share: a simulator on loopback and a client of it."""

from __future__ import annotations

from typing import Iterator

import pytest

from hitem3d_blender.core.api import Hitem3DClient
from hitem3d_blender.core.settings import ApiSettings
from tests.support.simulator import Hitem3DSimulator


@pytest.fixture
def sim() -> Iterator[Hitem3DSimulator]:
    """A fresh simulator per test (a module may define its own ``sim`` to configure it)."""
    with Hitem3DSimulator() as simulator:
        yield simulator


@pytest.fixture
def client(sim: Hitem3DSimulator) -> Iterator[Hitem3DClient]:
    """A client of ``sim`` with a short request timeout, closed after the test."""
    instance = Hitem3DClient(ApiSettings(sim.base_url, sim.client_id, sim.client_secret, request_timeout_s=5.0))
    yield instance
    instance.close()
