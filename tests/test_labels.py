"""Tests of fnn.data.labels: class names <-> integer labels."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import data


def test_fit_sorts_and_is_deterministic():
    names = ["pear", "apple", "fig", "apple", "pear"]
    enc = data.LabelEncoding.fit(names)
    assert enc.classes == ("apple", "fig", "pear")
    rng = np.random.default_rng(0)
    for _ in range(3):
        assert data.LabelEncoding.fit(rng.permutation(names)) == enc
    assert data.LabelEncoding.fit({"pear", "apple"}).classes == ("apple", "pear")
    assert data.LabelEncoding.fit(n for n in names).classes == enc.classes


def test_encode_decode_round_trip():
    enc = data.LabelEncoding(("low", "mid", "high"))  # an order of the user's, kept
    names = np.array([["high", "low"], ["mid", "mid"], ["low", "high"]])
    labels = enc.encode(names)
    assert labels.dtype == jnp.int32 and labels.shape == (3, 2)
    np.testing.assert_array_equal(labels, [[2, 0], [1, 1], [0, 2]])
    assert enc.decode(labels).tolist() == names.tolist()
    # Predictions as a model gives them: the argmax of scores, a JAX array.
    scores = jnp.array([[0.1, 0.7, 0.2], [0.9, 0.0, 0.1]])
    assert enc.decode(jnp.argmax(scores, axis=1)).tolist() == ["mid", "low"]
    assert enc.decode(np.array(2, np.int64)) == "high"
    assert enc.decode(np.zeros(0, np.int32)).shape == (0,)


def test_frozen_and_hashable():
    enc = data.LabelEncoding(["a", "b"])
    assert enc.classes == ("a", "b") and hash(enc) == hash(data.LabelEncoding(("a", "b")))
    with pytest.raises(AttributeError):
        enc.classes = ("c",)


def test_errors():
    enc = data.LabelEncoding.fit(["no", "yes"])
    with pytest.raises(ValueError, match=r"names holds 'maybe', which is not one of the classes: 'no', 'yes'"):
        enc.encode(["yes", "maybe"])
    with pytest.raises(TypeError, match="names must hold strings .* got 1 of type int"):
        enc.encode([1, 0])
    with pytest.raises(TypeError, match="names must be an array or sequence of class names, got the single string"):
        enc.encode("yes")
    with pytest.raises(ValueError, match=r"labels must lie in 0..1 \(2 classes\), got 2"):
        enc.decode([0, 2])
    with pytest.raises(ValueError, match=r"labels must lie in 0..1 \(2 classes\), got -1"):
        enc.decode(jnp.array([-1, 0]))
    with pytest.raises(TypeError, match="labels must be integer class labels, got dtype float"):
        enc.decode(np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="labels must be integer class labels, got dtype bool"):
        enc.decode(np.array([True]))
    with pytest.raises(ValueError, match="labels must be concrete to decode"):
        jax.jit(lambda y: enc.decode(y) and y)(jnp.array([0]))
    with pytest.raises(ValueError, match="classes holds 'a' twice"):
        data.LabelEncoding(("a", "b", "a"))
    with pytest.raises(ValueError, match="classes must not hold an empty name"):
        data.LabelEncoding(("a", ""))
    with pytest.raises(ValueError, match="classes must be a non-empty sequence of names"):
        data.LabelEncoding(())
    with pytest.raises(TypeError, match="classes must hold strings"):
        data.LabelEncoding((0, 1))
    with pytest.raises(ValueError, match="names must hold at least one class name"):
        data.LabelEncoding.fit([])
    with pytest.raises(TypeError, match="names must be an array or sequence of class names, got the single string"):
        data.LabelEncoding.fit("abc")
