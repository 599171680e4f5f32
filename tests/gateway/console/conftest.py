"""Fixtures of the console's tests: one Chromium for the session, a served gateway with its console per test."""
from __future__ import annotations

import shutil

import pytest

from console.console_kit import ARGS, CHROMIUM, Console
from gateway.app import create_app
from gateway.server import background


@pytest.fixture(scope="session")
def browser():
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def console(gateway, home, browser):
    with background(create_app(gateway)) as url:
        served = Console(gateway, home, browser, url)
        yield served
        served.close()


