// The Step-Audio 2 prompt format of the official Hugging Face path
// (stepaudio2.py StepAudio2.apply_chat_template, spec §6.2). A conversation becomes a list of
// pieces; each string piece is tokenized on its own and the ids are concatenated (pieces never
// merge across a boundary), raw id pieces are copied as they are. No BOS is added.
//
//   string content:  "<|BOT|>{role}\n{content}" + "<|EOT|>" unless eot is false
//   list content:    "<|BOT|>{role}\n", then per item: text -> "{text}"; audio -> one piece
//                    "<audio_start>" + "<audio_patch>" * n_k + "<audio_end>" per 25 s chunk k;
//                    tokens -> the ids; then "<|EOT|>" unless eot is false
//   no content:      "<|BOT|>{role}\n" (the generation prompt)
// Role "user" is written "human".
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "text/tokenizer.h"

namespace stepaudio::text {

struct ContentItem {
  enum class Kind { kText, kAudio, kTokens };
  Kind kind = Kind::kText;
  std::string text;                // kText
  std::vector<int> audio_patches;  // kAudio: <audio_patch> count of each 25 s chunk, in order
  std::vector<int32_t> tokens;     // kTokens: raw ids

  static ContentItem Text(std::string s);
  static ContentItem Audio(std::vector<int> patches_per_chunk);
  static ContentItem Tokens(std::vector<int32_t> ids);
};

struct Message {
  std::string role;
  // monostate: no content (generation prompt); string; or a list of items.
  std::variant<std::monostate, std::string, std::vector<ContentItem>> content;
  bool eot = true;
};

// One prompt piece: text to tokenize, or ids to copy.
struct PromptPiece {
  bool is_ids = false;
  std::string text;
  std::vector<int32_t> ids;
};

struct EncodedPrompt {
  std::vector<int32_t> ids;
  // Index in `ids` of each <audio_start>; chunk k's adaptor rows overwrite ids after the k-th.
  std::vector<size_t> audio_start_positions;
  // <audio_patch> count of each audio chunk, in prompt order (one per audio_start position).
  std::vector<int> audio_patches;
};

class Conversation {
 public:
  Conversation& add(Message m);
  // String-content messages ("<|BOT|>role\ntext<|EOT|>").
  Conversation& system(std::string text) { return say("system", std::move(text)); }
  Conversation& user(std::string text) { return say("human", std::move(text)); }
  Conversation& assistant(std::string text) { return say("assistant", std::move(text)); }
  Conversation& say(std::string role, std::string text, bool eot = true);
  // List-content messages.
  Conversation& user(std::vector<ContentItem> items) { return say("human", std::move(items)); }
  Conversation& say(std::string role, std::vector<ContentItem> items, bool eot = true);
  // A past spoken assistant turn, written back as the official code does: "<tts_start>" then the
  // raw generated ids (text and audio tokens interleaved, without the final <|EOT|>), then EOT.
  Conversation& assistant_speech_turn(std::vector<int32_t> generated_ids);
  // Tool schemas (role tool_json_schemas), the JSON text as given.
  Conversation& tool_schemas(std::string json_text) {
    return say("tool_json_schemas", std::move(json_text));
  }
  // A tool result (role input) followed by the official instruction to summarise it.
  Conversation& tool_result(std::string result, std::string instruction);

  // Endings: "<|BOT|>assistant\n" for a text answer; "<|BOT|>assistant\n<tts_start>" for speech;
  // "<|BOT|>assistant\n\n<think>\n" for the think model's first pass.
  Conversation& generate_text();
  Conversation& generate_speech();
  Conversation& generate_thinking();

  const std::vector<Message>& messages() const { return messages_; }
  std::vector<PromptPiece> pieces() const;
  // Throws Error for a negative patch count, a negative raw id, or raw ids holding <audio_start>
  // (which would shift every audio chunk's splice position).
  EncodedPrompt encode(const Tokenizer& tok) const;

 private:
  std::vector<Message> messages_;
};

// Official task presets (system prompts verbatim from the official examples).
namespace presets {
inline constexpr const char* kAsr = "请记录下你所听到的语音内容。";
inline constexpr const char* kS2ttZh = "请仔细聆听这段语音，然后将其内容翻译成中文。";
inline constexpr const char* kS2ttZhEnglishPrompt =
    "Please listen carefully to this audio and then translate its content into Chinese.";
inline constexpr const char* kS2stZh = "请仔细聆听这段语音，然后将其内容翻译成中文并用语音播报。";
inline constexpr const char* kS2stZhEnglishPrompt =
    "Please listen carefully to this audio and then translate its content into Chinese speech.";
inline constexpr const char* kCaption =
    "Please briefly explain the important events involved in this audio clip.";
inline constexpr const char* kChat = "You are a helpful assistant.";
inline constexpr const char* kSpeechChat = "请用语音与我交流。";
inline constexpr const char* kToolResultInstruction =
    "\n\n\n请用口语化形式总结检索结果，简短地回答用户的问题。";

// ASR: system prompt, the audio, text answer.
Conversation asr(std::vector<int> patches_per_chunk, std::string system = kAsr);
// Speech-to-text translation.
Conversation s2tt(std::vector<int> patches_per_chunk, std::string system = kS2ttZh);
// Speech-to-speech translation: the answer starts with <tts_start>.
Conversation s2st(std::vector<int> patches_per_chunk, std::string system = kS2stZh);
// Chat with a text or an audio question; speech_out ends the prompt with <tts_start>.
Conversation chat_text(std::string question, bool speech_out = false, std::string system = kChat);
Conversation chat_audio(std::vector<int> patches_per_chunk, bool speech_out = false,
                        std::string system = kChat);
// Tool use: system prompt, tool schemas JSON, the audio question, a spoken answer.
Conversation tool_call(std::string system, std::string tool_schemas_json,
                       std::vector<int> patches_per_chunk);
}  // namespace presets

}  // namespace stepaudio::text
