#!/usr/bin/env python3
"""Markdown tables from cu3d's Google Benchmark JSON (docs/BENCHMARKS.md).

    report.py RESULT.json [--pytorch PYTORCH.json]    print the tables
    report.py --merge OUT.json PART.json...          join the parts of one run into OUT.json

The GPU tables read the counters that bench/gpu sets: ms (median), TFLOP/s, GB/s, roofline
(floor time / measured time), vs_cudnn (cuDNN time / cu3d time, > 1: cu3d faster). A part cut
off by its time limit is read up to its last complete row.
"""
import argparse
import json
import re
import sys


def load_lenient(path):
    """Google Benchmark's JSON, or the valid prefix of one whose writer was killed (its rows up
    to the last complete one); no rows when the file is missing or holds none."""
    empty = {"context": {}, "benchmarks": []}
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return empty
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    cut = text.rfind("\n    }")
    try:
        return json.loads(text[: cut + 6] + "\n  ]\n}")
    except json.JSONDecodeError:
        return empty


def normalize(data):
    """Drops Google Benchmark's "/iterations:N/manual_time" suffix from the names."""
    for b in data.get("benchmarks", []):
        b["name"] = b["name"].split("/iterations:")[0]
    return data


def merge(out, parts):
    merged = {"context": {}, "benchmarks": []}
    for part in parts:
        data = normalize(load_lenient(part))
        merged["context"] = merged["context"] or data.get("context", {})
        merged["benchmarks"] += data.get("benchmarks", [])
    with open(out, "w") as f:
        json.dump(merged, f, indent=1)


def rows(data, prefix):
    return [b for b in data["benchmarks"] if b["name"].startswith(prefix) and not b.get("error_occurred")]


def fmt(value, digits=2):
    return "" if value is None else f"{value:.{digits}f}"


def table(header, lines):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in line) + " |" for line in lines]
    return "\n".join(out) + "\n"


def context_section(data):
    c = data["context"]
    keys = ["gpu", "gpu_sms", "cuda_driver_api", "cuda_runtime", "cudnn", "batch", "date", "host_name",
            "num_cpus", "mhz_per_cpu"]
    return table(["key", "value"], [[k, c[k]] for k in keys if k in c])


def peaks_section(data):
    p = rows(data, "peaks/")
    if not p:
        return ""
    c = p[0]
    return "Measured peaks (same run): " + ", ".join(
        f"{k} {c[k]:.1f}" for k in ["fp32_TFLOP/s", "tf32_TFLOP/s", "bf16_TFLOP/s", "copy_GB/s"] if k in c
    ) + "\n"


def split(name):
    return name.split("/")


def conv_section(data):
    by_key = {}
    for b in rows(data, "conv/"):
        _, layer, pss, prec, backend = split(b["name"])
        by_key.setdefault((layer, pss, prec), {})[backend] = b
    lines = []
    for (layer, pss, prec), d in by_key.items():
        mine, v3, v4 = d.get("cu3d", {}), d.get("cu3d_pipelined", {}), d.get("cu3d_wide", {})
        v5, v6, v7 = d.get("cu3d_wgmma", {}), d.get("cu3d_wgmma_ws", {}), d.get("cu3d_wgmma_tma", {})
        v8, theirs = d.get("cu3d_wgmma_cluster", {}), d.get("cudnn", {})
        lines.append([layer, pss, prec, fmt(mine.get("ms"), 3), fmt(mine.get("TFLOP/s"), 1),
                      fmt(v3.get("ms"), 3), fmt(v3.get("TFLOP/s"), 1), fmt(v4.get("ms"), 3), fmt(v4.get("TFLOP/s"), 1),
                      fmt(v5.get("ms"), 3), fmt(v5.get("TFLOP/s"), 1), fmt(v6.get("ms"), 3), fmt(v6.get("TFLOP/s"), 1),
                      fmt(v7.get("ms"), 3), fmt(v7.get("TFLOP/s"), 1), fmt(v8.get("ms"), 3), fmt(v8.get("TFLOP/s"), 1),
                      fmt(theirs.get("ms"), 3), fmt(theirs.get("TFLOP/s"), 1), fmt(mine.get("vs_cudnn")),
                      fmt(v3.get("vs_cudnn")), fmt(v4.get("vs_cudnn")), fmt(v5.get("vs_cudnn")), fmt(v6.get("vs_cudnn")),
                      fmt(v7.get("vs_cudnn")), fmt(v8.get("vs_cudnn")), fmt(mine.get("roofline")),
                      fmt(theirs.get("roofline"))])
    return table(["layer", "pass", "prec", "cu3d ms", "cu3d TFLOP/s", "v3 ms", "v3 TFLOP/s", "v4 ms", "v4 TFLOP/s",
                  "v5 ms", "v5 TFLOP/s", "v6 ms", "v6 TFLOP/s", "v7 ms", "v7 TFLOP/s", "v8 ms", "v8 TFLOP/s",
                  "cuDNN ms", "cuDNN TFLOP/s", "cuDNN/cu3d time", "cuDNN/v3 time", "cuDNN/v4 time", "cuDNN/v5 time",
                  "cuDNN/v6 time", "cuDNN/v7 time", "cuDNN/v8 time", "cu3d roofline", "cuDNN roofline"], lines)


