// The bf16 tensor-core building blocks shared by the flash attention (prefill, encoder) and the
// split-K decode attention: cp.async into shared memory, ldmatrix, mma.sync m16n8k16 with fp32
// accumulation, and the step that turns two accumulator tiles of scores into the A fragment of P
// for P.V. Fragment layouts are those of the PTX ISA for m16n8k16 (row.col).
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

namespace stepaudio::cuda::mma {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, zero-filled (nothing read) when `valid` is false.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all() {
  asm volatile("cp.async.wait_group 0;\n" ::: "memory");
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// c[16x8] += a[16x16] b[16x8], bf16 in, fp32 accumulate.
__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// P = exp2(s - mu) of two adjacent 16x8 score tiles (s0: keys 0-7, s1: keys 8-15 of a k-step),
// rounded to bf16, as the A fragment of P.V: the accumulator layout of the two tiles is the A
// layout of one k-step. The rounded values are added to the row sums l (rows g and g + 8).
__device__ __forceinline__ void exp2_a_fragment(const float (&s0)[4], const float (&s1)[4],
                                                const float (&mu)[2], float (&l)[2],
                                                uint32_t (&pf)[4]) {
  const float* s[2] = {s0, s1};
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const __nv_bfloat162 p01 =
        __floats2bfloat162_rn(exp2f(s[half][0] - mu[0]), exp2f(s[half][1] - mu[0]));
    const __nv_bfloat162 p23 =
        __floats2bfloat162_rn(exp2f(s[half][2] - mu[1]), exp2f(s[half][3] - mu[1]));
    l[0] += __low2float(p01) + __high2float(p01);
    l[1] += __low2float(p23) + __high2float(p23);
    pf[2 * half] = *reinterpret_cast<const uint32_t*>(&p01);
    pf[2 * half + 1] = *reinterpret_cast<const uint32_t*>(&p23);
  }
}

// O += P V for one k-step: P the A fragment (16 rows x 16 keys), V the keys [key0, key0 + 16) of
// a shared-memory tile of rows of D bf16 padded to kStride elements (read transposed).
template <int D, int kStride>
__device__ __forceinline__ void pv_mma(float (&o)[D / 8][4], const uint32_t (&pf)[4],
                                       const __nv_bfloat16* vt, int key0, int lane) {
  const int key = key0 + (lane & 7) + ((lane >> 3) & 1) * 8;
#pragma unroll
  for (int dp = 0; dp < D / 16; ++dp) {
    uint32_t bf[4];
    ldmatrix_x4_trans(bf, vt + key * kStride + dp * 16 + (lane >> 4) * 8);
    mma_bf16(o[2 * dp], pf, bf[0], bf[1]);
    mma_bf16(o[2 * dp + 1], pf, bf[2], bf[3]);
  }
}

}  // namespace stepaudio::cuda::mma
