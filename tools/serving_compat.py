"""Serving compatibility: the demo's SavedModels answer the same under another TensorFlow (`make serving-compat`).

Two modes, run in two virtualenvs:

    # the exporting environment (kaleido_tf installed): fixed inputs and the answers of every signature
    python tools/serving_compat.py record --demo_dir demo_out
    # an environment with only tensorflow, tensorflow-text and numpy (TF Serving's TensorFlow): the same inputs,
    # compared with the recorded answers; one line per signature and a summary; exit 1 on a mismatch
    .venv-compat/bin/python tools/serving_compat.py check --demo_dir demo_out

`record` loads every SavedModel under DEMO_DIR/export (`<model>/<version>/saved_model.pb`, each with its
`assets.extra/kaleido_export.json`) and calls each of its signatures on fixed inputs chosen by input name:
`image_bytes` the held-out (test split) catalog images, re-encoded as JPEG (the last one of the batch kept as
the PNG file it is, so both decoders run), `text` those products' texts, and every array input (`input_ids`,
`img_feature_convert_*`, `img_loc_position_*`, `image_mask`, ...) the saved examples of the held-out split
(DEMO_DIR/data/finetune/test). It writes the inputs and the answers to DEMO_DIR/serving_compat.npz (no
pickles: strings travel as bytes and lengths).

`check` imports tensorflow, tensorflow_text (which registers the WordPiece ops the text signatures use) and
numpy only, nothing of kaleido_tf. String, integer and boolean outputs (ids, class names, product ids) must
be identical; float outputs within |got - recorded| <= ATOL + RTOL * |recorded| (default 1e-5 each: the same
graph on the same CPU; what differs between TensorFlow releases is kernel code, e.g. oneDNN's matmul
blocking, which reorders float32 sums: a few ulps at the scale of the values, ~1e-7 for probabilities).
A SavedModel found in DEMO_DIR/export that was not recorded, or recorded and now missing, is a mismatch too.

Bad usage (no export, no recording, a recording from another demo run) is one line on stderr and exit 2
(`--traceback` shows the traceback).
"""

import argparse
import json
import os
import sys
import tempfile
import traceback

import numpy as np

FORMAT = "kaleido_tf-serving-compat-v1"
CASES = "serving_compat.npz"
MANIFEST_KEY = "__manifest__"
EXPORT_INFO = os.path.join("assets.extra", "kaleido_export.json")
DEFAULT_BATCH = 4
DEFAULT_ATOL = 1e-5
DEFAULT_RTOL = 1e-5
EXIT_MISMATCH, EXIT_ERROR = 1, 2


class UsageError(Exception):
    """A problem with the command line or the files it names: one line, exit 2."""


# --------------------------------------------------------------------------- exports
def find_exports(export_dir):
    """Relative paths `<model>/<version>` of every SavedModel under `export_dir`, sorted."""
    if not os.path.isdir(export_dir):
        raise UsageError(f"--demo_dir: no export directory {export_dir}; run the demo first (make demo-quick)")
    found = []
    for model in sorted(os.listdir(export_dir)):
        base = os.path.join(export_dir, model)
        if not os.path.isdir(base):
            continue
        for version in sorted(os.listdir(base)):
            if version.isdigit() and os.path.isfile(os.path.join(base, version, "saved_model.pb")):
                found.append(f"{model}/{version}")
    return found


def load_export(export_dir, relative):
    """tf.saved_model.load of one export, after registering the tensorflow-text ops its metadata lists."""
    # local import: TensorFlow loads after the flags are parsed (--help stays fast)
    import tensorflow as tf  # noqa: PLC0415

    path = os.path.join(export_dir, relative)
    info_path = os.path.join(path, EXPORT_INFO)
    if not os.path.isfile(info_path):
        raise UsageError(f"{path}: no {EXPORT_INFO}; it is not a kaleido_tf export")
    with open(info_path, encoding="utf-8") as f:
        info = json.load(f)
    if info.get("custom_ops"):
        # local import: registers the WordPiece ops before the graph that uses them is loaded
        import tensorflow_text  # noqa: F401, PLC0415
    return tf.saved_model.load(path), info


def _numpy(value):
    array = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    return array