def fused_section(data):
    by_key = {}
    for b in rows(data, "fused/"):
        _, layer, block, prec, how = split(b["name"])
        by_key.setdefault((layer, block, prec), {})[how] = b
    lines = []
    for (layer, block, prec), d in by_key.items():
        f, v3, v4 = d.get("cu3d_fused", {}), d.get("cu3d_fused_pipelined", {}), d.get("cu3d_fused_wide", {})
        v5, v6 = d.get("cu3d_fused_wgmma", {}), d.get("cu3d_fused_wgmma_ws", {})
        v7, u = d.get("cu3d_fused_wgmma_tma", {}), d.get("cudnn_unfused", {})
        v8, cf = d.get("cu3d_fused_wgmma_cluster", {}), d.get("cudnn_fused", {})
        lines.append([layer, block, prec, fmt(f.get("ms"), 3), fmt(v3.get("ms"), 3), fmt(v4.get("ms"), 3),
                      fmt(v5.get("ms"), 3), fmt(v6.get("ms"), 3), fmt(v7.get("ms"), 3), fmt(v8.get("ms"), 3),
                      fmt(u.get("ms"), 3), fmt(cf.get("ms"), 3), fmt(f.get("vs_cudnn")), fmt(v3.get("vs_cudnn")), fmt(v4.get("vs_cudnn")),
                      fmt(v5.get("vs_cudnn")), fmt(v6.get("vs_cudnn")), fmt(v7.get("vs_cudnn")),
                      fmt(v8.get("vs_cudnn"))])
    return table(["layer", "block", "prec", "cu3d fused ms", "fused on v3 ms", "fused on v4 ms", "fused on v5 ms",
                  "fused on v6 ms", "fused on v7 ms", "fused on v8 ms", "cuDNN conv + ops ms",
                  "cuDNN fused conv+bias+ReLU, then pool ms", "unfused/fused",
                  "unfused/fused on v3", "unfused/fused on v4", "unfused/fused on v5", "unfused/fused on v6",
                  "unfused/fused on v7", "unfused/fused on v8"], lines)


def ops_section(data):
    lines = []
    for prefix in ["pool/", "batch_norm/", "layer_norm/", "softmax_xent/", "adam/", "input_transform/"]:
        for b in rows(data, prefix):
            same = b.get("vs_same_size_copy")
            lines.append([b["name"], fmt(b.get("ms", 0) * 1e3, 1), fmt(b.get("GB/s"), 0),
                          fmt(100 * b["roofline"], 0) if "roofline" in b else "",
                          fmt(b.get("same_size_copy_us"), 1), fmt(100 * same, 0) if same else "",
                          fmt(b.get("vs_cudnn"))])
    return table(["op", "us (median)", "GB/s", "% of copy BW", "same-size copy us", "% of same-size copy",
                  "baseline/cu3d time (cuDNN; bwd_relu: cu3d's two passes; per-sample layer norm: the pipelined kernels)"], lines)


