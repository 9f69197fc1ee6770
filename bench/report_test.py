#!/usr/bin/env python3
"""report.py on synthetic Google Benchmark rows: issue 3's targets counted from the right rows,
the fused table's columns, and a result file cut off by its writer's time limit.

    python3 -m unittest discover -s bench -p report_test.py    (CTest: bench.report)
"""
import json
import os
import tempfile
import unittest

import report


def row(name, **counters):
    return {"name": name, "real_time": counters.get("ms", 1.0), "time_unit": "ms", **counters}


def run(benchmarks):
    return {"context": {}, "benchmarks": benchmarks}


class Targets(unittest.TestCase):
    def targets(self, benchmarks):
        lines = report.targets_section(run(benchmarks)).splitlines()[2:]
        return {cells[1].strip(): cells[2].strip() for cells in (line.split("|") for line in lines)}

    def test_conv_takes_the_fastest_cu3d_kernel_per_layer(self):
        got = self.targets([
            row("conv/conv3b/fwd/bf16/cudnn", ms=1.0),
            row("conv/conv3b/fwd/bf16/cu3d_wgmma", vs_cudnn=0.8),
            row("conv/conv3b/fwd/bf16/cu3d_wgmma_tma", vs_cudnn=1.2),
            row("conv/conv4b/fwd/bf16/cu3d_wgmma_tma", vs_cudnn=0.9),
            row("conv/conv4b/fwd/tf32/cu3d_wgmma_tma", vs_cudnn=0.95),
        ])
        self.assertEqual(got["conv fwd bf16 >= 1.0x cuDNN"], "1/2 layers")
        self.assertEqual(got["conv fwd tf32 >= 0.9x cuDNN"], "1/1 layers")

    def test_fused_blocks_count_cu3d_against_cudnn_conv_plus_ops_only(self):
        got = self.targets([
            row("fused/conv3b/bias_relu_pool/bf16/cudnn_unfused", ms=2.0),
            row("fused/conv3b/bias_relu_pool/bf16/cu3d_fused_wgmma_tma", vs_cudnn=1.4),
            row("fused/conv4b/bias_relu_pool/bf16/cudnn_fused", vs_cudnn=5.0),  # not cu3d's
            row("fused/conv4b/bias_relu_pool/bf16/cu3d_fused_wgmma_tma", vs_cudnn=1.1),
        ])
        self.assertEqual(got["fused blocks >= 1.3x unfused"], "1/2")

    def test_memory_bound_rows_are_cu3d_ones_batch_norm_included(self):
        got = self.targets([
            row("pool/after_conv2a/fwd/cu3d", roofline=0.9, vs_same_size_copy=0.95),
            row("pool/after_conv2a/fwd/cudnn", roofline=0.5),
            row("batch_norm/conv2a/fwd_train/cu3d", roofline=0.7, vs_same_size_copy=0.85),
            row("batch_norm/conv2a/fwd_train/cudnn", roofline=0.3),
            row("layer_norm/conv2a/per_sample/fwd/cu3d_pipelined", roofline=0.6),
        ])
        self.assertEqual(got["memory-bound ops >= 80% copy BW"], "1/2")
        self.assertEqual(got["memory-bound ops >= 80% of a copy of the same bytes"], "2/2")


class Tables(unittest.TestCase):
    def test_fused_table_has_cudnns_own_fusion_beside_the_baseline(self):
        text = report.fused_section(run([
            row("fused/conv3b/bias_relu_pool/bf16/cudnn_unfused", ms=2.0),
            row("fused/conv3b/bias_relu_pool/bf16/cudnn_fused", ms=1.75),
            row("fused/conv3b/bias_relu_pool/bf16/cu3d_fused_wgmma_tma", ms=1.5, vs_cudnn=1.33),
        ]))
        header, _, line = text.splitlines()[:3]
        cells = dict(zip([h.strip() for h in header.split("|")], [c.strip() for c in line.split("|")]))
        self.assertEqual(cells["cuDNN conv + ops ms"], "2.000")
        self.assertEqual(cells["cuDNN fused conv+bias+ReLU, then pool ms"], "1.750")
        self.assertEqual(cells["fused on v7 ms"], "1.500")
        self.assertEqual(cells["unfused/fused on v7"], "1.33")


class Files(unittest.TestCase):
    def test_a_file_cut_off_mid_row_keeps_its_complete_rows(self):
        whole = json.dumps(run([row("pool/a/fwd/cu3d", roofline=0.9), row("pool/b/fwd/cu3d")]),
                           indent=2)
        cut = whole[: whole.index('"pool/b')]
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "part.json")
            with open(path, "w") as f:
                f.write(cut)
            self.assertEqual([b["name"] for b in report.load_lenient(path)["benchmarks"]],
                             ["pool/a/fwd/cu3d"])
            self.assertEqual(report.load_lenient(os.path.join(tmp, "missing.json"))["benchmarks"], [])

    def test_merge_joins_the_parts_and_drops_the_iteration_suffix(self):
        with tempfile.TemporaryDirectory() as tmp:
            parts = []
            for k, name in enumerate(["conv/a/fwd/bf16/cudnn/iterations:20/manual_time",
                                      "pool/b/fwd/cu3d/iterations:50/manual_time"]):
                parts.append(os.path.join(tmp, f"part{k}.json"))
                with open(parts[-1], "w") as f:
                    json.dump(run([row(name)]), f)
            out = os.path.join(tmp, "all.json")
            report.merge(out, parts)
            with open(out) as f:
                names = [b["name"] for b in json.load(f)["benchmarks"]]
            self.assertEqual(names, ["conv/a/fwd/bf16/cudnn", "pool/b/fwd/cu3d"])


if __name__ == "__main__":
    unittest.main()
