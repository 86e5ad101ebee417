"""Random examples and bundle files for any schema: test data and benchmarks.

    list_path, examples = write_bundle(tmp_dir, get_schema("pretrain"), num_lines=3, num_files=2)

`examples` holds the exact values the files encode (float values are float32 and written with enough
digits to read back bit for bit), in file order then line order.
"""

import base64
import os

import numpy as np

_STRINGS = ("dress", "Bluse mit Rüschen", "连衣裙", "t-shirt, cotton", 'a "quoted" name')


def random_example(schema, rng, float_decimals=None):
    """A dict name -> numpy array for `schema`: ints in [-1000, 10**6), floats in [0.01, 4), short strings.

    With `float_decimals=d`, float values are multiples of 10**-d in [0, 4) (written with d decimals, the
    way feature extraction scripts usually print them; faster to format).
    """
    example = {}
    for spec in schema.fields:
        if spec.dtype == "int":
            example[spec.name] = rng.integers(-1000, 10**6, spec.length, dtype=np.int64)
        elif spec.dtype == "float":
            if float_decimals is None:
                example[spec.name] = rng.uniform(0.01, 4.0, spec.length).astype(np.float32)
            else:
                scale = 10**float_decimals
                example[spec.name] = (rng.integers(0, 4 * scale, spec.length) / scale).astype(np.float32)
        else:
            text = f"{_STRINGS[int(rng.integers(len(_STRINGS)))]} #{int(rng.integers(10**9))}"
            example[spec.name] = np.array([text.encode("utf-8")], dtype=object)
    return example


_DECIMAL_TABLES = {}


def _format_floats(values, float_decimals):
    if float_decimals is not None:
        scale = 10**float_decimals
        table = _DECIMAL_TABLES.get(float_decimals)
        if table is None:
            table = np.array([f"{k / scale:.{float_decimals}f}" for k in range(4 * scale + 1)])
            _DECIMAL_TABLES[float_decimals] = table
        codes = np.rint(values.astype(np.float64) * scale).astype(np.int64)
        if codes.min() >= 0 and codes.max() <= 4 * scale and np.array_equal((codes / scale).astype(np.float32), values):
            return ",".join(table[codes].tolist())
    # 9 significant digits read back to the same float32.
    return ",".join(f"{v:.9g}" for v in values.tolist())


def format_tsv_line(example, schema, base64_fields=(), float_decimals=None):
    """The TSV line (without newline) encoding `example`; fields in `base64_fields` as base64 float32."""
    columns = []
    for spec in schema.fields:
        value = example[spec.name]
        if spec.dtype == "int":
            columns.append(",".join(str(v) for v in np.asarray(value).reshape(-1).tolist()))
        elif spec.dtype == "float":
            value = np.asarray(value, dtype=np.float32).reshape(-1)
            if spec.name in base64_fields:
                columns.append(base64.b64encode(value.astype("<f4").tobytes()).decode("ascii"))
            else:
                columns.append(_format_floats(value, float_decimals))
        else:
            text = value.reshape(-1)[0] if isinstance(value, np.ndarray) else value
            columns.append(text.decode("utf-8") if isinstance(text, bytes) else str(text))
    return "\t".join(columns)


def write_bundle(
    directory,
    schema,
    num_lines,
    num_files=1,
    seed=0,
    base64_fields=(),
    float_decimals=None,
    list_name="list.txt",
    examples=None,
):
    """Writes `num_files` TSV data files and a list file naming them (relative paths) into `directory`.

    Returns (list file path, examples in file order then line order). Pass `examples` to write given
    examples instead of random ones.
    """
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(seed)
    if examples is None:
        examples = [random_example(schema, rng, float_decimals) for _ in range(num_lines)]
    num_lines = len(examples)
    names = []
    for index in range(num_files):
        name = f"part_{index:03d}.tsv"
        start, stop = index * num_lines // num_files, (index + 1) * num_lines // num_files
        with open(os.path.join(directory, name), "w", encoding="utf-8", newline="\n") as f:
            for example in examples[start:stop]:
                f.write(format_tsv_line(example, schema, base64_fields, float_decimals) + "\n")
        names.append(name)
    list_path = os.path.join(directory, list_name)
    with open(list_path, "w", encoding="utf-8") as f:
        f.write("\n".join(names) + "\n")
    return list_path, examples
