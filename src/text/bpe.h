// Byte-level BPE model: the vocabulary (token bytes <-> id) and the merge ranks. Tokens are held
// as raw bytes (the GPT-2 byte alphabet is undone at load time), so encoding a word is: one symbol
// per byte, then repeatedly merge the adjacent pair with the lowest rank, leftmost first.
#pragma once
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace stepaudio::text {

class Bpe {
 public:
  // vocab: (token bytes, id); merges: pairs of token bytes in rank order. `where` names the
  // source in error messages (file and field). Throws Error on duplicate ids or tokens, a byte
  // without a single-byte token, or a merge whose parts or result are not in the vocabulary.
  Bpe(std::vector<std::pair<std::string, int32_t>> vocab,
      const std::vector<std::pair<std::string, std::string>>& merges, const std::string& where,
      bool ignore_merges = false);

  // Appends the ids of one pre-tokenized word (raw bytes).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  // Bytes of token `id`, or nullptr if the model has no such id.
  const std::string* token_bytes(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= id_to_bytes_.size() || !has_id_[id]) return nullptr;
    return &id_to_bytes_[id];
  }
  int32_t token_id(std::string_view bytes) const;  // -1 if absent
  size_t size() const { return vocab_.size(); }
  size_t num_merges() const { return merges_.size(); }
  int32_t max_id() const { return static_cast<int32_t>(id_to_bytes_.size()) - 1; }

 private:
  struct Merge {
    int32_t rank, result;
  };
  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void merge_symbols(std::string_view word, std::vector<int32_t>& out) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_bytes_;
  std::vector<bool> has_id_;
  std::unordered_map<uint64_t, Merge> merges_;
  int32_t byte_ids_[256];
  bool ignore_merges_;

  // Words repeat a lot in real text; their ids are cached (bounded, like the HF tokenizer's).
  static constexpr size_t kCacheCapacity = 20000;
  static constexpr size_t kCacheMaxWordBytes = 256;
  mutable std::mutex cache_mu_;
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace stepaudio::text
