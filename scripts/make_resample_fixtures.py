#!/usr/bin/python3
"""Writes the torchaudio reference outputs that tests/audio/resample_test.cpp compares against.

Run with Debian's python (it has torch 1.13 / torchaudio 0.13.1; the pyenv python3 does not):
    /usr/bin/python3 scripts/make_resample_fixtures.py [SHARED_DIR]
SHARED_DIR defaults to ../shared beside the repository. Output: tests/data/resample/*.safetensors,
one file per case, with float32 tensors and string metadata:
  output           torchaudio.transforms.Resample(from_rate, to_rate)(input), the reference
  input            the synthetic input signal (synthetic cases only)
  input_every_37th channel 0 as torchaudio.load gives it, every 37th sample (file cases only),
                   so the C++ decoder is checked against torchaudio.load without storing it all
  metadata: from_rate, to_rate, source ("synthetic" or the file name under SHARED_DIR/audio),
            input_len, input_sum and input_sumsq (float64 sums of the input, as text)
The file cases reproduce the official front end: torchaudio.load -> channel 0 -> Resample.
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torchaudio

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
OUT = os.path.join(REPO, "tests", "data", "resample")


def save_safetensors(path, tensors, metadata):
    header = {"__metadata__": {k: str(v) for k, v in metadata.items()}}
    blobs, offset = [], 0
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def reference(x, from_rate, to_rate):
    # Exactly the official call: default dtype (kernel built in float64, cached as float32).
    resampler = torchaudio.transforms.Resample(orig_freq=from_rate, new_freq=to_rate)
    with torch.no_grad():
        return resampler(torch.from_numpy(x)[None])[0].numpy()


def sums(x):
    x64 = x.astype(np.float64)
    return {"input_len": len(x), "input_sum": repr(float(x64.sum())),
            "input_sumsq": repr(float((x64 * x64).sum()))}


def synthetic(rate, n, seed):
    """A chirp up to near Nyquist, noise, and full-scale impulses at both ends (edge handling)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.float64) / rate
    dur = max(n / rate, 1e-9)
    f0, f1 = 50.0, 0.48 * rate
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * dur))
    x = 0.5 * np.sin(phase) + 0.2 * rng.standard_normal(n)
    x = np.clip(x, -0.95, 0.95)
    if n >= 2:
        x[0], x[-1] = 0.99, -1.0
    return x.astype(np.float32)


def main():
    shared = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(REPO), "shared")
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)

    # Real files through the official loader: channel 0 of torchaudio.load.
    for name, case in [("stereo_44k.flac", "file_stereo_44k"),
                       ("real_speech.aiff", "file_real_speech")]:
        wav, rate = torchaudio.load(os.path.join(shared, "audio", name))
        x = wav[0].numpy().astype(np.float32)
        y = reference(x, rate, 16000)
        meta = {"from_rate": rate, "to_rate": 16000, "source": name, **sums(x)}
        save_safetensors(os.path.join(OUT, case + ".safetensors"),
                         {"output": y, "input_every_37th": x[::37].copy()}, meta)
        print(f"{case}: {name} {rate} -> 16000, {len(x)} -> {len(y)} samples")

    # Synthetic signals: common rates, odd lengths, a non-trivial gcd, up- and down-sampling,
    # and inputs shorter than the filter (where zero padding dominates).
    cases = [
        ("syn_8000_16000", 8000, 16000, 4001),
        ("syn_48000_16000", 48000, 16000, 24007),
        ("syn_11025_16000", 11025, 16000, 5513),
        ("syn_32000_16000", 32000, 16000, 16003),
        ("syn_16000_24000", 16000, 24000, 8001),
        ("syn_22050_24000", 22050, 24000, 2205),
        ("syn_12345_16000", 12345, 16000, 1235),
        ("syn_96000_16000", 96000, 16000, 961),
        ("syn_16000_8000", 16000, 8000, 1601),
        ("tiny_48000_16000", 48000, 16000, 7),
        ("tiny_8000_16000", 8000, 16000, 3),
        ("tiny_44100_16000", 44100, 16000, 1),
    ]
    for i, (case, from_rate, to_rate, n) in enumerate(cases):
        x = synthetic(from_rate, n, seed=1000 + i)
        y = reference(x, from_rate, to_rate)
        meta = {"from_rate": from_rate, "to_rate": to_rate, "source": "synthetic", **sums(x)}
        save_safetensors(os.path.join(OUT, case + ".safetensors"), {"input": x, "output": y}, meta)
        print(f"{case}: {from_rate} -> {to_rate}, {n} -> {len(y)} samples")


if __name__ == "__main__":
    main()
