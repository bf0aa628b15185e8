"""Tests of fnn.data.loaders on data as it comes: headers, targets by name, class names, DataInfo.

The plain-number CSV, IDX and MNIST cases are in tests/test_data.py.
"""

import jax.numpy as jnp
import numpy as np
import pytest

from fnn import data

IRIS_LIKE = """# measured by hand
sepal length,sepal width,species,petal length
5.1,3.5,setosa,1.4

6.2,2.9,versicolor,4.3
7.7,3.0,virginica,6.1
4.9,3.1,setosa,1.5
"""
IRIS_X = np.array([[5.1, 3.5, 1.4], [6.2, 2.9, 4.3], [7.7, 3.0, 6.1], [4.9, 3.1, 1.5]])
IRIS_NAMES = ["setosa", "versicolor", "virginica", "setosa"]


def _write(tmp_path, text, name="t.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------------------
# headers, targets by name, class names
# ----------------------------------------------------------------------------------------


def test_target_by_name_encodes_class_names(tmp_path):
    path = _write(tmp_path, IRIS_LIKE)
    (x, y), info = data.load_csv(path, target_columns="species", return_info=True)
    np.testing.assert_allclose(x, IRIS_X, rtol=1e-6)
    assert x.dtype == jnp.float32 and y.dtype == jnp.int32 and y.shape == (4,)
    assert isinstance(info, data.DataInfo) and isinstance(info.labels, data.LabelEncoding)
    assert info.labels.classes == tuple(sorted(set(IRIS_NAMES)))
    assert info.labels.decode(y).tolist() == IRIS_NAMES
    assert info.feature_names == ("sepal length", "sepal width", "petal length")
    assert info.target_names == ("species",)
    assert info.header == "guessed"
    np.testing.assert_array_equal(info.lines, [3, 5, 6, 7])  # the comment, header and blank line skipped
    # The same column by index, and with the header declared: the same data, the header "given".
    (x2, y2), info2 = data.load_csv(path, target_columns=-2, skip_header=True, return_info=True)
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(y2, y)
    assert info2.header == "given" and info2.labels == info.labels
    # Without return_info the result is a Dataset, and unpacks as before.
    assert isinstance(data.load_csv(path, target_columns="species"), data.Dataset)


def test_class_numbering_does_not_depend_on_row_order(tmp_path):
    lines = IRIS_LIKE.splitlines()
    shuffled = "\n".join(lines[:2] + lines[2:][::-1]) + "\n"
    (_, y), info = data.load_csv(_write(tmp_path, shuffled), target_columns="species", return_info=True)
    (_, y_ref), ref = data.load_csv(_write(tmp_path, IRIS_LIKE, "ref.csv"), target_columns="species", return_info=True)
    assert info.labels == ref.labels
    # Each name keeps its integer: the labels are the reference ones in the file's new order.
    assert info.labels.decode(y).tolist()[::-1] == ref.labels.decode(y_ref).tolist()


def test_several_targets_by_name_and_numeric_labels(tmp_path):
    path = _write(tmp_path, "a,b,c,label\n1,2,3,0\n4,5,6,1\n")
    (x, y), info = data.load_csv(path, target_columns=["c", "a"], return_info=True)
    np.testing.assert_array_equal(x, [[2.0, 0.0], [5.0, 1.0]])
    np.testing.assert_array_equal(y, [[3.0, 1.0], [6.0, 4.0]])
    assert info.feature_names == ("b", "label") and info.target_names == ("c", "a") and info.labels is None
    (_, y), info = data.load_csv(path, target_columns="label", label_dtype=jnp.int32, return_info=True)
    np.testing.assert_array_equal(y, [0, 1])
    assert y.dtype == jnp.int32 and info.labels is None  # numeric labels are their own names


def test_encode_labels_options(tmp_path):
    path = _write(tmp_path, "f,grade\n0.5,3\n1.5,10\n2.5,3\n")
    # Asked for, a numeric column becomes class names, sorted as text.
    (_, y), info = data.load_csv(path, encode_labels=True, return_info=True)
    assert info.labels.classes == ("10", "3")
    np.testing.assert_array_equal(y, [1, 0, 1])
    assert info.labels.decode(y).tolist() == ["3", "10", "3"]
    # Not asked for, it stays a number.
    (_, y), info = data.load_csv(path, return_info=True)
    np.testing.assert_array_equal(y, [[3.0], [10.0], [3.0]])
    assert info.labels is None
    # label_dtype=int32 on a column of names still encodes them.
    named = _write(tmp_path, "f,kind\n1,b\n2,a\n", "named.csv")
    (_, y), info = data.load_csv(named, label_dtype=jnp.int32, return_info=True)
    np.testing.assert_array_equal(y, [1, 0])
    assert info.labels.classes == ("a", "b")
    with pytest.raises(ValueError, match=r"line 2, column 2 \('kind'\): 'b' is not a number \(encode_labels=False\)"):
        data.load_csv(named, encode_labels=False)


def test_quoted_cells_and_whitespace_delimiter(tmp_path):
    path = _write(tmp_path, '"width, cm",label\n1.5,"big, red"\n2.5,small\n"3.5","big, red"\n')
    (x, y), info = data.load_csv(path, return_info=True)
    np.testing.assert_array_equal(x[:, 0], [1.5, 2.5, 3.5])
    assert info.feature_names == ("width, cm",)
    assert info.labels.decode(y).tolist() == ["big, red", "small", "big, red"]
    spaced = _write(tmp_path, "x1 x2   kind\n1 2 up\n3\t4 down\n", "spaced.txt")
    (x, y), info = data.load_csv(spaced, delimiter=None, target_columns="kind", return_info=True)
    assert x.shape == (2, 2) and info.labels.decode(y).tolist() == ["up", "down"]
    assert info.feature_names == ("x1", "x2")


def test_headerless_file_with_class_names(tmp_path):
    # A UCI-style file: no header, names in the last column. Detection refuses to guess (the
    # first line mixes numbers and text); skip_header=False reads it.
    path = _write(tmp_path, "5.1,3.5,setosa\n6.2,2.9,versicolor\n")
    with pytest.raises(ValueError, match=r"line 1: cannot tell whether the first line is a header"):
        data.load_csv(path)
    (x, y), info = data.load_csv(path, skip_header=False, return_info=True)
    assert x.shape == (2, 2) and info.labels.classes == ("setosa", "versicolor")
    assert info.header == "absent" and info.feature_names is None and info.target_names is None
    np.testing.assert_array_equal(info.lines, [1, 2])
    with pytest.raises(ValueError, match=r"target_columns names the column 'kind', but .* without a header"):
        data.load_csv(path, skip_header=False, target_columns="kind")


# ----------------------------------------------------------------------------------------
# the guessed header is never silent
# ----------------------------------------------------------------------------------------


def test_first_data_line_with_a_bad_cell_is_not_dropped_as_a_header(tmp_path):
    # Before: any non-number on the first line made it a header, so this file silently lost
    # its first example. Now the mix of numbers and text is an error naming the cell.
    path = _write(tmp_path, "1.0,oops,0\n3.0,4.0,1\n5.0,6.0,0\n")
    with pytest.raises(
        ValueError,
        match=r"t.csv, line 1: cannot tell whether the first line is a header: it mixes numbers and text "
        r"\(column 2: 'oops'\); pass skip_header=True if it names the columns, or skip_header=False if it is data",
    ):
        data.load_csv(path)
    # Told it is data, the bad cell is reported; told it is a header, it is dropped as asked.
    with pytest.raises(ValueError, match=r"t.csv, line 1, column 2: 'oops' is not a number"):
        data.load_csv(path, skip_header=False)
    (x, _), info = data.load_csv(path, skip_header=True, return_info=True)
    assert x.shape == (2, 2) and info.header == "given"
    # A header with a numeric name is refused in the same way, and read when declared.
    year = _write(tmp_path, "city,2020,y\n1,2,3\n", "year.csv")
    with pytest.raises(ValueError, match=r"line 1: .*mixes numbers and text \(column 1: 'city', column 3: 'y'\)"):
        data.load_csv(year)
    assert data.load_csv(year, skip_header=True, return_info=True)[1].feature_names == ("city", "2020")
    # Many text cells: three are shown.
    wide = _write(tmp_path, "a,b,c,d,e,1\n1,2,3,4,5,6\n", "wide.csv")
    with pytest.raises(ValueError, match=r"column 3: 'c' and 2 more\)"):
        data.load_csv(wide)


def test_numbers_only_first_line_is_data(tmp_path):
    (x, _), info = data.load_csv(_write(tmp_path, "1,2,0\n3,4,1\n"), return_info=True)
    assert x.shape == (2, 2) and info.header == "absent" and info.feature_names is None


# ----------------------------------------------------------------------------------------
# errors name the file, the line, the column and the argument
# ----------------------------------------------------------------------------------------


def test_csv_errors_name_line_and_column(tmp_path):
    path = _write(tmp_path, "a,b,y\n1,2,0\n1,inf,1\n")
    with pytest.raises(ValueError, match=r"t.csv, line 3, column 2 \('b'\): NaN or infinite value"):
        data.load_csv(path)
    path.write_text("a,b,y\n1,2,0\n1,2,nan\n")
    with pytest.raises(ValueError, match=r"t.csv, line 3, column 3 \('y'\): NaN or infinite value"):
        data.load_csv(path)
    # A numeric target with one typo: the typo is named, not taken for a class name.
    path.write_text("a,b,y\n1,2,0.5\n1,2,oops\n3,4,1.5\n")
    with pytest.raises(
        ValueError,
        match=r"line 3, column 3 \('y'\): 'oops' is not a number, but 2 other cells of this target column are; "
        r"fix the cell, or pass encode_labels=True",
    ):
        data.load_csv(path)
    np.testing.assert_array_equal(data.load_csv(path, encode_labels=True).y, [0, 2, 1])
    # Class names with one number among them: the number is named.
    path.write_text("a,kind\n1,cat\n2,3\n3,dog\n")
    with pytest.raises(ValueError, match=r"line 3, column 2 \('kind'\): '3' is a number among 2 class names"):
        data.load_csv(path)
    path.write_text("a,y\n1,0.5\n2,\n3,1.5\n")
    with pytest.raises(ValueError, match=r"line 3, column 2 \('y'\): '' is not a number, but 2 other cells"):
        data.load_csv(path)
    path.write_text("a,kind\n1,cat\n2,\n3,dog\n")
    with pytest.raises(ValueError, match=r"line 3, column 2 \('kind'\): empty class name"):
        data.load_csv(path)
    path.write_text("a,kind\n1,\n2,\n")
    with pytest.raises(ValueError, match=r"line 2, column 2 \('kind'\): empty class name"):
        data.load_csv(path)
    path.write_text("a,b,kind\n1,2,cat\n3,4,dog\n")
    with pytest.raises(ValueError, match=r"class names need one target column, got target_columns \['b', 'kind'\]"):
        data.load_csv(path, target_columns=["b", "kind"])
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match=r"class names need one target column, got target_columns \[0, 1\]$"):
        data.load_csv(path, target_columns=[0, 1], encode_labels=True)


