"""The command line: ``python -m skvae demo``."""

import itertools
import re

import pytest
from matplotlib.image import imread

from skvae.__main__ import choose_pair, main

# The interpolation figure is named after the pair the demo picks.
FIGURES = ["latent_space.png", "latent_traversal.png", "training_history.png"]
PAIR = re.compile(r"^interpolation: (\d+) -> (\d+)$", re.MULTILINE)


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
    assert "train_loss" in out  # skorch's epoch table
    # The pair it interpolates between, with the reason on the next lines.
    match = PAIR.search(out)
    assert match, out
    names = [*FIGURES, f"interpolation_{match[1]}_{match[2]}.png"]
    for name in names:
        assert str(tmp_path / name) in out
    _check_figures(tmp_path, names)
    # The interactive explorer, self-contained, next to the figures.
    explorer = tmp_path / "explorer.html"
    assert str(explorer) in out
    html = explorer.read_text(encoding="utf-8")
    assert "<script" in html and 'src="http' not in html and "skvaeExplorer" in html


def _shares_border(vae, a, b):
    try:
        border = vae.class_border(a, b)
    except ValueError:
        return None
    return None if border.other_class_wins else border


def test_choose_pair_picks_classes_that_share_a_border(vae):
    """(0, 8) when they share a border, else the most confident shared border."""
    pair, reasons = choose_pair(vae)
    assert reasons and all(isinstance(line, str) for line in reasons)
    border = _shares_border(vae, *pair)
    assert border is not None, (pair, reasons)
    if pair != (0, 8):
        assert _shares_border(vae, 0, 8) is None
        assert reasons[0].startswith("not 0 -> 8: ")
        index = list(vae.classes_).index(pair[0])
        for other in itertools.combinations(vae.classes_.tolist(), 2):
            other_border = _shares_border(vae, *other)
            if other_border is not None:
                other_index = list(vae.classes_).index(other[0])
                assert other_border.proba[other_index] <= border.proba[index] + 1e-12, other
    # A preferred pair that shares a border is kept.
    assert choose_pair(vae, preferred=pair)[0] == pair


def test_demo_interpolates_the_pair_asked_for(tmp_path, capsys):
    args = ["demo", "--epochs", "1", "--interpolate", "3", "5", "--quiet", "--output", str(tmp_path)]
    assert main(args) == 0
    assert "interpolation: 3 -> 5" in capsys.readouterr().out
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
    assert len(list(tmp_path.glob("interpolation_*_*.png"))) == 1
