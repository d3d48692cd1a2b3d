// Fuzzes config.json parsing. Bad input must give stepaudio::Error. An accepted config must
// describe a buildable model and survive a write/parse round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "io/checkpoint.h"
#include "io/model_writer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stepaudio;
  const std::string text(reinterpret_cast<const char*>(data), size);
  ModelConfig cfg;
  try {
    cfg = ModelConfig::parse(text, "fuzz/config.json");
  } catch (const Error&) {
    return 0;
  }
  const auto layout = tensor_layout(cfg);
  for (const auto& [name, shape] : layout)
    for (int64_t d : shape)
      if (d <= 0) __builtin_trap();
  // Writing the config and reading it back must give the same model.
  const std::string again = config_json(cfg);
  const ModelConfig back = ModelConfig::parse(again, "round trip");
  if (config_json(back) != again || expected_tensors(back) != expected_tensors(cfg))
    __builtin_trap();
  return 0;
}