def test_csv_target_and_header_errors(tmp_path):
    path = _write(tmp_path, "a,b,a\n1,2,3\n")
    with pytest.raises(
        ValueError, match=r"target_columns names 'c', which is not a column of .*; its columns are 'a', 'b'"
    ):
        data.load_csv(path, target_columns="c")
    with pytest.raises(ValueError, match=r"target_columns names 'a', but the header of .* gives it to columns 1, 3"):
        data.load_csv(path, target_columns="a")
    with pytest.raises(ValueError, match="target_columns names a column twice"):
        data.load_csv(path, target_columns=["b", 1])
    with pytest.raises(TypeError, match="target_columns must hold integers or column names, got 1.5"):
        data.load_csv(path, target_columns=1.5)
    with pytest.raises(TypeError, match="target_columns must hold integers or column names, got the bool True"):
        data.load_csv(path, target_columns=True)
    path.write_text("a,b,y\n1,2\n")
    with pytest.raises(ValueError, match=r"line 2: 2 columns, expected 3 as on the header on line 1 \(ragged rows\)"):
        data.load_csv(path)
    path.write_text("a,b,y\n")
    with pytest.raises(ValueError, match="holds a header but no data lines"):
        data.load_csv(path)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"delimiter": ";;"}, ValueError, r"delimiter must be one character other than whitespace and '\"', or None"),
        ({"delimiter": " "}, ValueError, "delimiter must be one character"),
        ({"delimiter": '"'}, ValueError, "delimiter must be one character"),
        ({"skip_header": "yes"}, TypeError, "skip_header must be True, False or None, got 'yes'"),
        ({"encode_labels": 1}, TypeError, "encode_labels must be True, False or None, got 1"),
        ({"return_info": None}, TypeError, "return_info must be True or False, got None"),
    ],
)
def test_csv_argument_errors(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        data.load_csv(_write(tmp_path, "1,2\n"), **kwargs)


# ----------------------------------------------------------------------------------------
# npz: keys name the arrays, string labels are encoded, objects refused
# ----------------------------------------------------------------------------------------


def test_npz_class_names(tmp_path):
    path = tmp_path / "set.npz"
    names = np.array(["dog", "cat", "dog", "emu"])
    np.savez(path, inputs=np.ones((4, 2)), names=names, raw=names.astype("S"), numbers=np.arange(4))
    for key in ("names", "raw"):
        (x, y), info = data.load_npz(path, "inputs", key, return_info=True)
        assert x.shape == (4, 2) and y.dtype == jnp.int32
        assert info.labels.classes == ("cat", "dog", "emu")
        assert info.labels.decode(y).tolist() == names.tolist()
        assert info.feature_names is None and info.header is None and info.lines is None
    (_, y), info = data.load_npz(path, "inputs", "numbers", return_info=True)
    np.testing.assert_array_equal(y, np.arange(4))
    assert info.labels is None
    assert isinstance(data.load_npz(path, "inputs", "names"), data.Dataset)


def test_npz_errors(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(
        path,
        x=np.ones((2, 2)),
        objects=np.array(["a", 1], dtype=object),
        grid=np.array([["a", "b"], ["c", "d"]]),
        blank=np.array(["a", ""]),
        latin=np.array([b"\xff", b"a"]),
    )
    with pytest.raises(ValueError, match=r"array 'objects' \(y_key\) holds Python objects, .* pickle is refused"):
        data.load_npz(path, y_key="objects")
    with pytest.raises(ValueError, match=r"array 'objects' \(x_key\) holds Python objects"):
        data.load_npz(path, x_key="objects", y_key="x")
    with pytest.raises(
        ValueError, match=r"array 'grid' \(y_key\) holds class names of shape \(2, 2\); they need shape"
    ):
        data.load_npz(path, y_key="grid")
    with pytest.raises(ValueError, match=r"array 'blank' \(y_key\) holds an empty class name at example 1"):
        data.load_npz(path, y_key="blank")
    with pytest.raises(ValueError, match=r"array 'latin' \(y_key\) holds bytes that are not UTF-8"):
        data.load_npz(path, y_key="latin")
    with pytest.raises(ValueError, match=r"has no array 'y' \(y_key\); it holds: x, objects, grid, blank, latin"):
        data.load_npz(path)
    with pytest.raises(TypeError, match="return_info must be True or False"):
        data.load_npz(path, y_key="x", return_info=1)
