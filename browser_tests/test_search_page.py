"""The search page in a real browser: text query, photo upload, "more like this", on the demo's test products.

Each check runs over the demo's held-out (test-split) products, up to MAX_PRODUCTS of them, against the page's
gallery (the whole catalog). The share that passes, with what a random ranking would give, is written to
browser/shares.json beside the screenshots; each share must reach its FLOOR (docs/search_page.md says why these
values).
"""

import json
import math
import os
import urllib.parse
import urllib.request

import pytest
from conftest import DEMO_OUT, SHOTS
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

MAX_PRODUCTS = 25
TOP = 5  # the text check looks at the first five cards
# The share of test products each check must reach, by demo size (docs/search_page.md says why). None: the
# share is measured and reported but not gated, because at that size the model does not beat chance on it; the
# check then asserts only that the page shows exactly what the API answers.
FLOORS = {
    "quick": {"text": None, "photo": 0.4, "photo_finds_its_product": 0.8, "more_like_this": 0.08},
    "full": {"text": 0.5, "photo": 0.6, "photo_finds_its_product": 0.8, "more_like_this": 0.3},
}
SCREENSHOTS = 3  # products per check whose steps are saved as screenshots
SHARES = {}


@pytest.fixture(scope="module")
def catalog(demo):
    with open(demo["serve"]["catalog"], encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    root = os.path.dirname(os.path.abspath(demo["serve"]["catalog"]))
    for record in records:
        record["image_file"] = os.path.join(root, record["images"][0])
    return records


@pytest.fixture(scope="module")
def test_products(catalog):
    products = sorted((r for r in catalog if r.get("split") == "test"), key=lambda r: r["product_id"])
    assert products, "the demo catalog has no test products"
    return products[:MAX_PRODUCTS]


def attribute_query(record):
    """A shopper's query from the product's attributes: colour, pattern unless solid, subcategory."""
    attributes = record.get("attributes", {})
    words = [attributes.get("colour"), attributes.get("pattern"), record["subcategory"]]
    return " ".join(w for w in words if w and w != "solid")


def _chance(catalog, products, name):
    """The share a ranking drawn at random from the gallery (the catalog) would pass."""
    size = len(catalog)
    count = {}
    for r in catalog:
        key = r["category"] if name == "photo" else r["subcategory"]
        count[key] = count.get(key, 0) + 1
    if name == "photo":
        return 1 / len(count)
    if name == "photo_finds_its_product":  # its card among the cards shown (DEFAULT_TOP_K of the API)
        return min(1.0, 12 / size)
    shares = []
    for p in products:
        same = count[p["subcategory"]] - 1  # the product itself: text search may find it, more-like-this not
        if name == "text":
            shares.append(1 - math.comb(size - same - 1, TOP) / math.comb(size, TOP))
        else:
            shares.append(same / (size - 1))
    return sum(shares) / len(shares)


def _wait_cards(browser, timeout=60):
    WebDriverWait(browser, timeout).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, "#results[data-state=ready] .card"))
    )
    return browser.find_elements(By.CSS_SELECTOR, "#results .card")


def _shot(browser, name):
    browser.save_screenshot(os.path.join(SHOTS, f"{name}.png"))


def _floor(demo, name):
    return FLOORS[demo["serve"].get("size", "quick")][name]


