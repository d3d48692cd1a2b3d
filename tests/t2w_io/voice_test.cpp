#include "model/voice.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "io/safetensors.h"
#include "torch_fixture.h"

namespace stepaudio {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

Voice make_voice(int n) {
  Voice v;
  for (int i = 0; i < n; ++i) v.prompt_codes.push_back((i * 997) % 6561);
  v.prompt_codes.back() = 6560;
  v.prompt_codes.front() = 0;
  std::vector<float> mel, spk;
  for (int i = 0; i < 2 * n * 80; ++i) mel.push_back(std::sin(0.01f * i) * 5 - 6);
  for (int i = 0; i < 192; ++i) spk.push_back(0.1f * i - 9);
  v.prompt_mel = Tensor::from_vector(mel, {2 * n, 80});
  v.speaker_embedding = Tensor::from_vector(spk, {192});
  return v;
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

TEST(Voice, RoundTrip) {
  t2w_fixture::TempDir dir("t2w_voice");
  const Voice v = make_voice(7);
  const std::string p = (dir / "v.safetensors").string();
  save_voice(p, v);
  const SafetensorsFile f = SafetensorsFile::open(p);
  EXPECT_EQ(f.get("prompt_codes").dtype(), DType::I64);
  EXPECT_EQ(f.get("prompt_codes").shape(), (Shape{7}));
  const Voice back = load_voice(p);
  EXPECT_EQ(back.prompt_codes, v.prompt_codes);
  EXPECT_EQ(back.prompt_mel.to_f32_vector(), v.prompt_mel.to_f32_vector());
  EXPECT_EQ(back.prompt_mel.shape(), (Shape{14, 80}));
  EXPECT_EQ(back.speaker_embedding.to_f32_vector(), v.speaker_embedding.to_f32_vector());
}

TEST(Voice, AcceptsI32CodesAndHalfFloats) {
  t2w_fixture::TempDir dir("t2w_voice");
  const Voice v = make_voice(3);
  const std::string p = (dir / "v.safetensors").string();
  Tensor codes = Tensor::empty({3}, DType::I32);
  for (int i = 0; i < 3; ++i) codes.data<int32_t>()[i] = v.prompt_codes[static_cast<size_t>(i)];
  save_safetensors(p, {{"prompt_codes", codes},
                       {"prompt_mel", v.prompt_mel.to_dtype(DType::F16)},
                       {"speaker_embedding", v.speaker_embedding.to_dtype(DType::BF16)}});
  const Voice back = load_voice(p);
  EXPECT_EQ(back.prompt_codes, v.prompt_codes);
  EXPECT_EQ(back.prompt_mel.dtype(), DType::F32);
  EXPECT_EQ(back.speaker_embedding.dtype(), DType::F32);
  EXPECT_NEAR(back.prompt_mel.data<float>()[5], v.prompt_mel.data<float>()[5], 1e-2);
}

// Each bad field, both on save (nothing written) and on load (a file written by hand).
TEST(Voice, BadFields) {
  t2w_fixture::TempDir dir("t2w_voice");
  const std::string p = (dir / "bad.safetensors").string();
  auto check = [&](const Voice& v, std::initializer_list<std::string> frags) {
    expect_error([&] { save_voice(p, v); }, frags);
    EXPECT_FALSE(fs::exists(p));
  };
  Voice v = make_voice(4);
  v.prompt_codes[2] = 6561;
  check(v, {"bad.safetensors", "prompt_codes", "element 2 is 6561"});
  v = make_voice(4);
  v.prompt_codes[1] = -1;
  check(v, {"prompt_codes", "element 1 is -1"});
  v = make_voice(4);
  v.prompt_codes.clear();
  check(v, {"prompt_codes", "empty"});
  v = make_voice(4);
  v.prompt_codes.push_back(5);  // 5 codes, 8 mel rows
  check(v, {"prompt_mel", "F32[8, 80]", "expected F32[10, 80]"});
  v = make_voice(4);
  v.prompt_mel = Tensor::zeros({8, 79}, DType::F32);
  check(v, {"prompt_mel", "[8, 79]"});
  v = make_voice(4);
  v.prompt_mel.data<float>()[100] = INFINITY;
  check(v, {"prompt_mel", "element 100"});
  v = make_voice(4);
  v.speaker_embedding = Tensor::zeros({1, 192}, DType::F32);
  check(v, {"speaker_embedding", "[1, 192]"});
  v = make_voice(4);
  v.speaker_embedding.data<float>()[3] = std::nanf("");
  check(v, {"speaker_embedding", "element 3"});
  v = make_voice(4);
  v.speaker_embedding = Tensor();
  check(v, {"speaker_embedding", "missing"});

  // Files written by hand.
  const Voice good = make_voice(4);
  Tensor codes = Tensor::empty({4}, DType::I64);
  for (int i = 0; i < 4; ++i) codes.data<int64_t>()[i] = good.prompt_codes[static_cast<size_t>(i)];
  save_safetensors(p, {{"prompt_codes", codes}, {"prompt_mel", good.prompt_mel}});
  expect_error([&] { load_voice(p); }, {"bad.safetensors", "'speaker_embedding' is missing"});
  save_safetensors(p, {{"prompt_codes", codes.to_dtype(DType::F32)},
                       {"prompt_mel", good.prompt_mel},
                       {"speaker_embedding", good.speaker_embedding}});
  expect_error([&] { load_voice(p); }, {"prompt_codes", "expected I64[N]"});
  codes.data<int64_t>()[3] = 100000;
  save_safetensors(p, {{"prompt_codes", codes},
                       {"prompt_mel", good.prompt_mel},
                       {"speaker_embedding", good.speaker_embedding}});
  expect_error([&] { load_voice(p); }, {"prompt_codes", "element 3 is 100000"});
  codes.data<int64_t>()[3] = 1;
  save_safetensors(p, {{"prompt_codes", codes},
                       {"prompt_mel", good.prompt_mel},
                       {"speaker_embedding", good.speaker_embedding},
                       {"extra", good.speaker_embedding}});
  expect_error([&] { load_voice(p); }, {"unexpected tensor 'extra'"});
  save_safetensors(p, {{"prompt_codes", codes},
                       {"prompt_mel", good.prompt_mel.slice_rows(0, 6)},
                       {"speaker_embedding", good.speaker_embedding}});
  expect_error([&] { load_voice(p); }, {"prompt_mel", "[6, 80]"});
  expect_error([&] { load_voice((dir / "none.safetensors").string()); }, {"none.safetensors"});
}

}  // namespace
}  // namespace stepaudio
