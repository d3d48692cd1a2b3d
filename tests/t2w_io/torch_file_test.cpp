#include "io/torch_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "../test_paths.h"
#include "core/dtype.h"
#include "io/safetensors.h"
#include "torch_fixture.h"

namespace stepaudio {
namespace {

namespace fs = std::filesystem;
using t2w_fixture::Pickle;
using t2w_fixture::Rec;
using t2w_fixture::TempDir;
using t2w_fixture::write_zip;
using ::testing::HasSubstr;

fs::path fixture(const std::string& name) {
  return testing_paths::source() / "tests/t2w_io/data" / name;
}
fs::path t2w_golden(const std::string& name) {
  return testing_paths::golden() / "token2wav-a" / name;
}

const Tensor& find(const NamedTensors& v, const std::string& name) {
  for (const auto& [n, t] : v)
    if (n == name) return t;
  throw std::runtime_error("no tensor " + name);
}

std::vector<float> f32(const Tensor& t) { return t.to_f32_vector(); }

// Runs `fn`, expecting an Error whose message holds every fragment.
template <typename Fn>
void expect_error(Fn&& fn, std::initializer_list<std::string> fragments) {
  try {
    fn();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    for (const auto& f : fragments) EXPECT_THAT(e.what(), HasSubstr(f));
  }
}

// views.pt was written by torch.save (PyTorch 1.13): views of one storage (transposed, offset,
// strided), F16, BF16, I64, I32, a 0-d tensor and an empty one.
TEST(TorchFile, ReadsTorchWrittenViewsAndDtypes) {
  const NamedTensors sd = read_torch_state_dict(fixture("views.pt").string());
  std::vector<std::string> names;
  for (const auto& [n, t] : sd) names.push_back(n);
  EXPECT_THAT(names, ::testing::ElementsAre("a.weight", "a.weight_t", "a.row2", "a.col", "half",
                                            "bf", "long", "int", "scalar", "empty"));
  auto base = [](int64_t r, int64_t c) { return static_cast<float>(r * 6 + c) * 0.5f - 3.0f; };
  const Tensor& w = find(sd, "a.weight");
  ASSERT_EQ(w.shape(), (Shape{4, 6}));
  ASSERT_EQ(w.dtype(), DType::F32);
  const Tensor& wt = find(sd, "a.weight_t");
  ASSERT_EQ(wt.shape(), (Shape{6, 4}));
  const Tensor& row2 = find(sd, "a.row2");
  ASSERT_EQ(row2.shape(), (Shape{6}));
  const Tensor& col = find(sd, "a.col");
  ASSERT_EQ(col.shape(), (Shape{4}));
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 0; c < 6; ++c) {
      EXPECT_EQ(w.data<float>()[r * 6 + c], base(r, c));
      EXPECT_EQ(wt.data<float>()[c * 4 + r], base(r, c));
    }
  for (int64_t c = 0; c < 6; ++c) EXPECT_EQ(row2.data<float>()[c], base(2, c));
  for (int64_t r = 0; r < 4; ++r) EXPECT_EQ(col.data<float>()[r], base(r, 1));

