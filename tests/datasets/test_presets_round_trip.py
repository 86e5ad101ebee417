"""Full-size original schemas: bundle -> batches equals bundle -> TFRecord -> batches, field by field."""

import numpy as np
import pytest
import tensorflow as tf

from kaleido_tf.datasets import convert_bundles, get_schema, make_bundle_dataset, make_tfrecord_dataset
from kaleido_tf.datasets.synthetic import write_bundle

from .conftest import collect, example_rows


@pytest.mark.parametrize(
    "preset, base64_fields",
    [
        ("pretrain", ("img_feature_convert_rotation",)),
        ("finetune", ()),
        ("retrieval", ("img_feature_convert_jigsaw",)),
    ],
)
def test_full_size_round_trip(tmp_path, preset, base64_fields):
    schema = get_schema(preset)
    list_file, examples = write_bundle(
        str(tmp_path / "bundle"), schema, 3, num_files=2, seed=7, base64_fields=base64_fields
    )
    out = tmp_path / "shards"
    counts = convert_bundles(list_file, preset, out, num_shards=2, num_workers=1, progress=False)
    assert counts["written"] == 3
    bundle = collect(make_bundle_dataset(list_file, preset, 2, training=False))
    shards = collect(make_tfrecord_dataset(str(out), 2, training=False))
    want = example_rows(examples, schema)
    assert sorted(bundle) == sorted(shards) == sorted(schema.names)
    for spec in schema.fields:
        np.testing.assert_array_equal(bundle[spec.name], want[spec.name], err_msg=spec.name)
        assert bundle[spec.name].shape == shards[spec.name].shape == (3, spec.length)
        assert bundle[spec.name].dtype == shards[spec.name].dtype
        if spec.is_feature:  # float16 storage
            np.testing.assert_allclose(shards[spec.name], bundle[spec.name], rtol=1e-3)
        else:
            np.testing.assert_array_equal(shards[spec.name], bundle[spec.name], err_msg=spec.name)
    train = next(iter(make_tfrecord_dataset(str(out), 2, training=True)))
    assert train["img_feature_convert_blank_mask"].shape == (2, 25 * 2048)
    assert train["img_loc_position_camouflage"].dtype == tf.int64
    assert train["img_loc_position_camouflage"].shape == (2, 45)
