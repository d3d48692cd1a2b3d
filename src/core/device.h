#pragma once
#include <string>

namespace stepaudio {

enum class DeviceType { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  static Device cpu() { return {}; }
  static Device cuda(int i = 0) { return {DeviceType::CUDA, i}; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device&) const = default;
  std::string str() const;
};

// Parses "cpu", "cuda", "cuda:1", "auto" ("auto" picks CUDA when usable, else the CPU with a
// one-line warning). Throws stepaudio::Error on anything else.
Device parse_device(const std::string& s);

// True when this build has the CUDA backend and a GPU can be initialised. Checked once.
bool cuda_available();

// The best device: CUDA 0 when usable; otherwise the CPU, with a one-line warning that says why.
Device best_device();

}  // namespace stepaudio
