"""CUDA kernels and GPU time per training step of pytorch_vae.py's two models, by PyTorch's
profiler (10 steps after 3 warm-up steps, batch 128 and 1024), for comparison with the
trainer's count from Nsight Compute (BENCHMARKS.md, "GPU"). Kernel counts do not depend
on the pixel values, so the images are random bytes on the GPU, gathered and turned into
float32 per batch as in pytorch_vae.py.

    python3 pytorch_kernels.py classic.json default.json   # files from `vae config --preset NAME`

on a GPU machine, beside pytorch_vae.py (the CUDA bundle).
"""

import json
import os
import sys

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pytorch_vae as p  # noqa: E402

STEPS = 10


def main():
    dev = torch.device("cuda")
    images = torch.randint(0, 256, (60000, 784), dtype=torch.uint8, device=dev)
    labels = torch.randint(0, 10, (60000,), device=dev)
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(dev)}")
    for path in sys.argv[1:]:
        with open(path) as f:
            config = json.load(f)
        name = os.path.splitext(os.path.basename(path))[0]
        for bs in [128, 1024]:
            torch.manual_seed(0)
            model = p.ConfiguredVae(config["model"], config["class_weight"]).to(dev)
            opt = torch.optim.Adam(model.parameters(), lr=config["learning_rate"])

            def step():
                idx = torch.randint(0, images.shape[0], (bs,), device=dev)
                x = images[idx].float().div_(255.0)
                opt.zero_grad(set_to_none=True)
                loss = model.loss(x, labels[idx])
                loss.backward()
                opt.step()

            for _ in range(3):
                step()
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(STEPS):
                    step()
                torch.cuda.synchronize()
            events = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
            kernels = [e for e in events if not any(w in e.name.lower() for w in ("memcpy", "memset"))]
            gpu_us = sum(
                e.device_time_total if hasattr(e, "device_time_total") else e.cuda_time_total
                for e in kernels
            )
            print(
                f"{name} batch {bs}: {len(kernels) / STEPS:.1f} kernels per step, "
                f"{gpu_us / STEPS / 1000:.3f} ms GPU per step, "
                f"{(len(events) - len(kernels)) / STEPS:.1f} copies and memsets per step",
                flush=True,
            )


if __name__ == "__main__":
    main()
