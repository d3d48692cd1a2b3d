// What the plain-main GPU benchmarks share: the median of timed runs and the
// "RESULT name value unit" lines that scripts/gpu-check collects (also kept for a JSON dump).
#pragma once
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace stepaudio::bench {

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
