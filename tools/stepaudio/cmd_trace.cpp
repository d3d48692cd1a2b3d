// stepaudio trace: runs the official ASR prompt on audio files (or, without audio, the text-only
// prompt of the golden case text_2plus2) and writes every intermediate tensor under the golden
// names (golden README §3, without the case prefix), for tensor-by-tensor comparison with the
// official code.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "command.h"
#include "stepaudio/engine.h"

namespace {

struct TraceArgs {
  std::string model, output, system, prompt, device = "cpu";
  std::vector<std::string> audio;
  int greedy = 16;
};

int trace(const TraceArgs& a) {
  using namespace stepaudio;
  namespace fs = std::filesystem;
  for (const auto& f : a.audio) {
    std::error_code ec;
    if (!fs::exists(f, ec)) fail("audio file {} does not exist", f);
    if (fs::is_directory(f, ec)) fail("audio file {} is a directory", f);
  }
  const fs::path parent = fs::absolute(a.output).parent_path();
  if (!fs::is_directory(parent)) fail("-o {}: folder {} does not exist", a.output, parent.string());
  if (fs::is_directory(a.output)) fail("-o {} is a directory", a.output);

  Conversation chat;
  if (a.audio.empty()) {
    // golden README §5, text_2plus2
    chat.system(a.system.empty() ? "You are a helpful assistant." : a.system)
        .user(a.prompt.empty() ? "What is 2+2?" : a.prompt);
  } else {
    // golden README §5: the official ASR prompt, every file a part of one user message
    chat.system(a.system.empty() ? "请记录下你所听到的语音内容。" : a.system).user();
    for (const auto& f : a.audio) chat.audio(f);
    if (!a.prompt.empty()) chat.text(a.prompt);
  }
  EngineOptions opt;
  opt.device = parse_device(a.device);
  Engine engine = Engine::load(a.model, opt);
  TraceOptions topt;
  topt.greedy_steps = a.greedy;
  engine.trace(chat, topt, a.output);
  std::fprintf(stderr, "wrote %s\n", a.output.c_str());
  return 0;
}

static stepaudio::cli::Register reg(
    "trace", "Write the intermediate tensors of one prompt under the golden names",
    [](CLI::App& sub) {
      auto a = std::make_shared<TraceArgs>();
      sub.add_option("-m,--model", a->model, "Model folder")->required();
      sub.add_option("-f,--file", a->audio,
                     "Audio file(s) for the ASR prompt; without any, the text-only prompt "
                     "'What is 2+2?' is traced");
      sub.add_option("--system", a->system, "System prompt (default: the official ASR one)");
      sub.add_option("--prompt", a->prompt, "User text (after the audio, if any)");
      sub.add_option("--greedy", a->greedy, "Greedy steps to record")
          ->check(CLI::Range(1, 1 << 20))
          ->capture_default_str();
      sub.add_option("-o,--output", a->output, "Output .safetensors file")->required();
      sub.add_option("--device", a->device, "cpu, cuda, cuda:N or auto")->capture_default_str();
      return [a]() -> int { return trace(*a); };
    });

}  // namespace
