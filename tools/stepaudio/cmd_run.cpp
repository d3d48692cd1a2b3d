// stepaudio run: one question to the model, the answer streamed to stdout, timings to stderr.
// Tasks carry the official prompts and sampling settings (spec §6.2/§6.3, the official
// examples.py); every setting can be overridden by a flag.
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include "command.h"
#include "stepaudio/engine.h"
#include "stepaudio/speech.h"
#include "stepaudio/speech_background.h"

namespace {

struct RunArgs {
  std::string model, task, system, prompt, audio_codes, device = "auto";
  std::string speech_out, voice, token2wav, wav_format = "pcm16", precision = "bf16";
  std::vector<std::string> audio;
  std::optional<float> temp, top_p, repetition_penalty;
  std::optional<int> top_k, max_tokens;
  uint64_t seed = 0;
  bool speech = false, quiet = false, stream = false;
};

struct Task {
  const char* system;
  bool needs_audio;
  bool speech;  // answer with <tts_start> (text and audio codes interleaved)
  stepaudio::Sampling sampling;
};

stepaudio::Sampling sampled(float temperature, float top_p, float penalty, int max_tokens) {
  stepaudio::Sampling s;
  s.temperature = temperature;
  s.top_p = top_p;
  s.repetition_penalty = penalty;
  s.max_tokens = max_tokens;
  s.top_k = 50;  // HF's default whenever do_sample=True, as in the official code
  return s;
}

// Official settings per task ([GH] examples.py, stepaudio2.py __main__).
Task task_defaults(const std::string& name) {
  stepaudio::Sampling greedy;
  greedy.greedy = true;
  greedy.max_tokens = 256;
  if (name == "asr") return {"请记录下你所听到的语音内容。", true, false, greedy};
  if (name == "s2tt")
    return {"请仔细聆听这段语音，然后将其内容翻译成中文。", true, false,
            sampled(0.1f, 1.0f, 1.0f, 256)};
  if (name == "s2st")
    return {"请仔细聆听这段语音，然后将其内容翻译成中文并用语音播报。", true, true,
            sampled(0.7f, 1.0f, 1.0f, 2048)};
  // chat: the conversation settings of stepaudio2.py's __main__
  return {"You are a helpful assistant.", false, false, sampled(0.7f, 0.9f, 1.05f, 256)};
}

// Writes `text` to `path` through a temporary file beside it, so a failure leaves nothing.
void write_atomic(const std::string& path, const std::string& text) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path tmp = target.parent_path() /
                       (".tmp-" + target.filename().string() + "-" + std::to_string(getpid()));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) stepaudio::fail("cannot write {}: {}", tmp.string(), std::strerror(errno));
    out << text;
    out.close();
    if (!out) {
      std::error_code ec;
      fs::remove(tmp, ec);
      stepaudio::fail("writing {} failed (disk full?)", tmp.string());
    }
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    stepaudio::fail("cannot move {} into place: {}", path, ec.message());
  }
}

// One code per line, or a JSON array when the file name ends in .json.
std::string format_codes(const std::string& path, const std::vector<int32_t>& codes) {
  const bool json = std::filesystem::path(path).extension() == ".json";
  std::string s = json ? "[" : "";
  for (size_t i = 0; i < codes.size(); ++i) {
    if (json && i) s += ", ";
    s += std::to_string(codes[i]);
    if (!json) s += "\n";
  }
  if (json) s += "]\n";
  return s;
}

const char* stop_name(stepaudio::StopReason r) {
  switch (r) {
    case stepaudio::StopReason::Eot:
      return "<|EOT|>";
    case stepaudio::StopReason::MaxTokens:
      return "max tokens";
    case stepaudio::StopReason::ContextFull:
      return "context full";
  }
  return "?";
}

void print_timings(const stepaudio::Result& r) {
  const auto& t = r.timings;
  std::fprintf(stderr,
               "load %.3f s | audio %.3f s | mel %.3f s | encoder %.3f s | prefill %lld tok in "
               "%.3f s (%.1f tok/s) | decode %lld tok in %.3f s (%.1f tok/s) | first token %.3f "
               "s | total %.3f s | stop: %s\n",
               t.load_s, t.audio_s, t.mel_s, t.encoder_s, static_cast<long long>(t.prompt_tokens),
               t.prefill_s, t.prefill_tok_s(), static_cast<long long>(t.generated_tokens),
               t.decode_s, t.decode_tok_s(), t.first_token_s, t.total_s, stop_name(r.stop));
}

