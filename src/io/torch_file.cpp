#include "io/torch_file.h"

#include <zip.h>

#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>

#include "io/mapped_file.h"

namespace stepaudio {

namespace {

// ------------------------------------------------------------------------------------- zip layer

struct ZipCloser {
  void operator()(zip_t* z) const { zip_discard(z); }
};
struct ZipFileCloser {
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};

// An open archive over bytes in memory, with a budget on how much may be inflated from it: a
// small hostile archive must not expand into gigabytes (deflate never exceeds ~1032:1, and
// several directory entries may point at the same compressed bytes).
class ZipReader {
 public:
  ZipReader(const void* data, size_t size, std::string where) : where_(std::move(where)) {
    if (!looks_like_zip(data, size))
      fail("{}: not a torch.save zip archive (the file does not start with a zip header)", where_);
    zip_error_t err;
    zip_error_init(&err);
    zip_source_t* src = zip_source_buffer_create(data, size, 0, &err);
    if (!src) {
      std::string msg = zip_error_strerror(&err);
      zip_error_fini(&err);
      fail("{}: cannot open as a zip archive ({})", where_, msg);
    }
    zip_t* z = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &err);
    if (!z) {
      zip_source_free(src);
      const bool nozip = zip_error_code_zip(&err) == ZIP_ER_NOZIP;
      std::string msg = zip_error_strerror(&err);
      zip_error_fini(&err);
      // It starts like a zip, so a missing directory means the file was cut short or damaged.
      if (nozip)
        fail("{}: truncated or damaged zip archive: no central directory found in {} bytes", where_,
             size);
      fail("{}: not a valid zip archive ({})", where_, msg);
    }
    zip_error_fini(&err);
    zip_.reset(z);
    budget_ = static_cast<uint64_t>(size) * 1100 + (uint64_t{1} << 20);
  }

  const std::string& where() const { return where_; }

  std::vector<std::string> names() const {
    const zip_int64_t n = zip_get_num_entries(zip_.get(), 0);
    std::vector<std::string> out;
    for (zip_int64_t i = 0; i < n; ++i) {
      const char* name = zip_get_name(zip_.get(), static_cast<zip_uint64_t>(i), ZIP_FL_ENC_RAW);
      out.emplace_back(name ? name : "");
    }
    return out;
  }

  bool has(const std::string& name) const {
    return zip_name_locate(zip_.get(), name.c_str(), ZIP_FL_ENC_RAW) >= 0;
  }

  // The whole entry, or an Error naming it (missing, oversized, truncated, bad CRC).
  std::shared_ptr<char[]> read(const std::string& name, size_t* size_out) {
    const zip_int64_t idx = zip_name_locate(zip_.get(), name.c_str(), ZIP_FL_ENC_RAW);
    if (idx < 0) fail("{}: the archive has no entry '{}'", where_, name);
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(zip_.get(), static_cast<zip_uint64_t>(idx), 0, &st) != 0 ||
        !(st.valid & ZIP_STAT_SIZE))
      fail("{}: cannot read the size of entry '{}' ({})", where_, name, zip_strerror(zip_.get()));
    if (st.size > budget_)
      fail("{}: entry '{}' claims {} bytes, more than an archive of this size can hold", where_,
           name, st.size);
    budget_ -= st.size;
    std::unique_ptr<zip_file_t, ZipFileCloser> f(
        zip_fopen_index(zip_.get(), static_cast<zip_uint64_t>(idx), 0));
    if (!f) fail("{}: cannot open entry '{}' ({})", where_, name, zip_strerror(zip_.get()));
    std::shared_ptr<char[]> buf(new char[st.size ? st.size : 1]);
    uint64_t got = 0;
    while (got < st.size) {
      const zip_int64_t r = zip_fread(f.get(), buf.get() + got, st.size - got);
      if (r < 0)
        fail("{}: entry '{}' is corrupt or truncated ({})", where_, name,
             zip_file_strerror(f.get()));
      if (r == 0) break;
      got += static_cast<uint64_t>(r);
    }
    if (got != st.size)
      fail("{}: entry '{}' is truncated: {} of {} bytes", where_, name, got, st.size);
    // Reading once more lets libzip check the CRC of everything read.
    char probe;
    if (zip_fread(f.get(), &probe, 1) < 0)
      fail("{}: entry '{}' is corrupt ({})", where_, name, zip_file_strerror(f.get()));
    *size_out = static_cast<size_t>(st.size);
    return buf;
  }

