"""scikit-learn's own estimator checks, on small fast configurations."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skvae import DisentangledVAE


def _small(**params):
    # Small enough for ~60 checks on 2 cores, big enough to pass
    # check_classifiers_train's accuracy bar on its blobs.
    defaults = dict(
        hidden_dims=(16,),
        classifier_hidden=(8,),
        max_epochs=20,
        batch_size=32,
        warmup_steps=0,
        lr=1e-2,
        random_state=0,
    )
    defaults.update(params)
    return DisentangledVAE(**defaults)


@parametrize_with_checks([_small(), _small(n_components=3, kl="standard")])
def test_sklearn_compatible(estimator, check):
    check(estimator)
