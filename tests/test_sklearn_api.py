"""scikit-learn's API around the estimator: the HTML repr's doc link,
``set_output`` (pandas, polars) and ``FrozenEstimator``."""

import copy
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_html_repr
from tiny import tiny_vae

from skvae import DisentangledVAE
from skvae.estimator import DOCS_URL

REPO = Path(__file__).resolve().parents[1]


def test_html_repr_links_to_skvaes_api_page():
    link = DOCS_URL + "gen_modules/skvae.DisentangledVAE.html"
    assert DisentangledVAE()._get_doc_link() == link
    assert f'href="{link}"' in estimator_html_repr(make_pipeline(StandardScaler(), DisentangledVAE()))
    # The page the link names: docs/api.rst documents the class from the
    # package (skvae.DisentangledVAE) into gen_modules/.
    api = (REPO / "docs" / "api.rst").read_text(encoding="utf-8")
    assert re.search(r"\.\. currentmodule:: skvae\n\n\.\. autosummary::\n   :toctree: gen_modules/\n[^\n]*\n\n   DisentangledVAE\n", api)


@pytest.mark.parametrize("library", ["pandas", "polars"])
def test_set_output_names_the_latent_columns(library, digits):
    frames = pytest.importorskip(library)
    names = [f"pixel{i}" for i in range(64)]
    if library == "pandas":
        X = frames.DataFrame(np.asarray(digits[0]), columns=names, index=np.arange(300) + 1000)
    else:
        X = frames.DataFrame(np.asarray(digits[0]), schema=names)
    estimator = tiny_vae(max_epochs=1).set_output(transform=library).fit(X, digits[1])
    Z = estimator.transform(X)
    assert isinstance(Z, frames.DataFrame)
    assert list(Z.columns) == list(estimator.get_feature_names_out()) == ["disentangledvae0", "disentangledvae1"]
    np.testing.assert_array_equal(Z.to_numpy(), estimator.set_output(transform="default").transform(X))
    if library == "pandas":
        assert Z.index.equals(X.index)  # the input's index, as scikit-learn's transformers keep it


def test_pipeline_set_output_pandas_reaches_the_vae(digits):
    pd = pytest.importorskip("pandas")
    pipe = make_pipeline(StandardScaler(), tiny_vae(max_epochs=1)).set_output(transform="pandas").fit(*digits)
    Z = pipe.transform(pd.DataFrame(np.asarray(digits[0])))
    assert list(Z.columns) == ["disentangledvae0", "disentangledvae1"]


def test_frozen_estimator_in_a_pipeline_is_not_refitted(vae, digits):
    X, y = digits
    frozen_vae = copy.deepcopy(vae)
    weights = {name: tensor.clone() for name, tensor in frozen_vae.net_.module_.state_dict().items()}
    net, epochs = frozen_vae.net_, len(frozen_vae.history_)
    pipe = make_pipeline(FrozenEstimator(frozen_vae), LogisticRegression()).fit(X, y)
    # The pipeline's fit fitted the classifier on the frozen model's latent means...
    assert pipe[-1].n_features_in_ == 2
    np.testing.assert_array_equal(pipe[:-1].transform(X), vae.transform(X))
    # ...and left the model as it was: same network, weights and history.
    assert frozen_vae.net_ is net and len(frozen_vae.history_) == epochs
    for name, tensor in frozen_vae.net_.module_.state_dict().items():
        assert bool((tensor == weights[name]).all()), name