 private:
  std::string where_;
  std::unique_ptr<zip_t, ZipCloser> zip_;
  uint64_t budget_ = 0;
};

// ---------------------------------------------------------------------------- pickle machine

struct Obj {
  enum class K { None, Bool, Int, Str, Tuple, Dict, Global, Storage, Tensor };
  K k = K::None;
  int64_t i = 0;                                      // Int, Bool
  std::string s;                                      // Str; Global: "module.name"; Storage: key
  std::vector<Obj*> items;                            // Tuple
  std::vector<std::pair<Obj*, Obj*>> dict;            // Dict, in insertion order
  std::unordered_map<std::string, size_t> str_index;  // Dict: position of each string key
  DType dtype = DType::F32;                           // Storage
  int64_t numel = 0;                                  // Storage
  Tensor t;                                           // Tensor
};

const char* kind_name(Obj::K k) {
  switch (k) {
    case Obj::K::None:
      return "None";
    case Obj::K::Bool:
      return "bool";
    case Obj::K::Int:
      return "int";
    case Obj::K::Str:
      return "str";
    case Obj::K::Tuple:
      return "tuple";
    case Obj::K::Dict:
      return "dict";
    case Obj::K::Global:
      return "global";
    case Obj::K::Storage:
      return "storage";
    case Obj::K::Tensor:
      return "tensor";
  }
  return "?";
}

bool storage_dtype(const std::string& global, DType* out) {
  static const std::map<std::string, DType> kTypes = {
      {"torch.FloatStorage", DType::F32},     {"torch.HalfStorage", DType::F16},
      {"torch.BFloat16Storage", DType::BF16}, {"torch.DoubleStorage", DType::F64},
      {"torch.LongStorage", DType::I64},      {"torch.IntStorage", DType::I32},
      {"torch.ShortStorage", DType::I16},     {"torch.CharStorage", DType::I8},
      {"torch.ByteStorage", DType::U8},       {"torch.BoolStorage", DType::BOOL}};
  auto it = kTypes.find(global);
  if (it == kTypes.end()) return false;
  *out = it->second;
  return true;
}

bool global_allowed(const std::string& g) {
  static const std::set<std::string> kAllowed = {
      "collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
      "torch._utils._rebuild_parameter", "torch.serialization._get_layout", "torch.strided"};
  DType unused;
  return kAllowed.count(g) != 0 || storage_dtype(g, &unused);
}

class Unpickler {
 public:
  Unpickler(ZipReader& zip, std::string top, const char* p, size_t n, uint64_t copy_budget)
      : zip_(zip), top_(std::move(top)), p_(p), n_(n), copy_budget_(copy_budget) {}

  NamedTensors run();

