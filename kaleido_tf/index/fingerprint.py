"""The fingerprint of a model: sha256 over its configuration and every variable's dtype, shape and
values, in the model's tracking order.

Two models give the same fingerprint exactly when they compute the same embeddings (same architecture and
settings, same weights), whatever the files they were loaded from.
"""

import hashlib
import json

import numpy as np


def _config_text(model):
    try:
        config = model.get_config()
    except (NotImplementedError, AttributeError):
        config = {}
    config = {k: v for k, v in dict(config).items() if k not in ("name", "trainable")}
    return json.dumps({"class": type(model).__name__, "config": config}, sort_keys=True, default=str)


def model_fingerprint(model):
    """-> "sha256:<64 hex digits>" of the model's configuration and variable values."""
    digest = hashlib.sha256(_config_text(model).encode("utf-8"))
    variables = list(model.weights)  # in tracking order: variable paths carry session-dependent unique names
    if not variables:
        raise ValueError(f"{type(model).__name__} has no variables: build it before fingerprinting")
    for variable in variables:
        value = np.ascontiguousarray(np.asarray(variable.numpy()))
        digest.update(f"{value.dtype.str}|{value.shape}\n".encode())
        digest.update(value.tobytes())
    return "sha256:" + digest.hexdigest()
