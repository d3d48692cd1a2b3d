#include "model/t2w_weights.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "../test_paths.h"
#include "io/safetensors.h"
#include "io/torch_file.h"
#include "torch_fixture.h"

namespace stepaudio {
namespace {

namespace fs = std::filesystem;
using t2w_fixture::TempDir;
using ::testing::HasSubstr;

fs::path t2w_golden(const std::string& name) {
  return testing_paths::golden() / "token2wav-a" / name;
}
fs::path fixture(const std::string& name) {
  return testing_paths::source() / "tests/t2w_io/data" / name;
}

bool ends_with(const std::string& s, const std::string& t) {
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

template <typename Fn>
void expect_error(Fn&& fn, std::initializer_list<std::string> fragments) {
  try {
    fn();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    for (const auto& f : fragments) EXPECT_THAT(e.what(), HasSubstr(f));
  }
}

// g * v / ||v|| computed plainly in double, row by row over axis 0.
std::vector<double> fold_reference(const Tensor& g, const Tensor& v) {
  const int64_t rows = v.dim(0), cols = v.numel() / rows;
  std::vector<double> out(static_cast<size_t>(v.numel()));
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const double x = v.data<float>()[r * cols + c];
      ss += x * x;
    }
    for (int64_t c = 0; c < cols; ++c)
      out[static_cast<size_t>(r * cols + c)] =
          g.data<float>()[r] * v.data<float>()[r * cols + c] / std::sqrt(ss);
  }
  return out;
}

void expect_same(const T2wWeights& a, const T2wWeights& b) {
  ASSERT_EQ(a.all().size(), b.all().size());
  for (const auto& [name, t] : a.all()) {
    ASSERT_TRUE(b.has(name)) << name;
    const Tensor u = b.get(name);
    ASSERT_EQ(t.shape(), u.shape()) << name;
    ASSERT_EQ(t.dtype(), u.dtype()) << name;
    EXPECT_EQ(0, std::memcmp(t.raw(), u.raw(), t.nbytes())) << name;
  }
}

TEST(T2wWeights, HiftFoldsWeightNorm) {
  const NamedTensors raw = read_torch_state_dict(t2w_golden("hift.pt").string());
  int64_t pairs = 0;
  for (const auto& [n, t] : raw) pairs += ends_with(n, ".parametrizations.weight.original0");
  // condnet 5, conv_pre, ups 3, resblocks 9 x 6, source_resblocks 3 x 6, conv_post.
  EXPECT_EQ(pairs, 82);
  const T2wWeights w = T2wWeights::load(t2w_golden("hift.pt").string());
  EXPECT_EQ(w.path(), t2w_golden("hift.pt").string());
  EXPECT_EQ(static_cast<int64_t>(w.all().size()), 328 - pairs);
  for (const auto& [name, t] : w.all()) {
    EXPECT_EQ(name.find("parametrizations"), std::string::npos) << name;
    EXPECT_EQ(t.dtype(), DType::F32) << name;
  }
  EXPECT_EQ(w.get("conv_pre.weight").shape(), (Shape{64, 80, 7}));
  EXPECT_EQ(w.get("ups.0.weight").shape(), (Shape{64, 32, 16}));  // ConvTranspose1d [in, out, k]
  EXPECT_EQ(w.get("ups.2.weight").shape(), (Shape{16, 8, 7}));
  EXPECT_EQ(w.get("conv_post.weight").shape(), (Shape{18, 8, 7}));
  EXPECT_EQ(w.get("f0_predictor.condnet.0.weight").shape(), (Shape{64, 80, 3}));
  EXPECT_EQ(w.get("resblocks.8.convs1.2.weight").shape(), (Shape{8, 8, 11}));
  EXPECT_EQ(w.get("source_downs.0.weight").shape(), (Shape{32, 18, 30}));  // plain, not folded
  EXPECT_TRUE(w.has("resblocks.0.activations1.0.alpha"));
  EXPECT_FALSE(w.has("ups.0.parametrizations.weight.original0"));
  EXPECT_FALSE(w.get("nope").defined());

  // Every folded weight against an independent computation from g and v.
  auto raw_get = [&](const std::string& n) -> Tensor {
    for (const auto& [k, t] : raw)
      if (k == n) return t;
    return {};
  };
  double worst = 0;
  for (const auto& [n, g] : raw) {
    if (!ends_with(n, ".parametrizations.weight.original0")) continue;
    const std::string base = n.substr(0, n.size() - 34);
    const Tensor v = raw_get(base + ".parametrizations.weight.original1");
    const std::vector<double> ref = fold_reference(g, v);
    const Tensor got = w.get(base + ".weight");
    ASSERT_EQ(got.shape(), v.shape()) << base;
    for (int64_t i = 0; i < got.numel(); ++i) {
      const double d = std::abs(got.data<float>()[i] - ref[static_cast<size_t>(i)]);
      worst = std::max(worst, d / std::max(1e-6, std::abs(ref[static_cast<size_t>(i)])));
    }
  }
  EXPECT_LT(worst, 1e-6);  // a few float32 ulps
  // g is not ||v|| in these files: a fold that ignored g would differ.
  const Tensor g0 = raw_get("conv_pre.parametrizations.weight.original0");
  const Tensor v0 = raw_get("conv_pre.parametrizations.weight.original1");
  EXPECT_GT(std::abs(w.get("conv_pre.weight").data<float>()[0] - v0.data<float>()[0]), 0.0f);
  EXPECT_NE(g0.data<float>()[0], 1.0f);

  // The WeightFn serves expect_weight.
  const WeightFn fn = w.fn();
  EXPECT_EQ(expect_weight(fn, "ups.1.weight", {32, 16, 11}).numel(), 32 * 16 * 11);
  EXPECT_THROW(expect_weight(fn, "ups.1.weight", {16, 32, 11}), Error);
  EXPECT_THROW(expect_weight(fn, "ups.9.weight", {1}), Error);
}

TEST(T2wWeights, FlowLoadsAllTensors) {
  const T2wWeights w = T2wWeights::load(t2w_golden("flow.pt").string());
  EXPECT_EQ(w.all().size(), 117u);
  int64_t params = 0;
  for (const auto& [n, t] : w.all()) params += t.numel();
  EXPECT_EQ(params, 852912);
  EXPECT_EQ(w.get("input_embedding.weight").shape(), (Shape{6561, 64}));
  EXPECT_EQ(w.get("spk_embed_affine_layer.weight").shape(), (Shape{80, 192}));
  EXPECT_EQ(w.get("encoder.encoders.0.self_attn.pos_bias_u").shape(), (Shape{2, 32}));
  EXPECT_EQ(w.get("encoder.up_layer.conv.weight").shape(), (Shape{64, 64, 5}));
  EXPECT_EQ(w.get("decoder.estimator.in_proj.weight").shape(), (Shape{64, 320}));
  EXPECT_EQ(w.get("decoder.estimator.blocks.1.conv.block.6.weight").shape(), (Shape{64, 64, 3}));
  EXPECT_EQ(w.get("decoder.estimator.final_layer.linear.weight").shape(), (Shape{80, 64}));
  EXPECT_EQ(w.get("encoder_proj.weight").shape(), (Shape{80, 64}));
}

// A safetensors copy holding the file's tensors under the same names loads identically; so does
// a copy re-keyed to the legacy weight_g / weight_v naming with a "generator." prefix.
TEST(T2wWeights, SafetensorsAndLegacyCopiesLoadIdentically) {
  TempDir dir("t2w_weights");
  const T2wWeights pt = T2wWeights::load(t2w_golden("hift.pt").string());
  const NamedTensors raw = read_torch_state_dict(t2w_golden("hift.pt").string());
  save_safetensors((dir / "hift.safetensors").string(), raw, {{"format", "pt"}});
  expect_same(pt, T2wWeights::load((dir / "hift.safetensors").string()));

  NamedTensors legacy;
  for (const auto& [n, t] : raw) {
    std::string k = n;
    const std::string g = ".parametrizations.weight.original0",
                      v = ".parametrizations.weight.original1";
    if (ends_with(k, g)) k = k.substr(0, k.size() - g.size()) + ".weight_g";
    if (ends_with(k, v)) k = k.substr(0, k.size() - v.size()) + ".weight_v";
    legacy.emplace_back("generator." + k, t);
  }
  save_safetensors((dir / "legacy.safetensors").string(), legacy);
  expect_same(pt, T2wWeights::load((dir / "legacy.safetensors").string()));

  // BF16 copy: widened to F32 on load.
  NamedTensors half;
  for (const auto& [n, t] : raw) half.emplace_back(n, t.to_dtype(DType::BF16));
  save_safetensors((dir / "bf16.safetensors").string(), half);
  const T2wWeights hb = T2wWeights::load((dir / "bf16.safetensors").string());
  EXPECT_EQ(hb.all().size(), pt.all().size());
  EXPECT_EQ(hb.get("ups.0.weight").dtype(), DType::F32);
}

// legacy_wn.pt was written by PyTorch 1.13 from torch.nn.utils.weight_norm modules (weight_g /
// weight_v, "generator." prefix, a Conv1d and a ConvTranspose1d whose g were scaled); the
// expected values are the modules' own .weight as torch computed it.
TEST(T2wWeights, TorchWrittenLegacyWeightNorm) {
  const T2wWeights w = T2wWeights::load(fixture("legacy_wn.pt").string());
  EXPECT_EQ(w.all().size(), 4u);
  ASSERT_TRUE(w.has("conv.weight"));
  ASSERT_TRUE(w.has("up.weight"));
  EXPECT_TRUE(w.has("conv.bias"));
  EXPECT_EQ(w.get("conv.weight").shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(w.get("up.weight").shape(), (Shape{4, 2, 3}));
  // torch._weight_norm(v, g, 0) on the stored tensors (the first row's g was halved, the last
  // row's tripled).
  const std::vector<float> conv = {-0.0015282408567145467f, 0.10950109362602234f,
                                   -0.1680033951997757f,    -0.15022292733192444f,
                                   -0.07861930876970291f,   0.0547373928129673f};
  const std::vector<float> up = {-0.12850390374660492f, -0.05167714133858681f,
                                 -0.07956758141517639f, 0.17636342346668243f,
                                 -0.13230912387371063f, -0.09396505355834961f};
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_NEAR(w.get("conv.weight").data<float>()[i], conv[i], 1e-7f) << i;
    EXPECT_NEAR(w.get("up.weight").data<float>()[i], up[i], 1e-7f) << i;
  }
  EXPECT_NEAR(w.get("conv.weight").data<float>()[23], 0.9164910316467285f, 1e-7f);
  EXPECT_NEAR(w.get("up.weight").data<float>()[23], 1.2175594568252563f, 1e-7f);
}

Tensor vec(std::vector<float> v, Shape s) { return Tensor::from_vector(v, std::move(s)); }

TEST(T2wWeightsErrors, BadPairsAndNames) {
  const Tensor g = vec({2, 3}, {2, 1, 1});
  const Tensor v = vec({1, 0, 0, 2}, {2, 2, 1});
  expect_error(
      [&] {
        fold_t2w_weights({{"a.parametrizations.weight.original0", g}}, "f.pt");
      },
      {"f.pt", "a.parametrizations.weight.original0",
       "no partner 'a.parametrizations.weight.original1'"});
  expect_error(
      [&] {
        fold_t2w_weights({{"b.weight_v", v}}, "f.pt");
      },
      {"b.weight_v", "no partner 'b.weight_g'"});
  expect_error(
      [&] {
        fold_t2w_weights({{"c.weight_g", g}, {"c.weight_v", v}, {"c.weight", v}}, "f.pt");
      },
      {"'c.weight' is stored both plainly and as a weight-norm pair"});
  expect_error(
      [&] {
        fold_t2w_weights({{"d.weight_g", vec({1, 2, 3}, {3})}, {"d.weight_v", v}}, "f.pt");
      },
      {"magnitude of 'd.weight'", "[3]"});
  expect_error(
      [&] {
        fold_t2w_weights({{"generator.e.bias", g}, {"e.bias", g}}, "f.pt");
      },
      {"'e.bias' appears twice"});
  // A good pair folds to g * v / ||v||: rows (1, 0) and (0, 2) have norms 1 and 2.
  auto out = fold_t2w_weights({{"k.weight_g", g}, {"k.weight_v", v}}, "f.pt");
  EXPECT_THAT(out.at("k.weight").to_f32_vector(), ::testing::ElementsAre(2, 0, 0, 3));
  auto out1 = fold_t2w_weights({{"k.weight_g", vec({2, 3}, {2})}, {"k.weight_v", v}}, "f.pt");
  EXPECT_THAT(out1.at("k.weight").to_f32_vector(), ::testing::ElementsAre(2, 0, 0, 3));
}

TEST(T2wWeightsErrors, Files) {
  expect_error([] { T2wWeights::load("/nonexistent/hift.pt"); }, {"/nonexistent/hift.pt"});
  expect_error([] { T2wWeights::load("/nonexistent/hift.safetensors"); },
               {"/nonexistent/hift.safetensors"});
  TempDir dir("t2w_weights_err");
  std::ofstream(dir / "x.pt") << "garbage";
  expect_error([&] { T2wWeights::load((dir / "x.pt").string()); }, {"x.pt", "zip"});
  // A half pair inside a real file names the file and the tensor.
  NamedTensors raw = read_torch_state_dict(t2w_golden("hift.pt").string());
  NamedTensors cut;
  for (auto& [n, t] : raw)
    if (n != "ups.1.parametrizations.weight.original1") cut.emplace_back(n, t);
  save_safetensors((dir / "cut.safetensors").string(), cut);
  expect_error([&] { T2wWeights::load((dir / "cut.safetensors").string()); },
               {"cut.safetensors", "ups.1.parametrizations.weight.original0"});
}

}  // namespace
}  // namespace stepaudio
