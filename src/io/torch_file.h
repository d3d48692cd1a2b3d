// Reader for PyTorch's torch.save zip checkpoints holding a state_dict (flow.pt, hift.pt).
// The archive is `<top>/data.pkl` (a pickle of a dict of tensors), `<top>/data/<key>` (the raw
// little-endian storages) and `<top>/byteorder`; <top> is whatever the writer chose.
// The pickle is interpreted by a small virtual machine that knows only the opcodes and globals a
// state_dict uses (collections.OrderedDict, torch._utils._rebuild_tensor_v2, the torch.*Storage
// classes, ...): nothing in the file is ever executed, and anything else is an Error naming the
// file and the opcode or global. Tensors are CPU, contiguous, in the stored dtype (F32, F16, BF16,
// F64, I64, I32, I16, I8, U8, BOOL); several tensors may view one storage.
#pragma once
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace stepaudio {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// The (name, tensor) pairs in file order. Throws Error naming `path` when the file is missing,
// not a zip, has no (or several) data.pkl, a truncated or inconsistent storage, a shape/stride
// reaching outside its storage, a big-endian byteorder, an unsupported opcode or global, or a
// top-level object that is not a dict of string -> tensor.
NamedTensors read_torch_state_dict(const std::string& path);

// The same from bytes in memory (for the fuzzer and tests); `where` names them in messages.
NamedTensors read_torch_state_dict_memory(const void* data, size_t size, const std::string& where);

// True when the bytes start like a zip archive (local file header or empty-archive record).
bool looks_like_zip(const void* data, size_t size);

}  // namespace stepaudio
