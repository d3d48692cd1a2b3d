#!/usr/bin/env bash
# Installs every Debian package that building, testing and the demo need. Idempotent: packages
# already present are skipped, so a second run costs only the dpkg query.
# Only Debian's own archive is used (bookworm main); nothing is downloaded from anywhere else.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libsndfile1-dev        # decode wav/flac/ogg/mp3/aiff (LGPL, dynamic)
  libsoxr-dev            # optional high-quality resampler
  libkissfft-dev         # CPU real FFT (BSD; fits the Apache-2.0 licence)
  libopenblas-dev        # CPU GEMM (BSD)
  zlib1g-dev             # tests: reading the golden .npz (zip + deflate)
  libzip-dev             # torch.save checkpoints (flow.pt, hift.pt) are zip archives (BSD)
  nlohmann-json3-dev     # JSON (safetensors headers, config.json)
  libyaml-cpp-dev        # token2wav flow.yaml (MIT)
  libpcre2-dev           # Unicode regex for the Qwen2 pre-tokenizer
  libutf8proc-dev        # NFC normalisation
  libcli11-dev libfmt-dev libspdlog-dev
  libcpp-httplib-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-14 libclang-rt-14-dev   # libFuzzer + sanitizers
)
# Reference tooling used only to (re)make test fixtures; not needed to build or test.
if [[ "${STEPAUDIO_FIXTURE_TOOLS:-0}" == 1 ]]; then
  PACKAGES+=(python3-torchaudio python3-numpy python3-soundfile sox espeak-ng)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi
