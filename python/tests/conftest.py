"""The package's tests run against a live Athanor server with a compute service.

The repository's test suite starts both (on SQLite and on PostgreSQL) and sets:
ATHANOR_URL, ATHANOR_ID, ATHANOR_KEY (a user holding ``org-camp-*``), ATHANOR_TEST_OTHER_ID and
ATHANOR_TEST_OTHER_KEY (a user holding only ``other-x-*``), ATHANOR_TEST_CLI (the ``athanor``
command as a JSON list), and ATHANOR_TEST_DATABASE_URL (for operator commands such as
maintenance mode). The compute service runs ``echo``, ``sleep`` and ``exec``.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from athanor import Client

_needed = ("ATHANOR_URL", "ATHANOR_ID", "ATHANOR_KEY", "ATHANOR_TEST_OTHER_ID", "ATHANOR_TEST_OTHER_KEY")


def pytest_configure(config: pytest.Config) -> None:
    missing = [name for name in _needed if not os.environ.get(name)]
    if missing:
        raise pytest.UsageError(
            f"these tests need a live server: set {', '.join(missing)} "
            "(the repository's test suite starts one and sets them)"
        )


@pytest.fixture
def client() -> Client:
    with Client() as c:
        yield c


@pytest.fixture
def other() -> Client:
    """A user whose only scope is other-x-*: alice's objects must look absent to it."""
    with Client(
        identifier=os.environ["ATHANOR_TEST_OTHER_ID"], key=os.environ["ATHANOR_TEST_OTHER_KEY"]
    ) as c:
        yield c


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def athanor_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs the ``athanor`` CLI against the test server and its database."""
    argv = json.loads(os.environ.get("ATHANOR_TEST_CLI", '["athanor"]'))
    env = {**os.environ}
    if os.environ.get("ATHANOR_TEST_DATABASE_URL"):
        env["ATHANOR_DATABASE_URL"] = os.environ["ATHANOR_TEST_DATABASE_URL"]

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*argv, *args], env=env, capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise AssertionError(f"athanor {' '.join(args)} exited {done.returncode}: {done.stderr}")
        return done

    return run


def echo_network(name: str, count: int, payload: Callable[[int], Any] | None = None) -> dict[str, Any]:
    """A network of ``count`` echo transformations; its inputs hold ``name``, so that no other
    test's network shares its transformations (and their tasks)."""
    payload = payload or (lambda i: {"i": i, "network": name})
    return {
        "name": name,
        "transformations": [
            {"name": f"t{i}", "protocol": "echo", "inputs": payload(i)} for i in range(count)
        ],
    }
