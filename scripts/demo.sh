#!/usr/bin/env bash
# The demo: set up, build, then on the bundled speech clip
#   1. compute its log-mel on the best available device (GPU if usable, else CPU),
#   2. create a tiny random-weight model in the official Step-Audio 2 layout (real tokenizer),
#   3. run speech recognition with it and print the (meaningless) answer and the timings,
#   4. create a tiny random token2wav (flow + HiFT vocoder) and a random voice, ask the tiny model
#      for a spoken answer and write it to build/demo-answer.wav (random weights: noise).
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

T2W=build/demo-tiny-token2wav
ANSWER=build/demo-answer.wav
echo
echo "== a tiny random token2wav (flow + HiFT) and a random voice: $T2W"
"$BIN" gen-token2wav --preset tiny -o "$T2W"
echo
echo "== stepaudio run --speech-out $ANSWER --stream (random weights: the audio is noise)"
rm -f "$ANSWER"
"$BIN" run -m "$MODEL" --prompt "Say hello." --speech-out "$ANSWER" --token2wav "$T2W" \
  --stream --max-tokens 200 --audio-codes build/demo-answer-codes.txt --device auto
if [ ! -s "$ANSWER" ]; then
  echo "(the tiny random model's answer held no audio codes: speaking 50 fixed codes instead)"
  seq 100 113 6000 | head -n 50 >build/demo-fixed-codes.txt
  "$BIN" token2wav --token2wav "$T2W" --voice "$T2W/voice.safetensors" \
    --codes build/demo-fixed-codes.txt -o "$ANSWER" --device auto
fi
echo "$ANSWER: 24 kHz speech from random weights - noise, not words"

cat <<'TXT'

To run the real model, download the official Step-Audio-2-mini folder (config.json, the four
model-*.safetensors shards with their index, and the tokenizer files) and point -m at it:
  build/stepaudio run -m /path/to/Step-Audio-2-mini -f question.wav --task chat
  build/stepaudio run -m /path/to/Step-Audio-2-mini -f speech.wav --task asr
and for a spoken answer, a voice (make-voice) and the official token2wav folder:
  build/stepaudio run -m /path/to/Step-Audio-2-mini -f question.wav --task s2st \
    --speech-out answer.wav --voice voice.safetensors --stream
TXT
