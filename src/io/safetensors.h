// safetensors: an 8-byte little-endian header length, a JSON header {name: {dtype, shape,
// data_offsets}, "__metadata__": {...}}, then the raw little-endian tensor bytes.
// Reading memory-maps the file: tensors borrow the mapping and keep it alive, nothing is copied.
// Every inconsistency (short file, bad JSON, offsets out of range or overlapping, shape/size
// mismatch, unknown dtype) is an Error that names the file and the tensor.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace stepaudio {

class MappedFile;  // read-only mmap, RAII

struct TensorInfo {
  DType dtype;
  Shape shape;
  size_t begin = 0, end = 0;  // byte offsets into the data section
};

class SafetensorsFile {
 public:
  // Throws Error naming `path` on any problem.
  static SafetensorsFile open(const std::string& path);
  // The same from bytes in memory (a copy is kept); `where` names them in errors.
  static SafetensorsFile open_memory(std::string bytes, const std::string& where);
  // Parses a header from memory (used by open() and by the fuzzer). `data_size` is the number
  // of bytes available after the header; offsets must fit in it.
  static std::map<std::string, TensorInfo> parse_header(const char* json, size_t json_len,
                                                        size_t data_size, const std::string& where,
                                                        std::map<std::string, std::string>* meta);

  const std::string& path() const { return path_; }
  const std::map<std::string, TensorInfo>& tensors() const { return infos_; }
  const std::map<std::string, std::string>& metadata() const { return meta_; }
  bool has(const std::string& name) const { return infos_.count(name) != 0; }
  // A CPU tensor borrowing the mapping. Throws Error naming the file when absent.
  Tensor get(const std::string& name) const;

 private:
  static SafetensorsFile from_bytes(std::shared_ptr<void> keep, const char* bytes, size_t size,
                                    const std::string& where);
  std::string path_;
  std::shared_ptr<void> keep_;  // the mapping (or buffer) the tensors borrow
  const char* data_ = nullptr;
  std::map<std::string, TensorInfo> infos_;
  std::map<std::string, std::string> meta_;
};

// Writes tensors (any device; copied to the host) in name order. The file is written to a
// temporary name beside `path` and renamed into place, so a failure never leaves a partial file.
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace stepaudio
