"""The upload page as a user sees it: headless Debian Chromium (Playwright) uploads photos and reads the labels."""

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from horses_humans.serve.app import create_app
from horses_humans.serve.settings import ServeSettings

CHROMIUM = "/usr/bin/chromium"  # scripts/setup.sh installs it; Playwright downloads no browser
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server_url(baseline_run):
    """The real server (uvicorn, lifespan and all) in a background thread on a free local port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(ServeSettings(run=baseline_run)), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_upload_page_shows_labels_errors_and_gradcam(server_url, views_data, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing: run scripts/setup.sh (apt-get install -y chromium)"
    validation = views_data[0] / "validation-horse-or-human"
    photos = [next((validation / "horses").iterdir()), next((validation / "humans").iterdir())]
    bad = tmp_path / "notes.txt"
    bad.write_text("not a photo")
    expected = [httpx.post(f"{server_url}/v1/predict", files={"files": p.open("rb")}).json()["results"][0]["label"] for p in photos]

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 620})
        page.goto(server_url + "/")
        expect(page.locator("#model")).to_contain_text("baseline")
        page.check("#gradcam")
        page.set_input_files("#files", [str(p) for p in photos] + [str(bad)])
        cards = page.locator(".card")
        expect(cards).to_have_count(3)
        for i, label in enumerate(expected):
            expect(cards.nth(i).locator(".label")).to_have_text(label)
            expect(cards.nth(i).locator("img")).to_have_count(2)  # the photo and its Grad-CAM overlay
        expect(cards.nth(2).locator(".error")).to_contain_text("notes.txt: not an image")
        screenshot = page.screenshot(path=str(tmp_path / "upload-page.png"), full_page=True)
        browser.close()
    assert screenshot[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("HORSES_HUMANS_SCREENSHOTS"):  # keep it where a person can look at it
        Path(os.environ["HORSES_HUMANS_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "upload-page.png", Path(os.environ["HORSES_HUMANS_SCREENSHOTS"]) / "upload-page.png")
