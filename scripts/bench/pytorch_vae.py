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
pipeline does). Untimed warm-up steps (--warmup), then --steps timed steps, --repeat
times; prints images/s per repeat and the median, with the mode, the Adam variant and the
PyTorch version.

--mode: how the training step (the batch's conversion, forward, loss, backward and Adam's
step) runs; the data, the model and the loss are the same in every mode.
  eager            PyTorch's ordinary execution (the default); one warm-up step.
  compile          the step function through torch.compile (Inductor), its default mode.
                   Dynamo breaks the graph at `zero_grad`, at `loss.backward()` and
                   around the optimizer's step (PyTorch's optimizers ask for that): the
                   forward graph (with its backward, compiled by AOTAutograd) and
                   Adam's step are compiled separately. Compilation happens in the
                   warm-up steps (3 by default), outside the timed region; each repeat
                   compiles its own model afresh.
  max-autotune     the same with mode="max-autotune": Inductor benchmarks kernel
                   variants while compiling (which can take minutes) and, on CUDA, runs
                   the compiled graphs as CUDA graphs.
  reduce-overhead  the same with mode="reduce-overhead": CUDA graphs on CUDA; on the CPU
                   the same as compile.
  graph            CUDA only: the whole step captured by hand in one CUDA graph
                   (torch.cuda.graph, Adam with capturable=True, the batch's indices in
                   a static tensor that each step overwrites before g.replay(); the
                   noise drawn inside the graph, which PyTorch's CUDA graph RNG
                   supports). The warm-up steps run eagerly on a side stream before the
                   capture, then one untimed replay.
--adam: default (PyTorch's own choice), foreach or fused (torch.optim.Adam's foreach=True
or fused=True).

A configuration that fails (an exception while compiling or running) prints
`error: MODE/ADAM: TYPE: MESSAGE'S FIRST LINE` on stdout instead of the median, its
traceback on stderr, and exits with status 3.

--device cuda: the model and the images (uploaded once, as bytes) on the first GPU,
each batch turned into float32 there; the clock is read after torch.cuda.synchronize(),
at the start and at the end, since the GPU runs the queued work asynchronously.
"""

import argparse
import gzip
import json
import os
import statistics
import sys
import time
import traceback

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


def convolutions(layers, act, side, channels, transposed):
    """The trainer's convolutions (trainer/src/nn/conv.rs) on a `side` x `side` map of
    `channels`, `act` after each but a transposed stack's last: without padding down;
    up, TensorFlow's 'same' padding, which for stride 2 is PyTorch's padding 1 with
    output padding 1 shifted by one pixel (the same multiply-accumulates)."""
    out = [nn.Unflatten(1, (channels, side, side))]
    for k, layer in enumerate(layers):
        c, kernel, stride = layer["channels"], layer["kernel"], layer["stride"]
        if transposed:
            pad = (kernel - stride + 1) // 2
            out.append(nn.ConvTranspose2d(channels, c, kernel, stride, pad, stride - 1))
        else:
            out.append(nn.Conv2d(channels, c, kernel, stride))
        if not transposed or k < len(layers) - 1:
            out.append(act())
        channels = c
    return nn.Sequential(*out, nn.Flatten())


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
        conv = model.get("convolutional")
        # The encoder's convolutions (if any) on the image; its dense layers on their
        # output, beside the class probabilities when it sees the label.
        self.down = nn.Identity()
        if conv:
            self.down = convolutions(conv["encoder"], act, 28, 1, False)
        with torch.no_grad():
            enc_in = self.down(torch.zeros(1, 784)).shape[1] + (classes if self.sees_label else 0)
        self.enc = mlp([enc_in, *model["encoder_hidden"]], act, True)
        width = (model["encoder_hidden"] or [enc_in])[-1]
        self.mu = nn.Linear(width, latent)
        self.logvar = nn.Linear(width, latent)
        if conv:
            side, channels = conv["map_side"], conv["map_channels"]
            dense = mlp([latent + classes, *model["decoder_hidden"], side * side * channels], act, True)
            self.dec = nn.Sequential(dense, convolutions(conv["decoder"], act, side, channels, True))
        else:
            self.dec = mlp([latent + classes, *model["decoder_hidden"], 784], act, False)

    def loss(self, x, labels):
        extra = 0.0
        if self.classes:
            log_probs = F.log_softmax(self.classifier(x), dim=1)
            ce = F.nll_loss(log_probs, labels, reduction="sum")
            extra = self.class_weight * ce / x.shape[0]
            probs = log_probs.exp()
        features = self.down(x)
        h = self.enc(torch.cat([features, probs], dim=1) if self.sees_label else features)
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


# The --adam choices: the keyword arguments each adds to torch.optim.Adam.
ADAM = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}
# The --mode choices that go through torch.compile, and the mode each passes it.
COMPILE_MODES = {"compile": None, "max-autotune": "max-autotune", "reduce-overhead": "reduce-overhead"}
MODES = ["eager", *COMPILE_MODES, "graph"]


def error_text(e):
    """The exception's type and the first line of its message (with the next line too
    where the first only introduces it, as in "backend='inductor' raised:")."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    text = " ".join(lines[:2]) if len(lines) > 1 and lines[0].endswith(":") else (lines or [""])[0]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default="data/mnist")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--config", required=True, help="the model, from `vae config --preset NAME`")
    p.add_argument("--batch-size", type=int, default=0, help="0: the config's")
    p.add_argument("--threads", type=int, default=0, help="0: PyTorch's default")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--mode", choices=MODES, default="eager", help="how the training step runs (see above)")
    p.add_argument("--adam", choices=list(ADAM), default="default", help="Adam's implementation")
    p.add_argument(
        "--warmup", type=int, default=0, help="untimed steps per repeat; 0: 1 in eager mode, 3 in the others"
    )
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: this PyTorch sees no CUDA GPU (torch.cuda.is_available() is False)")
    dev = torch.device(args.device)
    # Uploaded once, as bytes; each batch becomes float32 where it is used.
    images = torch.from_numpy(read_images(f"{args.data_dir}/train-images-idx3-ubyte")).to(dev)
    labels = torch.from_numpy(read_labels(f"{args.data_dir}/train-labels-idx1-ubyte")).to(dev)
    with open(args.config) as f:
        config = json.load(f)
    try:
        rates, bs, warmup = run(args, dev, images, labels, config)
    except Exception as e:  # reported as a result, so that the calling scripts record it
        traceback.print_exc()
        print(f"error: {args.mode}/{args.adam}: {error_text(e)}", flush=True)
        sys.exit(3)
    if dev.type == "cuda":
        where = f"{torch.cuda.get_device_name(dev)}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    else:
        where = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    print(
        f"median {statistics.median(rates):.0f} images/s ({args.steps} steps of batch {bs}, "
        f"{args.repeat} repeats, mode {args.mode}, Adam {args.adam}, {warmup} warm-up steps, {where})"
    )


