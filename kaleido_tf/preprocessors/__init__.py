"""Preprocessing from a product catalog (images + text) to training-ready TFRecord shards.

Entry point: `kaleido-preprocess` (`kaleido_tf.preprocessors.cli:run`); see docs/preprocessing.md.

Modules, in pipeline order:
  catalog            CatalogReader: streaming JSONL/CSV catalog, errors with file:line
  catalog_index      CatalogIndex: light first pass, split/category ranges for negatives and donors
  image_loader       ImageLoader: RGB conversion, downscaling, rejection with reasons
  foreground         ForegroundDetector: saliency box on plain backgrounds
  kaleido_patches    KaleidoPatchGenerator: the 55 crops and their positions
  kaleido_tasks      KaleidoTaskSampler: rotation, jigsaw, camouflage, grey and blank tasks
  extractor_base     PatchFeatureExtractor interface (resnet_extractor, pixel_extractor, keras_extractor)
  feature_extractor  build_feature_extractor: the extractor named by --feature_extractor
  text_tokenizer     WordPiece / SentencePiece encoding
  masked_lm          MaskedLmSampler: 15%, 80/10/10, whole-word option
  alignments, alignment_masking   alignment-guided masking
  example_builder    example dicts in the shard schemas (schemas)
  image_source       ImageSource: loading with a failure memory, patches, the extractor on first use
  negatives          NegativeSampler: ITM negative texts and camouflage donor crops
  shard_book         output layout, per-shard paths and done markers
  main_pass          MainPass: a shard's pretraining and finetuning examples
  retrieval_pass     RetrievalPass: a shard's retrieval candidate sets
  run_report         schema.json, rejected.tsv, summary.json
  pipeline           Preprocessor: the sharded, rerunnable run (config: PreprocessConfig), which
                     builds the parts (run_context) and runs the steps
"""
