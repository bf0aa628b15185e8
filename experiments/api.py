"""What an experiment receives and returns.

An experiment is a module ``experiments/<name>.py``, listed in
:data:`experiments.runner.EXPERIMENTS`, that defines:

* ``CLAIM``: a one-line string literal, the claim the experiment measures (``--list`` reads
  it from the source without importing the module, so keep it a plain string literal);
* ``CRITERION``: a one-line string literal, the claim's own words made measurable: the
  numbers and thresholds that decide it (read like ``CLAIM``, without importing);
* ``run(config: Config) -> Result``;
* ``verdict(metrics: dict, quick: bool) -> Verdict``: a pure function of the metrics as
  stored in ``result.json`` (so ``python -m experiments --judge`` can decide a claim again from
  a stored result without running anything). It applies the same criterion in quick and full
  mode; quick mode's smaller sizes may make a claim fail, and that is reported.

The criterion takes its thresholds from the claim's words ("over 97%", "within 1%"); where the
words are vague it states its reading ("several times" as >= 3x, "far" as an order of magnitude)
and keeps it fair. A claim that measures false is FAIL, with its number: the criterion is not
changed to make it pass. A claim with several parts returns one :class:`Check` per part.

A minimal one::

    from matplotlib.figure import Figure

    from experiments.api import Check, Config, Result, Verdict

    CLAIM = "A 2-2-1 tanh network trained by backprop solves XOR."
    CRITERION = "accuracy on the 4 XOR rows is 100%."

    def run(config: Config) -> Result:
        steps = 200 if config.quick else 5000
        ...                                   # calls into fnn, keyed by config.seed
        fig = Figure(figsize=(4, 3))          # not pyplot: no global figure state
        fig.subplots().plot(losses)
        return Result(metrics={"accuracy": accuracy, "final_loss": losses[-1]}, figure=fig,
                      summary=f"final loss {losses[-1]:.3g} after {steps} steps")

    def verdict(metrics: dict, quick: bool) -> Verdict:
        accuracy = float(metrics["accuracy"])
        return Verdict.of(Check("accuracy 100%", accuracy == 1.0, f"{accuracy:.0%}"))

``metrics`` may hold NumPy or JAX scalars and arrays; they are converted when written (see
:func:`fnn.io.to_jsonable`). The runner writes ``figure.png`` and ``result.json`` into
``config.out_dir``; an experiment may write further files there itself, through ``fnn.io``.
``verdict`` receives the metrics after that conversion (plain JSON values: non-finite floats
are the strings ``"nan"``, ``"inf"``, ``"-inf"``, which ``float`` and :func:`numbers` read back).
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from collections.abc import Sequence
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


@dataclasses.dataclass(frozen=True)
class Check:
    """One part of a claim's criterion: whether it holds, and the number(s) that decide it.

    Attributes:
      name: a few words naming the part, as the ``CRITERION`` text names it.
      passed: whether the measured value meets the criterion (a Python bool).
      measured: the deciding number(s), formatted, e.g. ``"98.70%"`` or ``"2^L for L = 1..10"``.

    Example:
      >>> Check("test accuracy > 97%", 0.987 > 0.97, "98.70%").passed
      True
    """

    name: str
    passed: bool
    measured: str

    def __post_init__(self) -> None:
        # numpy.bool_ is not a bool: a criterion written with NumPy must still give a plain verdict.
        object.__setattr__(self, "passed", _bool(self.passed, "Check.passed"))
        for field in ("name", "measured"):
            if not isinstance(getattr(self, field), str):
                raise TypeError(f"Check.{field} must be a str, got {type(getattr(self, field)).__name__}")


@dataclasses.dataclass(frozen=True)
class Verdict:
    """Whether a claim holds: PASS when every part of its criterion holds, else FAIL.

    Attributes:
      passed: True for PASS.
      measured: the deciding number(s), formatted, one ``name: value`` per part.
      checks: the parts, each a :class:`Check` (empty for a one-part verdict built directly).

    Example:
      >>> v = Verdict.of(Check("AND", True, "4/4"), Check("XOR", False, "3/4"))
      >>> v.label, v.failed, v.measured
      ('FAIL', ('XOR',), 'AND: 4/4; XOR: 3/4')
    """

    passed: bool
    measured: str
    checks: tuple[Check, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "passed", _bool(self.passed, "Verdict.passed"))
        if not isinstance(self.measured, str):
            raise TypeError(f"Verdict.measured must be a str, got {type(self.measured).__name__}")
        checks = tuple(self.checks)
        if not all(isinstance(c, Check) for c in checks):
            raise TypeError(f"Verdict.checks must hold Check objects, got {[type(c).__name__ for c in checks]}")
        if checks and self.passed != all(c.passed for c in checks):
            raise ValueError("Verdict.passed must be True exactly when every check passed")
        object.__setattr__(self, "checks", checks)

    @classmethod
    def of(cls, *checks: Check) -> Verdict:
        """The verdict of a claim with these parts: PASS when all of them hold."""
        if not checks:
            raise ValueError("Verdict.of needs at least one Check")
        measured = "; ".join(f"{c.name}: {c.measured}" for c in checks)
        return cls(all(c.passed for c in checks), measured, checks)

    @property
    def label(self) -> str:
        """``"PASS"`` or ``"FAIL"``."""
        return PASS if self.passed else FAIL

    @property
    def failed(self) -> tuple[str, ...]:
        """The names of the parts that do not hold."""
        return tuple(c.name for c in self.checks if not c.passed)


PASS, FAIL = "PASS", "FAIL"


def _bool(value: Any, name: str) -> bool:
    numpy_bool = type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_")
    if not isinstance(value, bool) and not numpy_bool:
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def numbers(values: Any) -> list[float]:
    """A stored list of numbers as floats, reading ``"nan"``, ``"inf"``, ``"-inf"`` back.

    Example:
      >>> numbers([1, "nan", 2.5])
      [1.0, nan, 2.5]
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"values must be a list of numbers, got {type(values).__name__}")
    return [float(v) for v in values]


def is_finite(value: Any) -> bool:
    """Whether a stored number (possibly ``"nan"`` or ``"inf"``) is finite.

    Example:
      >>> is_finite(1.5), is_finite("inf")
      (True, False)
    """
    return value is not None and math.isfinite(float(value))
