#!/usr/bin/env python3
"""The CPU training step of cu3d's small models, timed in PyTorch on the same CPU (docs/BENCHMARKS.md).

    python3 bench/compare_pytorch_cpu.py [--cu3d RESULT.json] [--out pytorch.json] [--batch 32]
                                         [--threads N] [--models keras3d,cnn2d]
    python3 bench/compare_pytorch_cpu.py --report OUT.json --rounds DIR   (no torch needed)

Builds the models of bench/cpu/bench_train_step.cpp as layers/presets.cpp defines them (same
layer sizes, channels_last_3d / channels_last memory format, training mode with dropout) and times
one step (forward, cross-entropy, backward, Adam) with the wall clock: median of the steps after
two warm-up steps. PyTorch uses --threads threads (default: OMP_NUM_THREADS, else every CPU),
the count cu3d's OpenMP uses. Also times conv2a's conv3d forward + backward (batch 2,
8x28x28x64 -> 128), the row docs/kernels/conv3d_cpu.md compares against. Keras's "same" 3x3x3
pooling is max_pool3d with ceil_mode (the same output sizes; the padding sits on one side).
Given cu3d's Google Benchmark JSON, prints one table: cu3d, PyTorch and their ratio.

--report joins the rounds `scripts/bench.sh cpu-train` ran (DIR/round-<i>/{cu3d,pytorch}.json and
loadavg, cu3d and PyTorch alternating, so both see the same load) into OUT.json and prints the
Markdown table of the medians over the rounds, with each round's ratio and load average.
"""
import argparse
import json
import os
import statistics
import sys
import time

try:
    import torch
    import torch.nn as nn
except ImportError:  # --report needs no torch; the timing modes say so below
    torch = None

CLASSES = 101


def keras3d(channels, second_act):
    """3dcnn.py: two blocks of Conv3D same + act, Conv3D same + act, MaxPool3D 3 same, dropout."""
    act = {"softmax": lambda: nn.Softmax(dim=1), "relu": nn.ReLU}[second_act]
    head_act = nn.Sigmoid if second_act == "softmax" else nn.ReLU
    layers, c = [], channels
    for filters in (32, 64):
        layers += [nn.Conv3d(c, filters, 3, padding=1), nn.ReLU(),
                   nn.Conv3d(filters, filters, 3, padding=1), act(),
                   nn.MaxPool3d(3, ceil_mode=True), nn.Dropout(0.25)]
        c = filters
    layers += [nn.Flatten(), nn.Linear(2 * 4 * 4 * 64, 512), head_act(), nn.Dropout(0.5),
               nn.Linear(512, CLASSES)]
    return nn.Sequential(*layers)


def cnn2d():
    """2dcnn.py: blocks of Conv2D same + ReLU, Conv2D valid + ReLU, MaxPool 2, dropout."""
    layers, c = [], 1
    for filters in (32, 64):
        layers += [nn.Conv2d(c, filters, 3, padding=1), nn.ReLU(), nn.Conv2d(filters, filters, 3),
                   nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25)]
        c = filters
    layers += [nn.Flatten(), nn.Linear(6 * 6 * 64, 512), nn.ReLU(), nn.Dropout(0.5),
               nn.Linear(512, CLASSES)]
    return nn.Sequential(*layers)


def c3d_small():
    """bench_train_step.cpp's c3d-small: C3D's blocks at a quarter of its input and widths."""
    layers, c = [], 3
    for name, filters, pool in (("1a", 16, (1, 2, 2)), ("2a", 32, 2), ("3a", 64, None),
                                ("3b", 64, 2)):
        layers += [nn.Conv3d(c, filters, 3, padding=1), nn.ReLU()]
        if pool:
            layers.append(nn.MaxPool3d(pool))
        c = filters
    layers += [nn.Flatten(), nn.Linear(2 * 7 * 7 * 64, 256), nn.ReLU(), nn.Linear(256, CLASSES)]
    return nn.Sequential(*layers)


# name: (builder, per-sample input in PyTorch's layout (C, D, H, W) or (C, H, W))
MODELS = {
    "keras3d": (lambda: keras3d(1, "softmax"), (1, 10, 32, 32)),
    "keras3d-rgb": (lambda: keras3d(3, "softmax"), (3, 10, 32, 32)),
    "keras3d-relu": (lambda: keras3d(1, "relu"), (1, 10, 32, 32)),
    "cnn2d": (cnn2d, (1, 32, 32)),
    "c3d-small": (c3d_small, (3, 8, 56, 56)),
}


def memory_format(ndim):
    return torch.channels_last_3d if ndim == 5 else torch.channels_last


def median_ms(call, warmup, runs):
    """Medians of the wall-clock and of the process CPU time (all threads) per call, in ms."""
    for _ in range(warmup):
        call()
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        wall.append((time.perf_counter() - start) * 1e3)
        cpu.append((time.process_time() - start_cpu) * 1e3)
    return statistics.median(wall), statistics.median(cpu)


