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

`--overwrite` over a complete single-shard output whose tasks are all asked for again builds the new
output in a sibling directory `<output_dir>.partial-<id>` and swaps it in at the end: a run that fails
(a full disk, a bad image setting) leaves the previous output as it was. A full disk is reported as
`OutputSpaceError` naming the directory, the file system's free space and what was kept.

`Preprocessor` builds the parts and runs the steps; each step lives in its own module and returns a
result object: shard_book (layout, done markers), image_source (loading, patches, features), negatives
(ITM negatives, camouflage donors), main_pass, retrieval_pass, run_report (schema.json, summary.json).
"""

import glob
import logging
import os
import shutil
import uuid

from kaleido_tf.preprocessors.alignment_masking import AlignmentGuidedMasker
from kaleido_tf.preprocessors.alignments import AlignmentTable
from kaleido_tf.preprocessors.catalog import CatalogReader
from kaleido_tf.preprocessors.catalog_index import CatalogIndex, SplitSettings
from kaleido_tf.preprocessors.hashing import shard_of
from kaleido_tf.preprocessors.image_source import ImageSource
from kaleido_tf.preprocessors.kaleido_tasks import KaleidoTaskSampler
from kaleido_tf.preprocessors.label_maps import LabelMaps
from kaleido_tf.preprocessors.main_pass import MainPass
from kaleido_tf.preprocessors.masked_lm import MaskedLmSampler
from kaleido_tf.preprocessors.negatives import NegativeSampler
from kaleido_tf.preprocessors.retrieval_pass import RetrievalPass, retrieval_queries
from kaleido_tf.preprocessors.run_context import RunContext
from kaleido_tf.preprocessors.run_report import write_catalog_rejections, write_schema_files, write_summary
from kaleido_tf.preprocessors.shard_book import SHARD_DIR, ShardBook, ShardSettingsMismatch
from kaleido_tf.preprocessors.text_tokenizer import build_tokenizer
from kaleido_tf.utils.disk_space import DiskFullError, disk_full_error, is_disk_full

__all__ = ["OutputSpaceError", "Preprocessor", "ShardSettingsMismatch"]

log = logging.getLogger(__name__)


class OutputSpaceError(DiskFullError):
    """The output's file system filled up (or a quota was hit); the message says where and what was kept."""


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
        self.book = ShardBook(self.out, c, c.fingerprint())
        self.reader = CatalogReader(c.catalog)
        self.split_settings = SplitSettings(
            seed=c.seed if c.split_seed is None else c.split_seed,
            valid_fraction=c.valid_fraction,
            test_fraction=c.test_fraction,
        )
        self.images = ImageSource(c, feature_extractor)
        self.tokenizer = tokenizer or build_tokenizer(
            c.tokenizer, vocab=c.vocab, spm_model=c.spm_model, lower_case=c.lower_case
        )
        self.index = None
        self.ctx = None

    def run(self):
        """Runs the requested tasks for this shard; returns the summary dict (also in summary.json)."""
        target, stage = self.out, None
        try:
            if self._replaces_a_complete_output():
                stage = f"{target}.partial-{uuid.uuid4().hex[:8]}"
                self._write_into(stage)
            summary = self._run()
            if stage is not None:
                self._swap_in(stage, target)
                stage = None
            return summary
        except Exception as e:
            if not is_disk_full(e):
                raise
            where = self.out
            kept = (
                f"the previous output in {target} is unchanged"
                if stage is not None
                else "the shard being written was discarded; finished shards keep their done markers"
            )
            full = disk_full_error(where, e, kept, "free space or use another --output_dir")
            raise OutputSpaceError(str(full)) from e
        finally:
            if stage is not None:
                shutil.rmtree(stage, ignore_errors=True)
            self._write_into(target)
            self.reader.close()

    def _replaces_a_complete_output(self):
        """True for --overwrite over a finished single-shard output whose every task is asked for again."""
        c = self.config
        if not (c.overwrite and c.num_shards == 1 and os.path.exists(os.path.join(self.out, "summary.json"))):
            return False
        done = {os.path.basename(p).split(".")[0] for p in glob.glob(os.path.join(self.out, SHARD_DIR, "*.*.json"))}
        return done <= set(c.tasks)

    def _write_into(self, directory):
        self.out = directory
        self.book = ShardBook(directory, self.config, self.book.fingerprint)

    @staticmethod
    def _swap_in(stage, target):
        """Replaces `target` by `stage` with two renames; the old output is removed after."""
        old = f"{target}.old-{uuid.uuid4().hex[:8]}"
        os.rename(target, old)
        os.rename(stage, target)
        shutil.rmtree(old, ignore_errors=True)

    def retrieval_queries(self):
        """Sorted-index positions of the query products, in query order (the same on every shard)."""
        return retrieval_queries(self.index, self.config)

    def _context(self):
        c = self.config
        os.makedirs(os.path.join(self.out, SHARD_DIR), exist_ok=True)
        self.index = CatalogIndex.build(
            self.reader, self.split_settings, bad_records=c.bad_records, progress=c.progress
        )
        if len(self.index) == 0:
            raise ValueError(f"{c.catalog}: the catalog has no usable product")
        label_maps = (
            LabelMaps.load(c.label_maps)
            if c.label_maps
            else LabelMaps.from_names(self.index.categories, self.index.subcategories)
        )
        label_maps.check_covers(self.index.categories, self.index.subcategories, source=c.catalog)
        label_maps.save(os.path.join(self.out, "label_maps"))
        alignments = None
        if c.alignments:
            n, i = c.num_shards, c.shard_index
            alignments = AlignmentTable(c.alignments, keep=lambda pid: shard_of(pid, n) == i)
        return RunContext(
            config=c,
            reader=self.reader,
            split_settings=self.split_settings,
            index=self.index,
            label_maps=label_maps,
            book=self.book,
            images=self.images,
            tokenizer=self.tokenizer,
            mlm=MaskedLmSampler(
                self.tokenizer,
                max_predictions=c.max_predictions,
                masked_lm_prob=c.masked_lm_prob,
                whole_word=c.whole_word_mask,
            ),
            task_sampler=KaleidoTaskSampler(
                num_grey=c.num_grey, num_blank=c.num_blank, camouflage_none_class=c.camouflage_none_class
            ),
            masker=AlignmentGuidedMasker(self.tokenizer),
            alignments=alignments,
            negatives=NegativeSampler(self.index, self.images, itm_easy_negatives=c.itm_easy_negatives),
        )

    def _run(self):
        ctx = self.ctx = self._context()
        write_catalog_rejections(ctx)
        tasks = self.config.tasks
        main_todo = [t for t in ("pretrain", "finetune") if t in tasks and not self.book.is_done(t)]
        if main_todo:
            MainPass(ctx).run(main_todo)
        if "retrieval" in tasks and not self.book.is_done("retrieval"):
            RetrievalPass(ctx).run()
        for task in tasks:
            write_schema_files(ctx, task)
        summary = write_summary(ctx)
        warnings = summary["catalog_index"].get("notes", [])
        warnings += [n for n in summary.get("retrieval", {}).get("notes", []) if "byte-identical" in n]
        for note in warnings:  # also in summary.json; logged so that a run without a look at it hears of them
            log.warning("warning: %s", note)
        return summary