def call_signature(function, inputs):
    """Runs a loaded signature on numpy inputs -> {output name: numpy array}."""
    # local import: TensorFlow loads after the flags are parsed (--help stays fast)
    import tensorflow as tf  # noqa: PLC0415

    specs = function.structured_input_signature[1]
    args = {name: tf.constant(inputs[name], dtype=spec.dtype) for name, spec in specs.items()}
    return {name: _numpy(value) for name, value in function(**args).items()}


# --------------------------------------------------------------------------- the recording's file format
def _put(arrays, key, value):
    """Stores one array under `key`; string arrays as uint8 bytes + int64 lengths + shape (no pickle)."""
    value = np.asarray(value)
    if value.dtype.kind in ("O", "S", "U"):
        items = [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in value.reshape(-1).tolist()]
        arrays[key + ":bytes"] = np.frombuffer(b"".join(items), np.uint8)
        arrays[key + ":lengths"] = np.asarray([len(v) for v in items], np.int64)
        arrays[key + ":shape"] = np.asarray(value.shape, np.int64)
        return "string"
    arrays[key] = value
    return "array"


def _get(data, key, kind):
    if kind == "array":
        return data[key]
    blob, lengths = data[key + ":bytes"].tobytes(), data[key + ":lengths"]
    ends = np.cumsum(lengths)
    items = [blob[end - n : end] for end, n in zip(ends.tolist(), lengths.tolist())]
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out.reshape(tuple(data[key + ":shape"].tolist()))


def write_cases(path, manifest, arrays):
    """The npz at `path`, written under a temporary name beside it and renamed into place."""
    arrays = dict(arrays)
    arrays[MANIFEST_KEY] = np.frombuffer(json.dumps(manifest, indent=1).encode("utf-8"), np.uint8)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".serving_compat.", suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def read_cases(path):
    """(manifest, {case key: (inputs, outputs)}) of a recording."""
    if not os.path.isfile(path):
        raise UsageError(f"--cases: no recording {path}; run `serving_compat.py record` in the exporting environment")
    try:
        data = np.load(path, allow_pickle=False)
        manifest = json.loads(data[MANIFEST_KEY].tobytes().decode("utf-8"))
    except (OSError, ValueError, KeyError) as e:
        raise UsageError(f"--cases {path}: not a serving-compat recording ({e}); record it again") from None
    if manifest.get("format") != FORMAT:
        raise UsageError(f"--cases {path}: format {manifest.get('format')!r}, expected {FORMAT!r}; record it again")
    cases = {}
    for case in manifest["cases"]:
        inputs = {name: _get(data, key, kind) for name, (key, kind) in case["inputs"].items()}
        outputs = {name: _get(data, key, kind) for name, (key, kind) in case["outputs"].items()}
        cases[(case["export"], case["signature"])] = (inputs, outputs)
    return manifest, cases


