// The token2wav weights (flow.pt / hift.pt, or a .safetensors copy of either) as a name -> F32 CPU
// tensor map, in the form the model code wants: a leading "generator." is stripped from every
// name, and weight-norm pairs (g, v) are folded into one plain "X.weight" = g * v / ||v|| (norm
// over every axis but axis 0), so the model code never sees parametrisations.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "model/weights.h"

namespace stepaudio {

class T2wWeights {
 public:
  // A .safetensors file (by its extension), else a torch.save zip (.pt, .pth, .bin, ...). Throws
  // Error naming the file and the tensor on any problem: unreadable or malformed file, a
  // weight-norm half without its partner, a name given twice, a g whose shape does not fit its v,
  // non-float tensors where floats are needed.
  static T2wWeights load(const std::string& path);

  bool has(const std::string& name) const;
  Tensor get(const std::string& name) const;  // undefined Tensor when absent
  // For expect_weight; this object must outlive the function.
  WeightFn fn() const;
  const std::map<std::string, Tensor>& all() const { return tensors_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::map<std::string, Tensor> tensors_;
};

// The folding step on its own (used by load): strips "generator.", folds both weight-norm
// namings, converts floating tensors to F32 (integer tensors are kept as they are). `where` names
// the source in errors.
std::map<std::string, Tensor> fold_t2w_weights(std::vector<std::pair<std::string, Tensor>> raw,
                                               const std::string& where);

}  // namespace stepaudio
