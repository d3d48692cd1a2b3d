#!/usr/bin/env python3
"""PyTorch baseline for the log-mel front end, on the same GPU as bench_mel.

The computation is the official one (spec §2): pad 479 zeros, torch.stft(n_fft=400, hop=160,
periodic Hann, center=True, reflect), drop the last frame, |X|^2, mel_128 @ power, log10 with a
1e-10 floor, max-8 floor per clip, (x+4)/4. Timed with CUDA events after warm-up; medians.

Cases (all on 15 s clips of random audio, rotating over several inputs):
  single_h2d     one clip from a pageable CPU tensor (as the official code does: .cuda())
  single_pinned  one clip from pinned host memory
  single_device  one clip already on the device (kernels only)
  batch64_h2d    64 clips, one stacked [64, N] tensor from pageable memory
  batch64_device 64 clips already on the device

Prints one line per case: "TORCH <case> median_us=<..> p10_us=<..> p90_us=<..> wall_median_us=<..>"
(event time on the GPU, and host wall time around call + sync) and writes JSON with --json.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch


def load_filters(shared):
    path = os.path.join(shared, "golden", "mel_filters_whisper.npz")
    with np.load(path) as z:
        return torch.from_numpy(z["mel_128"].astype(np.float32))


def log_mel(audio, window, filters):
    """audio: [N] or [B, N] float32 on the device -> [128, T] or [B, 128, T]."""
    audio = torch.nn.functional.pad(audio, (0, 479))
    stft = torch.stft(audio, 400, 160, window=window, return_complex=True)
    power = stft[..., :-1].abs() ** 2
    mel = filters @ power
    log_spec = torch.clamp(mel, min=1e-10).log10()
    peak = log_spec.amax(dim=(-2, -1), keepdim=True)
    log_spec = torch.maximum(log_spec, peak - 8.0)
    return (log_spec + 4.0) / 4.0


def time_case(fn, inputs, warmup, iters):
    for i in range(warmup):
        fn(inputs[i % len(inputs)])
    torch.cuda.synchronize()
    times, wall = [], []
    for i in range(iters):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        t0 = time.perf_counter()
        start.record()
        fn(inputs[i % len(inputs)])
        end.record()
        end.synchronize()
        wall.append((time.perf_counter() - t0) * 1e6)
        times.append(start.elapsed_time(end) * 1000.0)  # us
    times.sort()
    return {
        "median_us": statistics.median(times),
        "wall_median_us": statistics.median(wall),
        "p10_us": times[len(times) // 10],
        "p90_us": times[(9 * len(times)) // 10],
        "iters": iters,
    }


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(here, "..", "..", "shared"))
    ap.add_argument("--json", default="")
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("TORCH error: no CUDA device", file=sys.stderr)
        return 1
    torch.backends.cuda.matmul.allow_tf32 = False  # same FP32 arithmetic as our GEMM
    dev = torch.device("cuda")
    filters = load_filters(args.shared).to(dev)
    window = torch.hann_window(400, device=dev)
    n = 15 * 16000
    rot = 8
    gen = torch.Generator().manual_seed(42)
    host = [torch.randn(n, generator=gen) * 0.1 for _ in range(rot)]
    pinned = [h.pin_memory() for h in host]
    device = [h.to(dev) for h in host]
    host64 = [torch.randn(64, n, generator=gen) * 0.1 for _ in range(2)]
    device64 = [h.to(dev) for h in host64]

    # Sanity: the baseline computes the same thing as the goldens' formula on real input.
    ref = log_mel(device[0], window, filters)
    assert ref.shape == (128, (n + 479) // 160), ref.shape

    results = {
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0),
        "single_h2d": time_case(lambda x: log_mel(x.to(dev), window, filters), host,
                                args.warmup, args.iters),
        "single_pinned": time_case(lambda x: log_mel(x.to(dev, non_blocking=True), window,
                                                     filters), pinned, args.warmup, args.iters),
        "single_device": time_case(lambda x: log_mel(x, window, filters), device, args.warmup,
                                   args.iters),
        "batch64_h2d": time_case(lambda x: log_mel(x.to(dev), window, filters), host64,
                                 max(5, args.warmup // 5), max(20, args.iters // 5)),
        "batch64_device": time_case(lambda x: log_mel(x, window, filters), device64,
                                    max(5, args.warmup // 5), max(20, args.iters // 5)),
    }
    for k, v in results.items():
        if isinstance(v, dict):
            print(f"TORCH {k} median_us={v['median_us']:.1f} p10_us={v['p10_us']:.1f} "
                  f"p90_us={v['p90_us']:.1f} wall_median_us={v['wall_median_us']:.1f}")
    print(f"TORCH version={results['torch']} device={results['device']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
