"""Indexes and streams a catalog under an address-space limit and reports its memory (for test_memory).

    python -m tests.reliability.memory_child CATALOG HEADROOM_MB [whole]

After the imports, the process limits its address space to what it uses plus HEADROOM_MB, then runs the
preprocessing stages whose work grows with the catalog: the index pass, the streaming pass of the main
loop (every record read and located in the index) and record look-ups by offset (negatives, donors,
retrieval candidates). It prints one JSON line: products, located, peak and baseline RSS in MiB.
With `whole`, it instead loads every record at once (the control: this must fail under the limit).
"""

import json
import resource
import sys


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def main(argv):
    catalog, headroom_mb = argv[0], int(argv[1])
    import numpy as np

    from kaleido_tf.preprocessors.catalog import CatalogReader
    from kaleido_tf.preprocessors.catalog_index import CatalogIndex, SplitSettings

    baseline = _status_kib("VmRSS")
    limit = (_status_kib("VmSize") + headroom_mb * 1024) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    if len(argv) > 2 and argv[2] == "whole":  # the control: what loading the catalog whole would need
        with open(catalog, encoding="utf-8") as f:
            records = [json.loads(line) for line in f]
        print(json.dumps({"products": len(records)}))
        return 0
    reader = CatalogReader(catalog)
    index = CatalogIndex.build(reader, SplitSettings(seed=1), bad_records="error", progress=False)
    located = 0
    for record in reader.scan():
        if index.locate(record) is not None:
            located += 1
    rng = np.random.default_rng(0)
    for pos in rng.integers(0, len(index), 2000):
        assert index.record_at(int(pos)).product_id
    reader.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        json.dumps(
            {"products": len(index), "located": located, "peak_rss_mb": peak / 1024, "baseline_rss_mb": baseline / 1024}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
