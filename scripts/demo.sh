#!/usr/bin/env bash
# The demo: set up, build, then on the bundled speech clip
#   1. compute its log-mel on the best available device (GPU if usable, else CPU),
#   2. create a tiny random-weight model in the official Step-Audio 2 layout (real tokenizer),
#   3. run speech recognition with it and print the (meaningless) answer and the timings.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
./scripts/build.sh >/dev/null
BIN=build/stepaudio
CLIP=assets/audio/en_hello_3s.wav
MODEL=build/demo-tiny-model

echo "== log-mel of $CLIP"
"$BIN" mel "$CLIP" --device auto -o build/demo-mel.safetensors

echo
echo "== a tiny random model in the official layout: $MODEL"
"$BIN" gen-model --preset tiny -o "$MODEL" >/dev/null
echo
echo "== stepaudio run --task asr (random weights: the words mean nothing)"
"$BIN" run -m "$MODEL" -f "$CLIP" --task asr --max-tokens 24 --device auto

cat <<'TXT'

To run the real model, download the official Step-Audio-2-mini folder (config.json, the four
model-*.safetensors shards with their index, and the tokenizer files) and point -m at it:
  build/stepaudio run -m /path/to/Step-Audio-2-mini -f question.wav --task chat
  build/stepaudio run -m /path/to/Step-Audio-2-mini -f speech.wav --task asr
TXT
