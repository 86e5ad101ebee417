"""Memory stays bounded on a catalog larger than the process may hold: the preprocessing stages that see
every product (indexing, the streaming main loop, look-ups by offset) run under an address-space limit
smaller than the catalog file, and their peak memory hardly grows when the catalog grows four times."""

import json
import os
import sys

import pytest

from tests.reliability.helpers import run

HEADROOM_MB = 48  # address space the child may add to what it uses after its imports
TEXT = (
    "A relaxed-fit {colour} cotton shirt with a pointed collar, long sleeves with buttoned cuffs, a chest "
    "pocket and a curved hem; product number {i}. "
) * 12


def _write_catalog(path, num_products):
    """A JSONL catalog of `num_products` with ~1.9 KB of text each; images are never opened by these stages."""
    colours = ("red", "navy", "olive", "white", "black", "mustard", "teal")
    subcats = [
        ("tops", "shirts"),
        ("tops", "t-shirts"),
        ("bottoms", "jeans"),
        ("bottoms", "skirts"),
        ("shoes", "sneakers"),
        ("bags", "totes"),
    ]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(num_products):
            cat, sub = subcats[i % len(subcats)]
            f.write(
                json.dumps(
                    {
                        "product_id": f"p{i:07d}",
                        "images": [f"images/p{i:07d}_0.jpg"],
                        "text": TEXT.format(colour=colours[i % 7], i=i),
                        "category": cat,
                        "subcategory": sub,
                    }
                )
                + "\n"
            )
    return os.path.getsize(path)


def _child(catalog, *extra):
    return run(
        ["-m", "tests.reliability.memory_child", str(catalog), str(HEADROOM_MB), *extra],
        timeout=300,
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
    )


def _measure(catalog):
    code, out = _child(catalog)
    assert code == 0, out[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and sets RLIMIT_AS")
def test_catalog_stages_stream_in_bounded_memory(tmp_path):
    small, large = 10_000, 40_000
    small_bytes = _write_catalog(tmp_path / "small.jsonl", small)
    large_bytes = _write_catalog(tmp_path / "large.jsonl", large)
    assert large_bytes > 1.15 * HEADROOM_MB * 2**20  # loaded whole, the text alone would not fit

    code, out = _child(tmp_path / "large.jsonl", "whole")  # the limit is real: the catalog does not fit whole
    assert code != 0 and "MemoryError" in out, out[-2000:]

    a = _measure(tmp_path / "small.jsonl")
    b = _measure(tmp_path / "large.jsonl")
    assert (a["products"], a["located"]) == (small, small)
    assert (b["products"], b["located"]) == (large, large)
    growth = b["peak_rss_mb"] - a["peak_rss_mb"]
    # The compact index costs ~60 bytes a product: 30,000 more products add ~2 MB, while the catalog grows by
    # ~55 MB (and several times that as python objects).
    assert growth < 8, (
        f"peak RSS grew by {growth:.1f} MiB for {large - small} more products "
        f"({(large_bytes - small_bytes) / 2**20:.0f} MiB more catalog): {a} -> {b}"
    )
