"""Catalog search cost: exhaustive ITM against the two-stage search (exact ITC top-k, then ITM on the first K),
at gallery sizes 1k, 10k, 100k and 1M, and exact top-k time against the memory-bandwidth bound of reading the
index.

- The gallery is synthetic: N random unit vectors of D = 256 (the ITC head's default size); embedding a real
  1M-item catalog would take far longer than the benchmark. Queries are random unit vectors too.
- The ITM cost is measured per pass (one scored pair) with the `small` model (hidden 256, 4 layers) in this
  process, and extrapolated: exhaustive ITM costs N passes per query, the two-stage search K. Say so when
  quoting the queries/s: they are `1 / (passes x measured seconds per pass)` (+ the ITC search for two-stage).
- Exact top-k (`kaleido_tf.index.search.exact_top_k`) reads the whole index once per query chunk: its bound is
  N x D x 4 bytes / the read bandwidth. The bandwidth is measured in the same run by a large numpy copy
  (bytes read + bytes written per second); reading alone is at most that fast.
- With faiss installed (`pip install kaleido_tf[faiss]`) an HNSW index is built at the sizes of
  `--faiss_sizes` and its recall@10 against exact search and its query time are reported.

    python bench/retrieval.py                       # ~1-2 minutes on 2 cores
    python bench/retrieval.py --json bench/results/cpu_retrieval.json
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common
import numpy as np

from kaleido_tf.index.search import FaissSearcher, exact_top_k, recall_against_exact


def median_time(fn, repeats, *args):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def copy_bandwidth(megabytes=512, repeats=5):
    """Bytes read + written per second by a large numpy copy (one core's memcpy)."""
    src = np.ones(megabytes * (1 << 20) // 4, np.float32)
    dst = np.empty_like(src)
    seconds = median_time(np.copyto, repeats, dst, src)
    return 2 * src.nbytes / seconds


def unit_vectors(rng, n, d, chunk=1 << 17):
    out = np.empty((n, d), np.float32)
    for start in range(0, n, chunk):
        block = rng.standard_normal((min(chunk, n - start), d), dtype=np.float32)
        out[start : start + chunk] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def itm_seconds_per_pass(config_name, batch_size, repeats):
    """Seconds per ITM pass (one pair) of the pretraining model's ITM path at this batch size."""
    import tensorflow as tf

    from kaleido_tf.model_zoo import KaleidoBERTPretrainModel

    config = common.make_config(config_name)
    model = KaleidoBERTPretrainModel(config)
    model.build()
    feats = common.pretrain_features(config, batch_size, 0)
    inputs = {
        k: tf.constant(v)
        for k, v in feats.items()
        if k.startswith(("input_", "segment_ids", "img_feature_convert", "img_loc_position"))
    }
    itm = tf.function(lambda f: model.itm_logits(f)["nsp_logits"])
    itm(inputs).numpy()  # trace
    return median_time(lambda f: itm(f).numpy(), repeats, inputs) / batch_size


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--rerank_k", type=int, default=128, help="K of the two-stage search")
    parser.add_argument("--top_k", type=int, default=10)
    parser.add_argument("--query_batch", type=int, default=16, help="queries per batched exact search")
    parser.add_argument("--itm_config", default="small", choices=sorted(common.CONFIGS))
    parser.add_argument("--itm_batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--faiss_sizes", default="10000", help="sizes for the faiss HNSW index ('' for none)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    faiss_sizes = {int(s) for s in args.faiss_sizes.split(",") if s}
    rng = np.random.default_rng(0)

    machine = common.machine_description()
    bandwidth = copy_bandwidth()
    print(f"machine: {machine}")
    print(f"copy bandwidth (read + write): {bandwidth / 1e9:.2f} GB/s")
    t_pass = itm_seconds_per_pass(args.itm_config, args.itm_batch, args.repeats)
    print(f"ITM ({args.itm_config} model, batch {args.itm_batch}): {1000 * t_pass:.3f} ms per pass (measured)")

    rows = []
    for n in sizes:
        gallery = unit_vectors(rng, n, args.dim)
        one = unit_vectors(rng, 1, args.dim)
        batch = unit_vectors(rng, args.query_batch, args.dim)
        exact_top_k(one, gallery, args.top_k)  # warm the pages
        t_one = median_time(exact_top_k, args.repeats, one, gallery, args.rerank_k)
        t_batch = median_time(exact_top_k, args.repeats, batch, gallery, args.rerank_k) / args.query_batch
        index_bytes = gallery.nbytes
        bound = index_bytes / bandwidth  # one read of the index; the copy's read + write rate bounds reading
        k = min(args.rerank_k, n)
        row = {
            "gallery": n,
            "index_MiB": index_bytes / (1 << 20),
            "exact_ms_1query": 1000 * t_one,
            "bound_ms": 1000 * bound,
            "pct_of_bound_1query": 100 * bound / t_one,
            "exact_ms_per_query_batched": 1000 * t_batch,
            "itm_passes_exhaustive": n,
            "itm_passes_two_stage": k,
            "pass_ratio": n / k,
            "qps_exhaustive_itm": 1.0 / (n * t_pass),
            "qps_two_stage": 1.0 / (t_one + k * t_pass),
        }
        if n in faiss_sizes:
            try:
                start = time.perf_counter()
                searcher = FaissSearcher(gallery, ef_search=128)
                row["faiss_build_s"] = time.perf_counter() - start
                queries = unit_vectors(rng, 100, args.dim)
                exact, _ = exact_top_k(queries, gallery, args.top_k)
                approx, _ = searcher.search(queries, args.top_k)
                row["faiss_recall@10"] = recall_against_exact(approx, exact)
                row["faiss_ms_1query"] = 1000 * median_time(searcher.search, args.repeats, one, args.rerank_k)
            except ImportError as e:
                print(f"faiss skipped: {e}")
        rows.append(row)
        print(
            f"N={n:>8}: index {row['index_MiB']:.0f} MiB, exact top-{args.rerank_k} {row['exact_ms_1query']:.2f} ms "
            f"(bound {row['bound_ms']:.2f} ms, {row['pct_of_bound_1query']:.0f}%), batched "
            f"{row['exact_ms_per_query_batched']:.2f} ms/query; ITM passes/query {n} vs {k} "
            f"({row['pass_ratio']:.0f}x); "
            f"queries/s exhaustive {row['qps_exhaustive_itm']:.3g}, two-stage {row['qps_two_stage']:.3g}"
            + (f"; faiss recall@10 {row['faiss_recall@10']:.3f}" if "faiss_recall@10" in row else "")
        )
    columns = [
        "gallery",
        "index_MiB",
        "exact_ms_1query",
        "bound_ms",
        "pct_of_bound_1query",
        "exact_ms_per_query_batched",
        "itm_passes_exhaustive",
        "itm_passes_two_stage",
        "qps_exhaustive_itm",
        "qps_two_stage",
    ]
    print()
    print(common.format_table(rows, columns))
    if args.json:
        common.write_json(
            args.json,
            {
                "machine": machine,
                "copy_bandwidth_GBps": bandwidth / 1e9,
                "itm_ms_per_pass": 1000 * t_pass,
                "itm_config": args.itm_config,
                "itm_batch": args.itm_batch,
                "dim": args.dim,
                "rerank_k": args.rerank_k,
                "rows": rows,
            },
        )


if __name__ == "__main__":
    main()
