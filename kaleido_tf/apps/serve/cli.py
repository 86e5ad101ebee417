"""kaleido-serve: the catalog search page and its JSON API over exported SavedModels and a catalog index.

    kaleido-serve --export_dir demo_out/export --index_dir demo_out/index \
        --catalog demo_out/catalog/catalog.jsonl [--host 127.0.0.1] [--port 8080]

`--export_dir` is one export base path (`E/<version>/saved_model.pb`) or a folder of them (`E/<name>/<version>`,
as `make demo` writes); each is routed by the task recorded in its `kaleido_export.json`. The server binds the
loopback address unless `--host` says otherwise. A failure to start is one line and exit status 2
(`--traceback` shows the traceback), as with every tool of the project.
"""

import argparse
import ipaddress
import sys

from kaleido_tf.utils import cli_errors


def build_parser():
    p = argparse.ArgumentParser(prog="kaleido-serve", description=__doc__.split("\n\n")[0])
    p.add_argument("--export_dir", required=True, help="an export base path, or a folder of them")
    p.add_argument("--index_dir", default=None, help="the catalog index of `kaleido-index build`")
    p.add_argument("--catalog", default=None, help="the catalog file (JSONL or CSV); default: the index's own")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--max_upload_mb", type=float, default=10.0, help="largest photo accepted, in MiB")
    p.add_argument("--max_megapixels", type=float, default=40.0, help="largest photo accepted, in megapixels")
    p.add_argument("--traceback", action="store_true", help="show the traceback of a failure")
    return p


def _check(flags):
    if not 0 < flags.port < 65536:
        raise ValueError(f"--port={flags.port}: give a port from 1 to 65535")
    if flags.max_upload_mb <= 0 or flags.max_megapixels <= 0:
        raise ValueError("--max_upload_mb and --max_megapixels must be positive")
    try:
        loopback = ipaddress.ip_address(flags.host).is_loopback
    except ValueError:
        loopback = flags.host == "localhost"
    if not loopback:
        print(f"warning: --host={flags.host} serves the catalog beyond this machine", file=sys.stderr)


@cli_errors.cli("kaleido-serve")
def main(argv=None):
    flags = build_parser().parse_args(argv)
    _check(flags)
    # local import: TensorFlow and the web stack load only after the flags are known to be right
    import uvicorn  # noqa: PLC0415

    from kaleido_tf.apps.serve.app import create_app  # noqa: PLC0415
    from kaleido_tf.apps.serve.saved_model_backend import load_backend  # noqa: PLC0415

    backend, catalog = load_backend(flags.export_dir, index_dir=flags.index_dir, catalog=flags.catalog)
    app = create_app(
        backend,
        catalog,
        max_upload_bytes=int(flags.max_upload_mb * 1024 * 1024),
        max_pixels=int(flags.max_megapixels * 1e6),
    )
    print(f"kaleido-serve: {len(catalog)} products at http://{flags.host}:{flags.port}/", flush=True)
    uvicorn.run(app, host=flags.host, port=flags.port, log_level="warning")
    return 0


def run():
    sys.exit(main())