  const Tensor& half = find(sd, "half");
  ASSERT_EQ(half.dtype(), DType::F16);
  EXPECT_THAT(f32(half.to_dtype(DType::F32)), ::testing::ElementsAre(1.5f, -2.25f, 65504.0f));
  const Tensor& bf = find(sd, "bf");
  ASSERT_EQ(bf.dtype(), DType::BF16);
  ASSERT_EQ(bf.shape(), (Shape{2, 2}));
  EXPECT_THAT(f32(bf.to_dtype(DType::F32)),
              ::testing::ElementsAre(1.0f, -0.5f, 3.0f, bf16_to_f32(f32_to_bf16(1e10f))));
  const Tensor& lg = find(sd, "long");
  ASSERT_EQ(lg.dtype(), DType::I64);
  EXPECT_THAT(std::vector<int64_t>(lg.data<int64_t>(), lg.data<int64_t>() + 4),
              ::testing::ElementsAre(0, -1, 6560, int64_t{1} << 40));
  const Tensor& in = find(sd, "int");
  ASSERT_EQ(in.dtype(), DType::I32);
  EXPECT_EQ(in.data<int32_t>()[0], 7);
  EXPECT_EQ(in.data<int32_t>()[1], -8);
  const Tensor& sc = find(sd, "scalar");
  EXPECT_EQ(sc.shape(), Shape{});
  EXPECT_EQ(sc.data<float>()[0], 2.5f);
  EXPECT_EQ(find(sd, "empty").shape(), (Shape{0, 3}));
}

TEST(TorchFile, MemoryEntryPointMatchesFile) {
  const std::string bytes = testing_paths::read_text(fixture("views.pt"));
  const NamedTensors a = read_torch_state_dict(fixture("views.pt").string());
  const NamedTensors b = read_torch_state_dict_memory(bytes.data(), bytes.size(), "views");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    ASSERT_EQ(a[i].second.shape(), b[i].second.shape());
    ASSERT_EQ(a[i].second.nbytes(), b[i].second.nbytes());
    EXPECT_EQ(0, std::memcmp(a[i].second.raw(), b[i].second.raw(), a[i].second.nbytes()));
  }
}

// The golden files: names, counts and parameter totals from manifest.json, shapes from §8.2.
TEST(TorchFile, GoldenFlowAndHift) {
  const NamedTensors flow = read_torch_state_dict(t2w_golden("flow.pt").string());
  const NamedTensors hift = read_torch_state_dict(t2w_golden("hift.pt").string());
  auto params = [](const NamedTensors& v) {
    int64_t n = 0;
    for (const auto& [name, t] : v) {
      EXPECT_EQ(t.dtype(), DType::F32) << name;
      n += t.numel();
    }
    return n;
  };
  EXPECT_EQ(flow.size(), 117u);
  EXPECT_EQ(params(flow), 852912);
  EXPECT_EQ(hift.size(), 328u);
  EXPECT_EQ(params(hift), 392271);
  EXPECT_EQ(find(flow, "input_embedding.weight").shape(), (Shape{6561, 64}));
  EXPECT_EQ(find(flow, "decoder.estimator.blocks.1.adaLN_modulation.1.weight").shape(),
            (Shape{576, 64}));
  EXPECT_EQ(find(flow, "encoder.pre_lookahead_layer.conv1.weight").shape(), (Shape{64, 64, 4}));
  EXPECT_EQ(find(hift, "ups.0.parametrizations.weight.original0").shape(), (Shape{64, 1, 1}));
  EXPECT_EQ(find(hift, "ups.0.parametrizations.weight.original1").shape(), (Shape{64, 32, 16}));
  EXPECT_EQ(find(hift, "m_source.l_linear.weight").shape(), (Shape{1, 9}));
}

// A hand-built archive under an unusual top folder, with a shared storage and a byteorder entry.
TEST(TorchFile, HandBuiltArchiveAnyTopFolder) {
  TempDir dir("t2w_torch");
  std::vector<Rec> recs = {{"x", "FloatStorage", "7", 6, 0, {2, 3}, {3, 1}},
                           {"y", "FloatStorage", "7", 6, 1, {2, 2}, {1, 3}},  // strided view
                           {"z", "LongStorage", "k", 2, 0, {2}, {1}}};
  std::vector<std::pair<std::string, std::string>> entries = {
      {"some.model-v2/data.pkl", Pickle::state_dict(recs)},
      {"some.model-v2/byteorder", "little"},
      {"some.model-v2/data/7", t2w_fixture::floats({0, 1, 2, 3, 4, 5})},
      {"some.model-v2/data/k",
       std::string("\x05\0\0\0\0\0\0\0\xff\xff\xff\xff\xff\xff\xff\xff", 16)}};
  write_zip(dir / "m.pt", entries);
  const NamedTensors sd = read_torch_state_dict((dir / "m.pt").string());
  ASSERT_EQ(sd.size(), 3u);
  EXPECT_THAT(f32(find(sd, "x")), ::testing::ElementsAre(0, 1, 2, 3, 4, 5));
  // y[i][j] = storage[1 + i + 3j]
  EXPECT_THAT(f32(find(sd, "y")), ::testing::ElementsAre(1, 4, 2, 5));
  const Tensor& z = find(sd, "z");
  EXPECT_EQ(z.data<int64_t>()[0], 5);
  EXPECT_EQ(z.data<int64_t>()[1], -1);
}

