"""The main pass of one shard: its products in catalog order -> pretraining and finetuning examples.

Every image is loaded and cut into the 55 kaleido patches; for pretraining, the positive and the ITM
negatives of each image draw their kaleido tasks and text masks; the crops of a chunk of products are
extracted together and the examples written. Each step returns its counts and rejections.
"""

import contextlib
import dataclasses

import numpy as np

from kaleido_tf.datasets.tfrecord_writer import TFRecordShardWriter
from kaleido_tf.preprocessors.alignments import resolve_alignments
from kaleido_tf.preprocessors.catalog import CatalogError
from kaleido_tf.preprocessors.example_builder import extra_crops, finetune_example, pretrain_example, pretrain_features
from kaleido_tf.preprocessors.hashing import SPLITS, derive_rng, shard_of
from kaleido_tf.preprocessors.kaleido_patches import NUM_PATCHES
from kaleido_tf.preprocessors.rejections import RejectionLog
from kaleido_tf.preprocessors.shard_book import FINETUNE_SPLITS, PRETRAIN_SPLITS, SHARD_DIR
from kaleido_tf.preprocessors.tally import Tally


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


@dataclasses.dataclass
class PretrainDraw:
    """The pretraining examples drawn for one image, the extra crops they need, and their counts."""

    examples: list  # [_PretrainPlan]
    crops: list  # extra crops, in the order of `examples`' extra_start
    stats: Tally


@dataclasses.dataclass
class ChunkResult:
    """Counts and rejections of one chunk of products."""

    images: Tally = dataclasses.field(default_factory=Tally)
    pretrain: Tally = dataclasses.field(default_factory=Tally)
    rejections: RejectionLog = dataclasses.field(default_factory=RejectionLog)


@dataclasses.dataclass
class MainPassResult:
    """What the main pass wrote: per task, the marker counts and the shard files."""

    counts: dict  # task -> counts (as in the done marker)
    files: dict  # task -> [shard paths]
    rejections: RejectionLog


