#include "model/t2w_weights.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>

#include "io/safetensors.h"
#include "io/torch_file.h"

namespace stepaudio {

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool is_float(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::F64;
}

Tensor to_f32(const Tensor& t, const std::string& name, const std::string& where) {
  if (!is_float(t.dtype()))
    fail("{}: tensor '{}' is {}, expected a floating-point tensor", where, name,
         dtype_name(t.dtype()));
  if (t.dtype() == DType::F32) return t;
  if (t.dtype() == DType::F64) {
    Tensor out = Tensor::empty(t.shape(), DType::F32);
    const double* s = t.data<double>();
    float* d = out.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) d[i] = static_cast<float>(s[i]);
    return out;
  }
  return t.to_dtype(DType::F32);
}

// W = g * v / ||v||, the norm over every axis but 0 (torch's _weight_norm with dim 0): the norm
// is rounded to float32 and g / norm applied as one float32 factor per row, the order torch
// computes it in.
Tensor fold_weight_norm(const Tensor& g, const Tensor& v, const std::string& base,
                        const std::string& where) {
  if (v.ndim() < 1 || v.dim(0) == 0)
    fail("{}: weight-norm direction '{}' has shape {}, expected at least one row", where, base,
         shape_str(v.shape()));
  const int64_t rows = v.dim(0);
  const int64_t cols = v.numel() / rows;
  bool g_ok = g.numel() == rows && g.ndim() >= 1 && g.dim(0) == rows;
  for (int i = 1; g_ok && i < g.ndim(); ++i) g_ok = g.dim(i) == 1;
  if (!g_ok || g.ndim() > v.ndim())
    fail(
        "{}: weight-norm magnitude of '{}' has shape {}, expected [{}] or [{}, 1, ...] to match "
        "the direction {}",
        where, base, shape_str(g.shape()), rows, rows, shape_str(v.shape()));
  Tensor w = Tensor::empty(v.shape(), DType::F32);
  const float* vp = v.data<float>();
  const float* gp = g.data<float>();
  float* wp = w.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t c = 0; c < cols; ++c)
      ss += static_cast<double>(vp[r * cols + c]) * vp[r * cols + c];
    const float norm = static_cast<float>(std::sqrt(ss));
    const float scale = gp[r] / norm;
    for (int64_t c = 0; c < cols; ++c) wp[r * cols + c] = vp[r * cols + c] * scale;
  }
  return w;
}

struct PairNames {
  const char* g;
  const char* v;
};
constexpr PairNames kPairs[] = {
    {".parametrizations.weight.original0", ".parametrizations.weight.original1"},
    {".weight_g", ".weight_v"}};

}  // namespace

std::map<std::string, Tensor> fold_t2w_weights(std::vector<std::pair<std::string, Tensor>> raw,
                                               const std::string& where) {
  static const std::string kPrefix = "generator.";
  std::map<std::string, Tensor> in;
  for (auto& [name, t] : raw) {
    std::string n = name.rfind(kPrefix, 0) == 0 ? name.substr(kPrefix.size()) : name;
    if (n.empty()) fail("{}: a tensor has an empty name", where);
    if (!t.device().is_cpu()) fail("{}: tensor '{}' is not on the CPU", where, name);
    if (!in.emplace(n, std::move(t)).second)
      fail("{}: tensor '{}' appears twice (after removing a leading '{}')", where, n, kPrefix);
  }

  std::map<std::string, Tensor> out;
  std::set<std::string> used;
  for (const auto& [name, t] : in) {
    for (const PairNames& p : kPairs) {
      const bool is_g = ends_with(name, p.g), is_v = ends_with(name, p.v);
      if (!is_g && !is_v) continue;
      const std::string base = name.substr(0, name.size() - std::strlen(is_g ? p.g : p.v));
      const std::string gname = base + p.g, vname = base + p.v, wname = base + ".weight";
      if (!in.count(gname) || !in.count(vname))
        fail("{}: weight-norm tensor '{}' has no partner '{}'", where, name, is_g ? vname : gname);
      if (!is_g) break;  // folded once, when the magnitude is met
      if (in.count(wname) || out.count(wname))
        fail("{}: '{}' is stored both plainly and as a weight-norm pair", where, wname);
      out[wname] = fold_weight_norm(to_f32(in.at(gname), gname, where),
                                    to_f32(in.at(vname), vname, where), wname, where);
      break;
    }
  }
  for (const auto& [name, t] : in) {
    bool pair_part = false;
    for (const PairNames& p : kPairs)
      pair_part = pair_part || ends_with(name, p.g) || ends_with(name, p.v);
    if (pair_part) continue;
    if (out.count(name))
      fail("{}: '{}' is stored both plainly and as a weight-norm pair", where, name);
    out[name] = is_float(t.dtype()) ? to_f32(t, name, where) : t;
  }
  return out;
}

T2wWeights T2wWeights::load(const std::string& path) {
  T2wWeights w;
  w.path_ = path;
  const bool safetensors = std::filesystem::path(path).extension() == ".safetensors";
  std::vector<std::pair<std::string, Tensor>> raw;
  if (safetensors) {
    SafetensorsFile f = SafetensorsFile::open(path);
    for (const auto& [name, info] : f.tensors()) raw.emplace_back(name, f.get(name));
  } else {
    raw = read_torch_state_dict(path);
  }
  w.tensors_ = fold_t2w_weights(std::move(raw), path);
  return w;
}

bool T2wWeights::has(const std::string& name) const { return tensors_.count(name) != 0; }

Tensor T2wWeights::get(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? Tensor() : it->second;
}

WeightFn T2wWeights::fn() const {
  return [this](const std::string& name) { return get(name); };
}

}  // namespace stepaudio
