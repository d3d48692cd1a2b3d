#!/usr/bin/env python3
"""PyTorch counterpart of bench_pipeline_gpu's "encoder + adaptor for one 25 s chunk".

The Step-Audio 2 audio encoder and adaptor (spec sections 3 and 4; the module of the published
modeling_step_audio_2.py, Whisper-large-v3 shape with Qwen2-Audio pooling) written out in plain
PyTorch with random bf16 weights:

  conv1 128->1280 k3 p1 + GELU, conv2 k3 s2 p1 + GELU, + positional table,
  32 pre-LN blocks (1280 wide, 20 heads of 64, key mask as an additive bias, FFN 5120, GELU),
  AvgPool1d(2), after_norm, adaptor conv 1280->1280 k3 s2 p1 + GELU, linear 1280->2048 + ReLU,
  linear 2048->3584.

transformers' WhisperEncoder does not fit (it has no pooling and puts its final LayerNorm before
where this model pools), so the module is written here; attention is
F.scaled_dot_product_attention (flash / memory-efficient kernels). Eager and torch.compile are
both timed; the faster is reported. Like bench_pipeline_gpu, one call starts from a log-mel
[128, 2502] already on the GPU and ends with the 313 adaptor rows copied to the host as f32.

Prints `RESULT torch_encoder_25s <ms> ms` (and the eager / compiled figures) for gpu-check.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.attn_ln = nn.LayerNorm(d)
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d, bias=False)
        self.value = nn.Linear(d, d)
        self.out = nn.Linear(d, d)
        self.mlp_ln = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)

    def forward(self, x, bias):
        B, T, C = x.shape
        h = self.attn_ln(x)
        shape = (B, T, self.heads, C // self.heads)
        q = self.query(h).view(shape).transpose(1, 2)
        k = self.key(h).view(shape).transpose(1, 2)
        v = self.value(h).view(shape).transpose(1, 2)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # scale 1/sqrt(64)
        x = x + self.out(a.transpose(1, 2).reshape(B, T, C))
        return x + self.fc2(F.gelu(self.fc1(self.mlp_ln(x))))


class EncoderAdaptor(nn.Module):
    def __init__(self, n_mels=128, d=1280, heads=20, layers=32, ctx=1500, llm_dim=3584,
                 adapter_hidden=2048):
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, d, 3, padding=1)
        self.conv2 = nn.Conv1d(d, d, 3, stride=2, padding=1)
        self.positional_embedding = nn.Parameter(torch.randn(ctx, d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.after_norm = nn.LayerNorm(d)
        self.adapter_conv = nn.Conv1d(d, d, 3, stride=2, padding=1)
        self.linear1 = nn.Linear(d, adapter_hidden)
        self.linear2 = nn.Linear(adapter_hidden, llm_dim)

    def forward(self, mel, bias):
        x = F.gelu(self.conv1(mel))
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        x = x + self.positional_embedding[: x.shape[1]]
        for blk in self.blocks:
            x = blk(x, bias)
        x = F.avg_pool1d(x.transpose(1, 2), 2, 2).transpose(1, 2)
        x = self.after_norm(x)
        x = F.gelu(self.adapter_conv(x.transpose(1, 2))).transpose(1, 2)
        return self.linear2(F.relu(self.linear1(x)))


def key_bias(T, dtype, device):
    """The official mask for one chunk of T mel frames (wav_len T - 2), as an additive bias."""
    T2 = (T + 1) // 2
    frame = torch.arange(T2, device=device) * 2 + (T + 1) % 2
    used = frame < T - 2
    bias = torch.zeros(T2, dtype=dtype, device=device)
    bias[~used] = -1e10  # mask_to_bias of the official code
    return bias.view(1, 1, 1, T2)


def time_calls(fn, runs):
    ms, ev = [], []
    for _ in range(runs):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        out = fn()
        e1.record()
        host = out.float().cpu()
        ms.append((time.perf_counter() - t0) * 1e3)
        ev.append(e0.elapsed_time(e1))
    assert host.shape == (1, 313, 3584), host.shape
    return statistics.median(ms), statistics.median(ev)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--frames", type=int, default=2502)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    dev = torch.device("cuda")
    torch.manual_seed(0)
    model = EncoderAdaptor().to(dev, torch.bfloat16).eval()
    with torch.no_grad():
        for p in model.parameters():  # keep activations in a realistic range
            p.normal_(0, 0.02)
    mel = (torch.rand(1, 128, args.frames, device=dev) * 3 - 1.5).to(torch.bfloat16)
    bias = key_bias(args.frames, torch.bfloat16, dev)
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.0f} M parameters", flush=True)

    results = {}
    with torch.inference_mode():
        for _ in range(3):
            model(mel, bias)
        eager_wall, eager_ev = time_calls(lambda: model(mel, bias), args.runs)
        results["eager"] = {"wall_ms": eager_wall, "event_ms": eager_ev}
        print(f"eager (SDPA): {eager_wall:.3f} ms wall, {eager_ev:.3f} ms on the GPU", flush=True)
        if not args.no_compile:
            t0 = time.perf_counter()
            compiled = torch.compile(model)
            for _ in range(3):
                compiled(mel, bias)
            torch.cuda.synchronize()
            print(f"torch.compile warm-up {time.perf_counter() - t0:.1f} s", flush=True)
            c_wall, c_ev = time_calls(lambda: compiled(mel, bias), args.runs)
            results["compiled"] = {"wall_ms": c_wall, "event_ms": c_ev}
            print(f"torch.compile: {c_wall:.3f} ms wall, {c_ev:.3f} ms on the GPU", flush=True)
    best = min(v["wall_ms"] for v in results.values())
    print(f"RESULT torch_encoder_25s_eager {results['eager']['wall_ms']:.4g} ms")
    if "compiled" in results:
        print(f"RESULT torch_encoder_25s_compiled {results['compiled']['wall_ms']:.4g} ms")
    print(f"RESULT torch_encoder_25s {best:.4g} ms")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
