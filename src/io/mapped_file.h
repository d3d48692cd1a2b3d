#pragma once
#include <cstddef>
#include <string>

namespace stepaudio {

// A read-only memory mapping of a whole file. Throws Error naming the path when the file is
// missing, a directory, unreadable or cannot be mapped. Empty files map to size 0.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const char* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace stepaudio
