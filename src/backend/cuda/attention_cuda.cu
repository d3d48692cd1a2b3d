// Softmax attention with grouped KV heads, fp32 throughout, online softmax over key tiles.
// A block takes one (batch, KV head) and 16 "rows", a row being one (query, head of that KV
// group) pair, so the G heads that share a KV head share every K/V tile it loads (GQA); a tile
// of 32 keys sits in shared memory, one key per lane for the scores, the head dims split over
// the lanes for P.V. Long key ranges are split over blocks (split-K, as in flash-decoding) when
// the grid would otherwise be too small to fill the GPU (decode), and a second kernel merges the
// partial softmaxes. Causal masks skip whole tiles past a row block's last visible key.
#include <cmath>

#include "backend/cuda/common_cuda.cuh"

namespace stepaudio::cuda {

namespace {

constexpr int kRows = kAttentionRowTile;
constexpr int kKeys = kAttentionKeyTile;
constexpr int kWarps = 4;
constexpr int kRowsPerWarp = kRows / kWarps;
using Args = AttentionArgs;

// DC = head-dim slots per lane (D <= 32 * DC).
template <int DC>
__global__ void __launch_bounds__(kWarps * 32) attention_kernel(Args a) {
  extern __shared__ float smem[];
  const int64_t D = a.D, G = a.H / a.Hkv;
  float* qs = smem;                  // [kRows][D]
  float* ks = qs + kRows * D;        // [kKeys][D + 1] (padded: lane j reads row j)
  float* vs = ks + kKeys * (D + 1);  // [kKeys][D]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t b = blockIdx.y / a.Hkv, g = blockIdx.y % a.Hkv;
  const int64_t rows_total = a.Lq * G, r0 = int64_t{blockIdx.x} * kRows;
  const int64_t split = blockIdx.z;
  const int64_t k_begin = split * a.keys_per_split;
  int64_t k_end = min(a.Lk, k_begin + a.keys_per_split);
  if (a.causal) {
    const int64_t last_q = min(rows_total, r0 + kRows) - 1;
    k_end = min(k_end, a.q_offset + last_q / G + 1);
  }

  for (int64_t i = threadIdx.x; i < kRows * D; i += blockDim.x) {
    const int64_t row = r0 + i / D, d = i % D;
    float val = 0;
    if (row < rows_total) {
      const int64_t qi = row / G, h = g * G + row % G;
      val = a.q[((b * a.Lq + qi) * a.H + h) * D + d];
    }
    qs[i] = val;
  }

  float m[kRowsPerWarp], l[kRowsPerWarp], o[kRowsPerWarp][DC];
#pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    m[rr] = -INFINITY;
    l[rr] = 0;
#pragma unroll
    for (int c = 0; c < DC; ++c) o[rr][c] = 0;
  }

