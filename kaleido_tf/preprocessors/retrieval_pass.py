"""The retrieval pass of one shard: for the seeded query products of the retrieval split that fall in this
shard, 1 positive + `retrieval_negatives` candidates per query and direction, written in query order
(the TFRecord examples and a `sets.<shard>.jsonl` line per query)."""

import collections
import dataclasses
import hashlib
import json

import numpy as np

from kaleido_tf.datasets.tfrecord_writer import TFRecordShardWriter
from kaleido_tf.preprocessors.example_builder import retrieval_example
from kaleido_tf.preprocessors.hashing import SPLITS, derive_rng, mix64
from kaleido_tf.preprocessors.kaleido_patches import NUM_PATCHES
from kaleido_tf.preprocessors.negatives import same_text
from kaleido_tf.preprocessors.rejections import RejectionLog
from kaleido_tf.preprocessors.shard_book import DIRECTIONS, SHARD_DIR
from kaleido_tf.preprocessors.tally import Tally
from kaleido_tf.utils.io import atomic_write

_DIGESTS_KEPT = 65536


def retrieval_queries(index, config):
    """Sorted-index positions of the query products, in query order (the same on every shard)."""
    a, b = index.split_block(split=SPLITS.index(config.retrieval_split))
    keys = mix64(index.hash[a:b], f"{config.seed}/retrieval-queries")
    order = np.argsort(keys, kind="stable")
    return (a + order[: config.retrieval_queries]).astype(np.int64)


@dataclasses.dataclass
class QuerySet:
    """One query's candidate set (positive first before shuffling) or why it was dropped."""

    stats: Tally  # queries / candidates skipped / negative_tier
    rejections: RejectionLog
    candidates: list = None  # [(record, image index or None, label)], shuffled; None when dropped
    query_image: int = None
    tiers: collections.Counter = None
    num_negatives: int = 0


@dataclasses.dataclass
class RetrievalPassResult:
    counts: dict  # as in the done marker
    files: list
    rejections: RejectionLog


