"""Install kaleido_tf: `pip install -e .` (add `[test]` for the test and lint tools)."""

import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "kaleido_tf", "version.py")) as f:
    VERSION = f.read().split("=")[1].strip().strip('"')

setup(
    name="kaleido_tf",
    version=VERSION,
    description="Kaleido-BERT (CVPR 2021) on TensorFlow 2 / Keras 3, faithful to the released checkpoints.",
    long_description=open(os.path.join(HERE, "README.md")).read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["kaleido_tf", "kaleido_tf.*"]),
    package_data={"kaleido_tf": ["assets/*", "apps/serve/static/*"]},
    install_requires=[
        "tensorflow~=2.21.0",  # the same minor version as tensorflow-text
        "tensorflow-text~=2.21.0",
        "keras>=3.3",
        "numpy",
        "pillow",
        "sentencepiece",
        "absl-py",
        "tqdm",
        "tensorboard",
        "pycocoevalcap",  # caption metrics (BLEU, METEOR, ROUGE-L, CIDEr); METEOR and its tokenizer need Java
        "matplotlib",
        "fastapi",  # kaleido-serve: the search page and its JSON API
        "uvicorn",
        "python-multipart",  # photo uploads
    ],
    extras_require={
        "test": [
            "pytest",
            "pytest-xdist",
            "hypothesis",
            "psutil",
            "ruff",
            "import-linter",
            "httpx",
            "selenium",
            "faiss-cpu",
        ],
        "bench": ["keras-hub"],
        "faiss": ["faiss-cpu"],  # an approximate index for catalogs where exact search is too slow
    },
    entry_points={
        "console_scripts": [
            "kaleido-convert=kaleido_tf.apps.convert_main:run",
            "kaleido-csv2tfrecord=kaleido_tf.datasets.csv2tfrecord:run",
            "kaleido-eval-retrieval=kaleido_tf.evaluators.retrieval_cli:run",
            "kaleido-preprocess=kaleido_tf.preprocessors.cli:run",
            "kaleido-export=kaleido_tf.export.cli:run",
            "kaleido-index=kaleido_tf.apps.index_main:run",
            "kaleido-serve=kaleido_tf.apps.serve.cli:run",
        ]
    },
)
