"""The preprocessing run: catalog -> kaleido patches -> features -> TFRecord shards.

Outputs under `output_dir` (N = num_shards, i = shard_index, part = part-0000i-of-0000N):

    label_maps/category.json, label_maps/subcategory.json   name -> id, names sorted
    pretrain/{train,valid}/part.tfrecord + schema.json      (test products are held out)
    finetune/{train,valid,test}/part.tfrecord + schema.json
    retrieval/{txt2img,img2txt}/part.tfrecord + schema.json + sets.part.jsonl
    rejected.tsv                                            everything left out, with the reason
    summary.json                                            counts over the finished shards
    _shards/                                                per-shard done markers and rejections

Steps: (1) a light pass indexes the catalog (ids, splits, categories, byte offsets; no image is
decoded); (2) the main pass streams this shard's products in catalog order, loads and cuts every
image, draws the kaleido tasks and text masks, extracts features in batches and writes pretraining
and finetuning examples; (3) the retrieval pass builds, for the seeded query products of the
retrieval split that fall in this shard, 1 positive + `retrieval_negatives` candidates per query
and direction, and writes them in query order. A shard's outputs are renamed into place before
its done marker is written; a rerun skips shards whose marker matches the settings.
"""

import collections
import contextlib
import dataclasses
import json
import os

import numpy as np
from tqdm import tqdm

from kaleido_tf.datasets.tfrecord_writer import TFRecordShardWriter, shard_filename, write_schema_json
from kaleido_tf.preprocessors.alignment_masking import AlignmentGuidedMasker
from kaleido_tf.preprocessors.alignments import AlignmentTable, resolve_alignments
from kaleido_tf.preprocessors.catalog import CatalogError, CatalogReader
from kaleido_tf.preprocessors.catalog_index import CatalogIndex, SplitSettings
from kaleido_tf.preprocessors.example_builder import (
    extra_crops,
    finetune_example,
    pretrain_example,
    pretrain_features,
    retrieval_example,
)
from kaleido_tf.preprocessors.feature_extractor import build_feature_extractor
from kaleido_tf.preprocessors.foreground import ForegroundDetector
from kaleido_tf.preprocessors.hashing import SPLITS, derive_rng, mix64, shard_of
from kaleido_tf.preprocessors.image_loader import ImageLoader, ImageRejected
from kaleido_tf.preprocessors.kaleido_patches import LEVEL_OFFSETS, LEVEL_SIZES, NUM_PATCHES, KaleidoPatchGenerator
from kaleido_tf.preprocessors.kaleido_tasks import KaleidoTaskSampler
from kaleido_tf.preprocessors.label_maps import LabelMaps
from kaleido_tf.preprocessors.masked_lm import MaskedLmSampler
from kaleido_tf.preprocessors.rejections import RejectionLog
from kaleido_tf.preprocessors.schemas import preprocess_schema
from kaleido_tf.preprocessors.text_tokenizer import build_tokenizer
from kaleido_tf.utils.io import atomic_write, atomic_write_text

PRETRAIN_SPLITS = ("train", "valid")
FINETUNE_SPLITS = ("train", "valid", "test")
DIRECTIONS = ("txt2img", "img2txt")
SHARD_DIR = "_shards"
_MAX_TRIES_PER_TIER = 16
_MIN_DONOR_DIFFERENCE = 4.0  # mean absolute pixel difference (0-255) of a donor crop


def _same_text(a, b):
    return " ".join(a.lower().split()) == " ".join(b.lower().split())


