"""The package's layering, read from its source: no import circle, no import from a lower layer
to a higher one, and no private name used across a module boundary."""

import ast
import importlib
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = REPO / "fnn"

# Lowest first; a module may import only from its own layer and those before it.
LAYERS = ("data", "nn", "models", "optim", "train", "selection", "theory")
# Shared internals and the utilities every layer may use, beneath all layers.
BASE = ("fnn._checks", "fnn._types", "fnn.io", "fnn.checking")
# Private modules whose names are the package's shared internals.
SHARED_PRIVATE = ("fnn._checks", "fnn._types")


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    relative = pathlib.Path(*name.split("."))
    return (REPO / relative).with_suffix(".py").exists() or (REPO / relative / "__init__.py").exists()


def _rank(module: str) -> int:
    """0 for the base, 1 + the layer's index for a module in a layer, len(LAYERS) + 1 for ``fnn``."""
    if module == "fnn":
        return len(LAYERS) + 1
    if module in BASE:
        return 0
    top = module.split(".")[1]
    if top not in LAYERS:
        raise AssertionError(f"{module} belongs to no layer: put it in one of {LAYERS} or add it to BASE")
    return 1 + LAYERS.index(top)


def _imports(path: pathlib.Path):
    """``(line, imported fnn module, names taken from it, local alias -> module)`` of one file."""
    tree = ast.parse(path.read_text(), str(path))
    found, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "fnn" or a.name.startswith("fnn."):
                    found.append((node.lineno, a.name, ()))
                    aliases[a.asname or a.name.split(".")[0]] = a.asname and a.name or "fnn"
        elif (
            isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] == "fnn"
        ):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                if _is_module(sub):
                    found.append((node.lineno, sub, ()))
                    aliases[a.asname or a.name] = sub
                else:
                    found.append((node.lineno, node.module, (a.name,)))
    return tree, found, aliases


def _files():
    return sorted(PACKAGE.rglob("*.py"))


def _graph():
    graph = {}
    for path in _files():
        _, found, _ = _imports(path)
        graph[_module_name(path)] = {(line, target) for line, target, _ in found}
    return graph


def test_every_module_sits_in_a_layer():
    for path in _files():
        _rank(_module_name(path))


def test_no_import_from_a_lower_layer_to_a_higher_one():
    wrong = []
    for module, edges in _graph().items():
        for line, target in edges:
            if _rank(target) > _rank(module):
                wrong.append(f"{module}:{line} imports {target}")
    assert not wrong, "imports against the layering:\n" + "\n".join(sorted(wrong))


def test_no_import_circle():
    graph = {m: {t for _, t in edges if t != m} for m, edges in _graph().items()}
    done, on_path = set(), []

    def visit(m):
        if m in on_path:
            cycle = on_path[on_path.index(m) :] + [m]
            raise AssertionError("import circle: " + " -> ".join(cycle))
        if m in done:
            return
        on_path.append(m)
        for t in sorted(graph.get(m, ())):
            visit(t)
        on_path.pop()
        done.add(m)

    for m in sorted(graph):
        visit(m)


def _private_uses(path: pathlib.Path):
    """Private names of fnn modules used in ``path``: imported by name, or read as attributes."""
    tree, found, aliases = _imports(path)
    here = _module_name(path) if path.is_relative_to(PACKAGE) else None
    where = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    uses = []
    for line, target, names in found:
        if target.rsplit(".", 1)[-1].startswith("_") and target not in SHARED_PRIVATE:
            uses.append(f"{where}:{line} imports the private module {target}")
        if target == here:
            continue
        for name in names:
            if name.startswith("_"):
                uses.append(f"{where}:{line} imports {target}.{name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            if node.attr.startswith("_") and not node.attr.startswith("__"):
                uses.append(f"{where}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    return uses


def test_no_private_name_crosses_a_module():
    uses = [u for path in _files() for u in _private_uses(path)]
    assert not uses, "private names used across modules:\n" + "\n".join(uses)


def test_experiments_use_only_public_fnn():
    uses = []
    for path in sorted((REPO / "experiments").glob("*.py")):
        uses += [u for u in _private_uses(path)]
        for line, target, _ in _imports(path)[1]:
            if target in SHARED_PRIVATE:
                uses.append(f"{path.relative_to(REPO)}:{line} imports the private module {target}")
    assert not uses, "experiments reaching into private fnn:\n" + "\n".join(uses)


def test_the_checker_sees_a_violation(tmp_path):
    """The walk itself is tested: an upward import, a private name and a private attribute are found."""
    bad = tmp_path / "planted.py"
    bad.write_text("from fnn.theory import regions\nfrom fnn.nn.mlp import _static\nregions._interval(0, 1)\n")
    _, found, _ = _imports(bad)
    assert [(line, t) for line, t, _ in found if _rank(t) > _rank("fnn.data.planted")] == [
        (1, "fnn.theory.regions"),
        (2, "fnn.nn.mlp"),
    ]
    uses = _private_uses(bad)
    assert any("imports fnn.nn.mlp._static" in u for u in uses)
    assert any("uses fnn.theory.regions._interval" in u for u in uses)


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_reexports_its_public_names(layer):
    """``fnn.<layer>`` lists every module of its folder in ``__all__`` and each listed name resolves."""
    package = importlib.import_module(f"fnn.{layer}")
    modules = {p.stem for p in (PACKAGE / layer).glob("*.py") if not p.name.startswith("_")}
    assert modules <= set(package.__all__)
    for name in package.__all__:
        assert getattr(package, name) is not None


def test_old_short_names_still_work():
    import fnn

    for name in (
        "activations",
        "losses",
        "mlp",
        "backprop",
        "model",
        "residual",
        "optimizers",
        "descent",
        "rules",
        "schedules",
        "penalties",
        "mixup",
        "early_stopping",
        "checkpoint",
        "kfold",
        "ensemble",
        "bias_variance",
        "gaussian_process",
        "bayesopt",
        "approximation",
        "regions",
        "distribution_fit",
        "perceptron",
        "linear",
        "gradcheck",
        "initializers",
        "dropout",
        "batch_norm",
        "data",
        "train",
    ):
        assert getattr(fnn, name).__name__.startswith("fnn.")
    assert fnn.MLP is fnn.models.MLP and fnn.train.Trainer is fnn.train.trainer.Trainer
    assert fnn.data.load_csv is fnn.data.loaders.load_csv and fnn.losses.mse is fnn.nn.losses.mse
