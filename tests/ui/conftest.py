"""Browser tests of the web UI: Playwright (PyPI) driving Debian's headless chromium
against a real `shipyard serve`. The set-up installs what is missing (chromium through
apt-get when running as root, the UI's npm assets with `npm ci`) and skips with the
reason only when that is impossible. Screenshots go to test-output/ui/."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ..helpers import ROOT, Api, ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
UI_DIR = ROOT / "service" / "shipyard_service" / "ui"
SHOTS = ROOT / "test-output" / "ui"
LAUNCH_ARGS = ["--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]


def _ensure_chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("Debian's chromium is not installed and cannot be (needs root and apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    lock = ["-o", "DPkg::Lock::Timeout=300"]  # others may be installing at the same time
    for command in (["apt-get", "update", "-qq", *lock],
                    ["apt-get", "install", "-y", "-qq", *lock, "chromium"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.skip(f"could not install chromium: {done.stderr[-500:]}")
    return CHROMIUM


def _ensure_ui_assets() -> None:
    if (UI_DIR / "node_modules" / "uplot" / "dist" / "uPlot.iife.min.js").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is missing: the UI's chart library cannot be installed")
    done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=UI_DIR,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        pytest.skip(f"npm ci failed: {done.stderr[-500:]}")


@pytest.fixture(scope="session")
def browser():
    executable = _ensure_chromium()
    _ensure_ui_assets()
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(executable), headless=True,
                                    args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("ui"), env={
        "SHIPYARD_RESOURCE_SAMPLE_S": "0.5", "SHIPYARD_WORKER_NAME": "worker-1"}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ui_api(ui_server) -> Api:
    return Api(ui_server)


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def shot(page, name: str) -> Path:
    """A full-page screenshot under test-output/ui/ (looked at by people, kept by CI)."""
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def login(page, server: ServerProcess, path: str = "/ui/") -> None:
    creds = server.credentials
    page.goto(server.url + path)
    page.fill("input[name=email]", creds["admin_email"])
    page.fill("input[name=password]", creds["admin_password"])
    page.click("form button[type=submit]")
    page.wait_for_load_state()
