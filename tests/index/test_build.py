"""kaleido_tf.index: building (resumable, atomic, fingerprinted) and loading an index."""

import os

import numpy as np
import pytest

from kaleido_tf.index import SearchIndex, SearchIndexError, build_index, model_fingerprint
from tests.index.fakes import fake_model, product_text_ids, write_catalog


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    root = tmp_path_factory.mktemp("catalog")
    write_catalog(str(root), num_products=10, images_per_product=(1, 2, 3), num_shards=3)
    return str(root)


@pytest.fixture(scope="module")
def model():
    return fake_model()


@pytest.fixture(scope="module")
def built(catalog, model, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("idx") / "index")
    return build_index(model, catalog, out, batch_size=4, progress=False)


def test_index_holds_every_product_and_image_with_the_models_vectors(built, model):
    assert built.num_products == 10
    assert built.num_images == sum((1, 2, 3)[p % 3] for p in range(10))  # 19
    assert sorted(built.product_ids.tolist()) == [f"p{p:03d}" for p in range(10)]
    # text vectors are the model's embedding of each product's own tokens
    rows = [int(p[1:]) for p in built.product_ids.tolist()]
    ids = np.stack([product_text_ids(p) for p in rows])
    expected = np.asarray(model.embed_text({"input_ids": ids, "input_mask": (ids != 0).astype(np.int64)}))
    np.testing.assert_allclose(built.text_vectors, expected, atol=1e-6)
    # images are grouped by product and named by their product
    for i, image_id in enumerate(built.image_ids.tolist()):
        assert image_id.split("_")[0] == built.product_ids[built.image_product[i]]
    assert np.all(np.diff(built.image_product) >= 0)
    np.testing.assert_allclose(np.linalg.norm(built.image_vectors, axis=1), 1.0, atol=1e-5)
    assert built.fingerprint == model_fingerprint(model)
    assert built.manifest["text_length"] == 8


def test_fingerprint_changes_with_a_weight_and_names_both_on_mismatch(built, model):
    other = fake_model(seed=5)
    assert model_fingerprint(other) != model_fingerprint(model)
    assert model_fingerprint(fake_model()) == model_fingerprint(model)  # same weights, same fingerprint
    with pytest.raises(SearchIndexError) as e:
        built.check_model(model_fingerprint(other))
    assert built.fingerprint in str(e.value) and model_fingerprint(other) in str(e.value)


def test_killed_build_resumes_by_shard_and_ends_with_the_uninterrupted_index(catalog, model, built, tmp_path):
    out = str(tmp_path / "index")
    with pytest.raises(KeyboardInterrupt):
        build_index(model, catalog, out, batch_size=4, progress=False, stop_after_shards=2)
    assert not os.path.exists(out)  # nothing half-written under the final name
    parts = sorted(os.listdir(tmp_path / ".index.building" / "parts"))
    assert parts == ["test__part-00000-of-00003.npz", "test__part-00001-of-00003.npz"]
    stamp = os.path.getmtime(tmp_path / ".index.building" / "parts" / parts[0])
    # the rerun embeds the one missing shard only (stop_after_shards=1 would stop before a second)
    resumed = build_index(model, catalog, out, batch_size=4, progress=False, stop_after_shards=1)
    assert not os.path.exists(tmp_path / ".index.building")
    assert stamp > 0
    for name in ("text_vectors", "image_vectors", "image_product", "image_location", "product_ids", "image_ids"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(built, name))


def test_parts_of_another_model_are_re_embedded(catalog, model, tmp_path):
    out = str(tmp_path / "index")
    with pytest.raises(KeyboardInterrupt):
        build_index(fake_model(seed=9), catalog, out, batch_size=4, progress=False, stop_after_shards=2)
    index = build_index(model, catalog, out, batch_size=4, progress=False)
    assert index.fingerprint == model_fingerprint(model)
    fresh = build_index(model, catalog, str(tmp_path / "fresh"), batch_size=4, progress=False)
    np.testing.assert_array_equal(index.image_vectors, fresh.image_vectors)


def test_existing_output_is_refused_without_overwrite(catalog, model, built):
    with pytest.raises(SearchIndexError, match="--overwrite"):
        build_index(model, catalog, built.index_dir, progress=False)


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_a_missing_or_truncated_index_file_is_refused(built, tmp_path, damage):
    import shutil

    copy = str(tmp_path / "copy")
    shutil.copytree(built.index_dir, copy)
    path = os.path.join(copy, "image_vectors.npy")
    if damage == "missing":
        os.remove(path)
    else:
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) - 16)
    with pytest.raises(SearchIndexError, match="image_vectors.npy: .*(missing|truncated)"):
        SearchIndex.load(copy)


def test_not_an_index_and_no_catalog_are_one_line_errors(tmp_path, model):
    with pytest.raises(SearchIndexError, match="not an index"):
        SearchIndex.load(str(tmp_path))
    with pytest.raises(SearchIndexError, match="kaleido-preprocess --task finetune"):
        build_index(model, str(tmp_path), str(tmp_path / "out"), progress=False)


def test_a_second_builder_of_the_same_index_is_refused_while_one_runs(catalog, model, tmp_path):
    import fcntl

    work = tmp_path / ".index.building"
    work.mkdir()
    with open(work / "lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another build holds the lock
        with pytest.raises(SearchIndexError, match="is locked"):
            build_index(model, catalog, str(tmp_path / "index"), progress=False)
    assert not os.path.exists(tmp_path / "index")


def test_the_index_lock_names_its_holder_and_goes_with_a_killed_one(catalog, model, tmp_path):
    import signal
    import subprocess
    import sys

    from tests.reliability.helpers import ROOT, child_env

    lock = tmp_path / ".index.building" / "lock"
    hold = (
        "import sys, time\n"
        "from kaleido_tf.utils import file_lock\n"
        "file_lock.acquire(sys.argv[1])\n"
        "print('locked', flush=True)\n"
        "time.sleep(600)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(lock)], cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SearchIndexError, match=f"is locked: process {holder.pid} on "):
            build_index(model, catalog, str(tmp_path / "index"), progress=False)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    index = build_index(model, catalog, str(tmp_path / "index"), progress=False)  # the lock went with it
    assert index.num_products == 10 and not lock.exists()


def test_rerank_refuses_a_catalog_shard_changed_since_the_build(catalog, model, tmp_path):
    import shutil

    from kaleido_tf.index.query import search_product

    data = str(tmp_path / "data")
    shutil.copytree(catalog, data)
    index = build_index(model, data, str(tmp_path / "index"), progress=False)
    shard = os.path.join(data, "finetune", "test", "part-00001-of-00003.tfrecord")
    with open(shard, "ab") as f:
        f.write(b"\0" * 8)
    assert search_product(index, None, "p001", top_k=2)  # ITC alone does not read the shards
    with pytest.raises(SearchIndexError, match="part-00001-of-00003.tfrecord: .*changed"):
        search_product(index, model, "p001", top_k=2, rerank=3)
