"""Bad inputs that had no test elsewhere: unknown flags, a missing vocabulary, a damaged training checkpoint,
and the reproducible training input that resuming relies on. Each gets a clear message or a defined
recovery (see docs/failures.md)."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from kaleido_tf.convert import CheckpointError
from kaleido_tf.datasets import Schema, convert_bundles, make_bundle_dataset, make_tfrecord_dataset
from kaleido_tf.engines import Trainer
from kaleido_tf.model_zoo import KaleidoBERTConfig
from kaleido_tf.tasks import PretrainTask
from tests.conftest import GOLDEN
from tests.datasets.conftest import TINY_SCHEMA, make_bundle
from tests.preprocessors.factory import make_catalog, small_args
from tests.reliability.helpers import finish, start

TINY = os.path.join(GOLDEN, "tiny", "model.ckpt-0")

# ------------------------------------------------------------------------------------------- unknown flags
ABSL_TOOLS = [
    ("kaleido_tf.apps.pretrain_main", ["--mode=train", "--train_batch_sise=4"], "train_batch_sise"),
    ("kaleido_tf.apps.finetune_main", ["--mode=train", "--no_such_flag=1"], "no_such_flag"),
    ("kaleido_tf.apps.convert_main", ["--tf1_checkpoint=x", "--output_dir=y", "--overwrite_all"], "overwrite_all"),
]


def test_unknown_flags_of_the_absl_apps_exit_non_zero_naming_the_flag():
    # absl stops before any work: exit status 1 and "Unknown command line flag 'NAME'".
    running = [(module, flag, start(["-m", module, *argv])) for module, argv, flag in ABSL_TOOLS]
    for module, flag, process in running:
        code, out = finish(process, timeout=120)
        assert code == 1, f"{module}: exit {code}\n{out[-2000:]}"
        assert f"Unknown command line flag '{flag}'" in out, f"{module}:\n{out[-2000:]}"
        assert "Traceback" not in out


def _argparse_main(module_name):
    import importlib

    return importlib.import_module(module_name).main


@pytest.mark.parametrize(
    "module, argv",
    [
        (
            "kaleido_tf.preprocessors.cli",
            ["--catalog", "c.jsonl", "--output_dir", "o", "--feature_extracter", "pixels"],
        ),
        ("kaleido_tf.export.cli", ["--model", "m", "--export_dir", "e", "--versoin", "2"]),
        (
            "kaleido_tf.datasets.csv2tfrecord",
            ["--input_fp", "l", "--input_schema", "pretrain", "--output_dir", "o", "--shards", "4"],
        ),
    ],
)
def test_unknown_flags_of_the_argparse_tools_exit_2_naming_the_flag(module, argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        _argparse_main(module)(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"unrecognized arguments: {' '.join(argv[-2:])}" in err, err
    assert os.listdir(tmp_path) == []  # nothing was started


# ------------------------------------------------------------------------------------------- vocabulary
def test_missing_vocab_stops_preprocessing_before_any_output(tmp_path, capsys):
    from kaleido_tf.preprocessors.cli import main

    catalog, _ = make_catalog(str(tmp_path / "catalog"), num_products=3)
    missing = tmp_path / "nowhere" / "vocab.txt"
    out = tmp_path / "out"
    assert main(small_args(catalog, str(out), vocab=str(missing))) == 2
    err = capsys.readouterr().err
    assert f"kaleido-preprocess: error: vocabulary file not found: {missing}" in err, err
    assert not out.exists()


def test_missing_vocab_stops_the_export_before_any_version(tmp_path, capsys):
    from kaleido_tf.export.cli import main

    missing = tmp_path / "vocab.txt"
    export_dir = tmp_path / "serving"
    assert main(["--model", TINY, "--export_dir", str(export_dir), "--vocab_file", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"kaleido-export: error: vocab file not found: {missing}" in err, err
    assert not export_dir.exists() or os.listdir(export_dir) == []


# ------------------------------------------------------------------------------------------- checkpoints
BATCH = 3


def _golden_data():
    golden = np.load(os.path.join(GOLDEN, "tiny", "golden.npz"))
    feats = {k[len("input/") :]: golden[k] for k in golden.files if k.startswith("input/")}
    return {k: np.concatenate([v, v[::-1], np.roll(v, 1, axis=0)]) for k, v in feats.items()}


def _dataset_fn(context):
    data = _golden_data()
    return tf.data.Dataset.from_tensor_slices(data).shuffle(9, seed=5).repeat().batch(BATCH)


def _trainer(model_dir, steps=4, **kwargs):
    config = KaleidoBERTConfig.from_json_file(os.path.join(GOLDEN, "tiny", "config.json"))
    keras.utils.set_random_seed(3)
    return Trainer(
        PretrainTask(config),
        str(model_dir),
        learning_rate=1e-3,
        train_steps=steps,
        progress=False,
        log_steps=100,
        **kwargs,
    )


def _truncate(path):
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])


def test_damaged_latest_checkpoint_resumes_from_the_previous_one(tmp_path):
    first = _trainer(tmp_path / "run", save_steps=1)
    first.initialize()
    first.train(_dataset_fn, BATCH, stop_at_step=2)
    # one save per step; the end of the run, on a step just saved, does not write ckpt-2 a second time
    assert int(first.checkpoint.save_counter) == 2
    assert [os.path.basename(p) for p in first.manager.checkpoints] == ["ckpt-1", "ckpt-2"]
    at_step_2 = {v.path: v.numpy() for v in first.model.weights}
    first.train(_dataset_fn, BATCH, stop_at_step=3)
    assert first.manager.latest_checkpoint.endswith("ckpt-3")
    assert any(not np.array_equal(v.numpy(), at_step_2[v.path]) for v in first.model.trainable_weights)
    _truncate(tmp_path / "run" / "ckpt-3.data-00000-of-00001")

    second = _trainer(tmp_path / "run", save_steps=1)
    message = second.initialize()
    assert message.startswith(
        f"resumed from {tmp_path / 'run' / 'ckpt-2'} at step 2; skipped the newer "
        f"checkpoint(s) that are truncated, corrupt or do not match the model: "
        f"{tmp_path / 'run' / 'ckpt-3'} ("
    ), message
    assert second.global_step == 2
    for v in second.model.weights:  # the weights of the good checkpoint
        np.testing.assert_array_equal(v.numpy(), at_step_2[v.path], err_msg=v.path)

    for name in os.listdir(tmp_path / "run"):
        if name.startswith("ckpt-") and name.endswith(".index"):
            (tmp_path / "run" / name).write_bytes(b"")
    with pytest.raises(
        CheckpointError,
        match=r"cannot resume from any checkpoint in .*run: each is truncated, "
        r"corrupt or does not match the model: .*ckpt-3 \(.*ckpt-2 \(",
    ):
        _trainer(tmp_path / "run").initialize()


# ------------------------------------------------------------------------------------------- resumable input
@pytest.mark.parametrize("reader", ["bundle", "tfrecord"])
def test_seeded_training_input_is_reproducible_and_resumable(tmp_path, reader):
    schema = Schema.parse(TINY_SCHEMA)
    list_file, _ = make_bundle(tmp_path / "bundle", schema, 40, num_files=4)
    if reader == "tfrecord":
        convert_bundles(
            list_file, schema, tmp_path / "shards", num_shards=4, progress=False, expected_lengths=None, num_workers=1
        )

    def make(seed):
        if reader == "bundle":
            return make_bundle_dataset(
                list_file, schema, 4, training=True, seed=seed, shuffle_buffer=8, expected_lengths=None
            )
        return make_tfrecord_dataset(str(tmp_path / "shards"), 4, training=True, seed=seed, shuffle_buffer=8)

    def uids(dataset, count):
        return [batch["uid"].numpy()[:, 0].tolist() for batch in dataset.take(count)]

    assert make(3).options().deterministic and not make(None).options().deterministic
    first = uids(make(3), 25)  # 2.5 epochs: reshuffled every epoch, the same way on every run
    assert uids(make(3), 25) == first
    assert uids(make(3).skip(13), 12) == first[13:]  # what a resumed run sees after skipping 13 batches
    assert uids(make(4), 25) != first
    assert sorted(sum(first[:10], [])) == list(range(40))


# ------------------------------------------------------------------------------------------- catalogs
def test_unclosed_csv_quote_and_overlong_record_are_errors_at_their_line(tmp_path):
    """A stray quote must not swallow the rest of a CSV catalog (it used to, reading it all into memory)."""
    from kaleido_tf.preprocessors.catalog import MAX_RECORD_BYTES, CatalogReader
    from kaleido_tf.preprocessors.catalog_index import CatalogIndex, SplitSettings

    path = tmp_path / "catalog.csv"
    with open(path, "w") as f:
        f.write("product_id,images,text,category,subcategory\n")
        for i in range(2000):
            text = '"a shirt, the ""classic"" cut' + ("" if i == 1 else '"')  # line 3 never closes its quote
            f.write(f"p{i},a.jpg,{text},tops,shirts\n")
    items = list(CatalogReader(str(path)).scan())
    errors = [item for item in items if not hasattr(item, "product_id")]
    assert [str(e) for e in errors] == [
        f"{path}:3: a quoted field is never closed (an unbalanced '\"') before the end of the file"
    ]
    assert [item.product_id for item in items if hasattr(item, "product_id")] == [
        f"p{i}" for i in range(2000) if i != 1
    ]
    index = CatalogIndex.build(CatalogReader(str(path)), SplitSettings(), bad_records="reject", progress=False)
    assert len(index) == 1999 and [e.line for e in index.catalog_errors] == [3]

    jsonl = tmp_path / "catalog.jsonl"
    good = '{"product_id": "p%d", "images": ["a.jpg"], "text": "shirt", "category": "tops", "subcategory": "s"}\n'
    jsonl.write_text(good % 0 + '{"product_id": "huge", "text": "' + "x" * (MAX_RECORD_BYTES + 10) + '"}\n' + good % 2)
    items = list(CatalogReader(str(jsonl)).scan())
    assert str(items[1]) == f"{jsonl}:2: the record is longer than {MAX_RECORD_BYTES} bytes"
    assert [items[0].product_id, items[2].product_id, items[2].line] == ["p0", "p2", 3]
    with pytest.raises(ValueError, match=r"catalog.jsonl:2: the record is longer"):
        CatalogIndex.build(CatalogReader(str(jsonl)), SplitSettings(), bad_records="error", progress=False)
