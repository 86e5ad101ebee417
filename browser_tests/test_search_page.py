"""The search page in a real browser: text query, photo upload, "more like this", on the demo's test products.

Each check runs over the demo's held-out (test-split) products, up to MAX_PRODUCTS of them; the share that
passes is written to browser/shares.json beside the screenshots and must reach the floor below, a floor far
above what a random ranking gives (top-5 hits of one subcategory among 24: about 0.2).
"""

import json
import os
import random

import pytest
from conftest import DEMO_OUT, SHOTS
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from kaleido_tf.preprocessors.catalog import CatalogReader

MAX_PRODUCTS = 12
FLOOR = {"text": 0.5, "photo": 0.5, "more_like_this": 0.5}
SHARES = {}


@pytest.fixture(scope="module")
def test_products(demo):
    reader = CatalogReader(demo["serve"]["catalog"])
    try:
        products = [r for r in reader if r.split == "test"]
    finally:
        reader.close()
    assert products, "the demo catalog has no test products"
    random.Random(0).shuffle(products)
    return products[:MAX_PRODUCTS]


def _wait_cards(browser, timeout=60):
    WebDriverWait(browser, timeout).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, "#results[data-state=ready] .card"))
    )
    return browser.find_elements(By.CSS_SELECTOR, "#results .card")


def _record(name, passed, total):
    SHARES[name] = {"passed": passed, "total": total, "share": passed / total}
    with open(os.path.join(SHOTS, "shares.json"), "w") as f:
        json.dump(SHARES, f, indent=1)
    assert passed / total >= FLOOR[name], f"{name}: {passed}/{total} test products pass, floor {FLOOR[name]}"


def test_text_query_shows_the_subcategory(browser, server, test_products):
    passed = 0
    for i, product in enumerate(test_products):
        browser.get(server + "/")
        box = browser.find_element(By.ID, "query")
        query = f"{product.subcategory} {product.category}"
        box.send_keys(query)
        WebDriverWait(browser, 60).until(EC.text_to_be_present_in_element((By.ID, "results-title"), query))
        cards = _wait_cards(browser)[:5]
        passed += any(c.get_attribute("data-subcategory") == product.subcategory for c in cards)
        if i < 3:
            browser.save_screenshot(os.path.join(SHOTS, f"text_{i}.png"))
    _record("text", passed, len(test_products))


def test_uploaded_photo_gets_its_category(browser, server, test_products):
    passed = 0
    for i, product in enumerate(test_products):
        browser.get(server + "/")
        browser.find_element(By.ID, "photo").send_keys(os.path.abspath(product.images[0]))
        WebDriverWait(browser, 120).until(
            EC.presence_of_element_located((By.CSS_SELECTOR, "#classes [data-head=category] [data-top]"))
        )
        top = browser.find_element(By.CSS_SELECTOR, "#classes [data-head=category] [data-top]")
        passed += top.get_attribute("data-top") == product.category
        _wait_cards(browser)
        if i < 3:
            browser.save_screenshot(os.path.join(SHOTS, f"photo_{i}.png"))
    _record("photo", passed, len(test_products))


def test_more_like_this_keeps_the_subcategory(browser, server, test_products):
    passed = 0
    for i, product in enumerate(test_products):
        browser.get(server + "/")
        browser.find_element(By.ID, "query").send_keys(product.text)
        cards = _wait_cards(browser)
        target = next((c for c in cards if c.get_attribute("data-product-id") == product.product_id), cards[0])
        subcategory = target.get_attribute("data-subcategory")
        target.click()
        WebDriverWait(browser, 60).until(EC.text_to_be_present_in_element((By.ID, "results-title"), "More like"))
        first = _wait_cards(browser)[0]
        passed += first.get_attribute("data-subcategory") == subcategory
        if i < 3:
            browser.save_screenshot(os.path.join(SHOTS, f"more_like_this_{i}.png"))
    _record("more_like_this", passed, len(test_products))


def test_phone_width_layout(browser, server):
    browser.set_window_size(390, 844)
    try:
        browser.get(server + "/")
        browser.find_element(By.ID, "query").send_keys("shirt")
        _wait_cards(browser)
        width = browser.execute_script("return document.documentElement.scrollWidth")
        browser.save_screenshot(os.path.join(SHOTS, "phone.png"))
        assert width <= 390, f"the page is {width}px wide on a 390px screen"
    finally:
        browser.set_window_size(1200, 900)


def test_demo_out_is_the_one_served(demo):
    assert os.path.abspath(demo["serve"]["catalog"]).startswith(DEMO_OUT)
