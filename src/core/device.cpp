#include "core/device.h"

#include <cstdlib>

#include "core/error.h"
#include "core/log.h"
#if STEPAUDIO_CUDA
#include "backend/cuda/runtime.h"
#endif

namespace stepaudio {

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : fmt::format("cuda:{}", index);
}

namespace {
// Why CUDA is unusable, or empty when it is usable.
const std::string& cuda_problem() {
  static const std::string why = [] {
#if STEPAUDIO_CUDA
    return cuda::init_problem();
#else
    return std::string("this build has no CUDA backend");
#endif
  }();
  return why;
}
}  // namespace

bool cuda_available() { return cuda_problem().empty(); }

Device best_device() {
  if (cuda_available()) return Device::cuda(0);
  static bool warned = false;
  if (!warned) {
    warned = true;
    log::warn("CUDA unavailable ({}); running on the CPU", cuda_problem());
  }
  return Device::cpu();
}

Device parse_device(const std::string& s) {
  if (s == "auto") return best_device();
  if (s == "cpu") return Device::cpu();
  if (s == "cuda" || s.rfind("cuda:", 0) == 0) {
    int idx = 0;
    if (s.size() > 5) {
      char* end = nullptr;
      long v = std::strtol(s.c_str() + 5, &end, 10);
      if (*end != '\0' || v < 0 || v > 63) fail("bad device '{}': expected cuda:N", s);
      idx = static_cast<int>(v);
    }
    if (!cuda_available()) {
      log::warn("CUDA unavailable ({}); running on the CPU", cuda_problem());
      return Device::cpu();
    }
    return Device::cuda(idx);
  }
  fail("bad device '{}': expected cpu, cuda, cuda:N or auto", s);
}

}  // namespace stepaudio