// Writes a one-tensor archive with the given pickle/entries; returns its path.
struct Bad {
  TempDir dir{"t2w_torch_bad"};
  fs::path write(std::vector<std::pair<std::string, std::string>> entries) {
    const fs::path p = dir / "bad.pt";
    write_zip(p, entries);
    return p;
  }
};

const Rec kOne = {"w", "FloatStorage", "0", 4, 0, {2, 2}, {2, 1}};

TEST(TorchFileErrors, MissingFileAndDirectory) {
  expect_error([] { read_torch_state_dict("/nonexistent/flow.pt"); }, {"/nonexistent/flow.pt"});
  TempDir dir("t2w_torch_dir");
  expect_error([&] { read_torch_state_dict(dir.path().string()); }, {dir.path().string()});
}

TEST(TorchFileErrors, NotAZip) {
  TempDir dir("t2w_torch_nz");
  const fs::path p = dir / "x.pt";
  std::ofstream(p) << "this is not a zip file at all";
  expect_error([&] { read_torch_state_dict(p.string()); }, {p.string(), "not a torch.save zip"});
  std::ofstream(p, std::ios::trunc);  // empty file
  expect_error([&] { read_torch_state_dict(p.string()); }, {p.string(), "zip"});
}

TEST(TorchFileErrors, TruncatedZip) {
  const std::string bytes = testing_paths::read_text(t2w_golden("hift.pt"));
  for (size_t keep : {bytes.size() / 2, bytes.size() - 10, size_t{100}}) {
    const std::string cut = bytes.substr(0, keep);
    expect_error([&] { read_torch_state_dict_memory(cut.data(), cut.size(), "cut.pt"); },
                 {"cut.pt", "truncated"});
  }
}

TEST(TorchFileErrors, CorruptStorageBytes) {
  // Flip one byte of a storage: the zip CRC no longer matches.
  std::string bytes = testing_paths::read_text(fixture("views.pt"));
  const std::string marker = "views/data/0";
  size_t at = bytes.find(marker);  // the local header of the first storage
  ASSERT_NE(at, std::string::npos);
  // Local header name, then any extra field (torch pads storages to 64 bytes); find the data by
  // its known first float (-3.0f).
  const std::string first = t2w_fixture::floats({-3.0f, -2.5f});
  const size_t data = bytes.find(first, at);
  ASSERT_NE(data, std::string::npos);
  bytes[data + 5] ^= 0x40;
  expect_error([&] { read_torch_state_dict_memory(bytes.data(), bytes.size(), "flip.pt"); },
               {"flip.pt", "views/data/0"});
}

TEST(TorchFileErrors, NoDataPkl) {
  Bad b;
  auto p = b.write({{"top/data/0", t2w_fixture::floats({1, 2, 3, 4})}, {"top/version", "3"}});
  expect_error([&] { read_torch_state_dict(p.string()); }, {p.string(), "data.pkl"});
  // data.pkl at the root or two levels down is not the layout either.
  p = b.write({{"data.pkl", Pickle::state_dict({kOne})}, {"a/b/data.pkl", "x"}});
  expect_error([&] { read_torch_state_dict(p.string()); }, {"data.pkl"});
}

TEST(TorchFileErrors, ForbiddenGlobal) {
  Bad b;
  Pickle pk;
  pk.proto().global("os", "system").str("echo hi").op('\x85').op('R').op('.');
  auto p = b.write({{"t/data.pkl", pk.bytes()}});
  expect_error([&] { read_torch_state_dict(p.string()); },
               {p.string(), "os.system", "not allowed"});
  // A storage class outside the whitelist.
  Rec r = kOne;
  r.storage_class = "ComplexFloatStorage";
  p = b.write({{"t/data.pkl", Pickle::state_dict({r})}, {"t/data/0", std::string(32, '\0')}});
  expect_error([&] { read_torch_state_dict(p.string()); }, {"torch.ComplexFloatStorage"});
}

