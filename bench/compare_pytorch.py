#!/usr/bin/env python3
"""The same C3D in PyTorch, timed on the same GPU as cu3d's benchmarks (docs/BENCHMARKS.md).

    python3 bench/compare_pytorch.py [--cu3d RESULT.json] [--out pytorch.json] [--batch 32]

Builds C3D as layers/presets.cpp does (eight 3x3x3 convs, pools 1x2x2 then 2x2x2, pool5 padded
to 1x4x4, fc6/fc7 4096 with dropout, fc8 101 classes), in channels_last_3d with
cudnn.benchmark on, and times with CUDA events (median after warm-up, inputs rotated between
copies so L2 does not flatter, as bench/gpu does):
  - each conv layer's forward, backward-data and backward-filter (aten.convolution_backward),
  - one training step (forward, cross-entropy, backward, Adam), in fp32 (no TF32), tf32
    (allow_tf32) and bf16 (autocast, fp32 master weights: AMP).
Writes the rows as JSON (with the names of the matching cu3d and cuDNN benchmarks) and, given
cu3d's result file, prints one table: cu3d, cuDNN direct, PyTorch and the ratios.
"""
import argparse
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

LAYERS = [  # name, input (D, H, W), in channels, out channels: tests/gpu/cases.h
    ("conv1a", (16, 112, 112), 3, 64), ("conv2a", (16, 56, 56), 64, 128),
    ("conv3a", (8, 28, 28), 128, 256), ("conv3b", (8, 28, 28), 256, 256),
    ("conv4a", (4, 14, 14), 256, 512), ("conv4b", (4, 14, 14), 512, 512),
    ("conv5a", (2, 7, 7), 512, 512), ("conv5b", (2, 7, 7), 512, 512),
]
POOL_AFTER = {"conv1a": ((1, 2, 2), (0, 0, 0)), "conv2a": ((2, 2, 2), (0, 0, 0)),
              "conv3b": ((2, 2, 2), (0, 0, 0)), "conv4b": ((2, 2, 2), (0, 0, 0)),
              "conv5b": ((2, 2, 2), (0, 1, 1))}
L2_BYTES = 50 << 20
# bf16 first: the headline precision, should the time limit cut the run short. fp32 last: with
# cudnn.benchmark on, cuDNN tries every fp32 3D algorithm once, some of them very slow.
PRECISIONS = ["bf16", "tf32", "fp32"]


def set_precision(prec):
    tf32 = prec == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