def _add_counts(total, part):
    """Adds the numbers of nested dict `part` into `total` (in place)."""
    for key, value in part.items():
        if isinstance(value, dict):
            _add_counts(total.setdefault(key, {}), value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value
    return total


def _nested_counter():
    return collections.defaultdict(collections.Counter)


def _plain(counters):
    return {k: dict(sorted(v.items())) for k, v in sorted(counters.items())}


class ShardSettingsMismatch(ValueError):
    """A finished shard was written with other settings; rerun with --overwrite to replace it."""


@dataclasses.dataclass
class _Item:
    record: object
    pos: int
    split: str
    pretrain: bool
    finetune: bool


@dataclasses.dataclass
class _PretrainPlan:
    plan: object
    mlm: object
    encoded: object
    label: int
    where: dict
    extra_start: int
    num_extra: int


@dataclasses.dataclass
class _ImageJob:
    item: _Item
    image_index: int
    positions: np.ndarray
    base_start: int
    examples: list
    encoded: object


class Preprocessor:
    """Runs preprocessing for one shard.

    Args:
      config: a PreprocessConfig.
      feature_extractor: optional ready extractor (tests share one); built from the config when None.
      tokenizer: optional ready tokenizer; built from the config when None.
    """

    def __init__(self, config, feature_extractor=None, tokenizer=None):
        self.config = config.validate()
        c = self.config
        self.out = os.path.abspath(c.output_dir)
        self.shard_name = f"part-{c.shard_index:05d}-of-{c.num_shards:05d}"
        self.fingerprint = c.fingerprint()
        self.reader = CatalogReader(c.catalog)
        self.catalog_name = os.path.basename(c.catalog)
        self.split_settings = SplitSettings(
            seed=c.seed if c.split_seed is None else c.split_seed,
            valid_fraction=c.valid_fraction,
            test_fraction=c.test_fraction,
        )
        self.loader = ImageLoader(min_size=c.min_image_size, max_size=c.max_image_size)
        self.patcher = KaleidoPatchGenerator(
            crop_size=c.crop_size,
            foreground=ForegroundDetector(
                c.foreground, threshold=c.foreground_threshold, min_fraction=c.foreground_min_fraction
            ),
        )
        self._extractor = feature_extractor
        if feature_extractor is not None:
            if (feature_extractor.crop_size, feature_extractor.feature_size) != (c.crop_size, c.patch_feature_size):
                raise ValueError("the given feature extractor's crop_size/feature_size differ from the config")
        self.tokenizer = tokenizer or build_tokenizer(
            c.tokenizer, vocab=c.vocab, spm_model=c.spm_model, lower_case=c.lower_case
        )
        self.mlm = MaskedLmSampler(
            self.tokenizer,
            max_predictions=c.max_predictions,
            masked_lm_prob=c.masked_lm_prob,
            whole_word=c.whole_word_mask,
        )
        self.task_sampler = KaleidoTaskSampler(
            num_grey=c.num_grey, num_blank=c.num_blank, camouflage_none_class=c.camouflage_none_class
        )
        self.masker = AlignmentGuidedMasker(self.tokenizer)
        self.alignments = None
        self.index = None
        self.label_maps = None
        self._donor_cache = collections.OrderedDict()
        self._feature_cache = collections.OrderedDict()
        self._bad_images = collections.OrderedDict()

    # ------------------------------------------------------------------ helpers

    @property
    def extractor(self):
        if self._extractor is None:
            c = self.config
            self._extractor = build_feature_extractor(
                c.feature_extractor,
                crop_size=c.crop_size,
                feature_size=c.patch_feature_size,
                resnet_weights=c.resnet_weights,
                seed=c.feature_seed,
                batch_size=c.batch_size,
                feature_model=c.feature_model,
            )
            if c.image_path == "graph":
                from kaleido_tf.preprocessors.graph_extractor import GraphCropExtractor

                self._extractor = GraphCropExtractor(self._extractor, c.batch_size, c.mixed_bfloat16)
        return self._extractor

    def _bar(self, **kwargs):
        return tqdm(disable=not self.config.progress, dynamic_ncols=True, **kwargs)

    def _location(self, record_or_line):
        line = record_or_line if isinstance(record_or_line, int) else record_or_line.line
        return f"{self.catalog_name}:{line}"

    def _schema(self, task):
        c = self.config
        return preprocess_schema(
            task,
            text_length=c.text_length,
            feature_size=c.patch_feature_size,
            max_predictions=c.max_predictions,
            num_grey=c.num_grey,
            num_blank=c.num_blank,
        )

    def _shard_path(self, *parts):
        return os.path.join(
            self.out, *parts, shard_filename(self.config.shard_index, self.config.num_shards, self.config.compression)
        )

    def _marker_path(self, name, shard_name=None):
        return os.path.join(self.out, SHARD_DIR, f"{name}.{shard_name or self.shard_name}.json")

    def _read_marker(self, name):
        path = self._marker_path(name)
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    def _is_done(self, task):
        """True when this shard's `task` outputs exist and match the settings."""
        marker = self._read_marker(task)
        if marker is None or self.config.overwrite:
            return False
        if marker.get("fingerprint") != self.fingerprint:
            raise ShardSettingsMismatch(
                f"{self._marker_path(task)}: shard {self.shard_name} of '{task}' was written with other settings "
                f"(fingerprint {marker.get('fingerprint')} != {self.fingerprint}); use --overwrite or another "
                f"--output_dir"
            )
        return all(os.path.exists(os.path.join(self.out, p)) for p in marker.get("files", []))

    def _write_marker(self, name, counts, files=()):
        document = {
            "task": name,
            "shard": self.shard_name,
            "fingerprint": self.fingerprint,
            "files": [os.path.relpath(p, self.out) for p in files],
            "counts": counts,
        }
        atomic_write_text(self._marker_path(name), json.dumps(document, indent=2, sort_keys=True) + "\n")

    def _load_image(self, path):
        """(LoadedImage, None) or (None, reason); remembers recent failures."""
        if path in self._bad_images:
            return None, self._bad_images[path]
        try:
            return self.loader.load(path), None
        except ImageRejected as e:
            self._bad_images[path] = e.reason
            if len(self._bad_images) > 4096:
                self._bad_images.popitem(last=False)
            return None, e.reason

    # ------------------------------------------------------------------ run

    def run(self):
        """Runs the requested tasks for this shard; returns the summary dict (also in summary.json)."""
        try:
            return self._run()
        finally:
            self.reader.close()

    def _run(self):
        c = self.config
        os.makedirs(os.path.join(self.out, SHARD_DIR), exist_ok=True)
        self.index = CatalogIndex.build(
            self.reader, self.split_settings, bad_records=c.bad_records, progress=c.progress
        )
        if len(self.index) == 0:
            raise ValueError(f"{c.catalog}: the catalog has no usable product")
        self.label_maps = (
            LabelMaps.load(c.label_maps)
            if c.label_maps
            else LabelMaps.from_names(self.index.categories, self.index.subcategories)
        )
        self.label_maps.check_covers(self.index.categories, self.index.subcategories, source=c.catalog)
        self.label_maps.save(os.path.join(self.out, "label_maps"))
        self._write_catalog_rejections()
        if c.alignments:
            n, i = c.num_shards, c.shard_index
            self.alignments = AlignmentTable(c.alignments, keep=lambda pid: shard_of(pid, n) == i)

        tasks = c.tasks
        main_todo = [t for t in ("pretrain", "finetune") if t in tasks and not self._is_done(t)]
        if main_todo:
            self._main_pass(main_todo)
        if "retrieval" in tasks and not self._is_done("retrieval"):
            self._retrieval_pass()
        for task in tasks:
            self._write_schema_files(task)
        return self._write_summary()

    # ------------------------------------------------------------------ catalog-level rejections

    def _write_catalog_rejections(self):
        log = RejectionLog()
        for err in self.index.catalog_errors:
            log.add(self._location(err.line), "", "", "catalog", err.reason)
        for line, offset, first_line in self.index.duplicates:
            try:
                pid = self.index.reader.read_at(offset, line).product_id
            except CatalogError:
                pid = ""
            log.add(
                self._location(line),
                pid,
                "",
                "catalog",
                f"duplicate product_id (first occurrence at line {first_line})",
            )
        log.write(os.path.join(self.out, SHARD_DIR, "rejected.catalog.tsv"))

    # ------------------------------------------------------------------ main pass

    def _main_pass(self, todo):
        c = self.config
        stats = {"images": _nested_counter(), "pretrain": _nested_counter(), "finetune": _nested_counter()}
        rejections = RejectionLog()
        outputs = {}
        if "pretrain" in todo:
            for split in PRETRAIN_SPLITS:
                outputs[("pretrain", split)] = self._shard_path("pretrain", split)
        if "finetune" in todo:
            for split in FINETUNE_SPLITS:
                outputs[("finetune", split)] = self._shard_path("finetune", split)
        in_shard = (self.index.hash % np.uint64(c.num_shards)) == np.uint64(c.shard_index)
        wanted = (
            np.ones(len(self.index), bool)
            if "finetune" in todo
            else np.isin(self.index.split, [SPLITS.index(s) for s in PRETRAIN_SPLITS])
        )
        total = int(np.sum(in_shard & wanted))
        with contextlib.ExitStack() as stack:
            writers = {
                key: stack.enter_context(
                    TFRecordShardWriter(path, self._schema(key[0]), c.feature_dtype, c.compression)
                )
                for key, path in outputs.items()
            }
            bar = stack.enter_context(
                self._bar(total=total, unit="product", desc=f"{'+'.join(todo)} {self.shard_name}")
            )
            chunk, chunk_images = [], 0
            for rec in self.reader.scan():
                if isinstance(rec, CatalogError) or shard_of(rec.product_id, c.num_shards) != c.shard_index:
                    continue
                pos = self.index.locate(rec)
                if pos is None:  # a later duplicate: rejected.tsv says so
                    continue
                split = self.split_settings.split_of(rec)
                item = _Item(
                    rec,
                    pos,
                    split,
                    pretrain="pretrain" in todo and split in PRETRAIN_SPLITS,
                    finetune="finetune" in todo,
                )
                if not (item.pretrain or item.finetune):
                    continue
                chunk.append(item)
                chunk_images += len(rec.images)
                if chunk_images >= c.images_per_chunk:
                    self._process_chunk(chunk, writers, stats, rejections)
                    bar.update(len(chunk))
                    chunk, chunk_images = [], 0
            if chunk:
                self._process_chunk(chunk, writers, stats, rejections)
                bar.update(len(chunk))
        # The shards are renamed into place; now their rejections and done markers.
        rejections.write(os.path.join(self.out, SHARD_DIR, f"rejected.main.{self.shard_name}.tsv"))
        images = _plain(stats["images"])
        for task in todo:
            counts = _plain(stats[task])
            counts["examples"] = {
                split: writers[(task, split)].num_written
                for split in (PRETRAIN_SPLITS if task == "pretrain" else FINETUNE_SPLITS)
            }
            counts["images"] = images
            counts["rejected"] = rejections.counts()
            self._write_marker(task, counts, [p for (t, _), p in outputs.items() if t == task])

    def _process_chunk(self, items, writers, stats, rejections):
        c = self.config
        encodings = self.tokenizer.encode_batch([it.record.text for it in items], c.text_length)
        crops, jobs = [], []
        for item, encoded in zip(items, encodings):
            rec = item.record
            stats["images"]["texts"]["total"] += 1
            if encoded.truncated:
                stats["images"]["texts"]["truncated"] += 1
            usable = 0
            for k, path in enumerate(rec.images):
                stats["images"]["images"]["seen"] += 1
                loaded, reason = self._load_image(path)
                if loaded is None:
                    rejections.add(self._location(rec), rec.product_id, rec.raw_images[k], "image", reason)
                    stats["images"]["images"]["rejected"] += 1
                    continue
                for conv in loaded.conversions:
                    stats["images"]["conversions"][conv] += 1
                patches = self.patcher(loaded.image)
                stats["images"]["foreground"][patches.foreground_fallback or "box found"] += 1
                base = patches.crops()  # [55, S, S, 3]
                job = _ImageJob(
                    item=item,
                    image_index=k,
                    positions=patches.positions,
                    base_start=len(crops),
                    examples=[],
                    encoded=encoded,
                )
                crops.extend(base)
                if item.pretrain:
                    job.examples = self._plan_pretrain(item, k, encoded, patches, base, crops, stats["pretrain"])
                jobs.append(job)
                usable += 1
            stats["images"]["products"]["seen"] += 1
            if usable == 0:
                stats["images"]["products"]["without usable image"] += 1
                rejections.add(
                    self._location(rec),
                    rec.product_id,
                    "",
                    "product",
                    "no usable image: every image of the product was rejected",
                )
        if not jobs:
            return
        features = self.extractor(np.stack(crops))  # [N, F]
        for job in jobs:
            item, rec = job.item, job.item.record
            base = features[job.base_start : job.base_start + NUM_PATCHES]
            if item.finetune:
                cat_id, sub_id = self.label_maps.ids(rec.category, rec.subcategory)
                example = finetune_example(rec, job.image_index, job.encoded, base, job.positions, cat_id, sub_id)
                writers[("finetune", item.split)].write(example)
            for ex in job.examples:
                extra = features[ex.extra_start : ex.extra_start + ex.num_extra]
                feats, grey_target = pretrain_features(base, ex.plan, extra, ex.where)
                writers[("pretrain", item.split)].write(
                    pretrain_example(ex.mlm, ex.encoded, feats, grey_target, job.positions, ex.plan, ex.label)
                )

    def _plan_pretrain(self, item, k, encoded, patches, base, crops, stats):
        """Draws the positive and negative examples of one image; appends their extra crops to `crops`."""
        c = self.config
        rec = item.record
        itm_rng = derive_rng(c.seed, rec.product_id, "itm", k)
        whole = int(np.floor(c.neg_ratio))
        num_neg = whole + int(itm_rng.random() < c.neg_ratio - whole)
        examples = []
        for j in range(1 + num_neg):
            rng = derive_rng(c.seed, rec.product_id, "pretrain", k, j)
            if j == 0:
                text_enc, label = encoded, 1
            else:
                negative = self._negative_text(item.pos, rec, rng)
                if negative is None:
                    stats["itm"]["negative unavailable"] += 1
                    continue
                neg_rec, tier = negative
                stats["itm_negative_tier"][tier] += 1
                text_enc, label = self.tokenizer.encode(neg_rec.text, c.text_length), 0
            stats["itm"]["positives" if label else "negatives"] += 1
            forced_tokens, protected_tokens, forced_patches, protected_patches = (), frozenset(), None, None
            aligned = self.alignments.get(rec.product_id, k) if (self.alignments is not None and label) else []
            if aligned:
                aligned = resolve_alignments(aligned, patches.image.size, patches.boxes)
                budget = self.mlm.num_to_predict(int(np.sum(text_enc.word_ids >= 0)))
                agm = self.masker.plan(aligned, text_enc, rng, budget)
                forced_tokens, protected_tokens = agm.forced_token_groups, agm.protected_positions
                forced_patches, protected_patches = agm.forced_patches, agm.protected_patches
                for key, value in agm.stats.items():
                    stats["alignment"][key] += value
                stats["alignment"]["examples"] += 1
            mlm = self.mlm.sample(text_enc, rng, forced_groups=forced_tokens, protected=protected_tokens)
            stats["mlm"]["predictions"] += mlm.num_predictions
            plan = self.task_sampler.sample(rng, forced=forced_patches, protected=protected_patches)
            donor = None
            if plan.camouflage_slot is not None:
                donor, tier = self._donor_crop(item.pos, rng, plan.camouflage_slot, base)
                stats["camouflage_donor_tier"][tier] += 1
            else:
                stats["camouflage_donor_tier"]["none replaced"] += 1
            extra, where = extra_crops(base, plan, donor)
            examples.append(
                _PretrainPlan(
                    plan=plan,
                    mlm=mlm,
                    encoded=text_enc,
                    label=label,
                    where=where,
                    extra_start=len(crops),
                    num_extra=len(extra),
                )
            )
            crops.extend(extra)
        return examples

    def _negative_text(self, pos, record, rng):
        """(record of another product with a different text, tier name), nearest tier first, or None.

        With probability `itm_easy_negatives` the search starts at the other categories of the split (an easy
        negative) instead of the same subcategory (a hard one).
        """
        tiers = self.index.tiers(pos, "similar")
        if self.config.itm_easy_negatives and rng.random() < self.config.itm_easy_negatives:
            tiers = [t for t in tiers if t[0] in ("split", "catalog")] + [
                t for t in tiers if t[0] not in ("split", "catalog")
            ]
        for tier, ranges in tiers:
            tries = 0
            for cand in self.index.iter_candidates(rng, ranges, exclude=lambda p: p == pos):
                tries += 1
                if tries > _MAX_TRIES_PER_TIER:
                    break
                other = self.index.record_at(cand)
                if not _same_text(other.text, record.text):
                    return other, tier
        return None

    def _donor_patches(self, path):
        if path in self._donor_cache:
            self._donor_cache.move_to_end(path)
            return self._donor_cache[path]
        loaded, _ = self._load_image(path)
        patches = self.patcher(loaded.image) if loaded is not None else None
        self._donor_cache[path] = patches
        if len(self._donor_cache) > 64:
            self._donor_cache.popitem(last=False)
        return patches

    def _donor_crop(self, pos, rng, slot, own_base):
        """The same-slot level-3 crop of another product (another subcategory where possible).

        A donor crop must differ visibly from the crop it replaces (mean absolute pixel difference
        above `_MIN_DONOR_DIFFERENCE`; two plain background cells would make the task unsolvable).
        When no candidate qualifies, the most different one seen is used.
        """
        s = LEVEL_OFFSETS[2] + slot
        own = own_base[s].astype(np.int16)
        best = None
        for tier, ranges in self.index.tiers(pos, "different"):
            tries = 0
            for cand in self.index.iter_candidates(rng, ranges, exclude=lambda p: p == pos):
                tries += 1
                if tries > _MAX_TRIES_PER_TIER:
                    break
                other = self.index.record_at(cand)
                patches = self._donor_patches(other.images[int(rng.integers(len(other.images)))])
                if patches is None:
                    continue
                crop = patches.crop(s)
                difference = float(np.abs(crop.astype(np.int16) - own).mean())
                tier_name = "other subcategory" if tier != "subcategory" else "same subcategory"
                if difference > _MIN_DONOR_DIFFERENCE:
                    return crop, tier_name
                if difference > 0 and (best is None or difference > best[0]):
                    best = (difference, crop, tier_name + " (similar crop)")
        if best is not None:
            return best[1], best[2]
        # No other product has a usable, different crop: take another level-3 cell of the same image.
        others = [i for i in range(LEVEL_SIZES[2]) if i != slot]
        differences = [float(np.abs(own_base[LEVEL_OFFSETS[2] + i].astype(np.int16) - own).mean()) for i in others]
        other_slot = others[int(np.argmax(differences))] if max(differences) > 0 else others[int(rng.integers(8))]
        return own_base[LEVEL_OFFSETS[2] + other_slot], "same image, other cell"

    # ------------------------------------------------------------------ retrieval pass

    def retrieval_queries(self):
        """Sorted-index positions of the query products, in query order (the same on every shard)."""
        c = self.config
        a, b = self.index.split_block(split=SPLITS.index(c.retrieval_split))
        keys = mix64(self.index.hash[a:b], f"{c.seed}/retrieval-queries")
        order = np.argsort(keys, kind="stable")
        return (a + order[: c.retrieval_queries]).astype(np.int64)

    def _image_features(self, records_and_images, stats):
        """Features for [(record, image index)] from the cache or the extractor, in chunks.

        Returns {(product_id, image index): (features [55, F] float16, positions [55, 5])}.
        """
        c = self.config
        out, pending = {}, []

        def flush():
            if not pending:
                return
            feats = self.extractor(np.concatenate([p[2] for p in pending]))
            for i, (key, positions, _) in enumerate(pending):
                value = (feats[i * NUM_PATCHES : (i + 1) * NUM_PATCHES].astype(np.float16), positions)
                out[key] = value
                self._feature_cache[key] = value
                if len(self._feature_cache) > c.feature_cache_size:
                    self._feature_cache.popitem(last=False)
            stats["images"]["features computed"] += len(pending)
            pending.clear()

        for rec, k in records_and_images:
            key = (rec.product_id, k)
            if key in out:
                continue
            if key in self._feature_cache:
                self._feature_cache.move_to_end(key)
                out[key] = self._feature_cache[key]
                stats["images"]["features from cache"] += 1
                continue
            loaded, _ = self._load_image(rec.images[k])
            patches = self.patcher(loaded.image)
            pending.append((key, patches.positions, patches.crops()))
            if len(pending) >= c.images_per_chunk:
                flush()
        flush()
        return out

    def _first_usable_image(self, rec, rejections):
        """Index of the product's first image that loads, or None (rejections are logged)."""
        for k, path in enumerate(rec.images):
            if (rec.product_id, k) in self._feature_cache:
                return k
            loaded, reason = self._load_image(path)
            if loaded is not None:
                return k
            rejections.add(self._location(rec), rec.product_id, rec.raw_images[k], "image", reason)
        return None

    def _retrieval_pass(self):
        c = self.config
        stats = {"images": collections.Counter()}
        rejections = RejectionLog()
        queries = self.retrieval_queries()
        mine = [int(q) for q in queries if int(self.index.hash[q] % np.uint64(c.num_shards)) == c.shard_index]
        schema = self._schema("retrieval")
        files = []
        counts = {}
        with self._bar(total=len(mine) * len(DIRECTIONS), unit="query", desc=f"retrieval {self.shard_name}") as bar:
            for direction in DIRECTIONS:
                d_stats = collections.defaultdict(collections.Counter)
                path = self._shard_path("retrieval", direction)
                sets_path = os.path.join(self.out, "retrieval", direction, f"sets.{self.shard_name}.jsonl")
                files += [path, sets_path]
                with (
                    TFRecordShardWriter(path, schema, c.feature_dtype, c.compression) as writer,
                    atomic_write(sets_path, "w") as sets_file,
                ):
                    for rank, q in enumerate(queries.tolist()):
                        if q not in mine:
                            continue
                        self._write_query(rank, q, direction, writer, sets_file, d_stats, stats, rejections)
                        bar.update(1)
                counts[direction] = _plain(d_stats)
                counts[direction]["examples"] = writer.num_written
        rejections.write(os.path.join(self.out, SHARD_DIR, f"rejected.retrieval.{self.shard_name}.tsv"))
        counts["images"] = dict(stats["images"])
        counts["queries_selected"] = len(mine)
        self._write_marker("retrieval", counts, files)

    def _write_query(self, rank, q, direction, writer, sets_file, d_stats, stats, rejections):
        c = self.config
        qrec = self.index.record_at(q)
        qk = self._first_usable_image(qrec, rejections)
        if qk is None:
            d_stats["queries"]["dropped (no usable image)"] += 1
            rejections.add(
                self._location(qrec),
                qrec.product_id,
                "",
                "retrieval",
                f"{direction} query dropped: the product has no usable image",
            )
            return
        rng = derive_rng(c.seed, qrec.product_id, "retrieval", direction)
        negatives, tiers = [], collections.Counter()
        for tier, ranges in self.index.tiers(q, "similar"):
            for cand in self.index.iter_candidates(rng, ranges, exclude=lambda p: p == q):
                if len(negatives) >= c.retrieval_negatives:
                    break
                crec = self.index.record_at(cand)
                if _same_text(crec.text, qrec.text):
                    d_stats["candidates skipped"]["same text as the query"] += 1
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
        candidates = [candidates[i] for i in order]
        if direction == "txt2img":
            feats = self._image_features([(rec, k) for rec, k, _ in candidates], stats)
            text_enc = self.tokenizer.encode(qrec.text, c.text_length)
            pairs = [(qrec, text_enc, rec, k, label) for rec, k, label in candidates]
        else:
            feats = self._image_features([(qrec, qk)], stats)
            encs = self.tokenizer.encode_batch([rec.text for rec, _, _ in candidates], c.text_length)
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
                    "num_negatives": len(negatives),
                    "negative_tiers": dict(sorted(tiers.items())),
                    "candidates": lines,
                },
                sort_keys=True,
            )
            + "\n"
        )

    # ------------------------------------------------------------------ schema.json, rejected.tsv, summary

    def _done_markers(self, task):
        """{shard name: marker} of the finished shards of `task` (this run's shard count)."""
        n = self.config.num_shards
        markers = {}
        for i in range(n):
            name = f"part-{i:05d}-of-{n:05d}"
            path = self._marker_path(task, name)
            if os.path.exists(path):
                with open(path, encoding="utf-8") as f:
                    marker = json.load(f)
                if marker.get("fingerprint") == self.fingerprint:
                    markers[name] = marker
        return markers

    def _write_schema_files(self, task):
        c = self.config
        markers = self._done_markers(task)
        schema = self._schema(task)
        if task == "retrieval":
            dirs = {d: os.path.join(self.out, "retrieval", d) for d in DIRECTIONS}
            counts = {d: sum(m["counts"][d]["examples"] for m in markers.values()) for d in DIRECTIONS}
        else:
            splits = PRETRAIN_SPLITS if task == "pretrain" else FINETUNE_SPLITS
            dirs = {s: os.path.join(self.out, task, s) for s in splits}
            counts = {s: sum(m["counts"]["examples"][s] for m in markers.values()) for s in splits}
        for key, directory in dirs.items():
            if os.path.isdir(directory):
                write_schema_json(
                    directory,
                    schema,
                    c.feature_dtype,
                    c.compression,
                    num_examples=counts[key],
                    num_shards=c.num_shards,
                    num_shards_done=len(markers),
                )

    def _write_summary(self):
        c = self.config
        shard_dir = os.path.join(self.out, SHARD_DIR)
        rejected_files = [os.path.join(shard_dir, "rejected.catalog.tsv")]
        for name in sorted(os.listdir(shard_dir)):
            if name.startswith(("rejected.main.", "rejected.retrieval.")) and name.endswith(".tsv"):
                rejected_files.append(os.path.join(shard_dir, name))
        merged = RejectionLog.merge(rejected_files)
        merged.write(os.path.join(self.out, "rejected.tsv"))

        idx = self.index
        split_counts = {s: int(np.sum(idx.split == i)) for i, s in enumerate(SPLITS)}
        summary = {
            "catalog": os.path.basename(c.catalog),
            "fingerprint": self.fingerprint,
            "catalog_index": {
                "records": idx.num_records,
                "products": len(idx),
                "bad_records": len(idx.catalog_errors),
                "duplicate_ids": len(idx.duplicates),
                "splits": split_counts,
                "categories": len(idx.categories),
                "subcategories": len(idx.subcategories),
            },
            "shards": {"num_shards": c.num_shards},
            "rejected": {"lines": len(merged), "by_stage_and_reason": merged.counts()},
            "tokenizer": self.tokenizer.describe(),
            "settings": {k: v for k, v in c.to_dict().items() if k not in ("progress",)},
        }
        if self._extractor is not None:
            summary["feature_extractor"] = self._extractor.describe()
        for task in TASK_ORDER:
            markers = self._done_markers(task)
            if not markers:
                continue
            summary["shards"][task] = sorted(markers)
            total = {}
            for marker in markers.values():
                _add_counts(total, marker["counts"])
            total.pop("rejected", None)
            summary[task] = total
        if "retrieval" in summary:
            r = summary["retrieval"]
            notes = []
            for d in DIRECTIONS:
                q = r.get(d, {}).get("queries", {})
                if q.get("negatives beyond the subcategory"):
                    notes.append(
                        f"{d}: {q['negatives beyond the subcategory']} of {q.get('written', 0)} queries "
                        f"took negatives beyond their subcategory (too few products in it)"
                    )
                if q.get("fewer negatives than asked"):
                    notes.append(
                        f"{d}: {q['fewer negatives than asked']} queries have fewer than "
                        f"{c.retrieval_negatives} negatives (too few products)"
                    )
            if not r.get("queries_selected"):
                notes.append(
                    f"no retrieval queries: the '{c.retrieval_split}' split has no product in the finished "
                    f"shards (see --retrieval_split, --test_fraction)"
                )
            r["notes"] = notes
        atomic_write_text(
            os.path.join(self.out, "summary.json"), json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n"
        )
        return summary


TASK_ORDER = ("pretrain", "finetune", "retrieval")
