"""The test suite's own promise: running it writes nothing into the working tree."""

import os
import pathlib

import hypothesis
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_hypothesis_keeps_no_example_database():
    # The default database is a directory .hypothesis/ under the current directory.
    assert hypothesis.settings.default.database is None


def test_the_compilation_cache_lies_outside_the_working_tree():
    cache = os.environ.get("FNN_TEST_COMPILATION_CACHE")
    if cache is None:
        pytest.skip("the compilation cache is switched off for this run (FNN_TEST_NO_COMPILATION_CACHE)")
    assert not pathlib.Path(cache).resolve().is_relative_to(REPO)