// --speech-out: the answer's audio codes through token2wav into a 24 kHz WAV; with --stream the
// codes go to a speech stream as they arrive, which runs on a worker thread (on a GPU: its own
// stream) while the LLM goes on decoding.
class SpeechOut {
 public:
  SpeechOut(const RunArgs& a, stepaudio::Device device) : a_(a) {
    using namespace stepaudio;
    namespace fs = std::filesystem;
    const fs::path parent = fs::absolute(a.speech_out).parent_path();
    if (!fs::is_directory(parent))
      fail("--speech-out {}: folder {} does not exist", a.speech_out, parent.string());
    const std::string dir =
        a.token2wav.empty() ? (fs::path(a.model) / "token2wav").string() : a.token2wav;
    std::string voice = a.voice;
    if (voice.empty()) {
      voice = (fs::path(dir) / "voice.safetensors").string();
      if (!fs::exists(voice))
        fail(
            "--speech-out needs a voice: give --voice VOICE.safetensors (make-voice writes one); "
            "{} has no voice.safetensors",
            dir);
    }
    speaker_.emplace(Speaker::load(dir, voice, {.device = device, .seed = a.seed}));
    if (a.stream) stream_ = std::make_unique<stepaudio::BackgroundSpeech>(*speaker_);
  }

  void push(const std::vector<int32_t>& codes) {
    if (!stream_) return;
    if (first_code_ < 0) first_code_ = now();
    take(stream_->push(codes));
  }

  void finish(const std::vector<int32_t>& codes) {
    if (codes.empty()) {
      std::fprintf(stderr, "the answer holds no audio codes: %s not written\n",
                   a_.speech_out.c_str());
      return;
    }
    const double t0 = now();
    if (stream_)
      take(stream_->finish());
    else
      take(speaker_->speak(codes));
    stepaudio::save_wav(a_.speech_out, wav_, stepaudio::Speaker::kSampleRate,
                        a_.wav_format == "float");
    const double secs = static_cast<double>(wav_.size()) / stepaudio::Speaker::kSampleRate;
    std::fprintf(stderr, "wrote %.2f s of speech (%zu codes) to %s", secs, codes.size(),
                 a_.speech_out.c_str());
    if (stream_)
      std::fprintf(stderr, " | streamed in %lld chunks, first audio %.3f s after the first code",
                   static_cast<long long>(stream_->chunks()),
                   stream_->first_audio_time() - first_code_);
    else
      std::fprintf(stderr, " | token2wav %.3f s", now() - t0);
    std::fprintf(stderr, "\n");
  }

 private:
  static double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  void take(const std::vector<float>& piece) {
    wav_.insert(wav_.end(), piece.begin(), piece.end());
  }

  const RunArgs& a_;
  std::optional<stepaudio::Speaker> speaker_;
  std::unique_ptr<stepaudio::BackgroundSpeech> stream_;
  std::vector<float> wav_;
  double first_code_ = -1;
};

int run(const RunArgs& a) {
  using namespace stepaudio;
  namespace fs = std::filesystem;
  std::string task = a.task;
  if (task.empty()) task = !a.audio.empty() && a.prompt.empty() ? "asr" : "chat";
  Task def = task_defaults(task);
  if (def.needs_audio && a.audio.empty()) fail("--task {} needs an audio file (-f AUDIO)", task);
  if (a.audio.empty() && a.prompt.empty())
    fail("nothing to ask: give an audio file (-f) and/or a text prompt (--prompt)");
  // Check the inputs before the (possibly slow) model load.
  for (const auto& f : a.audio) {
    std::error_code ec;
    if (!fs::exists(f, ec)) fail("audio file {} does not exist", f);
    if (fs::is_directory(f, ec)) fail("audio file {} is a directory", f);
  }
  if (!a.audio_codes.empty()) {
    const fs::path parent = fs::absolute(a.audio_codes).parent_path();
    if (!fs::is_directory(parent))
      fail("--audio-codes {}: folder {} does not exist", a.audio_codes, parent.string());
  }

  Sampling s = def.sampling;
  if (a.temp) {
    s.temperature = *a.temp;
    s.greedy = *a.temp == 0.0f;
  }
  if (a.top_p) s.top_p = *a.top_p;
  if (a.top_k) s.top_k = *a.top_k;
  if (a.repetition_penalty) s.repetition_penalty = *a.repetition_penalty;
  if (a.max_tokens) s.max_tokens = *a.max_tokens;
  const bool speech = def.speech || a.speech || !a.speech_out.empty();
  if (speech && !a.max_tokens && s.max_tokens < 2048) s.max_tokens = 2048;
  s.seed = a.seed;

  Conversation chat;
  chat.system(a.system.empty() ? def.system : a.system);
  if (a.audio.empty()) {
    chat.user(a.prompt);  // string content, as the official text examples
  } else {
    chat.user();
    for (const auto& f : a.audio) chat.audio(f);
    if (!a.prompt.empty()) chat.text(a.prompt);
  }
  if (speech) chat.speech_reply();

  EngineOptions opt;
  opt.device = parse_device(a.device);
  opt.precision = a.precision == "f32"   ? Precision::F32
                  : a.precision == "f16" ? Precision::F16
                                         : Precision::BF16;
  opt.show_progress = !a.quiet;
  // Speech out: the voice and token2wav load before the LLM, so a bad path fails fast.
  std::optional<SpeechOut> speech_out;
  if (!a.speech_out.empty()) speech_out.emplace(a, opt.device);
  Engine engine = Engine::load(a.model, opt);
  Result r = engine.generate(chat, s, [&](const Delta& d) {
    if (!d.text.empty()) {
      std::fwrite(d.text.data(), 1, d.text.size(), stdout);
      std::fflush(stdout);
    }
    // Streaming: each chunk of 25 codes (+3 look-ahead) is spoken while decoding goes on.
    if (speech_out && !d.audio_codes.empty()) speech_out->push(d.audio_codes);
  });
  std::fputc('\n', stdout);
  std::fflush(stdout);
  if (speech_out) speech_out->finish(r.audio_codes);
  if (!a.audio_codes.empty()) {
    write_atomic(a.audio_codes, format_codes(a.audio_codes, r.audio_codes));
    std::fprintf(stderr, "wrote %zu audio codes to %s\n", r.audio_codes.size(),
                 a.audio_codes.c_str());
  } else if (!r.audio_codes.empty()) {
    std::fprintf(stderr, "%zu audio codes generated (save them with --audio-codes FILE)\n",
                 r.audio_codes.size());
  }
  if (!a.quiet) print_timings(r);
  return 0;
}

