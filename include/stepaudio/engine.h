// The public C++ API of stepaudio: load a Step-Audio 2 checkpoint once, describe a conversation,
// generate the assistant's answer (text, and audio codes when speech is requested), streamed as
// it is produced.
//
//   auto engine = stepaudio::Engine::load("Step-Audio-2-mini", {.device =
//   stepaudio::Device::cuda(0)}); stepaudio::Conversation chat;
//   chat.system("请记录下你所听到的语音内容。").user().audio("question.wav");
//   auto result = engine.generate(chat, {.max_tokens = 256, .greedy = true},
//                                 [](const stepaudio::Delta& d) { std::cout << d.text; });
//
// Errors are thrown as stepaudio::Error (a std::runtime_error) whose message names the file,
// field or tensor at fault. An Engine is not thread-safe: one generate() at a time.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"  // stepaudio::Device: a plain {type, index} value
#include "core/error.h"   // stepaudio::Error

namespace stepaudio {

// The weights' type on the GPU, which sets the compute type of the large products: BF16 (the
// official inference type, default), F16, or F32 (full fp32 compute, for comparisons with the
// float32 goldens). The CPU always computes in fp32 from the stored weights.
enum class Precision { BF16, F16, F32 };

struct EngineOptions {
  Device device = Device::cpu();
  Precision precision = Precision::BF16;
  // Longest prompt + answer, in tokens; 0 = the model's max_position_embeddings.
  int64_t max_context = 0;
  bool show_progress = false;  // a progress bar on stderr while the weights are opened
};

// Next-token selection. The defaults are those of the official code's Hugging Face generate()
// when do_sample=True: temperature 1, top_k 50, top_p 1, no repetition penalty, 2048 new tokens.
// Filters apply in HF order: repetition penalty -> temperature -> top-k -> top-p.
struct Sampling {
  float temperature = 1.0f;         // 0 = greedy
  float top_p = 1.0f;               // 1 = off
  int top_k = 50;                   // 0 = off
  float repetition_penalty = 1.0f;  // 1 = off; counts every id seen, the prompt included
  uint64_t seed = 0;                // the same seed reproduces the same answer
  int max_tokens = 2048;            // new tokens, the stop token included
  bool greedy = false;              // argmax (after the repetition penalty); ignores the rest
};

// One piece of streamed output. There is one delta per generated token, as soon as it is chosen,
// and a final one with done = true and token = -1 that carries any text still held back (bytes
// of an unfinished UTF-8 character). The texts of all deltas concatenate to Result::text.
struct Delta {
  std::string text;                  // new text (whole UTF-8 characters only); may be empty
  std::vector<int32_t> audio_codes;  // new audio codes (0 ... 6560), for speech answers
  int32_t token = -1;                // the id just generated; -1 on the final delta
  bool done = false;                 // set on the final delta
};

struct Timings {
  double load_s = 0;         // Engine::load (checkpoint, tokenizer, model set-up)
  double audio_s = 0;        // decoding + resampling the audio files
  double mel_s = 0;          // log-mel of every chunk
  double encoder_s = 0;      // audio encoder + adaptor
  double prefill_s = 0;      // the prompt through the LLM, up to the first logits
  double decode_s = 0;       // every step after the first token
  double first_token_s = 0;  // from the start of generate() to the first token
  double total_s = 0;        // the whole generate() call
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  double prefill_tok_s() const { return prefill_s > 0 ? prompt_tokens / prefill_s : 0; }
  // Tokens produced by decode steps (the first comes from the prefill) per second.
  double decode_tok_s() const {
    return decode_s > 0 && generated_tokens > 1 ? (generated_tokens - 1) / decode_s : 0;
  }
};

enum class StopReason { Eot, MaxTokens, ContextFull };

struct Result {
  std::string text;                  // the text tokens of the answer, decoded
  std::vector<int32_t> audio_codes;  // speech codes (audio pad and unused codes removed)
  std::vector<int32_t> tokens;       // every generated id, the final <|EOT|> included
  std::vector<int32_t> prompt;       // the prompt ids the model saw
  StopReason stop = StopReason::Eot;
  Timings timings;
};

// A conversation in the official Step-Audio 2 prompt format (<|BOT|>role\n ... <|EOT|>). Each
// call adds a message or a part of the open message and returns *this for chaining.
//   system(t), user(t), assistant(t): a whole text message.
//   user() / assistant() / message(role): an open message; text(), audio(), tokens() add parts.
//   reply_prefix(t): starts the answer with `t` (e.g. "<tts_start>" for speech) - it is not
//   closed, so the model continues it. speech_reply() = reply_prefix("<tts_start>").
//   history(result): the previous answer as an assistant message, raw ids as the official code
//   does.
// generate() adds the generation prompt "<|BOT|>assistant\n" unless a reply prefix is open.
class Conversation {
 public:
  Conversation& system(std::string text);
  Conversation& user(std::string text);
  Conversation& user();
  Conversation& assistant(std::string text);
  Conversation& assistant();
  Conversation& message(std::string role);  // any role ("human" is what user() writes)
  Conversation& message(std::string role, std::string text);

  Conversation& text(std::string text);
  Conversation& audio(std::string path);  // any format, any rate
  Conversation& audio(std::vector<float> samples_16k, std::string name = "<memory>");
  Conversation& tokens(std::vector<int32_t> ids);

  Conversation& reply_prefix(std::string text);
  Conversation& speech_reply() { return reply_prefix("<tts_start>"); }
  Conversation& history(const Result& answer);

  struct Part {
    enum Kind { Text, AudioFile, AudioSamples, Tokens } kind = Text;
    std::string text;  // text, or the file path / name of the audio
    std::vector<float> samples;
    std::vector<int32_t> ids;
  };
  struct Message {
    std::string role;
    bool whole_text = false;  // string content: one piece "<|BOT|>role\ncontent<|EOT|>"
    bool eot = true;          // false for an open reply prefix
    std::vector<Part> parts;
  };
  const std::vector<Message>& messages() const { return messages_; }
  bool empty() const { return messages_.empty(); }

 private:
  Message& open_message(const char* what);
  std::vector<Message> messages_;
};

// Called for every generated token, in order. Throwing from it aborts generate().
using DeltaCallback = std::function<void(const Delta&)>;

struct TraceOptions {
  int greedy_steps = 16;  // greedy tokens recorded after the prompt
};

class Engine {
 public:
  // `dir` is an official checkpoint folder: config.json, the safetensors shards (+ index) and
  // the tokenizer files. Throws Error naming what is missing or wrong.
  static Engine load(const std::string& dir, const EngineOptions& options = {});

  Engine(Engine&&) noexcept;
  Engine& operator=(Engine&&) noexcept;
  ~Engine();

  Result generate(const Conversation& conversation, const Sampling& sampling = {},
                  const DeltaCallback& on_delta = {});

  // Runs the conversation's prompt through the model once, then `greedy_steps` greedy steps, and
  // writes every intermediate tensor (golden names without the case prefix: chunk<k>/mel,
  // chunk<k>/encoder_out, ..., input_ids, inputs_embeds, layer<i>_out, hidden, last_logits,
  // greedy_ids, greedy_top5_ids, greedy_top5_vals) to a safetensors file. Integer tensors are
  // I64, the rest F32. The file is written atomically: on error nothing is left behind.
  void trace(const Conversation& conversation, const TraceOptions& options,
             const std::string& out_path);

  // The ids the conversation's prompt turns into (audio placeholders included).
  std::vector<int32_t> prompt_ids(const Conversation& conversation);

  Device device() const;
  double load_seconds() const;

 private:
  struct Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace stepaudio
