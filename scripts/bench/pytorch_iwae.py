"""The importance-weighted estimate of -log p(x) (Burda et al. 2016) in PyTorch, on the
CPU, from a run folder's own weights: the reference that `scripts/bench-iwae.sh` times
the project's `vae eval --iwae-k` computation against (`trainer/examples/iwae_bench.rs`).

--run DIR: a run folder of an unconditional dense model (its `config.json` and
`checkpoint.safetensors`, read here without other packages). The same computation as
trainer/src/eval/iwae.rs: the first --images test images binarized once by Bernoulli
draws, the encoder once per image, --k draws of z per image from q(z|x), the decoder on
10 images x 500 draws at a time (rows of [z]), log w = log p(x|z) + log p(z) - log q(z|x)
(their 2 pi terms cancel), and -log mean_k w per image, averaged. Float32, under
torch.no_grad(), PyTorch's default threads (one per core).

--mode eager (PyTorch's ordinary execution) or compile (the pass's function through
torch.compile, compiled in an untimed warm-up pass). Prints images/s per repeat and
their median, with the estimate and the PyTorch version.
"""

import argparse
import json
import os
import statistics
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F

from pytorch_vae import read_idx

IMAGES_PER_PASS = 10
DRAWS_PER_PASS = 500


def read_safetensors(path):
    """Every tensor of a safetensors file, as float32 torch tensors by name."""
    with open(path, "rb") as f:
        raw = f.read()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    body = raw[8 + length :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise SystemExit(f"{path}: {name} is {info['dtype']}, expected F32")
        start, end = info["data_offsets"]
        values = np.frombuffer(body[start:end], dtype="<f4").reshape(info["shape"])
        out[name] = torch.from_numpy(values.copy())
    return out


def stack(weights, prefix, count):
    """The dense layers `prefix.0 .. prefix.{count-1}`, each (weight (in, out), bias)."""
    return [(weights[f"{prefix}.{i}.weight"], weights[f"{prefix}.{i}.bias"]) for i in range(count)]


def forward(layers, x, act, activate_last):
    for i, (w, b) in enumerate(layers):
        x = torch.addmm(b, x, w)
        if i < len(layers) - 1 or activate_last:
            x = act(x)
    return x


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True)
    p.add_argument("--data-dir", default="data/mnist")
    p.add_argument("--k", type=int, default=5000)
    p.add_argument("--images", type=int, default=20)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--mode", choices=["eager", "compile"], default="eager")
    args = p.parse_args()

    config = json.load(open(os.path.join(args.run, "config.json")))["model"]
    if config["classes"] != 0 or config.get("convolutional"):
        raise SystemExit("--run: an unconditional dense model is needed (the bound of a conditional one is not p(x))")
    weights = read_safetensors(os.path.join(args.run, "checkpoint.safetensors"))
    act = {"relu": F.relu, "sigmoid": torch.sigmoid}[config["activation"]]
    encoder = stack(weights, "encoder", len(config["encoder_hidden"]))
    mu, logvar = (weights["mu.weight"], weights["mu.bias"]), (weights["logvar.weight"], weights["logvar.bias"])
    decoder = stack(weights, "decoder", len(config["decoder_hidden"]) + 1)
    latent = config["latent"]

    raw = read_idx(os.path.join(args.data_dir, "t10k-images-idx3-ubyte"))
    pixels = torch.from_numpy(raw[16:].reshape(-1, 784)[: args.images].astype(np.float32) / 255.0)
    torch.manual_seed(0)
    x_all = torch.bernoulli(pixels)

    def log_px(z, x, m):
        """log p(x|z) of each row of z, rows r*m..(r+1)*m belonging to image r of x."""
        logits = forward(decoder, z, act, False)
        target = x.repeat_interleave(m, dim=0)
        return -F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(1)

    step = torch.compile(log_px) if args.mode == "compile" else log_px

    def estimate(count):
        total = 0.0
        for start in range(0, count, IMAGES_PER_PASS):
            x = x_all[start : min(start + IMAGES_PER_PASS, count)]
            n = x.shape[0]
            h = forward(encoder, x, act, True)
            m_, lv = torch.addmm(mu[1], h, mu[0]), torch.addmm(logvar[1], h, logvar[0])
            std = (0.5 * lv).exp()
            log_w = []
            done = 0
            while done < args.k:
                m = min(DRAWS_PER_PASS, args.k - done)
                eps = torch.randn(n, m, latent)
                z = m_[:, None, :] + std[:, None, :] * eps
                # log p(z) - log q(z|x), the 2 pi terms cancelling.
                lpq = -0.5 * (z * z).sum(2) + 0.5 * (eps * eps + lv[:, None, :]).sum(2)
                lp = step(z.reshape(n * m, latent), x, m).reshape(n, m)
                log_w.append(lp + lpq)
                done += m
            log_w = torch.cat(log_w, 1)
            total -= (torch.logsumexp(log_w, 1) - torch.log(torch.tensor(float(args.k)))).sum().item()
        return total / count

    with torch.no_grad():
        if args.mode == "compile":
            estimate(min(args.images, IMAGES_PER_PASS))  # compiles, untimed
        rates = []
        for r in range(args.repeat):
            started = time.perf_counter()
            value = estimate(args.images)
            rate = args.images / (time.perf_counter() - started)
            rates.append(rate)
            print(f"repeat {r + 1}: {rate:.2f} images/s, estimate {value:.3f}")
    print(
        f"median {statistics.median(rates):.2f} images/s (PyTorch {torch.__version__}, {args.mode}, "
        f"{torch.get_num_threads()} threads, k {args.k}, {args.images} images)"
    )


if __name__ == "__main__":
    main()