class MainPass:
    """Args: ctx: the run's RunContext."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.config = ctx.config

    def run(self, todo):
        """Writes this shard's examples of the tasks `todo` (pretrain and/or finetune) and their done markers."""
        ctx, c = self.ctx, self.config
        images, pretrain = Tally(), Tally()
        rejections = RejectionLog()
        outputs = {}
        if "pretrain" in todo:
            for split in PRETRAIN_SPLITS:
                outputs[("pretrain", split)] = ctx.book.shard_path("pretrain", split)
        if "finetune" in todo:
            for split in FINETUNE_SPLITS:
                outputs[("finetune", split)] = ctx.book.shard_path("finetune", split)
        index = ctx.index
        in_shard = (index.hash % np.uint64(c.num_shards)) == np.uint64(c.shard_index)
        wanted = (
            np.ones(len(index), bool)
            if "finetune" in todo
            else np.isin(index.split, [SPLITS.index(s) for s in PRETRAIN_SPLITS])
        )
        total = int(np.sum(in_shard & wanted))

        def process(chunk, bar):
            result = self._process_chunk(chunk, writers)
            images.merge(result.images)
            pretrain.merge(result.pretrain)
            for row in result.rejections.rows:
                rejections.add(*row)
            bar.update(len(chunk))

        with contextlib.ExitStack() as stack:
            writers = {
                key: stack.enter_context(TFRecordShardWriter(path, ctx.schema(key[0]), c.feature_dtype, c.compression))
                for key, path in outputs.items()
            }
            bar = stack.enter_context(
                ctx.bar(total=total, unit="product", desc=f"{'+'.join(todo)} {ctx.book.shard_name}")
            )
            chunk, chunk_images = [], 0
            for item in self._items(todo):
                chunk.append(item)
                chunk_images += len(item.record.images)
                if chunk_images >= c.images_per_chunk:
                    process(chunk, bar)
                    chunk, chunk_images = [], 0
            if chunk:
                process(chunk, bar)
        # The shards are renamed into place; now their rejections and done markers.
        rejections.write(ctx.book.path(SHARD_DIR, f"rejected.main.{ctx.book.shard_name}.tsv"))
        result = MainPassResult(counts={}, files={}, rejections=rejections)
        stats = {"pretrain": pretrain, "finetune": Tally()}
        for task in todo:
            counts = stats[task].plain()
            counts["examples"] = {
                split: writers[(task, split)].num_written
                for split in (PRETRAIN_SPLITS if task == "pretrain" else FINETUNE_SPLITS)
            }
            counts["images"] = images.plain()
            counts["rejected"] = rejections.counts()
            result.counts[task] = counts
            result.files[task] = [p for (t, _), p in outputs.items() if t == task]
            ctx.book.write_marker(task, counts, result.files[task])
        return result

    def _items(self, todo):
        """This shard's products, in catalog order, that one of the tasks `todo` needs."""
        ctx, c = self.ctx, self.config
        for rec in ctx.reader.scan():
            if isinstance(rec, CatalogError) or shard_of(rec.product_id, c.num_shards) != c.shard_index:
                continue
            pos = ctx.index.locate(rec)
            if pos is None:  # a later duplicate: rejected.tsv says so
                continue
            split = ctx.split_settings.split_of(rec)
            item = _Item(
                rec,
                pos,
                split,
                pretrain="pretrain" in todo and split in PRETRAIN_SPLITS,
                finetune="finetune" in todo,
            )
            if item.pretrain or item.finetune:
                yield item

    def _process_chunk(self, items, writers):
        ctx, c = self.ctx, self.config
        result = ChunkResult()
        stats, rejections = result.images, result.rejections
        encodings = ctx.tokenizer.encode_batch([it.record.text for it in items], c.text_length)
        crops, jobs = [], []
        for item, encoded in zip(items, encodings):
            rec = item.record
            stats["texts"]["total"] += 1
            if encoded.truncated:
                stats["texts"]["truncated"] += 1
            usable = 0
            for k, path in enumerate(rec.images):
                stats["images"]["seen"] += 1
                loaded, reason = ctx.images.load(path)
                if loaded is None:
                    rejections.add(ctx.location(rec), rec.product_id, rec.raw_images[k], "image", reason)
                    stats["images"]["rejected"] += 1
                    continue
                for conv in loaded.conversions:
                    stats["conversions"][conv] += 1
                patches = ctx.images.patches(loaded.image)
                stats["foreground"][patches.foreground_fallback or "box found"] += 1
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
                    draw = self._plan_pretrain(item, k, encoded, patches, base, first_crop=len(crops))
                    job.examples = draw.examples
                    crops.extend(draw.crops)
                    result.pretrain.merge(draw.stats)
                jobs.append(job)
                usable += 1
            stats["products"]["seen"] += 1
            if usable == 0:
                stats["products"]["without usable image"] += 1
                rejections.add(
                    ctx.location(rec),
                    rec.product_id,
                    "",
                    "product",
                    "no usable image: every image of the product was rejected",
                )
        if not jobs:
            return result
        features = ctx.images.extractor(np.stack(crops))  # [N, F]
        for job in jobs:
            item, rec = job.item, job.item.record
            base = features[job.base_start : job.base_start + NUM_PATCHES]
            if item.finetune:
                cat_id, sub_id = ctx.label_maps.ids(rec.category, rec.subcategory)
                example = finetune_example(rec, job.image_index, job.encoded, base, job.positions, cat_id, sub_id)
                writers[("finetune", item.split)].write(example)
            for ex in job.examples:
                extra = features[ex.extra_start : ex.extra_start + ex.num_extra]
                feats, grey_target = pretrain_features(base, ex.plan, extra, ex.where)
                writers[("pretrain", item.split)].write(
                    pretrain_example(ex.mlm, ex.encoded, feats, grey_target, job.positions, ex.plan, ex.label)
                )
        return result

    def _plan_pretrain(self, item, k, encoded, patches, base, first_crop):
        """Draws the positive and negative examples of image `k`; their extra crops start at `first_crop`."""
        ctx, c = self.ctx, self.config
        rec = item.record
        stats = Tally()
        itm_rng = derive_rng(c.seed, rec.product_id, "itm", k)
        whole = int(np.floor(c.neg_ratio))
        num_neg = whole + int(itm_rng.random() < c.neg_ratio - whole)
        examples, crops = [], []
        for j in range(1 + num_neg):
            rng = derive_rng(c.seed, rec.product_id, "pretrain", k, j)
            if j == 0:
                text_enc, label = encoded, 1
            else:
                negative = ctx.negatives.negative_text(item.pos, rec, rng)
                if negative is None:
                    stats["itm"]["negative unavailable"] += 1
                    continue
                neg_rec, tier = negative
                stats["itm_negative_tier"][tier] += 1
                text_enc, label = ctx.tokenizer.encode(neg_rec.text, c.text_length), 0
            stats["itm"]["positives" if label else "negatives"] += 1
            forced_tokens, protected_tokens, forced_patches, protected_patches = (), frozenset(), None, None
            aligned = ctx.alignments.get(rec.product_id, k) if (ctx.alignments is not None and label) else []
            if aligned:
                aligned = resolve_alignments(aligned, patches.image.size, patches.boxes)
                budget = ctx.mlm.num_to_predict(int(np.sum(text_enc.word_ids >= 0)))
                agm = ctx.masker.plan(aligned, text_enc, rng, budget)
                forced_tokens, protected_tokens = agm.forced_token_groups, agm.protected_positions
                forced_patches, protected_patches = agm.forced_patches, agm.protected_patches
                for key, value in agm.stats.items():
                    stats["alignment"][key] += value
                stats["alignment"]["examples"] += 1
            mlm = ctx.mlm.sample(text_enc, rng, forced_groups=forced_tokens, protected=protected_tokens)
            stats["mlm"]["predictions"] += mlm.num_predictions
            plan = ctx.task_sampler.sample(rng, forced=forced_patches, protected=protected_patches)
            donor = None
            if plan.camouflage_slot is not None:
                donor, tier = ctx.negatives.donor_crop(item.pos, rng, plan.camouflage_slot, base)
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
                    extra_start=first_crop + len(crops),
                    num_extra=len(extra),
                )
            )
            crops.extend(extra)
        return PretrainDraw(examples=examples, crops=crops, stats=stats)
