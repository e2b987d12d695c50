"""The command line: ``python -m skvae demo``."""

import pytest
from matplotlib.image import imread

from skvae.__main__ import main

FIGURES = ["latent_space.png", "latent_traversal.png", "interpolation_0_8.png", "training_history.png"]


def _check_figures(folder, names):
    for name in names:
        image = imread(folder / name)
        assert image.ndim == 3 and min(image.shape[:2]) > 200, name
        assert image[..., :3].std() > 0.05, f"{name} is blank"


def test_help(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["--help"])
    assert excinfo.value.code == 0
    assert "demo" in capsys.readouterr().out

    with pytest.raises(SystemExit) as excinfo:
        main(["demo", "--help"])
    assert excinfo.value.code == 0
    out = capsys.readouterr().out
    for option in ("--dataset", "--data-home", "--epochs", "--n-components", "--interpolate", "--output"):
        assert option in out


def test_demo_reports_and_writes_figures(tmp_path, capsys):
    assert main(["demo", "--epochs", "2", "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "head accuracy on the test split" in out
    assert "reconstruction MSE per feature" in out
    assert "train_loss" in out  # skorch's epoch table
    for name in FIGURES:
        assert str(tmp_path / name) in out
    _check_figures(tmp_path, FIGURES)


def test_demo_with_more_latent_dimensions(tmp_path, capsys):
    args = ["demo", "--epochs", "1", "--n-components", "3", "--interpolate", "3", "5", "--quiet"]
    assert main([*args, "--output", str(tmp_path / "new" / "folder")]) == 0
    assert "train_loss" not in capsys.readouterr().out
    names = [*FIGURES[:2], "interpolation_3_5.png", FIGURES[3]]
    _check_figures(tmp_path / "new" / "folder", names)


def test_demo_rejects_a_1d_latent_space(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["demo", "--n-components", "1"])
    assert excinfo.value.code == 2
    assert "must be at least 2" in capsys.readouterr().err


def test_demo_on_mnist(mnist_dir, tmp_path):
    args = ["demo", "--dataset", "mnist", "--data-home", str(mnist_dir), "--epochs", "1", "--quiet"]
    assert main([*args, "--output", str(tmp_path)]) == 0
    _check_figures(tmp_path, FIGURES)