# --------------------------------------------------------------------------- record (exporting environment)
def _jpeg_bytes(path):
    """A catalog image re-encoded as JPEG (quality 95), in memory."""
    # local import: Pillow is in the exporting environment only (check mode needs no image library)
    import io  # noqa: PLC0415

    from PIL import Image  # noqa: PLC0415

    with Image.open(path) as image:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def demo_inputs(demo_dir, batch=DEFAULT_BATCH):
    """{input name: numpy array [batch, ...]}: held-out examples of the demo, their images and texts."""
    # local import: the exporting environment's reader of the preprocessed shards (record mode only)
    from kaleido_tf.datasets import make_tfrecord_dataset  # noqa: PLC0415

    shards = os.path.join(demo_dir, "data", "finetune", "test")
    catalog_path = os.path.join(demo_dir, "catalog", "catalog.jsonl")
    for path in (shards, catalog_path):
        if not os.path.exists(path):
            raise UsageError(f"--demo_dir {demo_dir}: no {path}; run the demo first (make demo-quick)")
    examples = next(iter(make_tfrecord_dataset(shards, batch, training=False, num_epochs=1)))
    pool = {name: value.numpy() for name, value in examples.items()}
    if len(pool["prod_img_id"]) < batch:
        raise UsageError(f"{shards}: {len(pool['prod_img_id'])} held-out examples, --batch {batch} needs more")
    images = {}
    with open(catalog_path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                product = json.loads(line)
                for relative in product["images"]:
                    images[os.path.splitext(os.path.basename(relative))[0]] = os.path.join(
                        os.path.dirname(catalog_path), relative
                    )
    ids = [value.decode("utf-8") for value in pool["prod_img_id"].reshape(-1)]
    blobs = [_jpeg_bytes(images[i]) for i in ids[:-1]]
    with open(images[ids[-1]], "rb") as f:
        blobs.append(f.read())  # the catalog's own file (PNG): the other decoder
    pool["image_bytes"] = np.array(blobs, dtype=object)
    pool["text"] = np.array([t.reshape(-1)[0] for t in pool["prod_desc"]], dtype=object)
    pool["image_ids"] = np.array(ids, dtype=object)
    return pool


def record(demo_dir, output, batch=DEFAULT_BATCH, pool=None, progress=print):
    """Answers of every signature of every export on fixed inputs -> the recording `output`; returns its manifest."""
    export_dir = os.path.join(demo_dir, "export")
    exports = find_exports(export_dir)
    if not exports:
        raise UsageError(f"{export_dir}: no SavedModel (<model>/<version>/saved_model.pb); run the demo first")
    # local import: TensorFlow loads after the files are found (a usage error stays one line)
    import tensorflow as tf  # noqa: PLC0415

    pool = demo_inputs(demo_dir, batch) if pool is None else pool
    arrays, cases = {}, []
    for relative in exports:
        loaded, info = load_export(export_dir, relative)
        for signature in sorted(loaded.signatures):
            if signature == "serving_default":  # an alias of the export's default signature
                continue
            function = loaded.signatures[signature]
            names = sorted(function.structured_input_signature[1])
            missing = [name for name in names if name not in pool]
            if missing:
                raise UsageError(f"{relative} signature {signature}: no fixed input for {', '.join(missing)}")
            inputs = {name: pool[name] for name in names}
            outputs = call_signature(function, inputs)
            key = f"{relative}|{signature}"
            case = {"export": relative, "signature": signature, "inputs": {}, "outputs": {}}
            for name, value in inputs.items():
                case["inputs"][name] = [f"{key}|in|{name}", _put(arrays, f"{key}|in|{name}", value)]
            for name, value in sorted(outputs.items()):
                case["outputs"][name] = [f"{key}|out|{name}", _put(arrays, f"{key}|out|{name}", value)]
            cases.append(case)
            progress(f"recorded {relative} {signature}: {', '.join(sorted(outputs))}")
        del loaded, info
    manifest = {
        "format": FORMAT,
        "tensorflow": tf.__version__,
        "exports": exports,
        "image_ids": [str(i) for i in pool.get("image_ids", [])],
        "cases": cases,
    }
    write_cases(output, manifest, arrays)
    return manifest


# --------------------------------------------------------------------------- check (compat environment)
def compare(name, got, expected, atol, rtol):
    """(ok, what): one output against its recording."""
    got, expected = np.asarray(got), np.asarray(expected)
    if got.shape != expected.shape:
        return False, f"{name}: shape {list(got.shape)}, recorded {list(expected.shape)}"
    if expected.dtype.kind == "f":
        if got.dtype.kind != "f":
            return False, f"{name}: dtype {got.dtype}, recorded {expected.dtype}"
        got64, expected64 = got.astype(np.float64), expected.astype(np.float64)
        if not np.array_equal(np.isfinite(got64), np.isfinite(expected64)):
            return False, f"{name}: non-finite values where the recording has finite ones (or the reverse)"
        diff = np.abs(got64 - expected64)
        diff[~np.isfinite(expected64)] = 0.0
        worst = float(diff.max()) if diff.size else 0.0
        bound = atol + rtol * np.abs(np.nan_to_num(expected64))
        if np.any(diff > bound):
            return False, f"{name}: max |diff| {worst:.3g} beyond atol {atol:g} + rtol {rtol:g} x |recorded|"
        return True, worst
    if got.dtype.kind == "O" or expected.dtype.kind == "O":
        same = got.shape == expected.shape and all(
            a == b for a, b in zip(got.reshape(-1).tolist(), expected.reshape(-1).tolist())
        )
    else:
        same = np.array_equal(got, expected)
    if not same:
        return False, f"{name}: values differ from the recording (exact match required for {expected.dtype})"
    return True, 0.0


def check(demo_dir, cases_path, atol=DEFAULT_ATOL, rtol=DEFAULT_RTOL, out=print):
    """Loads every recorded export, answers, compares; returns (agreeing, total) signatures."""
    manifest, cases = read_cases(cases_path)
    export_dir = os.path.join(demo_dir, "export")
    found = find_exports(export_dir)
    # local import: TensorFlow loads after the files are found (a usage error stays one line)
    import tensorflow as tf  # noqa: PLC0415

    failures, total = 0, 0
    for relative in sorted(set(found) ^ set(manifest["exports"])):
        total += 1
        failures += 1
        where = "not recorded" if relative in found else "recorded but missing now"
        out(f"FAIL {relative}: {where}")
    loaded_exports = {}
    for (relative, signature), (inputs, expected) in cases.items():
        if relative not in found:
            continue
        total += 1
        if relative not in loaded_exports:
            loaded_exports[relative] = load_export(export_dir, relative)[0]
        loaded = loaded_exports[relative]
        if signature not in loaded.signatures:
            failures += 1
            out(f"FAIL {relative} {signature}: signature missing")
            continue
        try:
            got = call_signature(loaded.signatures[signature], inputs)
        except (tf.errors.OpError, TypeError, ValueError) as e:
            failures += 1
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            out(f"FAIL {relative} {signature}: {type(e).__name__}: {first}")
            continue
        problems, worst = [], 0.0
        if sorted(got) != sorted(expected):
            problems.append(f"outputs {sorted(got)}, recorded {sorted(expected)}")
        for name in sorted(set(got) & set(expected)):
            ok, what = compare(name, got[name], expected[name], atol, rtol)
            if ok:
                worst = max(worst, what)
            else:
                problems.append(what)
        if problems:
            failures += 1
            out(f"FAIL {relative} {signature}: " + "; ".join(problems))
        else:
            out(f"ok   {relative} {signature}: {len(got)} outputs, max |float diff| {worst:.2g}")
    versions = f"TensorFlow {tf.__version__}"
    try:
        # local import: its version for the summary (the text ops were registered at load time)
        import tensorflow_text  # noqa: PLC0415

        versions += f", tensorflow-text {tensorflow_text.__version__}"
    except ImportError:
        pass
    verdict = "agree" if failures == 0 else "MISMATCH"
    out(
        f"serving-compat: {total - failures}/{total} signatures {verdict} ({versions}; recorded with TensorFlow "
        f"{manifest['tensorflow']}; floats within atol {atol:g} + rtol {rtol:g})"
    )
    return total - failures, total


# --------------------------------------------------------------------------- command line
def build_parser():
    parser = argparse.ArgumentParser(
        prog="serving_compat.py",
        description="Record the demo exports' answers (exporting environment), check them in another TensorFlow.",
    )
    modes = parser.add_subparsers(dest="mode", required=True)
    rec = modes.add_parser("record", help="exporting environment: fixed inputs and every signature's answers")
    chk = modes.add_parser("check", help="compat environment (tensorflow + tensorflow-text only): compare")
    for sub in (rec, chk):
        sub.add_argument("--demo_dir", default="demo_out", help="the demo's output directory (its export/).")
        sub.add_argument("--cases", default=None, help=f"the recording (default DEMO_DIR/{CASES}).")
        sub.add_argument("--traceback", action="store_true", help="show the traceback of an error.")
    rec.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="examples per signature call.")
    chk.add_argument("--atol", type=float, default=DEFAULT_ATOL, help="absolute tolerance of float outputs.")
    chk.add_argument("--rtol", type=float, default=DEFAULT_RTOL, help="relative tolerance of float outputs.")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cases = args.cases or os.path.join(args.demo_dir, CASES)
    try:
        if args.mode == "record":
            if args.batch < 1:
                raise UsageError(f"--batch must be >= 1, got {args.batch}")
            manifest = record(args.demo_dir, cases, batch=args.batch)
            print(f"serving-compat: recorded {len(manifest['cases'])} signatures of {len(manifest['exports'])} exports")
            print(f"  -> {cases} (TensorFlow {manifest['tensorflow']})")
            return 0
        if args.atol < 0 or args.rtol < 0:
            raise UsageError("--atol and --rtol must be >= 0")
        agreeing, total = check(args.demo_dir, cases, atol=args.atol, rtol=args.rtol)
        return 0 if agreeing == total else EXIT_MISMATCH
    except Exception as e:
        if not isinstance(e, (UsageError, OSError)) and not type(e).__module__.startswith("tensorflow"):
            raise
        if args.traceback:
            traceback.print_exc()
        print(f"serving_compat.py {args.mode}: error: {e}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
