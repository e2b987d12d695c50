"""The command line: ``python -m skvae demo``."""

import itertools

import pytest
from matplotlib.image import imread

from skvae.__main__ import describe_border, main

# And interpolation_<a>_<b>.png, named after the pair asked for.
FIGURES = ["latent_space.png", "latent_traversal.png", "training_history.png"]


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
    assert "trained 2 epochs in" in out
    assert "head accuracy on the test split" in out
    assert "reconstruction MSE per feature" in out
    assert "epoch 2/2: loss" in out  # verbose=1 off a terminal: plain progress lines
    # By default it asks for a border between 0 and 8 and draws the path.
    assert "class_neighbors=[(0, 8)]" in out
    assert "interpolation: 0 -> 8" in out
    names = [*FIGURES, "interpolation_0_8.png"]
    for name in names:
        assert str(tmp_path / name) in out
    _check_figures(tmp_path, names)
    # The interactive explorer, self-contained, next to the figures.
    explorer = tmp_path / "explorer.html"
    assert str(explorer) in out
    html = explorer.read_text(encoding="utf-8")
    assert "<script" in html and 'src="http' not in html and "skvaeExplorer" in html


def test_describe_border_says_whether_a_third_class_lies_between(vae):
    for a, b in itertools.combinations(vae.classes_.tolist(), 2):
        text = describe_border(vae, a, b)
        try:
            border = vae.class_border(a, b)
        except ValueError:
            assert "does not switch" in text
            continue
        if border.other_class_wins:
            assert text.startswith(f"the segment from {a} to {b} crosses the region of ")
        else:
            assert text.startswith(f"{a} and {b} share a border (at t={border.t:.2f}")


def test_demo_interpolates_the_pair_asked_for(tmp_path, capsys):
    args = ["demo", "--epochs", "1", "--interpolate", "3", "5", "--quiet", "--output", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "class_neighbors=[(3, 5)]" in out
    assert "interpolation: 3 -> 5" in out
    assert (tmp_path / "interpolation_3_5.png").is_file()
    with pytest.raises(SystemExit, match="not among the classes"):
        main(["demo", "--epochs", "1", "--interpolate", "3", "12", "--quiet", "--output", str(tmp_path)])


def test_demo_with_more_latent_dimensions(tmp_path, capsys):
    args = ["demo", "--epochs", "1", "--n-components", "3", "--interpolate", "3", "5", "--quiet"]
    assert main([*args, "--output", str(tmp_path / "new" / "folder")]) == 0
    assert "train_loss" not in capsys.readouterr().out
    _check_figures(tmp_path / "new" / "folder", [*FIGURES, "interpolation_3_5.png"])


def test_demo_rejects_a_1d_latent_space(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["demo", "--n-components", "1"])
    assert excinfo.value.code == 2
    assert "must be at least 2" in capsys.readouterr().err


def test_demo_on_mnist(mnist_dir, tmp_path):
    args = ["demo", "--dataset", "mnist", "--data-home", str(mnist_dir), "--epochs", "1", "--quiet"]
    assert main([*args, "--output", str(tmp_path)]) == 0
    _check_figures(tmp_path, FIGURES)
    assert (tmp_path / "interpolation_0_8.png").is_file()


def test_demo_without_mnist_says_how_to_get_it_and_writes_nothing(tmp_path, capsys):
    data_home = tmp_path / "no" / "such" / "folder"
    with pytest.raises(SystemExit) as excinfo:
        main(["demo", "--dataset", "mnist", "--data-home", str(data_home), "--output", str(tmp_path / "out")])
    message = str(excinfo.value.code)
    assert "not found" in message and str(data_home) in message and "download" in message
    # No download was tried and no folder was made: not the data home, not the output.
    assert sorted(p.name for p in tmp_path.iterdir()) == []
