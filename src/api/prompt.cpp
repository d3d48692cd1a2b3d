#include "api/prompt.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <span>

#include <fmt/format.h>

#include "audio/load.h"
#include "core/error.h"
#include "text/prompt.h"

namespace stepaudio {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Decodes nothing: `samples` are 16 kHz already. Adds one PromptChunk per 25 s chunk and returns
// their <audio_patch> counts.
std::vector<int> add_audio(std::span<const float> samples, const std::string& name,
                           MelExtractor& mel, Prompt& p) {
  if (samples.empty()) fail("audio {}: no samples to listen to", name);
  std::vector<int> patches;
  const auto chunks = split_chunks(static_cast<int64_t>(samples.size()));
  for (size_t k = 0; k < chunks.size(); ++k) {
    const auto t0 = std::chrono::steady_clock::now();
    PromptChunk c;
    c.source = chunks.size() == 1 ? name : fmt::format("{} (chunk {})", name, k);
    c.num_samples = chunks[k].length;
    c.mel = mel.compute(samples.subspan(chunks[k].start, chunks[k].length));
    c.n_audio_patch = audio_patch_count(c.mel.dim(1));
    p.mel_s += seconds_since(t0);
    patches.push_back(static_cast<int>(c.n_audio_patch));
    p.chunks.push_back(std::move(c));
  }
  return patches;
}

}  // namespace

Prompt build_prompt(const Conversation& conv, const text::Tokenizer& tok, MelExtractor& mel,
                    int64_t vocab_size) {
  if (conv.empty()) fail("conversation: empty; add at least one message");
  Prompt p;
  text::Conversation tc;
  const auto& msgs = conv.messages();
  for (size_t i = 0; i < msgs.size(); ++i) {
    const auto& m = msgs[i];
    if (!m.eot && i + 1 != msgs.size())
      fail("conversation: the open reply prefix (message {}) must be the last message", i);
    if (m.whole_text) {
      tc.say(m.role, m.parts.at(0).text, m.eot);
      continue;
    }
    std::vector<text::ContentItem> items;
    for (const auto& part : m.parts) {
      switch (part.kind) {
        case Conversation::Part::Text:
          items.push_back(text::ContentItem::Text(part.text));
          break;
        case Conversation::Part::AudioFile: {
          const auto t0 = std::chrono::steady_clock::now();
          const std::vector<float> samples = load_audio_16k(part.text);
          p.audio_s += seconds_since(t0);
          items.push_back(text::ContentItem::Audio(add_audio(samples, part.text, mel, p)));
          break;
        }
        case Conversation::Part::AudioSamples:
          for (float x : part.samples)
            if (!std::isfinite(x))
              fail("audio {}: samples must be finite (found NaN or Inf)", part.text);
          items.push_back(text::ContentItem::Audio(add_audio(part.samples, part.text, mel, p)));
          break;
        case Conversation::Part::Tokens:
          for (int32_t id : part.ids)
            if (id < 0 || id >= vocab_size)
              fail("conversation: token id {} in message {} is outside the vocabulary [0, {})", id,
                   i, vocab_size);
          items.push_back(text::ContentItem::Tokens(part.ids));
          break;
      }
    }
    tc.say(m.role, std::move(items), m.eot);
  }
  // The generation prompt {"role": "assistant", "content": None}, unless a reply is open.
  if (msgs.back().eot) tc.generate_text();
  text::EncodedPrompt enc = tc.encode(tok);
  // encode() checks that <audio_start> tokens and chunks agree; the splice relies on it.
  SA_CHECK(enc.audio_patches.size() == p.chunks.size(), "{} audio blocks for {} chunks",
           enc.audio_patches.size(), p.chunks.size());
  p.ids = std::move(enc.ids);
  return p;
}

}  // namespace stepaudio
