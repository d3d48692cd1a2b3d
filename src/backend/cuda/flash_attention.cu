// Flash attention on bf16 tensor cores (mma.sync m16n8k16, fp32 accumulation) for many queries:
// the encoder's bidirectional attention with its key bias and the LLM's causal prefill (GQA,
// q_offset). A block of 4 warps takes 64 queries of one (batch, head); each warp owns 16 query
// rows and keeps S, the running max / sum and O in registers (online softmax in the exp2
// domain). K/V tiles of 64 keys stream through shared memory with cp.async, two stages deep, so
// the next tile is in flight while the current one is multiplied. Rows are padded by 16 bytes so
// ldmatrix reads hit distinct banks.
#include <cmath>

#include "backend/cuda/common_cuda.cuh"
#include "backend/cuda/mma_bf16.cuh"

namespace stepaudio::cuda {

namespace {

using namespace mma;

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kBr = 16 * kWarps;  // queries per block
constexpr int kBc = 64;           // keys per tile
constexpr float kLog2e = 1.4426950408889634f;

// Copies `rows` rows of D bf16 (row r at src + r * src_stride elements) into a padded tile;
// rows at or past `valid_rows` become zeros.
template <int D>
__device__ __forceinline__ void load_tile(__nv_bfloat16* dst, const __nv_bfloat16* src,
                                          int64_t src_stride, int valid_rows) {
  constexpr int kChunks = D / 8;  // 16-byte pieces per row
  constexpr int kStride = D + 8;
  for (int i = threadIdx.x; i < kBc * kChunks; i += kThreads) {
    const int r = i / kChunks, c = i % kChunks;
    const bool ok = r < valid_rows;
    const __nv_bfloat16* s = ok ? src + r * src_stride + c * 8 : src;
    cp_async16(dst + r * kStride + c * 8, s, ok);
  }
}

// Blocks resident per SM: at head_dim 64, 4 (registers capped at 128) so that the encoder's
// 20 heads x 20 query tiles run in one wave on 132 SMs instead of 3 per SM plus a tail.
template <int D>
constexpr int kMinBlocks = D <= 64 ? 4 : 2;

template <int D>
__global__ void __launch_bounds__(kThreads, kMinBlocks<D>)
    flash_attention_kernel(FlashAttentionArgs a) {
  constexpr int kStride = D + 8;  // padded smem row, in elements
  constexpr int kTile = kBc * kStride;
  constexpr int kDk = D / 16;  // k-steps of Q K^T
  constexpr int kDn = D / 8;   // n-tiles of O
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __nv_bfloat16* qs = reinterpret_cast<__nv_bfloat16*>(smem_raw);
  __nv_bfloat16* ks = qs + kBr * kStride;                    // [2][kBc][kStride]
  __nv_bfloat16* vs = ks + 2 * kTile;                        // [2][kBc][kStride]
  float* bias_s = reinterpret_cast<float*>(vs + 2 * kTile);  // [2][kBc]

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, t4 = lane & 3;
  // Causal blocks with more keys go first (they are the long ones).
  const int64_t q_tiles = gridDim.x;
  const int64_t qt = a.causal ? q_tiles - 1 - blockIdx.x : blockIdx.x;
  const int64_t q0 = qt * kBr;
  const int64_t h = blockIdx.y, b = blockIdx.z, hk = h / (a.H / a.Hkv);
  const int64_t q_stride = a.H * D, kv_stride = a.Hkv * D;
  const __nv_bfloat16* qg =
      static_cast<const __nv_bfloat16*>(a.q) + ((b * a.Lq + q0) * a.H + h) * D;
  const __nv_bfloat16* kg = static_cast<const __nv_bfloat16*>(a.k) + (b * a.Lk * a.Hkv + hk) * D;
  const __nv_bfloat16* vg = static_cast<const __nv_bfloat16*>(a.v) + (b * a.Lk * a.Hkv + hk) * D;
  const float* bias_g = a.bias ? a.bias + b * a.Lk : nullptr;

  int64_t k_end = a.Lk;
  if (a.causal) k_end = min(k_end, a.q_offset + min(q0 + kBr, a.Lq));
  const int n_tiles = static_cast<int>((k_end + kBc - 1) / kBc);

  auto issue_tile = [&](int j) {
    const int64_t t0 = int64_t{j} * kBc;
    const int valid = static_cast<int>(min(int64_t{kBc}, k_end - t0));
    const int st = j & 1;
    load_tile<D>(ks + st * kTile, kg + t0 * kv_stride, kv_stride, valid);
    load_tile<D>(vs + st * kTile, vg + t0 * kv_stride, kv_stride, valid);
    if (threadIdx.x < kBc) {
      const int64_t key = t0 + threadIdx.x;
      // Keys past the end get -inf through the mask below; the value here is never used.
      bias_s[st * kBc + threadIdx.x] = (bias_g && key < k_end) ? bias_g[key] * kLog2e : 0.0f;
    }
    cp_async_commit();
  };

  load_tile<D>(qs, qg, q_stride, static_cast<int>(min(int64_t{kBr}, a.Lq - q0)));
  if (n_tiles > 0) issue_tile(0);

  uint32_t qf[kDk][4];
  float o[kDn][4];
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
#pragma unroll
  for (int i = 0; i < kDn; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;

  const float sl2 = a.scale * kLog2e;
  const int64_t row0 = q0 + warp * 16 + g;                  // this thread's rows: row0 and row0 + 8
  const int64_t vis0 = a.q_offset + row0, vis1 = vis0 + 8;  // last visible key (causal)

  if (n_tiles == 0) cp_async_wait_all();  // only Q was loaded; nothing reads it
  for (int j = 0; j < n_tiles; ++j) {
    cp_async_wait_all();
    __syncthreads();  // tile j (and Q) landed for all; stage (j + 1) & 1 is no longer read
    if (j == 0) {
#pragma unroll
      for (int kk = 0; kk < kDk; ++kk) {
        const int r = warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
        ldmatrix_x4(qf[kk], qs + r * kStride + kk * 16 + (lane >> 4) * 8);
      }
    }
    if (j + 1 < n_tiles) issue_tile(j + 1);
    const int st = j & 1;
    const __nv_bfloat16* kt = ks + st * kTile;
    const __nv_bfloat16* vt = vs + st * kTile;
    const int64_t t0 = int64_t{j} * kBc;

    // S = Q K^T for this warp's 16 rows and the tile's 64 keys.
    float s[kBc / 8][4];
#pragma unroll
    for (int n = 0; n < kBc / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kDk; ++kk) {
#pragma unroll
      for (int np = 0; np < kBc / 16; ++np) {
        uint32_t bf[4];
        const int key = np * 16 + (lane & 7) + (lane >> 4) * 8;
        ldmatrix_x4(bf, kt + key * kStride + kk * 16 + ((lane >> 3) & 1) * 8);
        mma_bf16(s[2 * np], qf[kk], bf[0], bf[1]);
        mma_bf16(s[2 * np + 1], qf[kk], bf[2], bf[3]);
      }
    }

    // Scale, bias, mask; the row max over the quad that shares a row.
    const bool edge = t0 + kBc > k_end || (a.causal && t0 + kBc - 1 > vis0);
    float mx[2] = {m[0], m[1]};
#pragma unroll
    for (int n = 0; n < kBc / 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int col = n * 8 + 2 * t4 + (e & 1);
        float v = s[n][e] * sl2 + bias_s[st * kBc + col];
        if (edge) {
          const int64_t key = t0 + col;
          const bool ok = key < k_end && (!a.causal || key <= (e < 2 ? vis0 : vis1));
          v = ok ? v : -INFINITY;
        }
        s[n][e] = v;
        mx[e >> 1] = fmaxf(mx[e >> 1], v);
      }
    }
    float corr[2], mu[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      mu[r] = mx[r] == -INFINITY ? 0.0f : mx[r];  // a row with nothing visible yet
      corr[r] = exp2f(m[r] - mu[r]);
      m[r] = mx[r];
      l[r] *= corr[r];
    }
#pragma unroll
    for (int i = 0; i < kDn; ++i) {
      o[i][0] *= corr[0];
      o[i][1] *= corr[0];
      o[i][2] *= corr[1];
      o[i][3] *= corr[1];
    }

    // P = exp2(S - m) in bf16 as the A operand of P V (the accumulator layout of two adjacent
    // n-tiles is the A layout of one k-step); the row sums use the rounded values.
#pragma unroll
    for (int kk = 0; kk < kBc / 16; ++kk) {
      uint32_t pf[4];
      exp2_a_fragment(s[2 * kk], s[2 * kk + 1], mu, l, pf);
      pv_mma<D, kStride>(o, pf, vt, kk * 16, lane);
    }
  }

  // The quad's partial row sums, then O / l.
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
  }
  const float inv[2] = {l[0] > 0 ? 1.0f / l[0] : 0.0f, l[1] > 0 ? 1.0f / l[1] : 0.0f};
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t row = row0 + 8 * r;
    if (row >= a.Lq) continue;
    const int64_t off = ((b * a.Lq + row) * a.H + h) * D;
    if (a.out_bf16) {
      __nv_bfloat16* orow = static_cast<__nv_bfloat16*>(a.out) + off;
#pragma unroll
      for (int i = 0; i < kDn; ++i)
        *reinterpret_cast<__nv_bfloat162*>(orow + i * 8 + 2 * t4) =
            __floats2bfloat162_rn(o[i][2 * r] * inv[r], o[i][2 * r + 1] * inv[r]);
    } else {
      float* orow = static_cast<float*>(a.out) + off;
#pragma unroll
      for (int i = 0; i < kDn; ++i)
        *reinterpret_cast<float2*>(orow + i * 8 + 2 * t4) =
            make_float2(o[i][2 * r] * inv[r], o[i][2 * r + 1] * inv[r]);
    }
  }
}

template <int D>
void launch(const FlashAttentionArgs& a) {
  constexpr int kStride = D + 8;
  const size_t smem = sizeof(__nv_bfloat16) * (kBr + 4 * kBc) * kStride + sizeof(float) * 2 * kBc;
  // Over 48 KB of dynamic shared memory needs the opt-in (per device, so set on every launch).
  cudaFuncSetAttribute(flash_attention_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                       static_cast<int>(smem));
  const dim3 grid(static_cast<unsigned>((a.Lq + kBr - 1) / kBr), static_cast<unsigned>(a.H),
                  static_cast<unsigned>(a.B));
  flash_attention_kernel<D><<<grid, kThreads, smem>>>(a);
}

}  // namespace

bool flash_attention_supports(int64_t head_dim) { return head_dim == 64 || head_dim == 128; }

void launch_flash_attention(const FlashAttentionArgs& a) {
  if (a.D == 64)
    launch<64>(a);
  else
    launch<128>(a);
  check_launch("flash_attention");
}

}  // namespace stepaudio::cuda
