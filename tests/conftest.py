"""Configuration shared by every test in tests/: float64 and strict rank promotion.

Both are switched on around each test rather than at import, so that the doctests of fnn and
of the README, collected in the same session, run under JAX's defaults as a user would.
Build float64 arrays inside tests, not at import time.
"""

import os
import shutil
import tempfile

import hypothesis
import jax
import pytest

_CACHE_ENV = "FNN_TEST_COMPILATION_CACHE"

# Hypothesis keeps failing examples in .hypothesis/ under the current directory by default; a
# test run must not write into the working tree, so the example database is off. A failure's
# example is printed in the report instead, with the seed that reproduces it.
hypothesis.settings.register_profile("fnn", database=None)
hypothesis.settings.load_profile("fnn")


def pytest_configure(config):
    # One persistent compilation cache per test session, outside the working tree and shared by
    # the pytest-xdist workers (they inherit the environment): a program that several tests, or
    # both workers, compile is compiled once. The controller makes it and removes it at the end.
    if os.environ.get("FNN_TEST_NO_COMPILATION_CACHE"):
        return
    if _CACHE_ENV not in os.environ:
        os.environ[_CACHE_ENV] = tempfile.mkdtemp(prefix="fnn-test-jax-cache-")
        config._fnn_cache_owner = True
    jax.config.update("jax_compilation_cache_dir", os.environ[_CACHE_ENV])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pytest_unconfigure(config):
    if getattr(config, "_fnn_cache_owner", False):
        shutil.rmtree(os.environ.pop(_CACHE_ENV), ignore_errors=True)


@pytest.fixture(autouse=True)
def _strict_float64():
    # Gradient checks need float64; "raise" turns silent [N] vs [N, 1] broadcasting into errors.
    with jax.enable_x64(True), jax.numpy_rank_promotion("raise"):
        yield


@pytest.fixture
def key() -> jax.Array:
    """A new-style typed PRNG key; split it where used, never reuse it."""
    return jax.random.key(0)