static stepaudio::cli::Register reg(
    "run", "Ask the model: transcribe, translate or chat; the answer streams to stdout",
    [](CLI::App& sub) {
      auto a = std::make_shared<RunArgs>();
      sub.add_option("-m,--model", a->model, "Model folder (config.json, shards, tokenizer)")
          ->required();
      sub.add_option("-f,--file", a->audio, "Audio file(s) to listen to (any format and rate)");
      sub.add_option("--task", a->task,
                     "asr (greedy, 256), s2tt (temp 0.1), s2st (speech answer, temp 0.7, 2048), "
                     "chat (temp 0.7, top-p 0.9, repetition penalty 1.05, 256); default: asr "
                     "with -f and no --prompt, else chat")
          ->check(CLI::IsMember({"asr", "chat", "s2tt", "s2st"}));
      sub.add_option("--system", a->system, "System prompt (default: the task's official one)");
      sub.add_option("--prompt", a->prompt, "User text (after the audio, if any)");
      sub.add_flag("--speech", a->speech,
                   "Ask for a spoken answer (<tts_start>): text and audio codes interleaved");
      sub.add_option("--temp", a->temp, "Temperature; 0 = greedy");
      sub.add_option("--top-p", a->top_p, "Nucleus sampling mass in (0, 1]; 1 = off");
      sub.add_option("--top-k", a->top_k, "Keep the k most likely tokens; 0 = off (default 50)");
      sub.add_option("--repetition-penalty", a->repetition_penalty, "HF repetition penalty");
      sub.add_option("--seed", a->seed, "Random seed (same seed, same answer)")
          ->capture_default_str();
      sub.add_option("--max-tokens", a->max_tokens,
                     "Most new tokens, <|EOT|> included (default: the task's, 2048 for speech)");
      sub.add_option("--audio-codes", a->audio_codes,
                     "Write the answer's audio codes here: one per line, or a JSON array when "
                     "the name ends in .json");
      sub.add_option("--speech-out", a->speech_out,
                     "Speak the answer into this 24 kHz WAV (asks for a spoken answer)");
      sub.add_option("--voice", a->voice,
                     "Voice for --speech-out (default: voice.safetensors in the token2wav folder)");
      sub.add_option("--token2wav", a->token2wav,
                     "token2wav folder for --speech-out (default: MODEL/token2wav)");
      sub.add_flag("--stream", a->stream,
                   "With --speech-out: synthesise chunks of 25 codes while the answer is decoded");
      sub.add_option("--wav-format", a->wav_format, "WAV samples for --speech-out: pcm16 or float")
          ->capture_default_str()
          ->check(CLI::IsMember({"pcm16", "float"}));
      sub.add_option("--device", a->device, "cpu, cuda, cuda:N or auto")->capture_default_str();
      sub.add_option("--precision", a->precision,
                     "GPU weights and compute: bf16 (official), f16, or f32 (fp32 compute)")
          ->capture_default_str()
          ->check(CLI::IsMember({"bf16", "f16", "f32"}));
      sub.add_flag("-q,--quiet", a->quiet, "No timings or progress on stderr");
      return [a]() -> int { return run(*a); };
    });

}  // namespace