def time_train_step(name, batch, runs):
    build, shape = MODELS[name]
    torch.manual_seed(0)
    fmt = memory_format(len(shape) + 1)
    model = build().to(memory_format=fmt).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.rand(batch, *shape).mul_(2).sub_(1).contiguous(memory_format=fmt)
    y = torch.arange(batch) % CLASSES
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    return median_ms(step, 2, runs)


def time_conv2a(runs):
    """conv2a-like conv3d forward + backward (data and filter), as cu3d's Conv3dFwdBwd/0."""
    fmt = torch.channels_last_3d
    conv = nn.Conv3d(64, 128, 3, padding=1).to(memory_format=fmt)
    x = torch.rand(2, 64, 8, 28, 28).contiguous(memory_format=fmt).requires_grad_()
    dy = torch.rand(2, 128, 8, 28, 28).contiguous(memory_format=fmt)

    def call():
        conv.zero_grad(set_to_none=True)
        x.grad = None
        conv(x).backward(dy)

    ms, cpu_ms = median_ms(call, 2, runs)
    flops = 3 * 2.0 * (2 * 8 * 28 * 28) * 128 * 27 * 64
    return ms, cpu_ms, flops


def cu3d_rows(path):
    """cu3d's rows by short name: TrainStep/<model>/... and Conv3dFwdBwd/0 -> conv2a."""
    rows = {}
    for b in json.load(open(path)).get("benchmarks", []):
        parts = b["name"].split("/")
        if parts[0] == "TrainStep":
            rows[parts[1]] = b
        elif parts[0] == "BM_Conv3dFwdBwd" and parts[1] == "0":
            rows["conv2a fwd+bwd"] = b
    return rows


def ms_of(b, key="real_time"):
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b.get("time_unit", "ns")]
    return b[key] * scale


