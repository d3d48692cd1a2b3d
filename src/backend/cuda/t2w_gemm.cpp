#include "backend/cuda/t2w_gemm.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <map>
#include <tuple>

#include "backend/cuda/blas.h"
#include "backend/cuda/check.h"
#include "backend/cuda/kernels_cuda.h"

namespace stepaudio::cuda {

namespace {

constexpr size_t kWorkspace = size_t{8} << 20;

// The largest power of two (<= 16) dividing the address: cuBLASLt's heuristic must not pick a
// kernel that assumes more alignment than a view into a tensor has.
uint32_t alignment_of(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  uint32_t al = 16;
  while (al > 4 && a % al) al /= 2;
  return al;
}

// One shape's descriptors and chosen algorithm (bias pointer set per call).
struct Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool ok = false;  // false: no algorithm, use the cublasGemmEx fallback
};

// Per thread (cuBLASLt descriptors are not shared between threads) and per device: the handle,
// its workspace and the plans by shape.
struct LtState {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  std::map<std::tuple<int64_t, int64_t, int64_t, bool, uint32_t>, Plan> plans;
  ~LtState() {
    // At thread exit the runtime may already be gone: errors are ignored.
    for (auto& [key, p] : plans) {
      if (p.op) cublasLtMatmulDescDestroy(p.op);
      for (auto l : {p.a, p.b, p.c})
        if (l) cublasLtMatrixLayoutDestroy(l);
    }
    if (handle) cublasLtDestroy(handle);
    if (workspace) cudaFree(workspace);
  }
};

LtState& lt_state() {
  thread_local std::map<int, LtState> by_device;
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  LtState& s = by_device[dev];
  if (!s.handle) {
    CUBLAS_CHECK(cublasLtCreate(&s.handle));
    // Allocated once, outside any capture: the products may then be captured in a graph.
    CUDA_CHECK(cudaMalloc(&s.workspace, kWorkspace));
  }
  return s;
}

template <typename T>
void set_op(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, const T& v) {
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d, attr, &v, sizeof(v)));
}

// Column-major view: y^T (N x M) = op_T(W as K x N) * (x^T as K x M), bias along y^T's rows (N).
Plan make_plan(LtState& s, int64_t M, int64_t K, int64_t N, bool bias, uint32_t align) {
  Plan p;
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F_FAST_TF32, CUDA_R_32F));
  set_op(p.op, CUBLASLT_MATMUL_DESC_TRANSA, CUBLAS_OP_T);
  set_op(p.op, CUBLASLT_MATMUL_DESC_TRANSB, CUBLAS_OP_N);
  set_op(p.op, CUBLASLT_MATMUL_DESC_EPILOGUE,
         bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);
  if (bias) set_op(p.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, CUDA_R_32F);
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_32F, static_cast<uint64_t>(K),
                                          static_cast<uint64_t>(N), K));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_32F, static_cast<uint64_t>(K),
                                          static_cast<uint64_t>(M), K));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.c, CUDA_R_32F, static_cast<uint64_t>(N),
                                          static_cast<uint64_t>(M), N));
  cublasLtMatmulPreference_t pref = nullptr;
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t ws = kWorkspace;
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                    &ws, sizeof(ws)));
  for (auto attr :
       {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &align, sizeof(align)));
  cublasLtMatmulHeuristicResult_t r{};
  int found = 0;
  const cublasStatus_t st =
      cublasLtMatmulAlgoGetHeuristic(s.handle, p.op, p.a, p.b, p.c, p.c, pref, 1, &r, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  p.ok = st == CUBLAS_STATUS_SUCCESS && found > 0 && r.state == CUBLAS_STATUS_SUCCESS;
  if (p.ok) p.algo = r.algo;
  return p;
}

}  // namespace

void gemm_tf32_bias(const float* x, int64_t M, int64_t K, const float* w, int64_t N,
                    const float* bias, float* y, const char* op) {
  if (M == 0 || N == 0) return;
  if (M > INT_MAX || N > INT_MAX || K > INT_MAX)
    fail("{}: product [{}, {}] x [{}, {}]^T is too large for cuBLAS", op, M, K, N, K);
  const float one = 1.0f, zero = 0.0f;
  if (K > 0) {
    LtState& s = lt_state();
    uint32_t align = std::min({alignment_of(x), alignment_of(w), alignment_of(y)});
    // The leading dimensions move every column's start: an odd K or N breaks 8/16-byte alignment.
    while (align > 4 && ((K * 4) % align || (N * 4) % align)) align /= 2;
    const auto key = std::make_tuple(M, K, N, bias != nullptr, align);
    auto it = s.plans.find(key);
    if (it == s.plans.end()) it = s.plans.emplace(key, make_plan(s, M, K, N, bias, align)).first;
    Plan& p = it->second;
    // The epilogue may load the bias in 16-byte vectors: a bias view at another offset goes the
    // plain way.
    if (p.ok && (!bias || alignment_of(bias) == 16)) {
      if (bias) set_op(p.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, static_cast<const void*>(bias));
      CUBLAS_CHECK(cublasLtMatmul(s.handle, p.op, &one, w, p.a, x, p.b, &zero, y, p.c, y, p.c,
                                  &p.algo, s.workspace, kWorkspace, cudaStreamPerThread));
      return;
    }
  }
  // No cuBLASLt algorithm (or K = 0): the plain TF32 GEMM, then the bias kernel.
  CUBLAS_CHECK(cublasGemmEx(
      blas_handle(), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(N), static_cast<int>(M),
      static_cast<int>(K), &one, w, CUDA_R_32F, static_cast<int>(K > 0 ? K : 1), x, CUDA_R_32F,
      static_cast<int>(K > 0 ? K : 1), &zero, y, CUDA_R_32F, static_cast<int>(N),
      CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT));
  if (bias) launch_add_bias(y, M, N, bias, Elem::F32);
}

void gemm_tf32_acc_batched(const float* x, int64_t M, int64_t K, int64_t sx, const float* w,
                           int64_t N, float* y, int64_t sy, int64_t batch, const char* op) {
  if (M <= 0 || N <= 0 || K <= 0 || batch <= 0) return;
  if (M > INT_MAX || N > INT_MAX || K > INT_MAX || batch > INT_MAX)
    fail("{}: product {} x [{}, {}] x [{}, {}]^T is too large for cuBLAS", op, batch, M, K, N, K);
  const float one = 1.0f;
  // Column-major: y_b^T [N, M] = (w as K x N)^T (x_b^T as K x M), beta = 1.
  CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      blas_handle(), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(N), static_cast<int>(M),
      static_cast<int>(K), &one, w, CUDA_R_32F, static_cast<int>(K), 0, x, CUDA_R_32F,
      static_cast<int>(K), sx, &one, y, CUDA_R_32F, static_cast<int>(N), sy,
      static_cast<int>(batch), CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT));
}

}  // namespace stepaudio::cuda
