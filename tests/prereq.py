"""What a test needs from the machine: libvirtd, UEFI firmware, a tool
(qemu-img, cpio, mkfs, openssl...), osinfo-db, a tmpfs or loop mount.

In CI (``.ci/run`` exports ``CI=1``) a missing prerequisite FAILS the test:
CI installs all of them (``scripts/setup-host.sh``), so a skip there would
hide a broken setup and let the run pass without testing. Elsewhere the test
is skipped with the reason.

* :func:`missing` -- call it where the test finds out (instead of ``pytest.skip``);
* :func:`needs` -- a mark for what is known before the test runs (instead of
  ``pytest.mark.skipif``); ``tests/conftest.py`` acts on it.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(reason: str) -> NoReturn:
    """Skip the test for ``reason`` — or fail it in CI."""
    if in_ci():
        pytest.fail(f"{reason} (CI=1: CI must provide this; see scripts/setup-host.sh)", pytrace=False)
    pytest.skip(reason)


def needs(present: bool, reason: str) -> pytest.MarkDecorator:
    """Mark a test (or a module, as ``pytestmark``) that needs something
    ``present`` says is there; ``reason`` says what is missing."""
    return pytest.mark.needs(present=present, reason=reason)
