#include <utility>

#include "stepaudio/engine.h"
#include "text/special_tokens.h"

namespace stepaudio {

namespace {
Conversation::Part text_part(std::string t) {
  Conversation::Part p;
  p.kind = Conversation::Part::Text;
  p.text = std::move(t);
  return p;
}
}  // namespace

Conversation& Conversation::message(std::string role, std::string text) {
  Message m;
  m.role = std::move(role);
  m.whole_text = true;
  m.parts.push_back(text_part(std::move(text)));
  messages_.push_back(std::move(m));
  return *this;
}

Conversation& Conversation::message(std::string role) {
  Message m;
  m.role = std::move(role);
  messages_.push_back(std::move(m));
  return *this;
}

// The official code renames "user" to "human"; the model never saw "user".
Conversation& Conversation::system(std::string text) { return message("system", std::move(text)); }
Conversation& Conversation::user(std::string text) { return message("human", std::move(text)); }
Conversation& Conversation::user() { return message("human"); }
Conversation& Conversation::assistant(std::string text) {
  return message("assistant", std::move(text));
}
Conversation& Conversation::assistant() { return message("assistant"); }

Conversation::Message& Conversation::open_message(const char* what) {
  if (messages_.empty())
    fail(
        "conversation: {}() needs an open message first (call user(), assistant() or "
        "message(role))",
        what);
  Message& m = messages_.back();
  if (m.whole_text)
    fail(
        "conversation: {}() cannot add to the whole-text '{}' message; open one with user(), "
        "assistant() or message(role)",
        what, m.role);
  if (!m.eot)
    fail("conversation: {}() after reply_prefix(): the reply prefix must come last", what);
  return m;
}

Conversation& Conversation::text(std::string t) {
  open_message("text").parts.push_back(text_part(std::move(t)));
  return *this;
}

Conversation& Conversation::audio(std::string path) {
  Part p;
  p.kind = Part::AudioFile;
  p.text = std::move(path);
  open_message("audio").parts.push_back(std::move(p));
  return *this;
}

Conversation& Conversation::audio(std::vector<float> samples_16k, std::string name) {
  Part p;
  p.kind = Part::AudioSamples;
  p.text = std::move(name);
  p.samples = std::move(samples_16k);
  open_message("audio").parts.push_back(std::move(p));
  return *this;
}

Conversation& Conversation::tokens(std::vector<int32_t> ids) {
  Part p;
  p.kind = Part::Tokens;
  p.ids = std::move(ids);
  open_message("tokens").parts.push_back(std::move(p));
  return *this;
}

Conversation& Conversation::reply_prefix(std::string t) {
  if (!messages_.empty() && !messages_.back().eot)
    fail("conversation: reply_prefix() called twice; there can be only one open reply");
  // {"role": "assistant", "content": t, "eot": False}: "<|BOT|>assistant\n" + t, not closed.
  message("assistant", std::move(t));
  messages_.back().eot = false;
  return *this;
}

Conversation& Conversation::history(const Result& answer) {
  // The official multi-turn examples put the raw generated ids back (the text and audio tokens
  // interleaved as produced), inside an assistant message that repeats the reply prefix.
  if (!messages_.empty() && !messages_.back().eot) {
    // The answer continued an open prefix: close that message with the answer's ids.
    Message& m = messages_.back();
    m.whole_text = false;
    m.eot = true;
  } else {
    message("assistant");
  }
  std::vector<int32_t> ids = answer.tokens;
  if (!ids.empty() && ids.back() == text::tok::kEot) ids.pop_back();  // re-added as the close
  Part p;
  p.kind = Part::Tokens;
  p.ids = std::move(ids);
  messages_.back().parts.push_back(std::move(p));
  return *this;
}

}  // namespace stepaudio