  for (int64_t t0 = k_begin; t0 < k_end; t0 += kKeys) {
    __syncthreads();  // the previous tile is no longer read (and qs is written, first time)
    for (int64_t i = threadIdx.x; i < kKeys * D; i += blockDim.x) {
      const int64_t j = i / D, d = i % D, key = t0 + j;
      float kv = 0, vv = 0;
      if (key < k_end) {
        const int64_t off = ((b * a.Lk + key) * a.Hkv + g) * D + d;
        kv = a.k[off];
        vv = a.v[off];
      }
      ks[j * (D + 1) + d] = kv;
      vs[j * D + d] = vv;
    }
    __syncthreads();
    const int64_t key = t0 + lane;
    const float kb = (a.bias && key < k_end) ? a.bias[b * a.Lk + key] : 0.0f;
#pragma unroll
    for (int rr = 0; rr < kRowsPerWarp; ++rr) {
      const int64_t row = r0 + warp + rr * kWarps;
      if (row >= rows_total) continue;  // warp-uniform
      const int64_t qi = row / G;
      const bool valid = key < k_end && (!a.causal || key <= a.q_offset + qi);
      const float* qr = qs + (warp + rr * kWarps) * D;
      const float* kr = ks + lane * (D + 1);
      float s = 0;
      for (int64_t d = 0; d < D; ++d) s = fmaf(qr[d], kr[d], s);
      s = valid ? s * a.scale + kb : -INFINITY;
      const float m_new = fmaxf(m[rr], warp_max(s));
      if (m_new == -INFINITY) continue;  // nothing visible yet for this row (warp-uniform)
      const float p = valid ? expf(s - m_new) : 0.0f;
      const float corr = expf(m[rr] - m_new);  // 0 when m was -inf
      l[rr] = l[rr] * corr + warp_sum(p);
      m[rr] = m_new;
#pragma unroll
      for (int c = 0; c < DC; ++c) o[rr][c] *= corr;
      for (int j = 0; j < kKeys; ++j) {
        const float pj = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
        for (int c = 0; c < DC; ++c) {
          const int64_t d = lane + 32 * c;
          if (d < D) o[rr][c] = fmaf(pj, vs[j * D + d], o[rr][c]);
        }
      }
    }
  }

#pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    const int64_t row = r0 + warp + rr * kWarps;
    if (row >= rows_total) continue;
    const int64_t qi = row / G, h = g * G + row % G;
    const int64_t orow = (b * a.Lq + qi) * a.H + h;
    if (!a.part_o) {
      const float inv = l[rr] > 0 ? 1.0f / l[rr] : 0.0f;
#pragma unroll
      for (int c = 0; c < DC; ++c) {
        const int64_t d = lane + 32 * c;
        if (d < D) a.out[orow * D + d] = o[rr][c] * inv;
      }
    } else {
      const int64_t prow = split * a.B * a.Lq * a.H + orow;
#pragma unroll
      for (int c = 0; c < DC; ++c) {
        const int64_t d = lane + 32 * c;
        if (d < D) a.part_o[prow * D + d] = o[rr][c];
      }
      if (lane == 0) {
        a.part_ml[2 * prow] = m[rr];
        a.part_ml[2 * prow + 1] = l[rr];
      }
    }
  }
}

// One warp per output row: merges the splits' (max, sum, unnormalised output).
__global__ void merge_kernel(const float* part_o, const float* part_ml, int64_t rows,
                             int64_t splits, int64_t D, float* out) {
  const int64_t row = (int64_t{blockIdx.x} * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  float mx = -INFINITY;
  for (int64_t s = 0; s < splits; ++s) mx = fmaxf(mx, part_ml[2 * (s * rows + row)]);
  float l = 0;
  for (int64_t d = lane; d < D; d += 32) out[row * D + d] = 0;
  if (mx == -INFINITY) return;
  for (int64_t s = 0; s < splits; ++s) {
    const float ms = part_ml[2 * (s * rows + row)];
    if (ms == -INFINITY) continue;
    const float w = expf(ms - mx);
    l += part_ml[2 * (s * rows + row) + 1] * w;
    for (int64_t d = lane; d < D; d += 32) out[row * D + d] += part_o[(s * rows + row) * D + d] * w;
  }
  const float inv = l > 0 ? 1.0f / l : 0.0f;
  for (int64_t d = lane; d < D; d += 32) out[row * D + d] *= inv;
}

}  // namespace

void launch_attention(const AttentionArgs& a) {
  const int64_t G = a.H / a.Hkv;
  const int64_t row_tiles = (a.Lq * G + kRows - 1) / kRows;
  const size_t smem = sizeof(float) * (kRows * a.D + kKeys * (a.D + 1) + kKeys * a.D);
  dim3 grid(static_cast<unsigned>(row_tiles), static_cast<unsigned>(a.B * a.Hkv),
            static_cast<unsigned>(a.splits));
  if (a.D <= 32)
    attention_kernel<1><<<grid, kWarps * 32, smem>>>(a);
  else if (a.D <= 64)
    attention_kernel<2><<<grid, kWarps * 32, smem>>>(a);
  else
    attention_kernel<4><<<grid, kWarps * 32, smem>>>(a);
  check_launch("attention");
  if (a.splits > 1) {
    const int64_t rows = a.B * a.Lq * a.H;
    merge_kernel<<<grid_for(rows * 32, 256), 256>>>(a.part_o, a.part_ml, rows, a.splits, a.D,
                                                    a.out);
    check_launch("attention (merge)");
  }
}

}  // namespace stepaudio::cuda
