"""A variational autoencoder on the bundled MNIST digits (MLP-based).

The encoder maps an image to the mean and log-variance of a Gaussian over a 16-number
code; a code drawn from it (the reparameterisation trick: ``mu + sigma * eps``) goes
through the decoder back to 784 pixel logits. The loss per image is the binary
cross-entropy of the reconstruction (summed over pixels) plus the KL divergence of
the code distribution from N(0, 1). Prints the loss per epoch and on the held-out
digits, and saves reconstructions (``<out>/vae_reconstructions.png``: each row of
originals has their reconstructions below it) and digits decoded from random codes
(``<out>/vae_samples.png``).

    python examples/vae.py [--epochs 20] [--gpu] [--out out]
"""

import numpy as np
from common import Timer, limit, parser, positive_int, save_image_grid, setup, to_device

import zerograd
import zerograd.functions as F
import zerograd.layers as L
from zerograd import cuda, optimizers
from zerograd.dataloaders import DataLoader
from zerograd.datasets import MNISTSubset
from zerograd.models import Model
from zerograd.progress import progress


class VAE(Model):
    def __init__(self, latent_size: int = 16, hidden_size: int = 400):
        super().__init__()
        self.latent_size = latent_size
        self.enc = L.Linear(hidden_size)
        self.enc_out = L.Linear(2 * latent_size)  # mean and log-variance
        self.dec = L.Linear(hidden_size)
        self.dec_out = L.Linear(784)

    def encode(self, x):
        mu, logvar = F.split(self.enc_out(F.relu(self.enc(x))), 2, axis=1)
        return mu, logvar

    def decode(self, z):
        """Pixel logits (apply ``F.sigmoid`` for an image)."""
        return self.dec_out(F.relu(self.dec(z)))

    def loss(self, x, eps):
        """Mean over the batch of reconstruction BCE (summed over pixels) plus KL."""
        mu, logvar = self.encode(x)
        z = mu + F.exp(0.5 * logvar) * eps
        # sigmoid_cross_entropy averages over all elements: times 784 sums the pixels.
        reconstruction = F.sigmoid_cross_entropy(self.decode(z), x) * x.shape[1]
        kl = -0.5 * F.sum(1 + logvar - mu * mu - F.exp(logvar)) / len(x)
        return reconstruction + kl


def main(argv=None) -> None:
    p = parser("A variational autoencoder on the bundled MNIST digits.", 20)
    p.add_argument("--batch-size", type=positive_int, default=100)
    p.add_argument("--latent-size", type=positive_int, default=16)
    args = p.parse_args(argv)
    setup(args)
    rng = np.random.default_rng(args.seed)

    def normal(n: int):
        return to_device(rng.standard_normal((n, args.latent_size), dtype=np.float32),
                         args.gpu)

    train_set = limit(MNISTSubset(train=True), args.limit)
    test_set = limit(MNISTSubset(train=False), args.limit)
    loader = DataLoader(train_set, args.batch_size, gpu=args.gpu, seed=args.seed)
    test_loader = DataLoader(test_set, args.batch_size, shuffle=False, gpu=args.gpu)
    model = VAE(args.latent_size)
    if args.gpu:
        model.to_gpu()
    optimizer = optimizers.Adam().setup(model)

    timer = Timer()
    for epoch in range(1, args.epochs + 1):
        sum_loss = 0.0
        for x, _ in progress(loader, desc=f"epoch {epoch}", unit="batch"):
            loss = model.loss(x, normal(len(x)))
            model.cleargrads()
            loss.backward()
            optimizer.update()
            sum_loss += float(loss.data) * len(x)
        test_loss = 0.0
        with zerograd.no_grad():
            for x, _ in test_loader:
                test_loss += float(model.loss(x, normal(len(x))).data) * len(x)
        print(f"epoch {epoch}  loss {sum_loss / len(train_set):.2f}  "
              f"test loss {test_loss / len(test_set):.2f}  ({timer():.1f}s)")

    print(f"result: loss {sum_loss / len(train_set):.2f}  "
          f"test loss {test_loss / len(test_set):.2f}  ({timer():.1f}s)")
    with zerograd.no_grad():
        # up to 4 rows of 8 held-out digits, each row followed by its reconstructions
        per_row = min(8, len(test_set))
        n = min(32, len(test_set) // per_row * per_row)
        x, _ = DataLoader(test_set, n, shuffle=False, gpu=args.gpu).next()
        mu, _ = model.encode(x)
        reconstructed = F.sigmoid(model.decode(mu)).data
        xp = cuda.get_array_module(x)
        rows = (n // per_row, per_row, 784)
        pairs = xp.stack([x.reshape(rows), reconstructed.reshape(rows)], axis=1)
        save_image_grid(pairs.reshape(2 * n, 784), args, "vae_reconstructions.png",
                        rows=per_row)
        samples = F.sigmoid(model.decode(normal(64))).data
        save_image_grid(samples, args, "vae_samples.png")


if __name__ == "__main__":
    main()
