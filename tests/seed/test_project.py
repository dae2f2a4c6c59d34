"""Tests for chimera_nb.seed.project (the seed's project layout) and of the training-data
files it checks (chimera_nb.workers.training_data)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from chimera_nb._exceptions import ConfigurationError
from chimera_nb.seed.project import SeedProject
from chimera_nb.workers.training_data import load_training_data

X_GOOD = "alcohol,acidity\n9.4,0.7\n9.8,0.88\n10.1,0.76\n"
Y_GOOD = "quality\n5\n5\n6\n"


def make_project(
    root: Path,
    names: list[str],
    x_csv: str = X_GOOD,
    y_csv: str = Y_GOOD,
) -> Path:
    """Write a seed project: one script and one data folder per worker, all with the same data."""
    (root / "chimera_workers").mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / "chimera_workers" / f"{name}.py").write_text("# worker.serve()\n")
        data_dir = root / "chimera_train_data" / name
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "X_train.csv").write_text(x_csv)
        (data_dir / "y_train.csv").write_text(y_csv)
    return root


def problems_of(root: Path, names: list[str]) -> str:
    with pytest.raises(ConfigurationError) as caught:
        SeedProject.discover(root, names)
    return str(caught.value)


# --- a valid project ---------------------------------------------------------------------------


def test_a_valid_project_is_discovered_with_its_paths_and_features(tmp_path: Path) -> None:
    # Prepare
    root = make_project(tmp_path, ["w1", "w2"])

    # Execute
    project = SeedProject.discover(root, ["w1", "w2"])

    # Assert
    assert project.names == ("w1", "w2")
    assert project.worker_script("w2") == tmp_path / "chimera_workers" / "w2.py"
    assert project.data_dir("w1") == tmp_path / "chimera_train_data" / "w1"
    assert project.feature_names == ("alcohol", "acidity")
    assert project.n_samples == {"w1": 3, "w2": 3}
    assert "2 workers: w1, w2" in repr(project)


def test_load_training_data_returns_numeric_features_and_labels(tmp_path: Path) -> None:
    # Prepare
    root = make_project(tmp_path, ["w1"])

    # Execute
    X, y = load_training_data(root / "chimera_train_data" / "w1")

    # Assert
    expected_X = pd.DataFrame({"alcohol": [9.4, 9.8, 10.1], "acidity": [0.7, 0.88, 0.76]})
    pd.testing.assert_frame_equal(X, expected_X)
    assert y.name == "quality"
    assert y.tolist() == [5, 5, 6]


def test_string_labels_are_accepted_for_classification(tmp_path: Path) -> None:
    # Prepare
    root = make_project(tmp_path, ["w1"], y_csv="species\nsetosa\nvirginica\nsetosa\n")

    # Execute
    _, y = load_training_data(root / "chimera_train_data" / "w1")

    # Assert
    assert y.tolist() == ["setosa", "virginica", "setosa"]


def test_asking_for_a_worker_outside_the_project_is_an_error(tmp_path: Path) -> None:
    # Prepare
    project = SeedProject.discover(make_project(tmp_path, ["w1"]), ["w1"])

    # Execute / Assert
    with pytest.raises(ConfigurationError, match="'w9' is not part of the project"):
        project.worker_script("w9")


# --- missing pieces ------------------------------------------------------------------------------


def test_a_missing_root_folder_is_reported(tmp_path: Path) -> None:
    # Prepare
    root = tmp_path / "nowhere"

    # Execute
    message = problems_of(root, ["w1"])

    # Assert
    assert f"{root} does not exist" in message


def test_every_missing_script_folder_and_file_is_listed_in_one_error(tmp_path: Path) -> None:
    # Prepare
    root = make_project(tmp_path, ["w1", "w2", "w3"])
    (root / "chimera_workers" / "w2.py").unlink()
    (root / "chimera_train_data" / "w3" / "y_train.csv").unlink()
    names = ["w1", "w2", "w3", "w4"]
    (root / "chimera_workers" / "w4.py").write_text("")

    # Execute
    message = problems_of(root, names)

    # Assert
    assert "has 3 problems" in message
    assert f"{root / 'chimera_workers' / 'w2.py'}: worker script is missing" in message
    assert "it holds w1.py, w3.py, w4.py" in message
    assert f"{root / 'chimera_train_data' / 'w3' / 'y_train.csv'}: file is missing" in message
    assert f"{root / 'chimera_train_data' / 'w4'}: folder is missing" in message


def test_missing_top_level_folders_are_reported_once_each(tmp_path: Path) -> None:
    # Prepare
    root = tmp_path

    # Execute
    message = problems_of(root, ["w1", "w2"])

    # Assert
    assert "has 2 problems" in message
    assert f"{root / 'chimera_workers'}: folder is missing" in message
    assert "(w1.py, w2.py)" in message
    assert f"{root / 'chimera_train_data'}: folder is missing" in message


def test_unsafe_and_duplicate_names_are_refused_before_touching_files(tmp_path: Path) -> None:
    # Prepare
    root = make_project(tmp_path, ["w1"])

    # Execute
    message = problems_of(root, ["w1", "../x", "w1"])

    # Assert
    assert "Worker name '../x' contains" in message
    assert "'w1' repeat" in message


# --- malformed CSV files -------------------------------------------------------------------------


def test_a_ragged_row_is_reported_with_the_file(tmp_path: Path) -> None:
    # Prepare
    root = make_project(tmp_path, ["w1"], x_csv="a,b\n1,2\n3,4,5\n")

    # Execute
    message = problems_of(root, ["w1"])

    # Assert
    x_path = root / "chimera_train_data" / "w1" / "X_train.csv"
    assert f"{x_path}: cannot be parsed as CSV" in message
    assert "Expected 2 fields in line 3, saw 3" in message


def test_a_text_cell_in_X_names_the_file_row_and_column(tmp_path: Path) -> None:
    # Prepare
    root = make_project(tmp_path, ["w1"], x_csv="a,b\n1,2\n3,four\n5,6\n")

    # Execute
    message = problems_of(root, ["w1"])

    # Assert
    x_path = root / "chimera_train_data" / "w1" / "X_train.csv"
    assert f"{x_path}: row 2, column 'b': 'four' is not a number" in message


@pytest.mark.parametrize("cell", ["", "NaN", "nan"])
def test_an_empty_or_nan_cell_in_X_names_the_file_row_and_column(tmp_path: Path, cell: str) -> None:
    # Prepare
    root = make_project(tmp_path, ["w1"], x_csv=f"a,b\n1,2\n3,4\n{cell},6\n")

    # Execute
    message = problems_of(root, ["w1"])

    # Assert
    assert "row 3, column 'a': is empty or NaN" in message


def test_an_infinite_cell_in_X_is_refused(tmp_path: Path) -> None:
    # Prepare
    root = make_project(tmp_path, ["w1"], x_csv="a,b\n1,inf\n3,4\n5,6\n")

    # Execute
    message = problems_of(root, ["w1"])

    # Assert
    assert "row 1, column 'b': is infinite" in message


def test_many_bad_cells_are_summarised(tmp_path: Path) -> None:
    # Prepare
    root = make_project(tmp_path, ["w1"], x_csv="a\n" + "x\n" * 9, y_csv="y\n" + "1\n" * 9)

    # Execute
    message = problems_of(root, ["w1"])

    # Assert
    assert "row 5, column 'a'" in message
    assert "row 6, column 'a'" not in message
    assert "and 4 more cells like these" in message


def test_a_written_index_column_is_recognised(tmp_path: Path) -> None:
    # Prepare
    X = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    root = make_project(tmp_path, ["w1"], x_csv=X.to_csv(), y_csv="y\n1\n2\n")

    # Execute
    message = problems_of(root, ["w1"])

    # Assert
    assert "column 1 has no name in the header row" in message
    assert "index=False" in message


def test_a_repeated_column_name_is_refused(tmp_path: Path) -> None:
    # Prepare
    root = make_project(tmp_path, ["w1"], x_csv="a,a\n1,2\n", y_csv="y\n1\n")

    # Execute
    message = problems_of(root, ["w1"])

    # Assert
    assert "the header row repeats 'a'" in message


def test_an_empty_file_and_a_header_without_rows_are_refused(tmp_path: Path) -> None:
    # Prepare
    root = make_project(tmp_path, ["w1"], x_csv="", y_csv="y\n")

    # Execute
    message = problems_of(root, ["w1"])

    # Assert
    assert "X_train.csv: is empty" in message
    assert "y_train.csv: has a header row but no data rows" in message


def test_a_semicolon_separated_file_gets_a_hint(tmp_path: Path) -> None:
    # Prepare
    root = make_project(tmp_path, ["w1"], x_csv="a;b\n1;2\n", y_csv="y\n1\n")

    # Execute
    message = problems_of(root, ["w1"])

    # Assert
    assert "looks separated by ';'" in message


def test_y_with_more_than_one_column_is_refused(tmp_path: Path) -> None:
    # Prepare
    root = make_project(tmp_path, ["w1"], y_csv="y,z\n1,1\n2,2\n3,3\n")

    # Execute
    message = problems_of(root, ["w1"])

    # Assert
    y_path = root / "chimera_train_data" / "w1" / "y_train.csv"
    assert f"{y_path}: has 2 columns ('y', 'z'), but must have exactly one" in message


def test_an_empty_label_is_refused(tmp_path: Path) -> None:
    # Prepare
    root = make_project(tmp_path, ["w1"], x_csv="a\n1\n2\n", y_csv='y\ncat\n""\n')

    # Execute
    message = problems_of(root, ["w1"])

    # Assert
    assert "y_train.csv: row 2: is empty or NaN" in message


def test_a_row_count_mismatch_names_both_files_and_counts(tmp_path: Path) -> None:
    # Prepare
    root = make_project(tmp_path, ["w1"], y_csv="quality\n5\n5\n")

    # Execute
    message = problems_of(root, ["w1"])

    # Assert
    data_dir = root / "chimera_train_data" / "w1"
    expected = f"{data_dir / 'X_train.csv'} has 3 rows but {data_dir / 'y_train.csv'} has 2"
    assert expected in message


def test_workers_with_different_feature_columns_are_refused(tmp_path: Path) -> None:
    # Prepare
    root = make_project(tmp_path, ["w1", "w2", "w3"])
    w2 = root / "chimera_train_data" / "w2" / "X_train.csv"
    w2.write_text("alcohol,sugar\n1,2\n3,4\n5,6\n")
    w3 = root / "chimera_train_data" / "w3" / "X_train.csv"
    w3.write_text("acidity,alcohol\n1,2\n3,4\n5,6\n")

    # Execute
    message = problems_of(root, ["w1", "w2", "w3"])

    # Assert
    assert f"{w2}: has columns ['alcohol', 'sugar'], but" in message
    assert f"{w3}: has columns ['acidity', 'alcohol'] (the same names in another order)" in message


def test_load_training_data_raises_one_error_naming_the_file(tmp_path: Path) -> None:
    # Prepare
    root = make_project(tmp_path, ["w1"], x_csv="a,b\n1,x\n2,3\n3,4\n")
    data_dir = root / "chimera_train_data" / "w1"

    # Execute
    with pytest.raises(ConfigurationError) as caught:
        load_training_data(data_dir)

    # Assert
    message = str(caught.value)
    assert f"The training data in {data_dir} cannot be used" in message
    assert f"{data_dir / 'X_train.csv'}: row 1, column 'b': 'x' is not a number" in message


# --- a regressor's target --------------------------------------------------------------------------

Y_LABELS = "colour\nred\nwhite\nred\n"


@pytest.mark.parametrize(
    "script",
    [
        'worker = SGDWorker("regressor")',
        "worker = SGDWorker()",
        'worker = workers.SGDWorker(model_type="regressor", eta0=0.01)',
        "worker = RegressionWorker(DecisionTreeRegressor())",
    ],
)
def test_labels_for_a_worker_whose_script_builds_a_regressor_are_reported(
    tmp_path: Path, script: str
) -> None:
    # Prepare
    root = make_project(tmp_path, ["w1"], y_csv=Y_LABELS)
    (root / "chimera_workers" / "w1.py").write_text(f"{script}\nworker.serve()\n")

    # Execute
    message = problems_of(root, ["w1"])

    # Assert
    assert "y_train.csv: holds values that are not numbers: 'red', 'white'" in message
    assert "w1.py builds a regressor" in message


@pytest.mark.parametrize(
    "script",
    ['worker = SGDWorker("classifier")', "worker = ClassificationWorker(DecisionTreeClassifier())"],
)
def test_labels_for_a_worker_whose_script_builds_a_classifier_are_accepted(
    tmp_path: Path, script: str
) -> None:
    # Prepare
    root = make_project(tmp_path, ["w1"], y_csv=Y_LABELS)
    (root / "chimera_workers" / "w1.py").write_text(f"{script}\nworker.serve()\n")

    # Execute
    project = SeedProject.discover(root, ["w1"])

    # Assert
    assert project.n_samples == {"w1": 3}
