"""What an experiment receives and returns.

An experiment is a module ``experiments/<name>.py``, listed in
:data:`experiments.runner.EXPERIMENTS`, that defines:

* ``CLAIM``: a one-line string literal, the claim the experiment measures (``--list`` reads
  it from the source without importing the module, so keep it a plain string literal);
* ``run(config: Config) -> Result``.

A minimal one::

    from matplotlib.figure import Figure

    from experiments.api import Config, Result

    CLAIM = "A 2-2-1 tanh network trained by backprop solves XOR."

    def run(config: Config) -> Result:
        steps = 200 if config.quick else 5000
        ...                                   # calls into fnn, keyed by config.seed
        fig = Figure(figsize=(4, 3))          # not pyplot: no global figure state
        fig.subplots().plot(losses)
        return Result(metrics={"final_loss": losses[-1]}, figure=fig,
                      summary=f"final loss {losses[-1]:.3g} after {steps} steps")

``metrics`` may hold NumPy or JAX scalars and arrays; they are converted when written (see
:func:`fnn.io.to_jsonable`). The runner writes ``figure.png`` and ``result.json`` into
``config.out_dir``; an experiment may write further files there itself, through ``fnn.io``.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings the runner passes to ``run``.

    Attributes:
      quick: small sizes, seconds not minutes (CI); results go to ``results/quick/``.
      seed: the root of every ``jax.random`` key the experiment makes.
      out_dir: this experiment's results directory; it exists when ``run`` is called.

    Example:
      >>> Config(quick=True, seed=0, out_dir=pathlib.Path("results/quick/xor")).seed
      0
    """

    quick: bool
    seed: int
    out_dir: pathlib.Path


@dataclasses.dataclass
class Result:
    """What ``run`` returns.

    Attributes:
      metrics: dict with str keys whose values convert to JSON (numbers, strings, lists,
        NumPy or JAX arrays); non-finite floats are stored as ``"nan"``, ``"inf"``, ``"-inf"``.
      summary: a few lines for the terminal, printed after the progress line.
      figure: a ``matplotlib.figure.Figure`` saved as ``figure.png``, or ``None``.

    Example:
      >>> Result(metrics={"accuracy": 1.0}, summary="solved").figure is None
      True
    """

    metrics: dict[str, Any]
    summary: str = ""
    figure: Any = None
