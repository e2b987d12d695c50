"""scikit-learn's own estimator checks, on small fast configurations."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from tiny import tiny_vae


def _small(**params):
    # Small enough for ~60 checks on 2 cores, big enough to pass
    # check_classifiers_train's accuracy bar on its blobs.
    return tiny_vae(**{"max_epochs": 20, "batch_size": 32, **params})


@parametrize_with_checks([_small(), _small(n_components=3, kl="standard")])
def test_sklearn_compatible(estimator, check):
    check(estimator)
