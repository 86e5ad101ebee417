"""Fixtures shared by the reliability tests."""

import pytest

from tests.reliability.training_runs import uninterrupted_run


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory):
    """(list file, schema, model_dir) of the uninterrupted reference training (`training_runs`), made once."""
    return uninterrupted_run(tmp_path_factory)
