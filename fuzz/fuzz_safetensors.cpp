// Fuzzes the safetensors reader: the whole input as a file (8-byte header length, JSON header,
// data) through SafetensorsFile::open_memory, and the input as a bare header through
// parse_header. Bad input must give stepaudio::Error, never a crash or an out-of-range read.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stepaudio;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    const SafetensorsFile f = SafetensorsFile::open_memory(bytes, "fuzz.safetensors");
    // Every accepted tensor must lie inside the buffer: touch its first and last byte.
    volatile unsigned sum = 0;
    for (const auto& [name, info] : f.tensors()) {
      const Tensor t = f.get(name);
      if (t.nbytes() != info.end - info.begin) __builtin_trap();
      if (t.nbytes() > 0) {
        const auto* p = static_cast<const unsigned char*>(t.raw());
        sum = sum + p[0] + p[t.nbytes() - 1];
      }
    }
  } catch (const Error&) {
  }
  try {
    std::map<std::string, std::string> meta;
    const size_t data_size = size > 0 ? data[0] * 64u : 0;
    SafetensorsFile::parse_header(bytes.data(), bytes.size(), data_size, "fuzz header", &meta);
  } catch (const Error&) {
  }
  return 0;
}
