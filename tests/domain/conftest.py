"""Every domain test runs once per engine twin (see ``twins.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import twins


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if getattr(metafunc.module, "BOTH_TWINS_AT_ONCE", False):
        return  # the module drives both twins in each test
    if "twin" in metafunc.fixturenames:
        metafunc.parametrize("twin", twins.TWINS, indirect=True)


@pytest.fixture(autouse=True)
def twin(request: pytest.FixtureRequest) -> Iterator[str]:
    """The twin this test runs against. (Hypothesis state machines, which are unittest
    classes, are not parametrized: each twin has its own machine class.)"""
    name = getattr(request, "param", None)
    if name is None:
        yield twins.current()
        return
    before = twins.current()
    twins.use(name)
    try:
        yield name
    finally:
        twins._current["name"] = before
