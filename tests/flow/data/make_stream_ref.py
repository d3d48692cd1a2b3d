"""Writes stream_ref.safetensors: the official streaming flow (setup_cache + inference_chunk) on
the token2wav-a tiny weights, with golden flow/noise as the CFM noise table.

Run by hand (never at build or test time) with a Python that has torch and numpy, and a checkout
of github.com/stepfun-ai/Step-Audio2 (its cosyvoice2/ package, imported unmodified):

  python3 make_stream_ref.py /path/to/Step-Audio2 /path/to/shared/golden/token2wav-a out.safetensors

einops, onnxruntime, device_utils, torch._dynamo / torch.compile and (torch < 2.0)
F.scaled_dot_product_attention are stubbed where missing
(only pack/repeat of einops are used; the others are imported but not needed on the CPU). The
official cache buffers are sized for the real model (8 heads x 64, depth 16), so they are
replaced by buffers of the tiny model's sizes before streaming.
"""
import importlib
import json
import math
import struct
import sys
import types

import numpy as np
import torch


def stub_modules():
    try:
        import einops  # noqa: F401
    except ImportError:
        m = types.ModuleType("einops")
        m.pack = lambda ts, pattern: (torch.cat(ts, dim=1), None)  # "b * t"
        m.repeat = lambda x, pattern, t: x.unsqueeze(-1).expand(-1, -1, t)  # "b c -> b c t"
        m.rearrange = None
        sys.modules["einops"] = m
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        sys.modules["onnxruntime"] = types.ModuleType("onnxruntime")
    if "device_utils" not in sys.modules:
        m = types.ModuleType("device_utils")
        m.get_device = lambda: torch.device("cpu")
        sys.modules["device_utils"] = m
    if not hasattr(torch.nn.functional, "scaled_dot_product_attention"):  # torch < 2.0
        def sdpa(q, k, v, attn_mask=None, dropout_p=0.0):
            s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
            if attn_mask is not None:
                s = s.masked_fill(~attn_mask, float("-inf"))
            return torch.softmax(s, dim=-1) @ v
        torch.nn.functional.scaled_dot_product_attention = sdpa
    if not hasattr(torch, "compile"):
        torch.compile = lambda *a, **k: (lambda f: f)
    try:
        importlib.import_module("torch._dynamo")
    except ImportError:
        m = types.ModuleType("torch._dynamo")
        m.config = types.SimpleNamespace()
        sys.modules["torch._dynamo"] = m
        torch._dynamo = m


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = {"F32": np.float32, "I64": np.int64}[info["dtype"]]
        b, e = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[b:e], dtype=dt).reshape(info["shape"]).copy())
    return out


def write_safetensors(path, tensors):
    header, blobs, at = {}, [], 0
    for name in sorted(tensors):
        a = tensors[name].detach().contiguous().numpy().astype(np.float32)
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [at, at + a.nbytes]}
        blobs.append(a.tobytes())
        at += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def stream(flow, prompt, codes, prompt_mel, spk, chunk, look=3, trim=False):
    cache = flow.setup_cache(torch.cat([prompt, prompt[:, :look]], 1), prompt_mel, spk, 10)
    mels, at, n = [], 0, codes.shape[1]
    while True:
        last = at + chunk + look >= n
        end = n if last else at + chunk + look
        mel, cache = flow.inference_chunk(codes[:, at:end], spk, cache, last_chunk=last, n_timesteps=10)
        mels.append(mel[0])
        # Token2wav.stream: keep the prompt's frames and the last 100 of the estimator K/V caches.
        if trim and cache["estimator_att_cache"].shape[4] > prompt_mel.shape[1] + 100:
            a = cache["estimator_att_cache"]
            cache["estimator_att_cache"] = torch.cat(
                [a[:, :, :, :, : prompt_mel.shape[1]], a[:, :, :, :, -100:]], dim=4)
        if last:
            return torch.cat(mels, 1)
        at += chunk


def main():
    repo, golden_dir, out = sys.argv[1:4]
    sys.path.insert(0, repo)
    stub_modules()
    from cosyvoice2.flow.decoder_dit import DiT
    from cosyvoice2.flow.flow import CausalMaskedDiffWithXvec
    from cosyvoice2.flow.flow_matching import CausalConditionalCFM
    from cosyvoice2.transformer.upsample_encoder_v2 import UpsampleConformerEncoderV2

    D, H, depth, dit_heads, head_dim = 64, 2, 2, 2, 32
    enc = UpsampleConformerEncoderV2(
        input_size=D, output_size=D, input_layer="linear", pre_lookahead_len=3, num_blocks=1,
        num_up_blocks=1, up_stride=2, up_scale_factor=2, attention_heads=H,
        pos_enc_layer_type="rel_pos_espnet", selfattention_layer_type="rel_selfattn", key_bias=True,
        linear_units=2 * D, dropout_rate=0.1, positional_dropout_rate=0.1,
        attention_dropout_rate=0.1, normalize_before=True)
    dit = DiT(in_channels=320, out_channels=80, mlp_ratio=4.0, depth=depth, num_heads=dit_heads,
              head_dim=head_dim, hidden_size=D)
    cfm = CausalConditionalCFM(dit, inference_cfg_rate=0.7)
    flow = CausalMaskedDiffWithXvec(input_size=D, output_size=80, spk_embed_dim=192,
                                    output_type="mel", vocab_size=6561, encoder=enc, decoder=cfm)
    flow.load_state_dict(torch.load(golden_dir + "/flow.pt"), strict=True)
    flow.eval()
    dit.att_cache_buffer = torch.zeros(depth, 2, dit_heads, 1000, 2 * head_dim)
    dit.cnn_cache_buffer = torch.zeros(depth, 2, 2 * D, 2)
    cfm.att_cache_buffer = torch.zeros(10, depth, 2, dit_heads, 1000, 2 * head_dim)
    cfm.cnn_cache_buffer = torch.zeros(10, depth, 2, 2 * D, 2)

    g = read_safetensors(golden_dir + "/goldens.safetensors")
    noise = g["flow/noise"]
    cfm.rand_noise[:, :, : noise.shape[1]] = noise
    prompt = g["flow/prompt_token"].to(torch.int32)[None]
    codes = g["flow/token"].to(torch.int32)[None]
    mel = g["flow/prompt_feat"][None]
    spk = g["flow/embedding"][None]
    with torch.no_grad():
        offline = flow.inference(codes, torch.tensor([codes.shape[1]]), prompt,
                                 torch.tensor([prompt.shape[1]]), mel, torch.tensor([mel.shape[1]]),
                                 spk, 10)[0]
        print("offline vs golden feat: max abs", float((offline - g["flow/feat"]).abs().max()))
        res = {"offline": offline}
        for chunk in (25, 4):
            res["chunk%d" % chunk] = stream(flow, prompt, codes, mel, spk, chunk)
            print("chunk", chunk, "vs offline: max abs",
                  float((res["chunk%d" % chunk] - offline).abs().max()))
        # A longer stream (the tokens three times) with Token2wav's cache trimming, on a noise
        # table of our own (the golden one has only 114 frames).
        table = torch.randn(80, 400, generator=torch.Generator().manual_seed(1))
        cfm.rand_noise[:, :, :400] = table
        res["trim_noise"] = table
        res["chunk25_trim"] = stream(flow, prompt, codes.repeat(1, 3), mel, spk, 25, trim=True)
    write_safetensors(out, res)


if __name__ == "__main__":
    main()