def ratio(row, base, key):
    """row[key] / base[key], or None when either is missing."""
    return row[key] / base[key] if key in row and base.get(key) else None


def train_section(data):
    """One row per step benchmark (train/<model>/<prec>/<backend>/<fused|unfused>); an unfused row
    also gives its time and peak memory over those of the fused row of the same model, precision
    and backend."""
    steps = rows(data, "train/")
    fused = {tuple(split(b["name"])[1:4]): b for b in steps if b["name"].endswith("/fused")}
    lines = []
    for b in steps:
        _, model, prec, backend, fusion = split(b["name"])
        base = fused.get((model, prec, backend), {}) if fusion == "unfused" else {}
        lines.append([model, prec, backend, fusion, fmt(b.get("ms"), 1), fmt(b.get("clips/s"), 1),
                      fmt(100 * b.get("MFU", 0), 1), fmt(b.get("peak_used_GiB")), fmt(b.get("peak_reserved_GiB")),
                      fmt(ratio(b, base, "ms")), fmt(ratio(b, base, "peak_used_GiB"))])
    return table(["model", "prec", "conv backend", "fusion", "ms/step", "clips/s", "MFU %", "peak used GiB",
                  "peak reserved GiB", "unfused/fused time", "unfused/fused peak used"], lines)


def pytorch_section(data, torch_path):
    t = json.load(open(torch_path))
    mine = {b["name"]: b for b in rows(data, "")}
    lines = []
    def ms(name):
        return mine.get(name, {}).get("ms") if name else None

    for r in t["rows"]:
        # cu3d's fastest conv kernel where several versions ran (the "_pipelined", "_wide",
        # "_wgmma" rows); the training step as the engine runs it by default (--backend auto)
        # beside cu3d alone.
        cu3d = min((m for m in (ms(r.get("cu3d")), ms(r.get("cu3d") and r["cu3d"] + "_pipelined"),
                                ms(r.get("cu3d") and r["cu3d"] + "_wide"),
                                ms(r.get("cu3d") and r["cu3d"] + "_wgmma")) if m), default=None)
        auto = ms(r["cu3d"].replace("/cu3d/", "/auto/")) if r.get("cu3d", "").startswith("train/") else None
        cudnn = ms(r.get("cudnn"))
        lines.append([r["what"], r["prec"], fmt(cu3d, 3), fmt(auto, 3), fmt(cudnn, 3), fmt(r["ms"], 3),
                      fmt(r["ms"] / cu3d if cu3d else None), fmt(r["ms"] / cudnn if cudnn else None)])
    head = f"PyTorch {t.get('torch')} (cuDNN {t.get('cudnn')}), channels_last_3d, cudnn.benchmark; ms, median."
    if t.get("note"):
        head += f" {t['note']}."
    return head + "\n\n" + table(["what", "prec", "cu3d", "cu3d auto", "cuDNN direct", "PyTorch",
                                  "PyTorch/cu3d", "PyTorch/cuDNN"], lines)


def best_ratios(benchmarks, kernels):
    """The best vs_cudnn per benchmark key (the name less its last part) over cu3d's kernels
    (versions 2-7: the fastest is the one to ship)."""
    best = {}
    for b in benchmarks:
        key, kernel = b["name"].rsplit("/", 1)
        if kernel in kernels and "vs_cudnn" in b:
            best[key] = max(best.get(key, 0.0), b["vs_cudnn"])
    return best


