"""Package attributes imported on first use, so that importing the package (and a command's `--help`) stays
fast: TensorFlow loads with the first name that needs it."""

import importlib
import sys


def lazy_getattr(package, names):
    """A module-level `__getattr__` for `package` (its `__name__`): `names` maps each attribute to the module
    that defines it. The first use imports that module and keeps the value in the package."""

    def __getattr__(name):
        if name in names:
            value = getattr(importlib.import_module(names[name]), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
