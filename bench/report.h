// What the plain-main GPU benchmarks share: a wall clock, the median of timed runs and the
// "RESULT name value unit" lines that scripts/gpu-check collects (also kept for a JSON dump).
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace stepaudio::bench {

// Seconds on the steady clock (comparable with BackgroundSpeech::first_audio_time()).
inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Every result printed so far, by name.
inline std::map<std::string, double>& results() {
  static std::map<std::string, double> r;
  return r;
}

inline void result(const std::string& name, double v, const char* unit) {
  std::printf("RESULT %s %.6g %s\n", name.c_str(), v, unit);
  std::fflush(stdout);
  results()[name] = v;
}

}  // namespace stepaudio::bench
