"""Headless Chromium (Debian's chromium + chromium-driver) driven by Selenium, for the console tests."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

CHROMIUM = next(
    (
        p
        for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
        if p and Path(p).exists()
    ),
    None,
)
DRIVER = next(
    (
        p
        for p in (shutil.which("chromedriver"), "/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
        if p and Path(p).exists()
    ),
    None,
)
MISSING = (
    "no Chromium: apt-get install -y chromium chromium-driver (.ci/run does)"
    if CHROMIUM is None or DRIVER is None
    else ""
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
)


def chrome(profile: Path | None = None):
    """A new headless Chromium with a fresh profile; quit() it when done."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    profile = profile or Path(tempfile.mkdtemp(prefix="workmesh-chromium-"))
    options.add_argument(f"--user-data-dir={profile}")
    return webdriver.Chrome(service=Service(DRIVER), options=options)
