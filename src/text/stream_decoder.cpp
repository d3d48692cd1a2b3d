#include "text/stream_decoder.h"

#include "text/utf8.h"

namespace stepaudio::text {

std::string StreamDecoder::push(int32_t id) {
  const std::string& bytes = tok_->token_bytes(id);  // throws before any state changes
  if (skip_special_ && tok_->is_special(id)) return {};
  pending_ += bytes;
  // Everything before a trailing, still-completable sequence is final: the lossy decoding of a
  // prefix never changes when more bytes follow, except inside such a trailing sequence.
  const size_t hold = utf8_incomplete_tail(pending_);
  std::string out = utf8_lossy(std::string_view(pending_).substr(0, pending_.size() - hold));
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StreamDecoder::push(std::span<const int32_t> ids) {
  for (int32_t id : ids) tok_->token_bytes(id);  // all or nothing: check every id first
  std::string out;
  for (int32_t id : ids) out += push(id);
  return out;
}

std::string StreamDecoder::finish() {
  std::string out = utf8_lossy(pending_);
  pending_.clear();
  return out;
}

}  // namespace stepaudio::text