def print_table(results, cu3d, threads, batch):
    print(f"CPU training step, batch {batch}, {threads} threads; ratio = PyTorch ms / cu3d ms "
          "(above 1: cu3d faster)")
    print("| row | cu3d ms | cu3d clips/s | PyTorch ms | PyTorch clips/s | PyTorch GFLOP/s | ratio |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        c = cu3d.get(r["name"])
        c_ms = ms_of(c) if c else None
        c_rate = f"{c['clips/s']:.1f}" if c and "clips/s" in c else "-"
        rate = f"{r['clips_per_s']:.1f}" if "clips_per_s" in r else "-"
        ratio = f"{r['ms'] / c_ms:.2f}" if c_ms else "-"
        c_txt = f"{c_ms:.1f}" if c_ms else "-"
        print(f"| {r['name']} | {c_txt} | {c_rate} | {r['ms']:.1f} | {rate} | "
              f"{r['gflops']:.1f} | {ratio} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cu3d", help="cu3d_bench_cpu JSON with the TrainStep rows")
    ap.add_argument("--out", help="write PyTorch's rows as JSON here")
    ap.add_argument("--batch", type=int, default=int(os.environ.get("CU3D_BENCH_BATCH", 32)))
    ap.add_argument("--threads", type=int,
                    default=int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
    ap.add_argument("--runs", type=int, default=7, help="timed steps per model (median)")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--report", help="join the rounds in --rounds into this JSON; print Markdown")
    ap.add_argument("--rounds", help="folder of round-<i>/ results (with --report)")
    args = ap.parse_args()
    if args.report:
        report(args.rounds, args.report)
        return
    if torch is None:
        sys.exit("compare_pytorch_cpu: PyTorch is not installed for this python; run it with a "
                 "python that has torch (e.g. BENCH_PYTHON=/path/to/venv/bin/python)")
    torch.set_num_threads(args.threads)

    # Forward MACs per clip, for GFLOP/s (3 x 2 x MACs, as cu3d counts), from cu3d's own counter
    # where given, else from a hook count here.
    cu3d = cu3d_rows(args.cu3d) if args.cu3d else {}
    results = []
    for name in filter(None, args.models.split(",")):
        if name not in MODELS:
            sys.exit(f"compare_pytorch_cpu: unknown model '{name}'; known: {', '.join(MODELS)}")
        ms, cpu_ms = time_train_step(name, args.batch, args.runs)
        gflop_clip = cu3d[name]["GFLOP/clip"] if name in cu3d else count_gflop_per_clip(name)
        results.append({"name": name, "ms": ms, "cpu_ms": cpu_ms,
                        "clips_per_s": args.batch / (ms * 1e-3),
                        "gflops": gflop_clip * args.batch / (ms * 1e-3)})
        print(f"{name}: {ms:.1f} ms/step", file=sys.stderr)
    ms, cpu_ms, flops = time_conv2a(args.runs * 3)
    results.append({"name": "conv2a fwd+bwd", "ms": ms, "cpu_ms": cpu_ms,
                    "gflops": flops / (ms * 1e6)})
    meta = {"torch": torch.__version__, "threads": args.threads, "batch": args.batch,
            "loadavg_after": os.getloadavg()}
    if args.out:
        json.dump({"context": meta, "rows": results}, open(args.out, "w"), indent=1)
    print_table(results, cu3d, args.threads, args.batch)


def report(rounds_dir, out_path):
    """Medians over the rounds of cu3d's and PyTorch's ms per row, as JSON and a Markdown table."""
    rounds = []
    for entry in sorted(os.listdir(rounds_dir)):
        folder = os.path.join(rounds_dir, entry)
        cu3d_path, torch_path = (os.path.join(folder, f) for f in ("cu3d.json", "pytorch.json"))
        if not os.path.isfile(cu3d_path):
            continue
        cu3d = {k: {"ms": ms_of(b), "cpu_ms": ms_of(b, "cpu_time"),
                    "clips_per_s": b.get("clips/s")} for k, b in cu3d_rows(cu3d_path).items()}
        pt = ({r["name"]: r for r in json.load(open(torch_path))["rows"]}
              if os.path.isfile(torch_path) else {})
        load = open(os.path.join(folder, "loadavg")).read().split() if os.path.isfile(
            os.path.join(folder, "loadavg")) else []
        rounds.append({"round": entry, "loadavg_before": load[:3], "cu3d": cu3d, "pytorch": pt})
    names = list(dict.fromkeys(n for r in rounds for n in r["cu3d"]))
    names += [n for r in rounds for n in r["pytorch"] if n not in names]
    summary = []
    for name in names:
        c = [r["cu3d"][name]["ms"] for r in rounds if name in r["cu3d"]]
        p = [r["pytorch"][name]["ms"] for r in rounds if name in r["pytorch"]]
        both = [r for r in rounds if name in r["cu3d"] and name in r["pytorch"]]
        ratios = [r["pytorch"][name]["ms"] / r["cu3d"][name]["ms"] for r in both]
        cpu_ratios = [r["pytorch"][name]["cpu_ms"] / r["cu3d"][name]["cpu_ms"] for r in both]
        summary.append({"name": name, "cu3d_ms": statistics.median(c) if c else None,
                        "pytorch_ms": statistics.median(p) if p else None,
                        "ratio_per_round": ratios, "cpu_time_ratio_per_round": cpu_ratios})
    json.dump({"rounds": rounds, "summary": summary}, open(out_path, "w"), indent=1)
    batch = next((r["cu3d"][n]["clips_per_s"] * r["cu3d"][n]["ms"] * 1e-3 for r in rounds
                  for n in r["cu3d"] if r["cu3d"][n]["clips_per_s"]), None)
    print(f"Medians over {len(rounds)} rounds (cu3d then PyTorch in each round); "
          "ratio = PyTorch ms / cu3d ms, above 1: cu3d faster. The CPU-time ratio divides the\n"
          "process CPU time (all threads) per step: the work each does, robust to the time\n"
          "slices other processes take on a shared machine.\n")
    print("| row | cu3d ms | cu3d clips/s | PyTorch ms | PyTorch clips/s | ratio of medians | "
          "ratio per round | CPU-time ratio per round |")
    print("|---|---|---|---|---|---|---|---|")
    for row in summary:
        c, p = row["cu3d_ms"], row["pytorch_ms"]
        clips = (lambda ms: f"{batch / (ms * 1e-3):.1f}" if ms and batch and "fwd+bwd" not in
                 row["name"] else "-")
        print(f"| {row['name']} | {c and f'{c:.1f}' or '-'} | {clips(c)} | "
              f"{p and f'{p:.1f}' or '-'} | {clips(p)} | "
              f"{f'{p / c:.2f}' if c and p else '-'} | "
              f"{', '.join(f'{x:.2f}' for x in row['ratio_per_round']) or '-'} | "
              f"{', '.join(f'{x:.2f}' for x in row['cpu_time_ratio_per_round']) or '-'} |")
    print("\nLoad average (1, 5, 15 min) before each round: " +
          "; ".join(f"{r['round']}: {' '.join(r['loadavg_before'])}" for r in rounds))


def count_gflop_per_clip(name):
    """3 x 2 x forward MACs of conv and linear layers for one clip."""
    build, shape = MODELS[name]
    model = build().eval()
    macs = 0

    def hook(module, inputs, output):
        nonlocal macs
        macs += output.numel() * module.weight[0].numel()  # each output: one filter's MACs

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.Linear)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.zeros(1, *shape))
    return 3 * 2.0 * macs * 1e-9


if __name__ == "__main__":
    main()
