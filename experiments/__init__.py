"""Experiments: each module measures one claim about feedforward networks, using fnn.

Run them from the repository root::

    python -m experiments --list          # names and the claim each one measures
    python -m experiments --quick         # every experiment, small sizes (CI)
    python -m experiments xor --rerun     # one experiment, even if already complete

Results go to ``results/<quick|full>/<name>/{result.json, figure.png}``. How to write an
experiment is described in :mod:`experiments.api`; the runner is :mod:`experiments.runner`.
"""