class RetrievalPass:
    """Args: ctx: the run's RunContext."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.config = ctx.config
        self._feature_cache = collections.OrderedDict()
        self._digest_cache = collections.OrderedDict()

    def run(self):
        ctx, c = self.ctx, self.config
        images = collections.Counter()
        rejections = RejectionLog()
        queries = retrieval_queries(ctx.index, c)
        mine = [int(q) for q in queries if int(ctx.index.hash[q] % np.uint64(c.num_shards)) == c.shard_index]
        schema = ctx.schema("retrieval")
        shard = ctx.book.shard_name
        files, counts = [], {}
        with ctx.bar(total=len(mine) * len(DIRECTIONS), unit="query", desc=f"retrieval {shard}") as bar:
            for direction in DIRECTIONS:
                d_stats = Tally()
                path = ctx.book.shard_path("retrieval", direction)
                sets_path = ctx.book.path("retrieval", direction, f"sets.{shard}.jsonl")
                files += [path, sets_path]
                with (
                    TFRecordShardWriter(path, schema, c.feature_dtype, c.compression) as writer,
                    atomic_write(sets_path, "w") as sets_file,
                ):
                    for rank, q in enumerate(queries.tolist()):
                        if q not in mine:
                            continue
                        query = self._query_set(q, direction)
                        d_stats.merge(query.stats)
                        for row in query.rejections.rows:
                            rejections.add(*row)
                        if query.candidates is not None:
                            images.update(self._write_query(rank, q, direction, query, writer, sets_file))
                        bar.update(1)
                counts[direction] = d_stats.plain()
                counts[direction]["examples"] = writer.num_written
        rejections.write(ctx.book.path(SHARD_DIR, f"rejected.retrieval.{shard}.tsv"))
        counts["images"] = dict(images)
        counts["queries_selected"] = len(mine)
        ctx.book.write_marker("retrieval", counts, files)
        return RetrievalPassResult(counts=counts, files=files, rejections=rejections)

    def _first_usable_image(self, rec, rejections):
        """Index of the product's first image that loads, or None (rejections are added to `rejections`)."""
        for k, path in enumerate(rec.images):
            if (rec.product_id, k) in self._feature_cache:
                return k
            loaded, reason = self.ctx.images.load(path)
            if loaded is not None:
                return k
            rejections.add(self.ctx.location(rec), rec.product_id, rec.raw_images[k], "image", reason)
        return None

    def _digests(self, rec):
        """sha256 of the product's image files that can be read (cached by path)."""
        out = set()
        for path in rec.images:
            if path in self._digest_cache:
                self._digest_cache.move_to_end(path)
            else:
                try:
                    with open(path, "rb") as f:
                        self._digest_cache[path] = hashlib.sha256(f.read()).digest()
                except OSError:
                    self._digest_cache[path] = None
                if len(self._digest_cache) > _DIGESTS_KEPT:
                    self._digest_cache.popitem(last=False)
            if self._digest_cache[path] is not None:
                out.add(self._digest_cache[path])
        return out

    def _query_set(self, q, direction):
        """Draws the candidates of query `q` (sorted-index position) in `direction`."""
        ctx, c = self.ctx, self.config
        result = QuerySet(stats=Tally(), rejections=RejectionLog())
        d_stats, rejections = result.stats, result.rejections
        qrec = ctx.index.record_at(q)
        qk = self._first_usable_image(qrec, rejections)
        if qk is None:
            d_stats["queries"]["dropped (no usable image)"] += 1
            rejections.add(
                ctx.location(qrec),
                qrec.product_id,
                "",
                "retrieval",
                f"{direction} query dropped: the product has no usable image",
            )
            return result
        rng = derive_rng(c.seed, qrec.product_id, "retrieval", direction)
        own_files = self._digests(qrec)
        negatives, tiers = [], collections.Counter()
        for tier, ranges in ctx.index.tiers(q, "similar"):
            for cand in ctx.index.iter_candidates(rng, ranges, exclude=lambda p: p == q):
                if len(negatives) >= c.retrieval_negatives:
                    break
                crec = ctx.index.record_at(cand)
                if same_text(crec.text, qrec.text):
                    d_stats["candidates skipped"]["same text as the query"] += 1
                    continue
                if own_files & self._digests(crec):  # a byte-identical image: it would be its own negative
                    d_stats["candidates skipped"]["same image file as the query"] += 1
                    continue
                ck = None
                if direction == "txt2img":
                    ck = self._first_usable_image(crec, rejections)
                    if ck is None:
                        d_stats["candidates skipped"]["no usable image"] += 1
                        continue
                negatives.append((crec, ck))
                tiers[tier] += 1
            if len(negatives) >= c.retrieval_negatives:
                break
        d_stats["queries"]["written"] += 1
        if len(negatives) < c.retrieval_negatives:
            d_stats["queries"]["fewer negatives than asked"] += 1
        if set(tiers) - {"subcategory"}:
            d_stats["queries"]["negatives beyond the subcategory"] += 1
        for tier, n in tiers.items():
            d_stats["negative_tier"][tier] += n
        candidates = [(qrec, qk, 1)] + [(crec, ck, 0) for crec, ck in negatives]
        order = rng.permutation(len(candidates)).tolist()
        result.candidates = [candidates[i] for i in order]
        result.query_image, result.tiers, result.num_negatives = qk, tiers, len(negatives)
        return result

    def _write_query(self, rank, q, direction, query, writer, sets_file):
        """Writes the examples and the sets line of one query; returns the feature counts."""
        ctx, c = self.ctx, self.config
        qrec, qk, candidates = ctx.index.record_at(q), query.query_image, query.candidates
        if direction == "txt2img":
            feats, images = self._image_features([(rec, k) for rec, k, _ in candidates])
            text_enc = ctx.tokenizer.encode(qrec.text, c.text_length)
            pairs = [(qrec, text_enc, rec, k, label) for rec, k, label in candidates]
        else:
            feats, images = self._image_features([(qrec, qk)])
            encs = ctx.tokenizer.encode_batch([rec.text for rec, _, _ in candidates], c.text_length)
            pairs = [(rec, enc, qrec, qk, label) for (rec, _, label), enc in zip(candidates, encs)]
        lines = []
        for text_rec, enc, image_rec, k, label in pairs:
            f, positions = feats[(image_rec.product_id, k)]
            writer.write(retrieval_example(text_rec, enc, image_rec, k, f, positions, label))
            lines.append(
                {
                    "text_prod_id": text_rec.product_id,
                    "image_prod_id": image_rec.product_id,
                    "prod_img_id": image_rec.image_id(k),
                    "label": label,
                }
            )
        query_id = qrec.product_id if direction == "txt2img" else qrec.image_id(qk)
        sets_file.write(
            json.dumps(
                {
                    "direction": direction,
                    "query_rank": rank,
                    "query_product_id": qrec.product_id,
                    "query": query_id,
                    "subcategory": qrec.subcategory,
                    "num_negatives": query.num_negatives,
                    "negative_tiers": dict(sorted(query.tiers.items())),
                    "candidates": lines,
                },
                sort_keys=True,
            )
            + "\n"
        )
        return images

    def _image_features(self, records_and_images):
        """Features for [(record, image index)] from the cache or the extractor, in chunks.

        Returns ({(product_id, image index): (features [55, F] float16, positions [55, 5])}, Counter of
        "features computed" / "features from cache").
        """
        ctx, c = self.ctx, self.config
        out, pending, counts = {}, [], collections.Counter()

        def flush():
            if not pending:
                return
            feats = ctx.images.extractor(np.concatenate([p[2] for p in pending]))
            for i, (key, positions, _) in enumerate(pending):
                value = (feats[i * NUM_PATCHES : (i + 1) * NUM_PATCHES].astype(np.float16), positions)
                out[key] = value
                self._feature_cache[key] = value
                if len(self._feature_cache) > c.feature_cache_size:
                    self._feature_cache.popitem(last=False)
            counts["features computed"] += len(pending)
            pending.clear()

        for rec, k in records_and_images:
            key = (rec.product_id, k)
            if key in out:
                continue
            if key in self._feature_cache:
                self._feature_cache.move_to_end(key)
                out[key] = self._feature_cache[key]
                counts["features from cache"] += 1
                continue
            loaded, _ = ctx.images.load(rec.images[k])
            patches = ctx.images.patches(loaded.image)
            pending.append((key, patches.positions, patches.crops()))
            if len(pending) >= c.images_per_chunk:
                flush()
        flush()
        return out, counts
