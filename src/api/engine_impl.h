// What an Engine holds: the opened checkpoint, the tokenizer, the models and the mel front end.
// Shared by the files of src/api (engine.cpp: load/generate, trace.cpp: trace).
#pragma once
#include <memory>
#include <string>

#include "api/prompt.h"
#include "audio/mel.h"
#include "engine/generator.h"
#include "io/checkpoint.h"
#include "model/encoder.h"
#include "model/llm.h"
#include "stepaudio/engine.h"
#include "text/tokenizer.h"

namespace stepaudio {

struct Engine::Impl {
  // The models borrow the checkpoint's memory maps through `ckpt`, so Impl is never moved
  // (Engine holds it by unique_ptr) and ckpt is declared first (destroyed last).
  Checkpoint ckpt;
  text::Tokenizer tok;
  EngineOptions options;
  Qwen2LM lm;
  AudioEncoder encoder;
  MelExtractor mel;
  Generator gen;
  double load_s = 0;

  static DType weight_type(Precision p) {
    return p == Precision::F32 ? DType::F32 : p == Precision::F16 ? DType::F16 : DType::BF16;
  }

  Impl(Checkpoint c, text::Tokenizer t, const EngineOptions& o)
      : ckpt(std::move(c)),
        tok(std::move(t)),
        options(o),
        lm(ckpt, o.device, weight_type(o.precision)),
        encoder(ckpt, o.device, weight_type(o.precision)),
        mel(o.device),
        gen(lm, &encoder) {}

  Prompt prompt(const Conversation& conv) {
    return build_prompt(conv, tok, mel, lm.config().vocab_size);
  }
};

}  // namespace stepaudio