TEST(TorchFileErrors, UnsupportedOpcode) {
  Bad b;
  Pickle pk;
  pk.proto().op('G').raw(std::string(8, '\0')).op('.');  // BINFLOAT
  auto p = b.write({{"t/data.pkl", pk.bytes()}});
  expect_error([&] { read_torch_state_dict(p.string()); }, {p.string(), "opcode 0x47", "'G'"});
}

TEST(TorchFileErrors, TruncatedStorage) {
  Bad b;
  auto p = b.write(
      {{"t/data.pkl", Pickle::state_dict({kOne})}, {"t/data/0", t2w_fixture::floats({1, 2, 3})}});
  expect_error([&] { read_torch_state_dict(p.string()); },
               {p.string(), "storage '0' is truncated", "16 bytes", "12"});
}

TEST(TorchFileErrors, MissingStorageEntry) {
  Bad b;
  auto p = b.write({{"t/data.pkl", Pickle::state_dict({kOne})}});
  expect_error([&] { read_torch_state_dict(p.string()); }, {"t/data/0"});
}

TEST(TorchFileErrors, ViewOutsideStorage) {
  Bad b;
  Rec r = kOne;
  r.stride = {3, 1};  // last element 3 + 1 = 4, storage holds 4
  auto p = b.write(
      {{"t/data.pkl", Pickle::state_dict({r})}, {"t/data/0", t2w_fixture::floats({1, 2, 3, 4})}});
  expect_error([&] { read_torch_state_dict(p.string()); }, {"reaches element 4", "holds 4"});
  r = kOne;
  r.offset = 1;
  p = b.write(
      {{"t/data.pkl", Pickle::state_dict({r})}, {"t/data/0", t2w_fixture::floats({1, 2, 3, 4})}});
  expect_error([&] { read_torch_state_dict(p.string()); }, {"offset 1"});
  r = kOne;
  r.size = {2, -2};
  p = b.write(
      {{"t/data.pkl", Pickle::state_dict({r})}, {"t/data/0", t2w_fixture::floats({1, 2, 3, 4})}});
  expect_error([&] { read_torch_state_dict(p.string()); }, {"bad size/stride"});
}

TEST(TorchFileErrors, BigEndian) {
  Bad b;
  auto p = b.write({{"t/data.pkl", Pickle::state_dict({kOne})},
                    {"t/byteorder", "big"},
                    {"t/data/0", t2w_fixture::floats({1, 2, 3, 4})}});
  expect_error([&] { read_torch_state_dict(p.string()); }, {"byteorder is 'big'"});
}

TEST(TorchFileErrors, NotAStateDict) {
  Bad b;
  Pickle pk;
  pk.proto().op('N').op('.');
  auto p = b.write({{"t/data.pkl", pk.bytes()}});
  expect_error([&] { read_torch_state_dict(p.string()); }, {"holds a None"});
  Pickle pk2;
  pk2.proto().op('}').str("k").integer(3).op('s').op('.');
  p = b.write({{"t/data.pkl", pk2.bytes()}});
  expect_error([&] { read_torch_state_dict(p.string()); }, {"entry 'k' is a int"});
  Pickle pk3;
  pk3.proto().op('}').str("k");  // no STOP
  p = b.write({{"t/data.pkl", pk3.bytes()}});
  expect_error([&] { read_torch_state_dict(p.string()); }, {"without STOP"});
  Pickle pk4;
  pk4.proto().op('h').raw("\x05").op('.');  // memo read before store
  p = b.write({{"t/data.pkl", pk4.bytes()}});
  expect_error([&] { read_torch_state_dict(p.string()); }, {"memo entry 5"});
}

}  // namespace
}  // namespace stepaudio
