// Shared by the flow tests: the token2wav-a weights, config and goldens, and a comparison that
// prints the observed error.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "../test_paths.h"
#include "io/safetensors.h"
#include "model/flow.h"
#include "model/flow_config.h"
#include "model/t2w_weights.h"

namespace stepaudio::flow_test {

inline std::string t2w_dir() { return (testing_paths::golden() / "token2wav-a").string(); }

struct Data {
  FlowConfig config;
  T2wWeights weights;
  SafetensorsFile goldens;
  std::unique_ptr<Flow> flow;
};

// Loaded once per process (flow.pt through T2wWeights, flow.yaml, goldens.safetensors); throws
// (failing the test) when the data is missing.
inline Data& data() {
  static Data* d = [] {
    auto* p = new Data{FlowConfig::load(t2w_dir() + "/flow.yaml"),
                       T2wWeights::load(t2w_dir() + "/flow.pt"),
                       SafetensorsFile::open(t2w_dir() + "/goldens.safetensors"), nullptr};
    p->flow = std::make_unique<Flow>(p->config, p->weights.fn());
    return p;
  }();
  return *d;
}

// A golden tensor as an owned F32 copy (the file mapping is read-only).
inline Tensor golden(const std::string& name) { return data().goldens.get(name).clone(); }

inline std::vector<int32_t> golden_ids(const std::string& name) {
  Tensor t = data().goldens.get(name);
  EXPECT_EQ(t.dtype(), DType::I64) << name;
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < t.numel(); ++i) ids.push_back(static_cast<int32_t>(t.data<int64_t>()[i]));
  return ids;
}

// Max |got - want| after checking the shapes; prints it with the reference's range.
inline double expect_close(const Tensor& got, const Tensor& want, double tol,
                           const std::string& what) {
  EXPECT_EQ(shape_str(got.shape()), shape_str(want.shape())) << what;
  if (got.shape() != want.shape()) return INFINITY;
  const auto a = got.to_f32_vector(), b = want.to_f32_vector();
  double max_abs = 0, max_ref = 0, max_rel = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (!(d <= max_abs)) max_abs = d;  // NaN propagates as a failure
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(b[i])));
    if (std::fabs(b[i]) > 1e-3) max_rel = std::max(max_rel, d / std::fabs(b[i]));
  }
  std::printf("    %-26s max abs err %.3g  max rel err %.3g (|ref| > 1e-3)  max |ref| %.3g\n",
              what.c_str(), max_abs, max_rel, max_ref);
  EXPECT_LE(max_abs, tol) << what;
  return max_abs;
}

}  // namespace stepaudio::flow_test
