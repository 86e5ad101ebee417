"""What the passes of one preprocessing run share: the settings, the catalog and its index, the samplers."""

import dataclasses
import os

from tqdm import tqdm

from kaleido_tf.preprocessors.schemas import preprocess_schema


@dataclasses.dataclass
class RunContext:
    """The parts of a run, built by `Preprocessor`; the passes read them and return their results."""

    config: object  # PreprocessConfig
    reader: object  # CatalogReader
    split_settings: object  # SplitSettings
    index: object  # CatalogIndex
    label_maps: object  # LabelMaps
    book: object  # ShardBook
    images: object  # ImageSource
    tokenizer: object
    mlm: object  # MaskedLmSampler
    task_sampler: object  # KaleidoTaskSampler
    masker: object  # AlignmentGuidedMasker
    alignments: object  # AlignmentTable or None
    negatives: object  # NegativeSampler

    @property
    def catalog_name(self):
        return os.path.basename(self.config.catalog)

    def location(self, record_or_line):
        """`catalog.jsonl:LINE` of a record or a line number."""
        line = record_or_line if isinstance(record_or_line, int) else record_or_line.line
        return f"{self.catalog_name}:{line}"

    def bar(self, **kwargs):
        return tqdm(disable=not self.config.progress, dynamic_ncols=True, **kwargs)

    def schema(self, task):
        c = self.config
        return preprocess_schema(
            task,
            text_length=c.text_length,
            feature_size=c.patch_feature_size,
            max_predictions=c.max_predictions,
            num_grey=c.num_grey,
            num_blank=c.num_blank,
        )
