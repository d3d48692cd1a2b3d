// The flow against the token2wav-a goldens (golden README §8.3 case 2, tolerances §8.7 with a
// small margin): every encoder stage, one DiT call and the Euler steps fed the golden input of
// that stage, then the whole inference with the recorded noise injected.
#include <functional>
#include <map>
#include <set>

#include "flow_golden.h"
#include "ops/flow_ops.h"
#include "ops/ops.h"

namespace stepaudio {
namespace {

using flow_test::data;
using flow_test::expect_close;
using flow_test::golden;
using flow_test::golden_ids;

constexpr double kStageTol = 1e-4;   // encoder stages
constexpr double kEncOutTol = 2e-5;  // encoder_out, mu
constexpr double kDiTTol = 5e-5;     // one DiT call, its internals
constexpr double kStepTol = 5e-5;    // x_steps, feat

// [T, D] golden rows as a [1, T, D] batch.
Tensor batch1(const Tensor& t) { return t.reshape({1, t.dim(0), t.dim(1)}); }
Tensor rows(const Tensor& t) { return t.reshape({t.dim(1), t.dim(2)}); }

TEST(FlowGolden, SpeakerAndTokenEmbedding) {
  const Flow& f = *data().flow;
  expect_close(f.speaker(golden("flow/embedding")).reshape({80}), golden("flow/spks"), 1e-6,
               "flow/spks");
  std::vector<int32_t> ids = golden_ids("flow/prompt_token");
  for (int32_t id : golden_ids("flow/token")) ids.push_back(id);
  ASSERT_EQ(ids.size(), 57u);
  expect_close(rows(f.embed_tokens(ids)), golden("flow/token_emb"), 0.0, "flow/token_emb");
}

TEST(FlowGolden, EncoderStagesFedGoldenInputs) {
  const FlowEncoder& e = data().flow->encoder();
  const auto& c = e.config();
  expect_close(rows(e.embed(batch1(golden("flow/token_emb")), false)), golden("flow/enc_embed"),
               kStageTol, "flow/enc_embed");
  expect_close(e.pos_table(57), golden("flow/enc_pos_emb"), 1e-5, "flow/enc_pos_emb");
  expect_close(rows(e.pre_lookahead(batch1(golden("flow/enc_embed")))),
               golden("flow/enc_lookahead"), kStageTol, "flow/enc_lookahead");
  const Tensor pos = golden("flow/enc_pos_emb");
  std::string prev = "flow/enc_lookahead";
  for (int64_t i = 0; i < c.num_blocks; ++i) {
    const std::string name = fmt::format("flow/enc_block{}", i);
    expect_close(rows(e.layer(i, false, batch1(golden(prev)), pos)), golden(name), kStageTol, name);
    prev = name;
  }
  const Tensor up = e.upsample(batch1(golden(prev)));
  expect_close(up.reshape({up.dim(1), up.dim(2)}), golden("flow/enc_up"), kStageTol, "flow/enc_up");
  const Tensor enc_up = golden("flow/enc_up");
  expect_close(rows(e.embed(ops::transpose_last2(enc_up.reshape({1, 64, 114})), true)),
               golden("flow/enc_up_embed"), kStageTol, "flow/enc_up_embed");
  expect_close(e.pos_table(114), golden("flow/enc_up_pos_emb"), 1e-5, "flow/enc_up_pos_emb");
  const Tensor up_pos = golden("flow/enc_up_pos_emb");
  prev = "flow/enc_up_embed";
  for (int64_t i = 0; i < c.num_up_blocks; ++i) {
    const std::string name = fmt::format("flow/up_block{}", i);
    expect_close(rows(e.layer(i, true, batch1(golden(prev)), up_pos)), golden(name), kStageTol,
                 name);
    prev = name;
  }
  expect_close(rows(e.final_norm(batch1(golden(prev)))), golden("flow/encoder_out"), kEncOutTol,
               "flow/encoder_out");
  const Tensor mu = data().flow->project(batch1(golden("flow/encoder_out")));
  expect_close(mu.reshape({80, 114}), golden("flow/mu"), kEncOutTol, "flow/mu");
}

TEST(FlowGolden, DiTCall) {
  const DiT& dit = data().flow->estimator();
  FlowTrace trace;
  const Tensor out = dit.forward(golden("dit/x"), golden("dit/mu"), golden("dit/t"),
                                 golden("dit/spks"), golden("dit/cond"), &trace);
  std::map<std::string, Tensor> got(trace.begin(), trace.end());
  ASSERT_EQ(got.size(), 4u + static_cast<size_t>(dit.config().depth));
  for (const auto& [name, t] : got) expect_close(t, golden(name), kDiTTol, name);
  expect_close(out, golden("dit/standalone_out"), kDiTTol, "dit/standalone_out");
}

TEST(FlowGolden, TimeGrid) {
  const std::vector<float> grid = Flow::time_grid(10);
  expect_close(Tensor::from_vector(grid, {11}), golden("flow/t_span"), 1e-7, "flow/t_span");
  // The t of each estimator call: t_span[0], then t += dt with dt = t_span[k+1] - t.
  std::vector<float> ts;
  float t = grid[0], dt = grid[1] - grid[0];
  for (int k = 1; k <= 10; ++k) {
    ts.push_back(t);
    t += dt;
    if (k < 10) dt = grid[static_cast<size_t>(k) + 1] - t;
  }
  expect_close(Tensor::from_vector(ts, {10}), golden("flow/step_t"), 1e-7, "flow/step_t");
}

TEST(FlowGolden, EulerStepsFedGoldenMu) {
  const Flow& f = *data().flow;
  FlowTrace trace;
  const Tensor x = f.solve(
      golden("flow/noise").reshape({1, 80, 114}), golden("flow/mu").reshape({1, 80, 114}),
      golden("flow/spks").reshape({1, 80}), golden("flow/cond").reshape({1, 80, 114}), 10, &trace);
  ASSERT_EQ(trace.size(), 1u);
  ASSERT_EQ(trace[0].first, "flow/x_steps");
  const Tensor steps = trace[0].second, want = golden("flow/x_steps");
  ASSERT_EQ(steps.shape(), want.shape());
  for (int64_t k = 0; k < 10; ++k)
    expect_close(steps.slice_rows(k, k + 1), want.slice_rows(k, k + 1), kStepTol,
                 fmt::format("flow/x_steps[{}]", k));
  expect_close(ops::slice_axis(x.reshape({80, 114}), 1, 40, 114), golden("flow/feat"), kStepTol,
               "flow/feat (fed mu)");
}

TEST(FlowGolden, InferenceWithInjectedNoise) {
  const Flow& f = *data().flow;
  FlowTrace trace;
  const Tensor feat = f.inference(golden_ids("flow/prompt_token"), golden_ids("flow/token"),
                                  golden("flow/prompt_feat"), golden("flow/embedding"), 10,
                                  golden("flow/noise"), &trace);
  ASSERT_EQ(feat.shape(), (Shape{80, 74}));
  std::map<std::string, double> tol = {{"flow/spks", 1e-6},        {"flow/token_emb", 0.0},
                                       {"flow/cond", 0.0},         {"flow/noise", 0.0},
                                       {"flow/encoder_out", 5e-5}, {"flow/mu", 2e-5},
                                       {"flow/x_steps", kStepTol}, {"flow/feat", kStepTol}};
  std::set<std::string> seen;
  for (const auto& [name, t] : trace) {
    seen.insert(name);
    const double tl = tol.count(name) ? tol[name] : kStageTol;
    expect_close(t, golden(name), tl, name);
  }
  // Every golden of the flow case was produced.
  const std::set<std::string> inputs = {"flow/t_span", "flow/step_t",    "flow/prompt_token",
                                        "flow/token",  "flow/embedding", "flow/prompt_feat"};
  for (const auto& [name, info] : data().goldens.tensors()) {
    if (name.rfind("flow/", 0) == 0 && !inputs.count(name)) {
      EXPECT_TRUE(seen.count(name)) << name << " was not traced";
    }
  }
  expect_close(feat, golden("flow/feat"), kStepTol, "feat (returned)");
}

TEST(FlowErrors, BadInputsNameTheProblem) {
  const Flow& f = *data().flow;
  const std::vector<int32_t> prompt(20, 5), codes(10, 7);
  const Tensor mel = Tensor::zeros({40, 80}, DType::F32), spk = golden("flow/embedding");
  auto expect_error = [](const std::function<void()>& fn, const std::string& needle) {
    try {
      fn();
      ADD_FAILURE() << "no error; expected one mentioning '" << needle << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  std::vector<int32_t> bad = codes;
  bad[3] = 6561;
  expect_error([&] { f.inference(prompt, bad, mel, spk, 2); }, "6561 at position 3");
  bad[3] = -1;
  expect_error([&] { f.inference(prompt, bad, mel, spk, 2); }, "-1 at position 3");
  expect_error(
      [&] {
        f.inference(prompt, codes, Tensor::zeros({39, 80}, DType::F32), spk, 2);
      },
      "prompt mel");
  expect_error([&] { f.inference(prompt, codes, mel, Tensor::zeros({80}, DType::F32), 2); },
               "speaker embedding");
  expect_error([&] { f.inference(prompt, {}, mel, spk, 2); }, "no speech tokens");
  expect_error([&] { f.inference(prompt, codes, mel, spk, 0); }, "n_timesteps");
  expect_error(
      [&] {
        f.inference(prompt, codes, mel, spk, 2, Tensor::zeros({80, 59}, DType::F32));
      },
      "noise");
}

}  // namespace
}  // namespace stepaudio
