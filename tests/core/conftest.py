import os

import numpy as np
import pytest

from tests.conftest import GOLDEN


def golden_dir(name):
    return os.path.join(GOLDEN, name)


def load_golden(name):
    data = np.load(os.path.join(golden_dir(name), "golden.npz"))
    return {k: data[k] for k in data.files}


def golden_features(golden):
    return {k[len("input/") :]: v for k, v in golden.items() if k.startswith("input/")}


@pytest.fixture(scope="module", params=["tiny", "tiny_adamw"])
def golden_case(request):
    name = request.param
    return name, golden_dir(name), load_golden(name)