def _record(demo, name, passed, total, chance, **extra):
    SHARES[name] = {
        "passed": passed,
        "total": total,
        "share": passed / total,
        "floor": _floor(demo, name),
        "chance": chance,
        **extra,
    }
    tmp = os.path.join(SHOTS, "shares.json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(SHARES, f, indent=1)
    os.replace(tmp, os.path.join(SHOTS, "shares.json"))


def _check(name):
    share = SHARES[name]
    if share["floor"] is None:
        return
    assert share["share"] >= share["floor"], (
        f"{name}: {share['passed']}/{share['total']} test products pass, floor {share['floor']} "
        f"(chance {share['chance']:.3f}); screenshots and shares.json in {SHOTS}"
    )


def _api_search(server, query):
    with urllib.request.urlopen(f"{server}/api/search?q={urllib.parse.quote(query)}", timeout=60) as response:
        return [r["product_id"] for r in json.load(response)["results"]]


def test_text_query_shows_the_subcategory(demo, browser, server, catalog, test_products):
    passed = 0
    for i, product in enumerate(test_products):
        browser.get(server + "/")
        query = attribute_query(product)
        browser.find_element(By.ID, "query").send_keys(query)
        WebDriverWait(browser, 60).until(EC.text_to_be_present_in_element((By.ID, "results-title"), query))
        cards = _wait_cards(browser)
        shown = [c.get_attribute("data-product-id") for c in cards]
        assert shown == _api_search(server, query), f"query {query!r}: the page's cards differ from the API's answer"
        passed += any(c.get_attribute("data-subcategory") == product["subcategory"] for c in cards[:TOP])
        if i < SCREENSHOTS:
            _shot(browser, f"text_{i}_{product['product_id']}")
    _record(demo, "text", passed, len(test_products), _chance(catalog, test_products, "text"))
    _check("text")


def test_photo_then_more_like_this(demo, browser, server, catalog, test_products):
    """Upload the product's photo: its true category must be the top prediction, and the product's own card must
    be among the photo's nearest products (the catalog holds that very image: this checks that the page's
    raw-image path, the search export and the index agree); then click that card (the first card when it is not
    there): the first card of "more like this" must be of the clicked product's subcategory."""
    photo = similar = own = 0
    for i, product in enumerate(test_products):
        browser.get(server + "/")
        browser.find_element(By.ID, "photo").send_keys(product["image_file"])
        top = WebDriverWait(browser, 120).until(
            EC.presence_of_element_located((By.CSS_SELECTOR, "#classes [data-head=category] [data-top]"))
        )
        photo += top.get_attribute("data-top") == product["category"]
        WebDriverWait(browser, 60).until(
            EC.text_to_be_present_in_element((By.ID, "results-title"), "Products like this photo")
        )
        cards = _wait_cards(browser)
        if i < SCREENSHOTS:
            _shot(browser, f"photo_{i}_{product['product_id']}")
        target = next((c for c in cards if c.get_attribute("data-product-id") == product["product_id"]), None)
        own += target is not None
        target = target or cards[0]
        subcategory = target.get_attribute("data-subcategory")
        target.click()
        WebDriverWait(browser, 60).until(EC.text_to_be_present_in_element((By.ID, "results-title"), "More like"))
        first = _wait_cards(browser)[0]
        similar += first.get_attribute("data-subcategory") == subcategory
        if i < SCREENSHOTS:
            _shot(browser, f"more_like_this_{i}_{product['product_id']}")
    total = len(test_products)
    _record(demo, "photo", photo, total, _chance(catalog, test_products, "photo"))
    _record(demo, "photo_finds_its_product", own, total, _chance(catalog, test_products, "photo_finds_its_product"))
    _record(demo, "more_like_this", similar, total, _chance(catalog, test_products, "more_like_this"))
    _check("photo")
    _check("photo_finds_its_product")
    _check("more_like_this")


def test_phone_width_layout(browser, server):
    browser.set_window_size(390, 844)
    try:
        browser.get(server + "/")
        browser.find_element(By.ID, "query").send_keys("shirt")
        _wait_cards(browser)
        width = browser.execute_script("return document.documentElement.scrollWidth")
        _shot(browser, "phone")
        assert width <= 390, f"the page is {width}px wide on a 390px screen"
    finally:
        browser.set_window_size(1200, 900)


def test_demo_out_is_the_one_served(demo):
    assert os.path.abspath(demo["serve"]["catalog"]).startswith(DEMO_OUT)
