"""Training throughput of the project's benchmark models in PyTorch, on the CPU or an
NVIDIA GPU: the reference that `scripts/bench-train.sh` and `gpu-check.sh` compare the
project's trainer with.

--config FILE: the model and loss as the trainer defines them, printed by `vae config
--preset NAME` (the presets are defined once, in trainer/src/foundation/config.rs):
classic, the VAE of PyTorch's examples/vae/main.py (784-400-20-400-784); default, the
project's conditional model. The network is built from the file's layer widths, the
same way trainer/src/nn/model.rs builds it: for a conditional model a classifier head
whose softmax goes to the encoder (when `encoder_sees_label`) and to the decoder; the
loss is the Bernoulli cross-entropy summed over continuous pixels + KL, plus
`class_weight` x the classifier's cross-entropy, per image; Adam at the file's learning
rate and batch size. Data: real MNIST read from the IDX files in --data-dir (raw or
.gz), shuffled, each batch turned into float32 in [0, 1] as it is used (what the Rust
pipeline does). One untimed warm-up step, then --steps timed steps, --repeat times;
prints images/s per repeat and the median, with the PyTorch version.

--device cuda: the model and the images (uploaded once, as bytes) on the first GPU,
each batch turned into float32 there; the clock is read after torch.cuda.synchronize(),
at the start and at the end, since the GPU runs the queued work asynchronously.
"""

import argparse
import gzip
import json
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def mlp(sizes, activation, last_activation):
    """Dense layers `sizes[0] -> sizes[1] -> ...`, `activation` after each but the last
    (and after the last too when `last_activation`)."""
    layers = []
    for k, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if k < len(sizes) - 2 or last_activation:
            layers.append(activation())
    return nn.Sequential(*layers)


class ConfiguredVae(nn.Module):
    """The trainer's VAE for the `model` part of a `vae config` file."""

    def __init__(self, model, class_weight):
        super().__init__()
        act = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}[model["activation"]]
        latent, classes = model["latent"], model["classes"]
        self.classes, self.class_weight = classes, class_weight
        self.sees_label = classes > 0 and model["encoder_sees_label"]
        if classes:
            self.classifier = mlp([784, *model["classifier_hidden"], classes], act, False)
        enc_in = 784 + (classes if self.sees_label else 0)
        self.enc = mlp([enc_in, *model["encoder_hidden"]], act, True)
        width = (model["encoder_hidden"] or [enc_in])[-1]
        self.mu = nn.Linear(width, latent)
        self.logvar = nn.Linear(width, latent)
        self.dec = mlp([latent + classes, *model["decoder_hidden"], 784], act, False)

    def loss(self, x, labels):
        extra = 0.0
        if self.classes:
            log_probs = F.log_softmax(self.classifier(x), dim=1)
            ce = F.nll_loss(log_probs, labels, reduction="sum")
            extra = self.class_weight * ce / x.shape[0]
            probs = log_probs.exp()
        h = self.enc(torch.cat([x, probs], dim=1) if self.sees_label else x)
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = self.dec(torch.cat([z, probs], dim=1) if self.classes else z)
        return loss_fn(logits, x, mu, logvar) + extra


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
    p.add_argument("--config", required=True, help="the model, from `vae config --preset NAME`")
    p.add_argument("--batch-size", type=int, default=0, help="0: the config's")
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
    with open(args.config) as f:
        config = json.load(f)
    bs = args.batch_size or config["batch_size"]
    rates = []
    for repeat in range(args.repeat):
        torch.manual_seed(repeat)
        model = ConfiguredVae(config["model"], config["class_weight"]).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=config["learning_rate"])
        order = torch.randperm(images.shape[0]).to(dev)
        batches = [order[i : i + bs] for i in range(0, images.shape[0] - bs + 1, bs)]

        def step(i):
            idx = batches[i % len(batches)]
            x = images[idx].float().div_(255.0)
            opt.zero_grad(set_to_none=True)
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