def targets_section(data):
    """Issue 3's performance targets, checked against this run."""
    out = []
    conv = best_ratios([b for b in rows(data, "conv/") if "/fwd/" in b["name"]],
                       ("cu3d", "cu3d_pipelined", "cu3d_wide", "cu3d_wgmma", "cu3d_wgmma_ws", "cu3d_wgmma_tma",
                        "cu3d_wgmma_cluster"))
    # The "fwd" rows time the engine's calls on fp32 tensors (conversions and, for cuDNN, the
    # output's conversion and a separate bias add included); "fwd_prepared" the kernels alone.
    prepared = best_ratios([b for b in rows(data, "conv/") if "/fwd_prepared/" in b["name"]],
                           ("cu3d_wgmma", "cu3d_wgmma_tma", "cu3d_wgmma_cluster"))
    for prec, goal in [("bf16", 1.0), ("tf32", 0.9), ("fp32", 0.9)]:
        for what, ratios in [("conv fwd", conv), ("conv fwd, kernel alone (fwd_prepared)", prepared)]:
            r = [v for k, v in ratios.items() if k.endswith(f"/{prec}")]
            if r:
                out.append([f"{what} {prec} >= {goal}x cuDNN", f"{sum(x >= goal for x in r)}/{len(r)} layers",
                            f"min {min(r):.2f}, max {max(r):.2f}"])
    fused = list(best_ratios(rows(data, "fused/"), ("cu3d_fused", "cu3d_fused_pipelined", "cu3d_fused_wide",
                                                       "cu3d_fused_wgmma", "cu3d_fused_wgmma_ws",
                                                       "cu3d_fused_wgmma_tma", "cu3d_fused_wgmma_cluster")).values())
    if fused:
        out.append(["fused blocks >= 1.3x unfused", f"{sum(x >= 1.3 for x in fused)}/{len(fused)}",
                    f"min {min(fused):.2f}, max {max(fused):.2f}"])
    mem = [b for b in data["benchmarks"] if re.match(r"(pool|batch_norm|layer_norm|softmax_xent|adam|input_transform)/.*cu3d$",
                                                     b["name"]) and "roofline" in b]
    if mem:
        fr = [b["roofline"] for b in mem]
        out.append(["memory-bound ops >= 80% copy BW", f"{sum(x >= 0.8 for x in fr)}/{len(fr)}",
                    f"min {100 * min(fr):.0f}%, max {100 * max(fr):.0f}%"])
        same = [b["vs_same_size_copy"] for b in mem if "vs_same_size_copy" in b]
        if same:
            out.append(["memory-bound ops >= 80% of a copy of the same bytes", f"{sum(x >= 0.8 for x in same)}/{len(same)}",
                        f"min {100 * min(same):.0f}%, max {100 * max(same):.0f}%"])
    return table(["target", "met", "range"], out) if out else ""


def generic_section(data):
    lines = []
    for b in rows(data, ""):
        counters = {k: v for k, v in b.items() if isinstance(v, float) and k not in
                    ("real_time", "cpu_time", "iterations", "repetitions", "repetition_index", "threads",
                     "family_index", "per_family_instance_index")}
        lines.append([b["name"], fmt(b["real_time"], 3), b.get("time_unit", ""),
                      ", ".join(f"{k}={v:.4g}" for k, v in counters.items())])
    return table(["benchmark", "time", "unit", "counters"], lines)


def report(path, torch_path, notes):
    data = normalize(load_lenient(path))
    parts = ["## Environment\n", context_section(data)] + [f"- {note}" for note in notes]
    if not any(b["name"].startswith(("conv/", "train/", "peaks/")) for b in data["benchmarks"]):
        parts += ["\n## Results\n", generic_section(data)]
        return "\n".join(parts)
    parts += [peaks_section(data)]
    for title, section in [("Targets of issue 3", targets_section), ("Training step", train_section),
                           ("conv3d, cu3d vs cuDNN", conv_section), ("Fused blocks", fused_section),
                           ("Memory-bound ops", ops_section)]:
        text = section(data)
        if text.count("\n") > 2:
            parts += [f"\n## {title}\n", text]
    if torch_path:
        parts += ["\n## Against PyTorch\n", pytorch_section(data, torch_path)]
    errors = [[b["name"], b.get("error_message", "")] for b in data["benchmarks"] if b.get("error_occurred")]
    if errors:
        parts += ["\n## Benchmarks that did not run\n", table(["benchmark", "reason"], errors)]
    return "\n".join(parts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--merge", nargs="+", metavar=("OUT", "PART"))
    ap.add_argument("result", nargs="?")
    ap.add_argument("--pytorch")
    ap.add_argument("--note", action="append", default=[], help="a line for the environment section")
    args = ap.parse_args()
    if args.merge:
        merge(args.merge[0], args.merge[1:])
        return
    sys.stdout.write(report(args.result, args.pytorch, args.note))


if __name__ == "__main__":
    main()
