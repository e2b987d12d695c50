"""
===================================================
Generating digits of a chosen class, and in between
===================================================

*Story:* a trained model has one latent region per class, so it can
generate new images of a class you pick, without a conditional decoder: draw
latent points from the class's region and decode them. And where two
regions share a border, the straight path from one class's region to the
other's decodes into a gradual morph.

After ``fit(X, y)``, :class:`~skvae.DisentangledVAE` keeps a Gaussian per
class, fitted to the latent means of that class's training samples
(``class_centroids_`` and ``class_covariances_``).

* ``sample(n_samples, y=label)`` decodes draws from a class's Gaussian;
  ``sample(n_samples)`` draws from the prior N(0, I) instead.
* ``interpolate(a, b, n_steps)`` decodes equally spaced points between two
  class centroids (or the latent means of two data rows).
* ``class_border(a, b)`` finds where the latent classifier switches from
  ``a`` to ``b`` on that path.
"""

# %%
# ``OMP_WAIT_POLICY=PASSIVE`` keeps torch's idle threads from busy-waiting
# (set before torch is imported); ``SKVAE_EXAMPLES_FAST=1`` shrinks the data
# and the training for the test suite.
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
FAST = os.environ.get("SKVAE_EXAMPLES_FAST") == "1"

# %%
# Training
# --------
# scikit-learn's 8x8 digits, pixels in [0, 1], so the binary cross-entropy
# reconstruction applies; ``image_shape`` tells the displays how to draw a
# row of 64 features.
import matplotlib.pyplot as plt
import numpy as np

from skvae import DisentangledVAE
from skvae.datasets import load_digits
from skvae.plotting import InterpolationDisplay

X, y = load_digits(return_X_y=True)
if FAST:
    X, y = X[:500], y[:500]
vae = DisentangledVAE(
    n_components=2,
    image_shape=(8, 8),
    reconstruction="bce",
    max_epochs=2 if FAST else 40,
    warmup_steps=0 if FAST else 50,
    random_state=0,
).fit(X, y)
print(f"training accuracy of the latent classifier: {vae.score(X, y):.3f}")

# %%
# Samples of each class
# ---------------------
# Eight decoded draws from each class's region, one row per digit, with the
# prior's draws (which belong to no class) in the last row.
n_per_class = 8
rows = [vae.sample(n_per_class, y=label, random_state=0)[0] for label in vae.classes_]
prior_samples, no_labels = vae.sample(n_per_class, random_state=0)
rows.append(prior_samples)
row_names = [str(label) for label in vae.classes_] + ["prior"]

fig, axes = plt.subplots(
    len(rows), n_per_class, figsize=(n_per_class * 0.6 + 0.6, len(rows) * 0.6 + 0.5),
    gridspec_kw={"wspace": 0.05, "hspace": 0.05}, squeeze=False,
)
fig.subplots_adjust(left=0.12, right=0.98, bottom=0.02, top=0.93)
for row_axes, samples, name in zip(axes, rows, row_names):
    for ax, sample in zip(row_axes, samples):
        ax.imshow(sample.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    row_axes[0].set_ylabel(name, rotation=0, labelpad=18, va="center")
_ = fig.suptitle("sample(8, y=digit), and sample(8) from the prior")

# %%
# ``sample`` returns the class of each sample too: the label you asked for,
# or None for draws from the prior.
X_sevens, y_sevens = vae.sample(50, y=7, random_state=1)
print("labels returned:", np.unique(y_sevens), "| prior:", no_labels)

# %%
# Do the samples look like their class? An independent judge, a logistic
# regression trained on the real digits' pixels, classifies 50 generated
# samples of each class.
from sklearn.linear_model import LogisticRegression

judge = LogisticRegression(max_iter=2000).fit(X, y)
recognised = []
for label in vae.classes_:
    X_generated, _ = vae.sample(50, y=label, random_state=1)
    recognised.append(np.mean(judge.predict(X_generated) == label))
fig, ax = plt.subplots(figsize=(6, 2.8), layout="constrained")
ax.bar([str(label) for label in vae.classes_], recognised)
ax.set(xlabel="class asked for", ylabel="share recognised", ylim=(0, 1),
       title="Generated samples the judge assigns to their class")
print(f"recognised by the judge: {np.mean(recognised):.0%} of all generated samples")

# %%
# From one class to another
# -------------------------
# ``interpolate`` returns the decoded path and its latent points.
X_path, Z_path = vae.interpolate(1, 7, n_steps=9)
print("latent points of the path:\n", Z_path.round(2))
fig, axes = plt.subplots(1, len(X_path), figsize=(len(X_path) * 0.8, 1.3))
for ax, image in zip(axes, X_path):
    ax.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    ax.axis("off")
_ = fig.suptitle("interpolate(1, 7, n_steps=9)")

# %%
# :class:`~skvae.plotting.InterpolationDisplay` draws the same path with the
# classifier's probabilities along it and the border between the two
# regions. The "1" and the "7" are neighbours in this latent space: the
# probability of every other digit stays below the larger of the two along
# the path (the dashed curve), so ``class_border`` finds a border of the two
# with no third class winning there. Not every pair is so: the path
# between two regions that do not touch crosses a third one, which
# ``class_border`` reports with ``other_class_wins``.
_ = InterpolationDisplay.from_estimator(vae, 1, 7, n_steps=11)

try:
    border = vae.class_border(1, 7)
except ValueError as exc:  # the classifier does not switch from 1 to 7 on the path
    print(exc)
else:
    print(f"border between 1 and 7 at t={border.t:.3f}, latent point {np.round(border.latent_point, 2)}")
    if border.other_class_wins:
        print(f"(another class is more probable there: p={border.max_other_proba:.2f})")

plt.show()
