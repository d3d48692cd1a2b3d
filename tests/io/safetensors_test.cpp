#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "../test_paths.h"
#include "io/safetensors.h"

using namespace stepaudio;
namespace fs = std::filesystem;

namespace {
fs::path tmpdir() {
  fs::path p = fs::temp_directory_path() / ("sa_st_" + std::to_string(::getpid()));
  fs::create_directories(p);
  return p;
}
void write_raw(const fs::path& p, const std::string& header, size_t data_bytes) {
  std::ofstream f(p, std::ios::binary);
  uint64_t n = header.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f << header;
  f << std::string(data_bytes, '\0');
}
}  // namespace

TEST(Safetensors, RoundTrip) {
  fs::path p = tmpdir() / "rt.safetensors";
  Tensor a = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from_vector({7, 8}, {2}).to_dtype(DType::BF16);
  save_safetensors(p, {{"b", b}, {"a", a}}, {{"format", "pt"}});
  auto f = SafetensorsFile::open(p);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.get("a").to_f32_vector(), a.to_f32_vector());
  EXPECT_EQ(f.get("b").dtype(), DType::BF16);
  EXPECT_EQ(f.get("b").to_f32_vector(), (std::vector<float>{7, 8}));
  EXPECT_THROW(f.get("c"), Error);
}

TEST(Safetensors, ReadsGoldenFile) {
  auto f = SafetensorsFile::open(testing_paths::golden() / "tiny-a" / "goldens.safetensors");
  Tensor ids = f.get("text_2plus2/input_ids");
  EXPECT_EQ(ids.dtype(), DType::I64);
  EXPECT_EQ(ids.numel(), 24);
  EXPECT_EQ(ids.data<int64_t>()[0], 151666);
}

TEST(Safetensors, ErrorsNameTheProblem) {
  fs::path d = tmpdir();
  auto expect_error = [](const fs::path& p, const std::string& needle) {
    try {
      SafetensorsFile::open(p);
      ADD_FAILURE() << "no error for " << p;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
    }
  };
  expect_error(d / "missing.safetensors", "cannot open");
  expect_error(d, "is a directory");
  { std::ofstream(d / "short.safetensors") << "abc"; }
  expect_error(d / "short.safetensors", "8-byte");
  write_raw(d / "badjson.safetensors", "{not json", 0);
  expect_error(d / "badjson.safetensors", "not valid JSON");
  write_raw(d / "trunc.safetensors", R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
            8);
  expect_error(d / "trunc.safetensors", "truncated");
  write_raw(d / "size.safetensors", R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})",
            16);
  expect_error(d / "size.safetensors", "needs 12 bytes");
  write_raw(d / "dtype.safetensors", R"({"x":{"dtype":"Q4","shape":[3],"data_offsets":[0,3]}})", 3);
  expect_error(d / "dtype.safetensors", "unsupported dtype");
}