def run(args, dev, images, labels, config):
    """Times --repeat runs of --steps training steps in --mode; returns their images/s,
    the batch size and the number of warm-up steps."""
    cuda = dev.type == "cuda"
    if args.mode == "graph" and not cuda:
        raise RuntimeError("--mode graph captures a CUDA graph: it needs --device cuda")
    warmup = args.warmup or (1 if args.mode == "eager" else 3)
    if warmup < 1:
        raise ValueError(f"--warmup {args.warmup}: at least one warm-up step is needed")

    def sync():
        # The GPU runs queued work asynchronously: wait for it before reading the clock.
        if cuda:
            torch.cuda.synchronize()

    if args.mode in COMPILE_MODES:
        # The data stays at one address: CUDA graphs (reduce-overhead, max-autotune) can
        # then read it in place instead of copying it into a static buffer every step.
        torch._dynamo.mark_static_address(images)
        torch._dynamo.mark_static_address(labels)
    bs = args.batch_size or config["batch_size"]
    # Pixels binarized at 0.5 (TensorFlow's tutorial); the other binarizations cost
    # about the same and are not modelled.
    binarize = config.get("binarize") == "threshold"
    adam_options = dict(ADAM[args.adam])
    if args.mode == "graph":
        adam_options["capturable"] = True  # its step count on the GPU, updated in the graph
    rates = []
    for repeat in range(args.repeat):
        torch.manual_seed(repeat)
        model = ConfiguredVae(config["model"], config["class_weight"]).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=config["learning_rate"], **adam_options)
        order = torch.randperm(images.shape[0]).to(dev)
        batches = [order[i : i + bs] for i in range(0, images.shape[0] - bs + 1, bs)]

        def train_step(idx):
            # zero_grad first: Dynamo breaks the graph there, and the batch's conversion
            # then lands in the forward graph.
            opt.zero_grad(set_to_none=True)
            x = images[idx].float().div_(255.0)
            if binarize:
                x = (x > 0.5).float()
            loss = model.loss(x, labels[idx])
            loss.backward()
            opt.step()

        begin = time.perf_counter()
        if args.mode == "eager":

            def step(i):
                train_step(batches[i % len(batches)])

        elif args.mode in COMPILE_MODES:
            torch._dynamo.reset()  # this repeat's model and optimizer compiled afresh
            compiled = torch.compile(train_step, mode=COMPILE_MODES[args.mode])

            def step(i):
                torch.compiler.cudagraph_mark_step_begin()
                compiled(batches[i % len(batches)])

        else:  # graph
            static_idx = batches[0].clone()
            # Eager steps on a side stream before the capture (what PyTorch's CUDA graph
            # documentation prescribes): they create Adam's state and the libraries'
            # workspaces outside the graph.
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for i in range(warmup):
                    static_idx.copy_(batches[i % len(batches)])
                    train_step(static_idx)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            opt.zero_grad(set_to_none=True)  # the gradients then live in the graph's memory
            with torch.cuda.graph(graph):
                train_step(static_idx)

            def step(i):
                static_idx.copy_(batches[i % len(batches)])
                graph.replay()

        # Graph mode: its warm-up ran before the capture; one untimed replay follows.
        for i in range(1 if args.mode == "graph" else warmup):
            step(i)
        sync()
        start = time.perf_counter()
        for i in range(warmup, warmup + args.steps):
            step(i)
        sync()
        end = time.perf_counter()
        rate = args.steps * bs / (end - start)
        print(f"repeat {repeat + 1}: {rate:.0f} images/s (warm-up {start - begin:.1f} s)", flush=True)
        rates.append(rate)
    return rates, bs, warmup


if __name__ == "__main__":
    main()
