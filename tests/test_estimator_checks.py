"""scikit-learn's own estimator checks, on small fast configurations."""

from sklearn.utils.estimator_checks import check_classifiers_train, parametrize_with_checks

from skvae import DisentangledVAE

from tiny import tiny_vae


def _small(**params):
    # Small enough for ~60 checks on 2 cores, big enough to pass
    # check_classifiers_train's accuracy bar on its blobs.
    return tiny_vae(**{"max_epochs": 20, "batch_size": 32, **params})


# Minibatch training with sampling noise: rows repeated are more rows, more
# optimizer steps and more noise draws than rows weighted, so the fits
# differ (as scikit-learn's MLPClassifier with solver="sgd" or "adam").
# tests/test_sample_weight.py checks the equivalence where it holds: the
# loss and gradients of a batch of all the rows.
_EXPECTED_FAILURES = {
    "check_sample_weight_equivalence_on_dense_data": (
        "minibatch SGD with sampling noise: weights equal repeated rows in each batch's "
        "loss and gradients (tests/test_sample_weight.py), not in a whole fit"
    ),
}


@parametrize_with_checks(
    [_small(), _small(n_components=3, kl="standard")], expected_failed_checks=lambda _: _EXPECTED_FAILURES
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_default_parameters_train_the_classifier_on_small_data():
    # The whole check suite on DisentangledVAE() takes minutes (measured: 60
    # of 60 pass). This check failed on earlier defaults: a fixed 30 epochs
    # with a 100-step warm-up left the head untrained on its 300 blobs.
    check_classifiers_train("DisentangledVAE", DisentangledVAE())


def test_short_fits_train_the_classifier_sooner_than_scikit_learns_mlp():
    # check_classifiers_train's blobs are 200 and 300 rows: at the default
    # batch of 256 an epoch is one or two optimizer steps, so max_epochs=5
    # is 5-10 steps, too few for any network trained by gradient steps.
    # scikit-learn's own MLPClassifier with the same hidden layer fails the
    # check up to max_iter=50 (measured: passes from 100); skvae passes at 50.
    check_classifiers_train("DisentangledVAE", DisentangledVAE(max_epochs=50, hidden_dims=(32,)))
