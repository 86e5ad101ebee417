"""The browser test of the search page: headless Chromium (Debian's chromium + chromium-driver) driven by Selenium
against a real `kaleido-serve` over the demo's outputs. Run by `make browser-test` after `make demo-quick`
(or `make demo`); KALEIDO_DEMO_OUT names the demo output folder (default demo_out)."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_OUT = os.path.abspath(os.environ.get("KALEIDO_DEMO_OUT", os.path.join(ROOT, "demo_out")))
SHOTS = os.path.join(DEMO_OUT, "browser")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def demo():
    summary = os.path.join(DEMO_OUT, "summary.json")
    if not os.path.isfile(summary):
        pytest.fail(f"{summary} is missing: run `make demo-quick` (or `make demo`) first")
    with open(summary) as f:
        return json.load(f)


@pytest.fixture(scope="session")
def server(demo):
    port = _free_port()
    serve = demo["serve"]
    cmd = [sys.executable, "-m", "kaleido_tf.apps.serve", "--port", str(port), *serve["args"]]
    log = open(os.path.join(DEMO_OUT, "browser_server.log"), "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None:
            pytest.fail(f"kaleido-serve exited with {proc.returncode}; see {log.name}")
        try:
            urllib.request.urlopen(url + "/api/health", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


@pytest.fixture(scope="session")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    os.makedirs(SHOTS, exist_ok=True)
    yield driver
    driver.quit()
