"""Headless Chromium for the web-UI tests (evtrack's UI and MLflow's UI on the evtrack store).

Debian's ``chromium`` through Playwright (no browser download; ``.ci/run`` installs it):
``browser`` (one per session), ``page`` (fails the test on a JavaScript error),
``screenshot_dir`` and :func:`shoot`. ``tests/conftest.py`` imports the fixtures.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PAGE_TIMEOUT_MS = 30_000


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium (Debian's ``chromium`` through Playwright) for the test session."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium package)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the pages' screenshots go: ``$EVTRACK_SCREENSHOT_DIR`` or the test run's temporary dir."""
    chosen = os.environ.get("EVTRACK_SCREENSHOT_DIR")
    if chosen:
        Path(chosen).mkdir(parents=True, exist_ok=True)
        return Path(chosen)
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser page (1280x900); the test fails on any JavaScript error the pages raise."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the pages: {errors}"


def shoot(page: Any, directory: Path, name: str) -> Path:
    """Save a full-page screenshot and check it is a real, non-empty PNG."""
    path = directory / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000, f"{path} is not a PNG screenshot"
    return path
