#include "text/prompt.h"

#include "core/error.h"
#include "text/special_tokens.h"

namespace stepaudio::text {

ContentItem ContentItem::Text(std::string s) {
  ContentItem c;
  c.kind = Kind::kText;
  c.text = std::move(s);
  return c;
}
ContentItem ContentItem::Audio(std::vector<int> patches_per_chunk) {
  ContentItem c;
  c.kind = Kind::kAudio;
  c.audio_patches = std::move(patches_per_chunk);
  return c;
}
ContentItem ContentItem::Tokens(std::vector<int32_t> ids) {
  ContentItem c;
  c.kind = Kind::kTokens;
  c.tokens = std::move(ids);
  return c;
}

Conversation& Conversation::add(Message m) {
  if (m.role == "user") m.role = "human";
  messages_.push_back(std::move(m));
  return *this;
}

Conversation& Conversation::say(std::string role, std::string text, bool eot) {
  return add(Message{std::move(role), std::move(text), eot});
}

Conversation& Conversation::say(std::string role, std::vector<ContentItem> items, bool eot) {
  return add(Message{std::move(role), std::move(items), eot});
}

Conversation& Conversation::assistant_speech_turn(std::vector<int32_t> generated_ids) {
  std::vector<ContentItem> items;
  items.push_back(ContentItem::Text("<tts_start>"));
  items.push_back(ContentItem::Tokens(std::move(generated_ids)));
  return say("assistant", std::move(items));
}

Conversation& Conversation::tool_result(std::string result, std::string instruction) {
  std::vector<ContentItem> items;
  items.push_back(ContentItem::Text(std::move(result)));
  if (!instruction.empty()) items.push_back(ContentItem::Text(std::move(instruction)));
  return say("input", std::move(items));
}

Conversation& Conversation::generate_text() { return add(Message{"assistant", {}, true}); }
Conversation& Conversation::generate_speech() {
  return say("assistant", std::string("<tts_start>"), false);
}
Conversation& Conversation::generate_thinking() {
  return say("assistant", std::string("\n<think>\n"), false);
}

std::vector<PromptPiece> Conversation::pieces() const {
  std::vector<PromptPiece> out;
  const auto text = [&](std::string s) { out.push_back(PromptPiece{false, std::move(s), {}}); };
  for (size_t mi = 0; mi < messages_.size(); ++mi) {
    const Message& m = messages_[mi];
    const std::string head = "<|BOT|>" + m.role + "\n";
    if (std::holds_alternative<std::monostate>(m.content)) {
      text(head);
    } else if (const auto* s = std::get_if<std::string>(&m.content)) {
      text(head + *s + (m.eot ? "<|EOT|>" : ""));
    } else {
      text(head);
      for (const ContentItem& item : std::get<std::vector<ContentItem>>(m.content)) {
        switch (item.kind) {
          case ContentItem::Kind::kText:
            text(item.text);
            break;
          case ContentItem::Kind::kAudio:
            for (size_t k = 0; k < item.audio_patches.size(); ++k) {
              const int n = item.audio_patches[k];
              if (n < 0)
                fail(
                    "prompt: message {} ({}): audio chunk {} has a negative <audio_patch> count {}",
                    mi, m.role, k, n);
              std::string s = "<audio_start>";
              s.reserve(s.size() + 13 * static_cast<size_t>(n) + 11);
              for (int i = 0; i < n; ++i) s += "<audio_patch>";
              s += "<audio_end>";
              text(std::move(s));
            }
            break;
          case ContentItem::Kind::kTokens:
            for (int32_t id : item.tokens)
              if (id < 0)
                fail("prompt: message {} ({}): raw token id {} is negative", mi, m.role, id);
            out.push_back(PromptPiece{true, {}, item.tokens});
            break;
        }
      }
      if (m.eot) text("<|EOT|>");
    }
  }
  return out;
}

EncodedPrompt Conversation::encode(const Tokenizer& tok) const {
  EncodedPrompt p;
  for (const PromptPiece& piece : pieces()) {
    if (piece.is_ids) {
      for (int32_t id : piece.ids)
        if (id == tok::kAudioStart)
          fail(
              "prompt: raw token ids contain <audio_start> ({}); audio must be given as an audio "
              "item so that each chunk gets its placeholder rows",
              tok::kAudioStart);
      p.ids.insert(p.ids.end(), piece.ids.begin(), piece.ids.end());
    } else {
      tok.encode(piece.text, p.ids);
    }
  }
  for (size_t i = 0; i < p.ids.size(); ++i)
    if (p.ids[i] == tok::kAudioStart) p.audio_start_positions.push_back(i);
  for (const Message& m : messages_)
    if (const auto* items = std::get_if<std::vector<ContentItem>>(&m.content))
      for (const ContentItem& item : *items)
        if (item.kind == ContentItem::Kind::kAudio)
          p.audio_patches.insert(p.audio_patches.end(), item.audio_patches.begin(),
                                 item.audio_patches.end());
  if (p.audio_start_positions.size() != p.audio_patches.size())
    fail(
        "prompt: {} <audio_start> tokens in the prompt but {} audio chunks; text content must "
        "not spell audio markers",
        p.audio_start_positions.size(), p.audio_patches.size());
  return p;
}

namespace presets {

namespace {
Conversation audio_task(std::vector<int> patches, std::string system, bool speech_out) {
  Conversation c;
  c.system(std::move(system));
  std::vector<ContentItem> items;
  items.push_back(ContentItem::Audio(std::move(patches)));
  c.user(std::move(items));
  return speech_out ? c.generate_speech() : c.generate_text();
}
}  // namespace

Conversation asr(std::vector<int> patches, std::string system) {
  return audio_task(std::move(patches), std::move(system), false);
}
Conversation s2tt(std::vector<int> patches, std::string system) {
  return audio_task(std::move(patches), std::move(system), false);
}
Conversation s2st(std::vector<int> patches, std::string system) {
  return audio_task(std::move(patches), std::move(system), true);
}
Conversation chat_text(std::string question, bool speech_out, std::string system) {
  Conversation c;
  c.system(std::move(system)).user(std::move(question));
  return speech_out ? c.generate_speech() : c.generate_text();
}
Conversation chat_audio(std::vector<int> patches, bool speech_out, std::string system) {
  return audio_task(std::move(patches), std::move(system), speech_out);
}
Conversation tool_call(std::string system, std::string tool_schemas_json,
                       std::vector<int> patches) {
  Conversation c;
  c.system(std::move(system)).tool_schemas(std::move(tool_schemas_json));
  std::vector<ContentItem> items;
  items.push_back(ContentItem::Audio(std::move(patches)));
  c.user(std::move(items));
  return c.generate_speech();
}

}  // namespace presets
}  // namespace stepaudio::text