 private:
  [[noreturn]] void bad(const std::string& what) const {
    fail("{}: {}/data.pkl at byte {}: {}", zip_.where(), top_, op_at_, what);
  }
  Obj* make(Obj::K k) {
    arena_.push_back(std::make_unique<Obj>());
    arena_.back()->k = k;
    return arena_.back().get();
  }
  void need(size_t bytes) const {
    if (n_ - pos_ < bytes) bad("the pickle ends in the middle of an opcode");
  }
  uint64_t read_le(size_t bytes) {
    need(bytes);
    uint64_t v = 0;
    for (size_t i = 0; i < bytes; ++i)
      v |= static_cast<uint64_t>(static_cast<unsigned char>(p_[pos_ + i])) << (8 * i);
    pos_ += bytes;
    return v;
  }
  std::string read_bytes(uint64_t len) {
    if (len > n_ - pos_) bad("a string runs past the end of the pickle");
    std::string s(p_ + pos_, static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return s;
  }
  std::string read_line() {
    const void* nl = std::memchr(p_ + pos_, '\n', n_ - pos_);
    if (!nl) bad("GLOBAL without a terminating newline");
    const size_t len = static_cast<size_t>(static_cast<const char*>(nl) - (p_ + pos_));
    std::string s(p_ + pos_, len);
    pos_ += len + 1;
    return s;
  }
  Obj* pop() {
    if (stack_.size() <= floor()) bad("stack underflow");
    Obj* o = stack_.back();
    stack_.pop_back();
    return o;
  }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  std::vector<Obj*> pop_mark() {
    if (marks_.empty()) bad("an opcode needs a MARK but none is open");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Obj*> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  Obj* tuple(std::vector<Obj*> items) {
    Obj* t = make(Obj::K::Tuple);
    t->items = std::move(items);
    return t;
  }
  void set_item(Obj* d, Obj* key, Obj* value) {
    if (d->k != Obj::K::Dict)
      bad(fmt::format("SETITEM(S) on a {} (expected a dict)", kind_name(d->k)));
    if (key->k == Obj::K::Str) {
      auto [it, fresh] = d->str_index.emplace(key->s, d->dict.size());
      if (!fresh) {
        d->dict[it->second].second = value;  // Python semantics: a repeated key replaces
        return;
      }
    }
    d->dict.emplace_back(key, value);
  }
  void memo_put(uint64_t idx) {
    if (stack_.size() <= floor()) bad("memo store with an empty stack");
    memo_[idx] = stack_.back();
  }
  void memo_get(uint64_t idx) {
    auto it = memo_.find(idx);
    if (it == memo_.end()) bad(fmt::format("memo entry {} read before it was stored", idx));
    stack_.push_back(it->second);
  }
  int64_t as_int(const Obj* o, const char* what) const {
    if (o->k != Obj::K::Int) bad(fmt::format("{} must be an int, found {}", what, kind_name(o->k)));
    return o->i;
  }

  Obj* global(const std::string& module, const std::string& name);
  Obj* reduce(Obj* callable, Obj* args);
  Obj* persistent(Obj* pid);
  Obj* rebuild_tensor(const std::vector<Obj*>& a);
  std::pair<const char*, size_t> storage_bytes(const Obj* st);

  ZipReader& zip_;
  std::string top_;
  const char* p_;
  size_t n_;
  size_t pos_ = 0, op_at_ = 0;
  uint64_t copy_budget_;
  std::vector<std::unique_ptr<Obj>> arena_;
  std::vector<Obj*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Obj*> memo_;
  struct Loaded {
    std::shared_ptr<char[]> data;
    size_t size = 0;
  };
  std::map<std::string, Loaded> storages_;
};

Obj* Unpickler::global(const std::string& module, const std::string& name) {
  const std::string g = module + "." + name;
  if (!global_allowed(g))
    bad(
        fmt::format("global '{}' is not allowed (a state_dict needs only OrderedDict, tensor "
                    "rebuild functions and torch storage classes)",
                    g.size() > 120 ? g.substr(0, 120) + "..." : g));
  Obj* o = make(Obj::K::Global);
  o->s = g;
  return o;
}

Obj* Unpickler::persistent(Obj* pid) {
  // ('storage', <storage class>, key, location, numel)
  if (pid->k != Obj::K::Tuple || pid->items.size() != 5 || pid->items[0]->k != Obj::K::Str ||
      pid->items[0]->s != "storage")
    bad("BINPERSID expects a ('storage', class, key, location, numel) record");
  const Obj* cls = pid->items[1];
  const Obj* key = pid->items[2];
  const Obj* loc = pid->items[3];
  Obj* st = make(Obj::K::Storage);
  if (cls->k != Obj::K::Global || !storage_dtype(cls->s, &st->dtype))
    bad(fmt::format("storage record with unsupported class ({})",
                    cls->k == Obj::K::Global ? cls->s : kind_name(cls->k)));
  if (key->k != Obj::K::Str) bad("storage record key must be a string");
  if (loc->k != Obj::K::Str) bad("storage record location must be a string");
  st->s = key->s;
  st->numel = as_int(pid->items[4], "storage record numel");
  if (st->numel < 0 || st->numel > (int64_t{1} << 50))
    bad(fmt::format("storage '{}' has an impossible element count {}", st->s, st->numel));
  return st;
}

std::pair<const char*, size_t> Unpickler::storage_bytes(const Obj* st) {
  auto it = storages_.find(st->s);
  if (it == storages_.end()) {
    const std::string entry = top_ + "/data/" + st->s;
    if (!zip_.has(entry)) bad(fmt::format("storage '{}' has no entry '{}'", st->s, entry));
    Loaded l;
    l.data = zip_.read(entry, &l.size);
    it = storages_.emplace(st->s, std::move(l)).first;
  }
  const uint64_t want = static_cast<uint64_t>(st->numel) * dtype_size(st->dtype);
  if (it->second.size < want)
    bad(fmt::format("storage '{}' is truncated: {} elements of {} need {} bytes, entry has {}",
                    st->s, st->numel, dtype_name(st->dtype), want, it->second.size));
  return {it->second.data.get(), it->second.size};
}

Obj* Unpickler::rebuild_tensor(const std::vector<Obj*>& a) {
  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[,
  // metadata]); only the first four shape the data.
  if (a.size() < 4 || a.size() > 7)
    bad(fmt::format("_rebuild_tensor_v2 takes 4 to 7 arguments, found {}", a.size()));
  const Obj* st = a[0];
  if (st->k != Obj::K::Storage)
    bad(fmt::format("_rebuild_tensor_v2: first argument must be a storage, found {}",
                    kind_name(st->k)));
  const int64_t offset = as_int(a[1], "tensor storage_offset");
  if (a[2]->k != Obj::K::Tuple || a[3]->k != Obj::K::Tuple)
    bad("_rebuild_tensor_v2: size and stride must be tuples");
  const auto& sz = a[2]->items;
  const auto& sd = a[3]->items;
  if (sz.size() != sd.size())
    bad(fmt::format("tensor on storage '{}': size has {} dims but stride has {}", st->s, sz.size(),
                    sd.size()));
  if (sz.size() > 16) bad(fmt::format("tensor on storage '{}' has {} dims", st->s, sz.size()));
  Shape shape;
  std::vector<int64_t> stride;
  int64_t numel = 1;
  for (size_t d = 0; d < sz.size(); ++d) {
    const int64_t n = as_int(sz[d], "tensor size"), s = as_int(sd[d], "tensor stride");
    if (n < 0 || s < 0 || n > (int64_t{1} << 50) || s > (int64_t{1} << 50))
      bad(fmt::format("tensor on storage '{}': bad size/stride {}/{} in dim {}", st->s, n, s, d));
    if (n != 0 && numel > (int64_t{1} << 50) / n)
      bad(fmt::format("tensor on storage '{}' is impossibly large", st->s));
    numel *= n;
    shape.push_back(n);
    stride.push_back(s);
  }
  if (offset < 0) bad(fmt::format("tensor on storage '{}': negative offset {}", st->s, offset));
  Obj* out = make(Obj::K::Tensor);
  if (numel == 0) {
    out->t = Tensor::empty(shape, st->dtype);
    return out;
  }
  // The last element the view reaches must lie inside the storage.
  __int128 last = offset;
  for (size_t d = 0; d < shape.size(); ++d) last += static_cast<__int128>(shape[d] - 1) * stride[d];
  if (last >= st->numel)
    bad(fmt::format(
        "tensor on storage '{}' (offset {}, size {}, stride {}) reaches element {} "
        "but the storage holds {}",
        st->s, offset, shape_str(shape), shape_str(stride), static_cast<int64_t>(last), st->numel));
  const auto [base, bytes] = storage_bytes(st);
  (void)bytes;
  const size_t es = dtype_size(st->dtype);
  bool contiguous = true;
  int64_t expect = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] != 1 && stride[d] != expect) contiguous = false;
    expect *= shape[d];
  }
  const char* src = base + static_cast<size_t>(offset) * es;
  if (contiguous) {
    auto keep = storages_.at(st->s).data;
    out->t = Tensor::borrow(const_cast<char*>(src), shape, st->dtype, Device::cpu(), keep);
    return out;
  }
  const uint64_t need = static_cast<uint64_t>(numel) * es;
  if (need > copy_budget_)
    bad(fmt::format("strided tensors on storage '{}' expand to more data than the file holds",
                    st->s));
  copy_budget_ -= need;
  out->t = Tensor::empty(shape, st->dtype);
  char* dst = static_cast<char*>(out->t.raw());
  // Odometer over the index space, in row-major order of the output.
  std::vector<int64_t> idx(shape.size(), 0);
  for (int64_t i = 0; i < numel; ++i) {
    int64_t off = 0;
    for (size_t d = 0; d < shape.size(); ++d) off += idx[d] * stride[d];
    std::memcpy(dst + static_cast<size_t>(i) * es, src + static_cast<size_t>(off) * es, es);
    for (size_t d = shape.size(); d-- > 0;) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

Obj* Unpickler::reduce(Obj* callable, Obj* args) {
  if (callable->k != Obj::K::Global)
    bad(fmt::format("REDUCE calls a {} (expected an allowed global)", kind_name(callable->k)));
  if (args->k != Obj::K::Tuple) bad("REDUCE arguments must be a tuple");
  const std::string& g = callable->s;
  const auto& a = args->items;
  if (g == "collections.OrderedDict") {
    if (!a.empty()) bad("OrderedDict() with arguments is not supported");
    return make(Obj::K::Dict);
  }
  if (g == "torch._utils._rebuild_tensor_v2") return rebuild_tensor(a);
  if (g == "torch._utils._rebuild_parameter") {
    // (data, requires_grad, backward_hooks): a Parameter is its data tensor here.
    if (a.size() != 3 || a[0]->k != Obj::K::Tensor)
      bad("_rebuild_parameter expects (tensor, requires_grad, backward_hooks)");
    return a[0];
  }
  if (g == "torch.serialization._get_layout") {
    if (a.size() != 1 || a[0]->k != Obj::K::Str || a[0]->s != "torch.strided")
      bad("only the strided tensor layout is supported");
    Obj* o = make(Obj::K::Global);
    o->s = "torch.strided";
    return o;
  }
  bad(fmt::format("'{}' cannot be called", g));
}

NamedTensors Unpickler::run() {
  for (;;) {
    op_at_ = pos_;
    if (pos_ >= n_) bad("the pickle ends without STOP");
    const unsigned char op = static_cast<unsigned char>(p_[pos_++]);
    switch (op) {
      case 0x80: {  // PROTO
        const uint64_t v = read_le(1);
        if (v < 2 || v > 5) bad(fmt::format("unsupported pickle protocol {}", v));
        break;
      }
      case 0x95:  // FRAME: a length prefix only, the contents follow inline
        read_le(8);
        break;
      case '}':  // EMPTY_DICT
        stack_.push_back(make(Obj::K::Dict));
        break;
      case 'd': {  // DICT
        auto items = pop_mark();
        if (items.size() % 2) bad("DICT with an odd number of items");
        Obj* d = make(Obj::K::Dict);
        for (size_t i = 0; i < items.size(); i += 2) set_item(d, items[i], items[i + 1]);
        stack_.push_back(d);
        break;
      }
      case '(':  // MARK
        marks_.push_back(stack_.size());
        break;
      case 'X':     // BINUNICODE
      case 0x8c:    // SHORT_BINUNICODE
      case 0x8d: {  // BINUNICODE8
        const uint64_t len = read_le(op == 'X' ? 4 : op == 0x8c ? 1 : 8);
        Obj* s = make(Obj::K::Str);
        s->s = read_bytes(len);
        stack_.push_back(s);
        break;
      }
      case 'K':    // BININT1
      case 'M':    // BININT2
      case 'J': {  // BININT
        Obj* o = make(Obj::K::Int);
        if (op == 'J')
          o->i = static_cast<int32_t>(static_cast<uint32_t>(read_le(4)));
        else
          o->i = static_cast<int64_t>(read_le(op == 'K' ? 1 : 2));
        stack_.push_back(o);
        break;
      }
      case 0x8a: {  // LONG1: little-endian two's complement of n bytes
        const uint64_t nb = read_le(1);
        if (nb > 8) bad(fmt::format("LONG1 of {} bytes is too large", nb));
        uint64_t v = nb ? read_le(static_cast<size_t>(nb)) : 0;
        if (nb > 0 && nb < 8 && (v >> (8 * nb - 1)) & 1) v |= ~uint64_t{0} << (8 * nb);
        Obj* o = make(Obj::K::Int);
        o->i = static_cast<int64_t>(v);
        stack_.push_back(o);
        break;
      }
      case ')':  // EMPTY_TUPLE
        stack_.push_back(tuple({}));
        break;
      case 't':  // TUPLE
        stack_.push_back(tuple(pop_mark()));
        break;
      case 0x85:    // TUPLE1
      case 0x86:    // TUPLE2
      case 0x87: {  // TUPLE3
        const size_t k = op - 0x84u;
        std::vector<Obj*> items(k);
        for (size_t i = k; i-- > 0;) items[i] = pop();
        stack_.push_back(tuple(std::move(items)));
        break;
      }
      case 'q':  // BINPUT
        memo_put(read_le(1));
        break;
      case 'r':  // LONG_BINPUT
        memo_put(read_le(4));
        break;
      case 0x94:  // MEMOIZE
        memo_put(memo_.size());
        break;
      case 'h':  // BINGET
        memo_get(read_le(1));
        break;
      case 'j':  // LONG_BINGET
        memo_get(read_le(4));
        break;
      case 'c': {  // GLOBAL
        std::string module = read_line();
        std::string name = read_line();
        stack_.push_back(global(module, name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        Obj* name = pop();
        Obj* module = pop();
        if (name->k != Obj::K::Str || module->k != Obj::K::Str)
          bad("STACK_GLOBAL needs two strings");
        stack_.push_back(global(module->s, name->s));
        break;
      }
      case 'R': {  // REDUCE
        Obj* args = pop();
        Obj* callable = pop();
        stack_.push_back(reduce(callable, args));
        break;
      }
      case 'b': {  // BUILD: only the attribute dict of a state_dict (its _metadata) is expected
        Obj* state = pop();
        Obj* target = pop();
        if (target->k != Obj::K::Dict || (state->k != Obj::K::Dict && state->k != Obj::K::None))
          bad(fmt::format("BUILD of a {} with a {} state is not supported", kind_name(target->k),
                          kind_name(state->k)));
        stack_.push_back(target);
        break;
      }
      case 'Q':  // BINPERSID
        stack_.push_back(persistent(pop()));
        break;
      case 's': {  // SETITEM
        Obj* value = pop();
        Obj* key = pop();
        if (stack_.size() <= floor()) bad("SETITEM without a dict");
        set_item(stack_.back(), key, value);
        break;
      }
      case 'u': {  // SETITEMS
        auto items = pop_mark();
        if (items.size() % 2) bad("SETITEMS with an odd number of items");
        if (stack_.size() <= floor()) bad("SETITEMS without a dict");
        for (size_t i = 0; i < items.size(); i += 2)
          set_item(stack_.back(), items[i], items[i + 1]);
        break;
      }
      case 0x88:    // NEWTRUE
      case 0x89: {  // NEWFALSE
        Obj* o = make(Obj::K::Bool);
        o->i = op == 0x88;
        stack_.push_back(o);
        break;
      }
      case 'N':  // NONE
        stack_.push_back(make(Obj::K::None));
        break;
      case '.': {  // STOP
        Obj* root = pop();
        if (root->k != Obj::K::Dict)
          bad(fmt::format("the pickle holds a {}, expected a state_dict (a dict of tensors)",
                          kind_name(root->k)));
        NamedTensors out;
        out.reserve(root->dict.size());
        for (const auto& [k, v] : root->dict) {
          if (k->k != Obj::K::Str)
            bad(fmt::format("state_dict key is a {}, expected a string", kind_name(k->k)));
          if (v->k != Obj::K::Tensor)
            bad(fmt::format("state_dict entry '{}' is a {}, expected a tensor", k->s,
                            kind_name(v->k)));
          out.emplace_back(k->s, v->t);
        }
        return out;
      }
      default:
        bad(fmt::format("unsupported pickle opcode 0x{:02x}{}", op,
                        op >= 0x20 && op < 0x7f ? fmt::format(" ('{}')", static_cast<char>(op))
                                                : std::string()));
    }
  }
}

NamedTensors read_archive(const void* data, size_t size, const std::string& where) {
  ZipReader zip(data, size, where);
  std::string pkl;
  for (const std::string& name : zip.names()) {
    const std::string tail = "/data.pkl";
    if (name.size() <= tail.size() || name.compare(name.size() - tail.size(), tail.size(), tail))
      continue;
    if (name.find('/') != name.size() - tail.size()) continue;  // only <top>/data.pkl
    if (!pkl.empty())
      fail("{}: the archive holds several checkpoints ('{}' and '{}')", where, pkl, name);
    pkl = name;
  }
  if (pkl.empty()) fail("{}: no <top>/data.pkl in the archive: not a torch.save checkpoint", where);
  const std::string top = pkl.substr(0, pkl.size() - 9);
  const std::string bo = top + "/byteorder";
  if (zip.has(bo)) {
    size_t n = 0;
    auto b = zip.read(bo, &n);
    std::string order(b.get(), n);
    while (!order.empty() && (order.back() == '\n' || order.back() == '\r')) order.pop_back();
    if (order != "little")
      fail("{}: byteorder is '{}', only little-endian checkpoints are supported", where,
           order.size() > 20 ? order.substr(0, 20) + "..." : order);
  }
  size_t n = 0;
  auto bytes = zip.read(pkl, &n);
  Unpickler u(zip, top, bytes.get(), n, static_cast<uint64_t>(size) * 4 + (uint64_t{16} << 20));
  return u.run();
}

}  // namespace

bool looks_like_zip(const void* data, size_t size) {
  if (size < 4) return false;
  const auto* b = static_cast<const unsigned char*>(data);
  return b[0] == 'P' && b[1] == 'K' &&
         ((b[2] == 3 && b[3] == 4) || (b[2] == 5 && b[3] == 6) || (b[2] == 7 && b[3] == 8));
}

NamedTensors read_torch_state_dict(const std::string& path) {
  MappedFile f(path);
  return read_archive(f.data(), f.size(), path);
}

NamedTensors read_torch_state_dict_memory(const void* data, size_t size, const std::string& where) {
  return read_archive(data, size, where);
}

}  // namespace stepaudio
