"""Training throughput of the project's two benchmark models in PyTorch, on the CPU or
an NVIDIA GPU: the reference that `scripts/bench-train.sh` compares the project's
trainer with.

--model classic follows PyTorch's examples/vae/main.py: 784-400-20-400-784, ReLU,
Bernoulli likelihood on continuous pixels (BCE summed over pixels) + KL, Adam 1e-3,
batch 128. --model default is the project's default conditional model (the same loss as
trainer/src/model.rs): classifier 784-256-10 whose softmax goes to the encoder
(794-400, latent 10) and the decoder (20-128-784), loss recon + KL + 10 x cross-entropy,
Adam 1e-3, batch 100. Data: real MNIST read from the IDX files in --data-dir (raw or
.gz), shuffled, each batch turned into float32 in [0, 1] as it is used (what the Rust
pipeline does). One untimed warm-up step, then --steps timed steps, --repeat times;
prints images/s per repeat and the median.

--device cuda: the model and the images (uploaded once, as bytes) on the first GPU,
each batch turned into float32 there; the clock is read after torch.cuda.synchronize(),
at the start and at the end, since the GPU runs the queued work asynchronously.
"""

import argparse
import gzip
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class Vae(nn.Module):
    def __init__(self, hidden=400, latent=20):
        super().__init__()
        self.fc1 = nn.Linear(784, hidden)
        self.fc21 = nn.Linear(hidden, latent)
        self.fc22 = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent, hidden)
        self.fc4 = nn.Linear(hidden, 784)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.fc4(F.relu(self.fc3(z))), mu, logvar


class ConditionalVae(nn.Module):
    def __init__(self, latent=10, classes=10):
        super().__init__()
        self.classifier = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, classes))
        self.enc = nn.Linear(784 + classes, 400)
        self.mu = nn.Linear(400, latent)
        self.logvar = nn.Linear(400, latent)
        self.dec = nn.Sequential(nn.Linear(latent + classes, 128), nn.ReLU(), nn.Linear(128, 784))

    def loss(self, x, labels):
        log_probs = F.log_softmax(self.classifier(x), dim=1)
        ce = F.nll_loss(log_probs, labels, reduction="sum")
        probs = log_probs.exp()
        h = F.relu(self.enc(torch.cat([x, probs], dim=1)))
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = self.dec(torch.cat([z, probs], dim=1))
        return loss_fn(logits, x, mu, logvar) + 10.0 * ce / x.shape[0]


def loss_fn(logits, x, mu, logvar):
    # Same quantity as the example's BCE on sigmoid outputs, in the numerically stable
    # form the Rust trainer uses too (bce_with_logits).
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return (bce + kld) / x.shape[0]


def read_idx(path):
    """The bytes of the IDX file `path`, or of its gzip-compressed `path.gz`."""
    for candidate, opener in ((path, open), (path + ".gz", gzip.open)):
        if os.path.exists(candidate):
            with opener(candidate, "rb") as f:
                return np.frombuffer(bytearray(f.read()), dtype=np.uint8)
    raise SystemExit(f"{path}: not found (nor {path}.gz); scripts/fetch-mnist.sh fetches MNIST")


def read_labels(path):
    raw = read_idx(path)
    if raw[:4].tobytes() != b"\x00\x00\x08\x01":
        raise SystemExit(f"{path}: not an IDX label file")
    return raw[8:].astype(np.int64)


def read_images(path):
    raw = read_idx(path)
    if raw[:4].tobytes() != b"\x00\x00\x08\x03":
        raise SystemExit(f"{path}: not an IDX image file")
    n = int.from_bytes(raw[4:8].tobytes(), "big")
    if raw.size != 16 + n * 784:
        raise SystemExit(f"{path}: {raw.size} bytes, not the 16 + {n} x 784 its header says")
    return raw[16:].reshape(n, 784)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default="data/mnist")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--model", choices=["classic", "default"], default="classic")
    p.add_argument("--batch-size", type=int, default=0, help="0: 128 classic, 100 default")
    p.add_argument("--threads", type=int, default=0, help="0: PyTorch's default")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: this PyTorch sees no CUDA GPU (torch.cuda.is_available() is False)")
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"

    def sync():
        # The GPU runs queued work asynchronously: wait for it before reading the clock.
        if cuda:
            torch.cuda.synchronize()

    # Uploaded once, as bytes; each batch becomes float32 where it is used.
    images = torch.from_numpy(read_images(f"{args.data_dir}/train-images-idx3-ubyte")).to(dev)
    labels = torch.from_numpy(read_labels(f"{args.data_dir}/train-labels-idx1-ubyte")).to(dev)
    bs = args.batch_size or (128 if args.model == "classic" else 100)
    rates = []
    for repeat in range(args.repeat):
        torch.manual_seed(repeat)
        model = (Vae() if args.model == "classic" else ConditionalVae()).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        order = torch.randperm(images.shape[0]).to(dev)
        batches = [order[i : i + bs] for i in range(0, images.shape[0] - bs + 1, bs)]

        def step(i):
            idx = batches[i % len(batches)]
            x = images[idx].float().div_(255.0)
            opt.zero_grad(set_to_none=True)
            if args.model == "classic":
                logits, mu, logvar = model(x)
                loss = loss_fn(logits, x, mu, logvar)
            else:
                loss = model.loss(x, labels[idx])
            loss.backward()
            opt.step()

        step(0)  # warm-up
        sync()
        start = time.perf_counter()
        for i in range(1, args.steps + 1):
            step(i)
        sync()
        rate = args.steps * bs / (time.perf_counter() - start)
        print(f"repeat {repeat + 1}: {rate:.0f} images/s", flush=True)
        rates.append(rate)
    if cuda:
        where = f"{torch.cuda.get_device_name(dev)}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    else:
        where = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    print(
        f"median {statistics.median(rates):.0f} images/s ({args.steps} steps of batch {bs}, "
        f"{args.repeat} repeats, {where})"
    )


if __name__ == "__main__":
    main()
