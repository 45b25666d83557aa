"""A generative adversarial network on the bundled MNIST digits (MLP-based).

The generator turns 64 Gaussian numbers into a 28x28 image; the discriminator scores
images as real or generated. They are trained in turns, each with its own Adam
(lr 2e-4, beta1 0.5) and ``F.sigmoid_cross_entropy`` on the discriminator's logits.
Prints both losses and the discriminator's mean verdicts per epoch and saves 64
generated digits as ``<out>/gan_samples.png``.

    python examples/gan.py [--epochs 50] [--gpu] [--out out]
"""

import numpy as np
from common import Timer, at_least, limit, parser, positive_int, save_image_grid, setup, to_device

import zerograd
import zerograd.functions as F
import zerograd.layers as L
from zerograd import cuda, optimizers
from zerograd.dataloaders import DataLoader
from zerograd.datasets import MNISTSubset
from zerograd.models import Model
from zerograd.progress import progress


class Generator(Model):
    """(N, z_size) noise -> (N, 784) images in [0, 1]."""

    def __init__(self, hidden_size: int = 256):
        super().__init__()
        self.fc1 = L.Linear(hidden_size)
        self.bn1 = L.BatchNorm()  # batch norm keeps the generator from collapsing early
        self.fc2 = L.Linear(2 * hidden_size)
        self.bn2 = L.BatchNorm()
        self.fc3 = L.Linear(784)

    def forward(self, z):
        h = F.relu(self.bn1(self.fc1(z)))
        h = F.relu(self.bn2(self.fc2(h)))
        return F.sigmoid(self.fc3(h))


class Discriminator(Model):
    """(N, 784) images -> (N, 1) logits of "real"."""

    def __init__(self, hidden_size: int = 256):
        super().__init__()
        self.fc1 = L.Linear(2 * hidden_size)
        self.fc2 = L.Linear(hidden_size)
        self.fc3 = L.Linear(1)

    def forward(self, x):
        # Dropout keeps the discriminator from memorising the 4,000 real digits.
        h = F.dropout(F.leaky_relu(self.fc1(x)), 0.3)
        h = F.dropout(F.leaky_relu(self.fc2(h)), 0.3)
        return self.fc3(h)


def main(argv=None) -> None:
    p = parser("An MLP GAN on the bundled MNIST digits.", 50)
    p.add_argument("--batch-size", type=at_least(2), default=64,
                   help="at least 2: the generator's batch norm needs two samples")
    p.add_argument("--z-size", type=positive_int, default=64)
    args = p.parse_args(argv)
    if args.limit == 1:
        p.error("--limit must be at least 2 for the GAN (batch norm needs two samples)")
    setup(args)
    rng = np.random.default_rng(args.seed)

    def noise(n: int):
        return to_device(rng.standard_normal((n, args.z_size), dtype=np.float32), args.gpu)

    train_set = limit(MNISTSubset(train=True), args.limit)
    loader = DataLoader(train_set, args.batch_size, gpu=args.gpu, seed=args.seed)
    gen, dis = Generator(), Discriminator()
    if args.gpu:
        gen.to_gpu()
        dis.to_gpu()
    opt_gen = optimizers.Adam(alpha=2e-4, beta1=0.5).setup(gen)
    opt_dis = optimizers.Adam(alpha=2e-4, beta1=0.5).setup(dis)
    fixed_z = noise(64)  # drawn before training: the grid does not depend on --epochs

    timer = Timer()
    for epoch in range(1, args.epochs + 1):
        sums, count = np.zeros(4), 0
        for x, _ in progress(loader, desc=f"epoch {epoch}", unit="batch"):
            n, xp = len(x), cuda.get_array_module(x)
            if n < 2:
                continue  # a last batch of one: batch norm has no statistics for it
            real, fake = xp.ones((n, 1), np.float32), xp.zeros((n, 1), np.float32)
            smooth = xp.full((n, 1), 0.9, np.float32)  # one-sided label smoothing

            # The discriminator: real digits -> 1, generated ones -> 0. ``.data`` passes
            # the images as plain arrays, so no gradient flows into the generator.
            x_fake = gen(noise(n))
            y_real, y_fake = dis(x), dis(x_fake.data)
            loss_dis = F.sigmoid_cross_entropy(y_real, smooth) + \
                F.sigmoid_cross_entropy(y_fake, fake)
            dis.cleargrads()
            loss_dis.backward()
            opt_dis.update()

            # The generator: make the discriminator answer 1 for generated digits.
            y_fake = dis(x_fake)
            loss_gen = F.sigmoid_cross_entropy(y_fake, real)
            gen.cleargrads()
            loss_gen.backward()
            opt_gen.update()

            sums += n * np.array([float(loss_dis.data), float(loss_gen.data),
                                  float(F.sigmoid(y_real).data.mean()),
                                  float(F.sigmoid(y_fake).data.mean())])
            count += n
        d_loss, g_loss, d_real, d_fake = sums / count
        print(f"epoch {epoch}  D loss {d_loss:.4f}  G loss {g_loss:.4f}  "
              f"D(real) {d_real:.3f}  D(fake) {d_fake:.3f}  ({timer():.1f}s)")

    print(f"result: D loss {d_loss:.4f}  G loss {g_loss:.4f}  ({timer():.1f}s)")
    with zerograd.no_grad(), zerograd.test_mode():
        samples = gen(fixed_z)
    save_image_grid(samples.data, args, "gan_samples.png")


if __name__ == "__main__":
    main()
