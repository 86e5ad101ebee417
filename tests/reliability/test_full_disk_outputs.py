"""A file system that fills up during training, conversion or export (a small tmpfs, topped up with a filler
file): one line that names what filled up, exit 2, and the previous complete output left whole; once there
is room the same command goes on from it (training resumes from the last complete checkpoint)."""

import contextlib
import os
import shutil
import subprocess
import uuid

import pytest

import kaleido_tf
from kaleido_tf.export import cli as export_cli
from kaleido_tf.export.exporter import export_saved_model
from kaleido_tf.model_zoo.tf1_conversion import convert_tf1_checkpoint
from tests.reliability.helpers import hidden_entries, run, tree_fingerprint
from tests.reliability.test_kill_convert_export import _export_weights, sources  # noqa: F401 (fixture)
from tests.reliability.test_kill_training import _checkpoint_values
from tests.reliability.training_runs import STEPS, train_command

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def _mount(tmp_path, mib):
    """A `mib` MiB tmpfs; skips without root or mount. Unmounted lazily when a file in it is still open (a
    TensorBoard writer that failed keeps its file)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mnt = str(tmp_path / f"mnt-{uuid.uuid4().hex[:6]}")
    os.makedirs(mnt)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={mib}m", "tmpfs", mnt], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", mnt], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", mnt], capture_output=True)


def _fill(mnt, leave):
    """Writes MNT/filler until only about `leave` bytes are free; returns its path."""
    path = os.path.join(mnt, "filler")
    size = max(shutil.disk_usage(mnt).free - int(leave), 0)
    with open(path, "wb") as f:
        for start in range(0, size, 1 << 20):
            f.write(b"\0" * min(1 << 20, size - start))
    return path


def _size(paths):
    return sum(os.path.getsize(p) for p in paths)


def _error_lines(out):
    return [line for line in out.splitlines() if "error:" in line]


def test_full_disk_at_a_checkpoint_keeps_the_last_one_and_the_rerun_resumes(uninterrupted, tmp_path):
    list_file, schema, whole_dir = uninterrupted
    last, steps = STEPS, STEPS + 2
    with _mount(tmp_path, 16) as mnt:
        # A finished run (its checkpoint ckpt-13 and the rest of its directory) on the small disk; asked for two
        # more steps, a checkpoint after each, it finds the disk full before the checkpoint of step 14 fits.
        model_dir = os.path.join(mnt, "model")
        shutil.copytree(whole_dir, model_dir)
        checkpoint = [os.path.join(model_dir, n) for n in os.listdir(model_dir) if n.startswith(f"ckpt-{last}.")]
        assert checkpoint, os.listdir(model_dir)
        before = {n: v for n, v in tree_fingerprint(model_dir).items() if n.startswith("ckpt-")}
        values = _checkpoint_values(os.path.join(model_dir, f"ckpt-{last}"))
        filler = _fill(mnt, _size(checkpoint) // 2)  # room for config.json and the logs, not a checkpoint

        command = train_command(list_file, schema, model_dir, "--save_steps=1", f"--train_steps={steps}")
        code, out = run(command, timeout=600)
        assert code == 2, out[-3000:]
        assert "Traceback" not in out
        assert len(_error_lines(out)) == 1, out[-3000:]
        line = _error_lines(out)[0]
        assert line.startswith(
            f"error: {model_dir}: the disk is full while writing the checkpoint of step {last + 1} ("
        ), line
        assert "No space left on device" in line and "MiB free on its file system" in line, line
        assert line.endswith(
            f"the last complete checkpoint {model_dir}/ckpt-{last} is intact and stays the latest; free space there "
            "(or use another --model_dir) and run the same command again to resume"
        ), line
        # The partial checkpoint is gone, the complete one is untouched and stays the latest.
        assert not [n for n in os.listdir(model_dir) if n.startswith(f"ckpt-{last + 1}")], os.listdir(model_dir)
        assert {n: v for n, v in tree_fingerprint(model_dir).items() if n.startswith("ckpt-")} == before
        with open(os.path.join(model_dir, "checkpoint")) as f:
            assert f.readline().strip() == f'model_checkpoint_path: "ckpt-{last}"'

        os.remove(filler)
        code, out = run(command, timeout=600)
        assert code == 0, out[-3000:]
        assert f"resumed from {model_dir}/ckpt-{last} at step {last}" in out, out[-3000:]
        assert f"finished at step {steps}" in out, out[-3000:]
        resumed = _checkpoint_values(os.path.join(model_dir, f"ckpt-{steps}"))
        assert int(resumed["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"]) == steps
        assert any((resumed[k] != v).any() for k, v in values.items() if k.startswith("model/")), "it trained"


def test_full_disk_during_conversion_keeps_the_previous_output(sources, tmp_path):  # noqa: F811
    _, a, b = sources
    with _mount(tmp_path, 8) as mnt:
        out = os.path.join(mnt, "converted")
        convert_tf1_checkpoint(a, out)
        before = tree_fingerprint(out)
        filler = _fill(mnt, _size(os.path.join(out, n) for n in os.listdir(out)) // 2)

        command = ["-m", "kaleido_tf.apps.convert_main", f"--tf1_checkpoint={b}", f"--output_dir={out}"]
        code, output = run(command, timeout=600)
        assert code == 2, output[-3000:]
        assert "Traceback" not in output
        lines = _error_lines(output)
        assert len(lines) == 1, output[-3000:]
        assert lines[0].startswith(f"kaleido-convert: error: {out}: the disk is full while writing the conversion ("), (
            lines
        )
        assert lines[0].endswith(
            "MiB free on its file system); the previous output there is unchanged; free space or use another "
            "--output_dir"
        ), lines
        assert tree_fingerprint(out) == before and hidden_entries(mnt) == []
        assert kaleido_tf.from_pretrained(out).config.hidden_size == 32  # the previous output still loads

        os.remove(filler)
        convert_tf1_checkpoint(b, out)
        assert tree_fingerprint(out) != before and hidden_entries(mnt) == []


def test_full_disk_during_export_keeps_the_previous_version(sources, tmp_path, capsys):  # noqa: F811
    _, a, b = sources
    with _mount(tmp_path, 16) as mnt:
        export_dir = os.path.join(mnt, "serving")
        version = os.path.join(export_dir, "1")
        export_saved_model(kaleido_tf.from_pretrained(a), export_dir, version=1, text_signatures=False)
        old = _export_weights(version)
        assert isinstance(old, list) and len(old) > 70
        size = sum(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(version) for n in names)
        filler = _fill(mnt, size // 2)

        argv = ["--model", b, "--export_dir", export_dir, "--version", "1", "--overwrite", "--no-text_signatures"]
        capsys.readouterr()
        assert export_cli.main(argv) == 2
        lines = _error_lines(capsys.readouterr().err)  # the other lines are the progress bar's
        assert len(lines) == 1, lines
        assert lines[0].startswith(
            f"kaleido-export: error: {version}: the disk is full while writing export version 1 ("
        ), lines
        assert lines[0].endswith(
            "MiB free on its file system); the previous version 1 there is unchanged; free space or use another "
            "--export_dir"
        ), lines
        assert _export_weights(version) == old and os.listdir(export_dir) == ["1"]  # no temporary left

        os.remove(filler)
        assert export_cli.main(argv) == 0
        new = _export_weights(version)
        assert isinstance(new, list) and new != old and os.listdir(export_dir) == ["1"]


def test_full_disk_at_a_tensorboard_write_names_it_and_the_next_run_trains_on(tmp_path):
    import tensorflow as tf

    from kaleido_tf.utils.disk_space import DiskFullError
    from tests.engines.test_trainer import BATCH, _data, _dataset_fn_ordered, _trainer

    trainers = []
    with _mount(tmp_path, 8) as mnt, contextlib.ExitStack() as stack:
        stack.callback(lambda: [w.close() for t in trainers for w in t._writers.values()])  # before the umount
        model_dir = os.path.join(mnt, "model")
        trainer = _trainer(model_dir, steps=2, dropout_prob=0.0)
        trainers.append(trainer)
        trainer.train(_dataset_fn_ordered(_data()), BATCH, stop_at_step=1)
        assert tf.train.latest_checkpoint(model_dir) == os.path.join(model_dir, "ckpt-1")
        before = tree_fingerprint(model_dir)
        filler = _fill(mnt, 0)
        # The first evaluation opens a new events file under eval/: no room for it.
        with pytest.raises(DiskFullError) as error:
            trainer.evaluate(lambda c: tf.data.Dataset.from_tensor_slices(_data()).batch(4), steps=1)
        message = str(error.value)
        assert message.startswith(f"{model_dir}: the disk is full while writing the TensorBoard "), message
        assert "(eval/)" in message and "No space left on device" in message, message
        assert f"the last complete checkpoint {model_dir}/ckpt-1 is intact and stays the latest" in message
        assert "\n" not in message
        assert {k: v for k, v in tree_fingerprint(model_dir).items() if not k.startswith("eval/")} == before

        os.remove(filler)
        resumed = _trainer(model_dir, steps=2, dropout_prob=0.0)  # the next run: resumes and trains on
        trainers.append(resumed)
        assert resumed.global_step == 1
        resumed.train(_dataset_fn_ordered(_data()), BATCH)
        assert tf.train.latest_checkpoint(model_dir) == os.path.join(model_dir, "ckpt-2")
