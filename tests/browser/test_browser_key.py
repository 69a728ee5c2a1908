"""The upload page of a server started with --api-key: headless Chromium enters the key in the page's field, then
the model and the labels load (the page sends the key as X-API-Key; without it the page says a key is needed)."""

import os
import re

import pytest

from horses_humans.serve.settings import ServeSettings

from ..live_server import serving
from .test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser


def test_upload_page_works_with_an_api_key(baseline_run, views_data):
    from playwright.sync_api import expect, sync_playwright

    assert os.access(CHROMIUM, os.X_OK), (
        f"{CHROMIUM} is missing: run scripts/setup-test.sh (apt-get install -y chromium)"
    )
    photo = next((views_data[0] / "validation-horse-or-human" / "horses").iterdir())
    with serving(ServeSettings(run=baseline_run, api_key="page-key")) as port, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        expect(page.locator("#model")).to_contain_text("needs an API key")
        page.fill("#apikey", "page-key")
        page.dispatch_event("#apikey", "change")
        expect(page.locator("#model")).to_contain_text("baseline")
        page.set_input_files("#files", [str(photo)])
        expect(page.locator(".card .label")).to_have_text(re.compile("^(horses|humans|unsure)"))
        browser.close()
