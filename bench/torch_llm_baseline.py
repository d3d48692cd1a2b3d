#!/usr/bin/env python3
"""Decode (batch 1, 8, 64) of a transformers Qwen2 with the Step-Audio 2 LLM's shapes (hidden 3584, 28
layers, 28/4 heads, FFN 18944, vocab 158720, untied lm_head), random bf16 weights, on the same
GPU as bench_llm_gpu: the side-by-side baseline for its decode tok/s.

Decode uses a static KV cache and, unless --eager, torch.compile(mode="reduce-overhead") (CUDA
graphs). Prints "RESULT name value unit" lines and writes them to --json.
"""
import argparse
import json
import time

import torch


def run_batch(a, cfg, model, B, result):
    from transformers.cache_utils import StaticCache
    max_len = a.ctx + a.steps + 8
    cache = StaticCache(config=cfg, max_cache_len=max_len, max_batch_size=B,
                        device="cuda", dtype=torch.bfloat16) if "max_batch_size" in \
        StaticCache.__init__.__code__.co_varnames else StaticCache(config=cfg,
                                                                  max_cache_len=max_len)
    ids = torch.randint(0, 151000, (B, a.ctx), device="cuda")
    with torch.no_grad():
        torch.cuda.synchronize()
        t0 = time.time()
        out = model(input_ids=ids, past_key_values=cache, use_cache=True, logits_to_keep=1,
                    cache_position=torch.arange(a.ctx, device="cuda"))
        torch.cuda.synchronize()
        result(f"torch_prefill_{a.ctx}_b{B}_tok_per_s", B * a.ctx / (time.time() - t0), "tok/s")
        tok = out.logits[:, -1:].argmax(-1)

        def step(tok, pos):
            return model(input_ids=tok, past_key_values=cache, use_cache=True,
                         cache_position=pos).logits[:, -1:].argmax(-1)

        fn = step
        if not a.eager:
            fn = torch.compile(step, mode="reduce-overhead", fullgraph=True)
        pos = a.ctx
        t0 = time.time()
        for _ in range(3):  # compile + graph capture
            if not a.eager:
                torch.compiler.cudagraph_mark_step_begin()
            tok = fn(tok, torch.tensor([pos], device="cuda")).clone()
            pos += 1
        torch.cuda.synchronize()
        result(f"torch_warmup_b{B}_s", time.time() - t0, "s")
        times = []
        for _ in range(a.steps):
            p = torch.tensor([pos], device="cuda")
            s = time.time()
            if not a.eager:
                # The graph's output buffer is reused by the next replay: mark the step and
                # copy the id out before feeding it back.
                torch.compiler.cudagraph_mark_step_begin()
            tok = fn(tok, p).clone()
            torch.cuda.synchronize()
            times.append(time.time() - s)
            pos += 1
        times.sort()
        t = times[len(times) // 2]
        result(f"torch_decode_{a.ctx}_b{B}_tok_per_s", B / t, "tok/s")
        result(f"torch_decode_{a.ctx}_b{B}_ms", t * 1e3, "ms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--batch", default="1", help="comma-separated batch sizes")
    ap.add_argument("--layers", type=int, default=28)
    ap.add_argument("--eager", action="store_true")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    import transformers
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from transformers.cache_utils import StaticCache

    res = {}

    def result(name, v, unit):
        print(f"RESULT {name} {v:.6g} {unit}", flush=True)
        res[name] = v

    cfg = Qwen2Config(vocab_size=158720, hidden_size=3584, intermediate_size=18944,
                      num_hidden_layers=a.layers, num_attention_heads=28, num_key_value_heads=4,
                      max_position_embeddings=16384, rope_theta=1e6, rms_norm_eps=1e-6,
                      tie_word_embeddings=False, torch_dtype="bfloat16")
    torch.manual_seed(0)
    t0 = time.time()
    with torch.device("cuda"):
        model = Qwen2ForCausalLM(cfg).to(torch.bfloat16).eval()
    torch.cuda.synchronize()
    result("torch_init_s", time.time() - t0, "s")
    print("transformers", transformers.__version__, "torch", torch.__version__, flush=True)

    for B in [int(b) for b in a.batch.split(",")]:
        run_batch(a, cfg, model, B, result)
        torch.cuda.empty_cache()
    result("torch_peak_mem_GB", torch.cuda.max_memory_allocated() / 1e9, "GB")
    if a.json:
        json.dump(res, open(a.json, "w"))


if __name__ == "__main__":
    main()
