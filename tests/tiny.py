"""A tiny DisentangledVAE for tests that exercise training mechanics, not quality."""

from skvae import DisentangledVAE


def tiny_vae(**params):
    """Small, fast, seeded; ``params`` override the defaults below."""
    defaults = dict(
        hidden_dims=(16,),
        classifier_hidden=(8,),
        max_epochs=3,
        batch_size=64,
        warmup_steps=0,
        lr=1e-2,
        random_state=0,
    )
    defaults.update(params)
    return DisentangledVAE(**defaults)