def median_ms(call, warmup, runs):
    for i in range(warmup):
        call(i)
    times = []
    for i in range(runs):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        call(i)
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    times.sort()
    return times[len(times) // 2]


def rotation_sets(nbytes):
    return max(2, min(8, math.ceil(3 * L2_BYTES / max(nbytes, 1))))


def c3d(classes=101):
    layers = []
    for name, _, cin, cout in LAYERS:
        layers += [nn.Conv3d(cin, cout, 3, padding=1), nn.ReLU(inplace=True)]
        if name in POOL_AFTER:
            window, pad = POOL_AFTER[name]
            layers.append(nn.MaxPool3d(window, window, padding=pad))
    layers += [nn.Flatten(), nn.Linear(8192, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
               nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(4096, classes)]
    return nn.Sequential(*layers)


def conv_rows(batch, rows, save):
    """Appends each layer's rows to `rows` and calls save() after each layer, so a run cut off
    by its time limit keeps the layers it finished."""
    for name, (d, h, w), cin, cout in LAYERS:
        for prec in PRECISIONS:
            set_precision(prec)
            dtype = torch.bfloat16 if prec == "bf16" else torch.float32
            shape = (batch, cin, d, h, w)
            nbytes = 4 * batch * cin * d * h * w * (1 + cout / cin)
            sets = rotation_sets(nbytes)
            xs = [torch.randn(shape, device="cuda", dtype=dtype).to(memory_format=torch.channels_last_3d)
                  for _ in range(sets)]
            weight = torch.randn((cout, cin, 3, 3, 3), device="cuda", dtype=dtype).to(
                memory_format=torch.channels_last_3d)
            bias = torch.randn(cout, device="cuda", dtype=dtype)
            dys = [torch.randn((batch, cout, d, h, w), device="cuda", dtype=dtype).to(
                memory_format=torch.channels_last_3d) for _ in range(sets)]
            conv = lambda i: F.conv3d(xs[i % sets], weight, bias, padding=1)

            def backward(mask):
                return lambda i: torch.ops.aten.convolution_backward(
                    dys[i % sets], xs[i % sets], weight, [cout], [1, 1, 1], [1, 1, 1], [1, 1, 1],
                    False, [0, 0, 0], 1, mask)

            for pss, call in [("fwd", conv), ("bwd_data", backward([True, False, False])),
                              ("bwd_filter", backward([False, True, True]))]:
                ms = median_ms(call, 5, 15)
                rows.append({"what": f"{name} {pss}", "prec": prec, "ms": ms,
                             "cu3d": f"conv/{name}/{pss}/{prec}/cu3d",
                             "cudnn": f"conv/{name}/{pss}/{prec}/cudnn"})
                print(f"{name:7s} {pss:10s} {prec} {ms:8.3f} ms", flush=True)
            del xs, dys
        save()


def train_rows(batch):
    rows = []
    for prec in PRECISIONS:
        set_precision(prec)
        model = c3d().cuda().to(memory_format=torch.channels_last_3d)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        clips = torch.rand((batch, 3, 16, 112, 112), device="cuda") * 2 - 1
        clips = clips.to(memory_format=torch.channels_last_3d)
        labels = torch.arange(batch, device="cuda") % 101

        def step(_):
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=prec == "bf16"):
                loss = F.cross_entropy(model(clips), labels)
            loss.backward()
            opt.step()

        torch.cuda.reset_peak_memory_stats()
        ms = median_ms(step, 5, 10)
        peak = torch.cuda.max_memory_allocated() / 2**30
        rows.append({"what": "c3d train step", "prec": prec, "ms": ms, "peak_GiB": peak,
                     "clips_per_s": batch / (ms * 1e-3),
                     "cu3d": f"train/c3d/{prec}/cu3d/fused", "cudnn": f"train/c3d/{prec}/cudnn/fused"})
        print(f"c3d train step {prec} {ms:8.2f} ms, {batch / (ms * 1e-3):.1f} clips/s, {peak:.2f} GiB",
              flush=True)
        del model, opt
        torch.cuda.empty_cache()
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cu3d", help="cu3d's result JSON, for the side-by-side table")
    ap.add_argument("--out", default="pytorch.json")
    ap.add_argument("--batch", type=int, default=int(os.environ.get("CU3D_BENCH_BATCH", 32)))
    ap.add_argument("--layers", help="comma-separated conv layers to time (default: all)")
    ap.add_argument("--precisions", default=",".join(PRECISIONS),
                    help="comma-separated, of bf16, tf32, fp32 (default: all, in this order)")
    ap.add_argument("--no-train", action="store_true", help="skip the training-step rows")
    args = ap.parse_args()
    PRECISIONS[:] = args.precisions.split(",")
    if args.layers:
        LAYERS[:] = [l for l in LAYERS if l[0] in args.layers.split(",")]
    torch.backends.cudnn.benchmark = True
    print(f"torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, "
          f"{torch.cuda.get_device_name()}, batch {args.batch}", flush=True)
    result = {"torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
              "gpu": torch.cuda.get_device_name(), "batch": args.batch, "rows": []}
    # Training first: the headline row, should the time limit cut the per-layer part short.
    save = lambda: json.dump(result, open(args.out, "w"), indent=1)
    if not args.no_train:
        result["rows"] += train_rows(args.batch)
        save()
    conv_rows(args.batch, result["rows"], save)
    if args.cu3d:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import report
        data = report.normalize(report.load_lenient(args.cu3d))
        print(report.pytorch_section(data, args.out))


if __name__ == "__main__":
    main()
