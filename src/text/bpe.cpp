#include "text/bpe.h"

#include <queue>

#include "core/error.h"

namespace stepaudio::text {

Bpe::Bpe(std::vector<std::pair<std::string, int32_t>> vocab,
         const std::vector<std::pair<std::string, std::string>>& merges, const std::string& where,
         bool ignore_merges)
    : ignore_merges_(ignore_merges) {
  int32_t max_id = -1;
  for (const auto& [tok, id] : vocab) {
    if (id < 0) fail("{}: token {:?} has negative id {}", where, tok, id);
    max_id = std::max(max_id, id);
  }
  if (max_id >= (1 << 24)) fail("{}: token id {} is implausibly large", where, max_id);
  id_to_bytes_.resize(static_cast<size_t>(max_id + 1));
  has_id_.assign(static_cast<size_t>(max_id + 1), false);
  vocab_.reserve(vocab.size());
  for (auto& [tok, id] : vocab) {
    if (has_id_[id])
      fail("{}: id {} is used by two tokens ({:?} and {:?})", where, id, id_to_bytes_[id], tok);
    has_id_[id] = true;
    id_to_bytes_[id] = tok;
    if (!vocab_.emplace(std::move(tok), id).second)
      fail("{}: token {:?} appears twice", where, id_to_bytes_[id]);
  }
  for (int b = 0; b < 256; ++b) {
    const auto it = vocab_.find(std::string(1, static_cast<char>(b)));
    if (it == vocab_.end())
      fail("{}: byte 0x{:02X} has no single-byte token; a byte-level vocabulary needs all 256",
           where, b);
    byte_ids_[b] = it->second;
  }
  merges_.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); ++r) {
    const auto& [a, b] = merges[r];
    const auto ia = vocab_.find(a), ib = vocab_.find(b), ic = vocab_.find(a + b);
    if (ia == vocab_.end() || ib == vocab_.end() || ic == vocab_.end())
      fail("{}: merge {} ({:?} + {:?}): {} is not in the vocabulary", where, r + 1, a, b,
           ia == vocab_.end()   ? "the first part"
           : ib == vocab_.end() ? "the second part"
                                : "the merged token");
    // A repeated pair keeps its first (lowest) rank.
    merges_.emplace(key(ia->second, ib->second), Merge{static_cast<int32_t>(r), ic->second});
  }
}

int32_t Bpe::token_id(std::string_view bytes) const {
  const auto it = vocab_.find(std::string(bytes));
  return it == vocab_.end() ? -1 : it->second;
}

void Bpe::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (word.size() == 1) {
    out.push_back(byte_ids_[static_cast<uint8_t>(word[0])]);
    return;
  }
  if (ignore_merges_) {
    const int32_t id = token_id(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  const bool cacheable = word.size() <= kCacheMaxWordBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    const auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t start = out.size();
  merge_symbols(word, out);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() < kCacheCapacity)
      cache_.emplace(std::string(word), std::vector<int32_t>(out.begin() + start, out.end()));
  }
}

void Bpe::merge_symbols(std::string_view word, std::vector<int32_t>& out) const {
  // Symbols form a doubly linked list over the word's bytes; candidate merges wait in a heap
  // ordered by (rank, position). A popped candidate is stale when either symbol has changed since
  // it was pushed, which the stored ids detect.
  const int n = static_cast<int>(word.size());
  std::vector<int32_t> id(n);
  std::vector<int> prev(n), next(n);
  for (int i = 0; i < n; ++i) {
    id[i] = byte_ids_[static_cast<uint8_t>(word[i])];
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Cand {
    int32_t rank;
    int pos;
    int32_t left, right, result;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  const auto push = [&](int i) {
    const int j = next[i];
    if (i < 0 || j < 0) return;
    const auto it = merges_.find(key(id[i], id[j]));
    if (it != merges_.end()) heap.push({it->second.rank, i, id[i], id[j], it->second.result});
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    const int i = c.pos;
    if (id[i] != c.left) continue;  // i was merged away (id -1) or grew
    const int j = next[i];
    if (j < 0 || id[j] != c.right) continue;
    id[i] = c.result;
    id[j] = -1;
    next[i] = next[j];
    if (next[j] >= 0) prev[next[j]] = i;
    if (prev[i] >= 0) push(prev[i]);
    push(i);
  }
  for (int i = 0; i >= 0; i = next[i]) out.push_back(id[i]);
}

}  // namespace stepaudio::text
