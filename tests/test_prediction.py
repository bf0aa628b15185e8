"""fnn.models.prediction: evaluation mode, the links of the losses, batching, ensembles, validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn.models import MLP, ResidualMLP, prediction
from fnn.models.prediction import predict
from fnn.nn import activations, batch_norm
from fnn.selection import ensemble
from tests.helpers import random_params

# The references, compiled: one program each rather than one per eager operation.
_outputs = jax.jit(ensemble.outputs, static_argnums=0)
_classify = jax.jit(ensemble.classify)


def _batch_norm_model(out=3, members=None):
    """A tiny MLP with dropout and batch norm whose running statistics are not the initial ones."""
    model = MLP((3, 6, out), dropout=0.5, batch_norm=True)
    return model, *random_params(model, members, seed=out)


def _x(n=11, d=3, seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=(n, d)))


def test_output_is_apply_in_evaluation_mode():
    model, params, state = _batch_norm_model()
    assert isinstance(state[0], batch_norm.BatchNormState) and not np.allclose(state[0].var, 1)
    x = _x()
    expected, unchanged = jax.jit(lambda p, s, x: model.apply(p, s, x, train=False))(params, state, x)
    np.testing.assert_allclose(predict(model, params, state, x), expected, rtol=1e-13, atol=1e-14)
    jax.tree.map(np.testing.assert_array_equal, unchanged, state)
    # Evaluation mode is deterministic: dropout is off, so two calls agree exactly.
    np.testing.assert_array_equal(predict(model, params, state, x), predict(model, params, state, x))


@pytest.mark.parametrize("loss", ["cross_entropy", "kl_divergence", "binary_cross_entropy"])
def test_classifier_probabilities_and_classes(loss):
    model, params, state = _batch_norm_model(out=1 if loss == "binary_cross_entropy" else 3)
    x = _x()
    z = jax.jit(lambda p, s, x: model.apply(p, s, x)[0])(params, state, x)
    proba = predict(model, params, state, x, loss=loss, kind="proba")
    link = jax.nn.sigmoid(z) if loss == "binary_cross_entropy" else jax.nn.softmax(z, axis=-1)
    np.testing.assert_allclose(proba, link, rtol=1e-12)
    classes = predict(model, params, state, x, loss=loss, kind="classes")
    assert classes.shape == (11,) and classes.dtype == jnp.int32
    np.testing.assert_array_equal(classes, activations.predict_classes(z))


def test_regression_means_and_variances():
    model = ResidualMLP(3, 5, 1, 4)
    params, state = random_params(model)
    x = _x()
    z = jax.jit(lambda p, s, x: model.apply(p, s, x)[0])(params, state, x)
    mean = predict(model, params, state, x, loss="gaussian_nll_learned", kind="mean")
    var = predict(model, params, state, x, loss="gaussian_nll_learned", kind="variance")
    np.testing.assert_array_equal(mean, z[:, :2])
    np.testing.assert_allclose(var, np.maximum(np.logaddexp(0, np.asarray(z[:, 2:])), 1e-6), rtol=1e-12)
    np.testing.assert_array_equal(
        predict(model, params, state, x, loss="gaussian_nll", kind="variance"), np.ones((11, 4))
    )
    np.testing.assert_array_equal(predict(model, params, state, x, loss="mse", kind="mean"), z)
    assert prediction.kinds_for("mse") == ("output", "mean")


def test_batched_equals_unbatched_and_does_not_retrace():
    model, params, state = _batch_norm_model()
    x = _x(n=23)
    whole = predict(model, params, state, x, loss="cross_entropy", kind="proba")
    size = prediction._predict._cache_size()
    for batch_size in (1, 5, 23, 50):
        chunked = predict(model, params, state, x, loss="cross_entropy", kind="proba", batch_size=batch_size)
        assert chunked.shape == whole.shape
        # Each row is computed on its own in evaluation mode; a matrix product of another
        # number of rows may take another kernel, so equal to rounding (bitwise on our CPU).
        np.testing.assert_allclose(chunked, whole, rtol=1e-13, atol=1e-15)
    size = prediction._predict._cache_size()
    again = predict(model, params, state, -x, loss="cross_entropy", kind="proba", batch_size=5)
    assert prediction._predict._cache_size() == size
    assert not np.allclose(again, whole)


@pytest.mark.slow
def test_ensemble_probabilities_are_those_of_ensemble_classify():
    model, params, state = _batch_norm_model(members=4)
    x = _x(n=9)
    mean, members = predict(
        model, params, state, x, loss="cross_entropy", kind="proba", ensemble=True, return_members=True, batch_size=4
    )
    reference = _classify(_outputs(model, params, state, x))
    np.testing.assert_allclose(mean, reference.mean, rtol=1e-12)
    np.testing.assert_allclose(members, reference.members, rtol=1e-12)
    classes, votes = predict(
        model, params, state, x, loss="cross_entropy", kind="classes", ensemble=True, return_members=True
    )
    np.testing.assert_array_equal(classes, np.argmax(reference.mean, axis=-1))
    np.testing.assert_array_equal(votes, activations.predict_classes(_outputs(model, params, state, x)))


def test_ensemble_single_logit_classes_threshold_the_mean_probability():
    model, params, state = _batch_norm_model(out=1, members=3)
    x = _x(n=40)
    p = predict(model, params, state, x, loss="binary_cross_entropy", kind="proba", ensemble=True)
    np.testing.assert_allclose(p, _classify(_outputs(model, params, state, x)).mean, rtol=1e-12)
    classes = predict(model, params, state, x, loss="binary_cross_entropy", kind="classes", ensemble=True)
    np.testing.assert_array_equal(classes, (np.asarray(p)[:, 0] > 0.5).astype(np.int32))


def test_ensemble_regression_mean_and_mixture_variance():
    model = MLP((3, 5, 2), activation="tanh")
    params, state = random_params(model, 5)
    x = _x()
    z = np.asarray(_outputs(model, params, state, x))  # [M, N, 2]: mean, raw variance
    mu, var = z[..., :1], np.maximum(np.logaddexp(0, z[..., 1:]), 1e-6)
    mean = predict(model, params, state, x, loss="gaussian_nll_learned", kind="mean", ensemble=True)
    mixture = predict(model, params, state, x, loss="gaussian_nll_learned", kind="variance", ensemble=True)
    np.testing.assert_allclose(mean, mu.mean(0), rtol=1e-12)
    np.testing.assert_allclose(mixture, (var + mu**2).mean(0) - mu.mean(0) ** 2, rtol=1e-9)
    out = predict(model, params, state, x, loss="mse", kind="output", ensemble=True)
    np.testing.assert_allclose(out, ensemble.regress(z).mean, rtol=1e-12)


def test_validation_names_the_argument():
    model, params, state = _batch_norm_model()
    x = _x()
    with pytest.raises(ValueError, match=r"x must have shape \[N, 3\], got shape \(11, 4\)"):
        predict(model, params, state, jnp.ones((11, 4)))
    with pytest.raises(ValueError, match="x must have shape"):
        predict(model, params, state, jnp.ones(3))
    with pytest.raises(TypeError, match="x must be a floating-point array"):
        predict(model, params, state, jnp.ones((2, 3), jnp.int32))
    with pytest.raises(ValueError, match="x must hold at least one example"):
        predict(model, params, state, jnp.ones((0, 3)))
    for bad in (0, -2):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            predict(model, params, state, x, batch_size=bad)
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        predict(model, params, state, x, batch_size=True)
    with pytest.raises(ValueError, match="kind must be one of"):
        predict(model, params, state, x, kind="logits")
    with pytest.raises(ValueError, match="kind='proba' is not a prediction of a model trained with loss 'mse'"):
        predict(model, params, state, x, loss="mse", kind="proba")
    with pytest.raises(ValueError, match="layer sizes"):
        predict(MLP((3, 5, 3), batch_norm=True), params, state, x)
    with pytest.raises(ValueError, match="return_members=True needs ensemble=True"):
        predict(model, params, state, x, return_members=True)


def test_ensemble_validation():
    model, params, state = _batch_norm_model(members=3)
    x = _x()
    with pytest.raises(ValueError, match="pass ensemble=True"):
        predict(model, params, state, x)
    with pytest.raises(ValueError, match="would average logits"):
        predict(model, params, state, x, loss="cross_entropy", ensemble=True)
    short = jax.tree.map(lambda a: a[:2], state)
    with pytest.raises(ValueError, match=r"model_state\[0\]\.mean has shape \(2, 6\)"):
        predict(model, params, short, x, ensemble=True)
