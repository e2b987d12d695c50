"""The torch modules: input dropout of the VAE module."""

import torch
from torch import nn

from skvae.modules import DisentangledVAEModule, MLPDecoder, MLPEncoder


class RecordingEncoder(nn.Module):
    """Returns a zero code and keeps the batch it saw."""

    def forward(self, X):
        self.seen = X
        zeros = torch.zeros(len(X), 2)
        return zeros, zeros


def test_input_dropout_masks_the_encoders_input_from_the_generator():
    X = torch.rand(400, 50) + 0.5
    module = DisentangledVAEModule(RecordingEncoder(), MLPDecoder(2, (8,), 50), input_dropout=0.25).train()
    module(X, generator=torch.Generator().manual_seed(0))
    seen = module.encoder.seen
    dropped = seen == 0
    assert abs(dropped.float().mean().item() - 0.25) < 0.01
    torch.testing.assert_close(seen[~dropped], X[~dropped] / 0.75)
    module(X, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(module.encoder.seen, seen)  # the same generator, the same mask


def test_input_dropout_is_off_in_evaluation_and_at_zero():
    torch.manual_seed(0)
    encoder, decoder = MLPEncoder(50, (8,), 2), MLPDecoder(2, (8,), 50)
    X = torch.rand(20, 50)
    with_dropout = DisentangledVAEModule(encoder, decoder, input_dropout=0.5).eval()
    without = DisentangledVAEModule(encoder, decoder, input_dropout=0.0).eval()
    for a, b in zip(with_dropout(X), without(X)):
        if a is not None:
            torch.testing.assert_close(a, b)
    # At 0 nothing is drawn: the generator's stream is the reparameterisation's alone.
    generator = torch.Generator().manual_seed(0)
    without.train()(X, generator=generator)
    reference = torch.Generator().manual_seed(0)
    torch.randn(20, 2, generator=reference)
    assert torch.equal(generator.get_state(), reference.get_state())
