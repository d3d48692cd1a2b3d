#include "ops/act_ops.h"

#include "backend/cpu/act_cpu.h"
#include "ops/dispatch.h"
#if STEPAUDIO_CUDA
#include "backend/cuda/t2w_ops_cuda.h"
#endif

namespace stepaudio::ops {

using namespace detail;

namespace {

#if STEPAUDIO_CUDA
cuda::T2wAct cuda_act(cpu::Act a) {
  switch (a) {
    case cpu::Act::LeakyRelu:
      return cuda::T2wAct::LeakyRelu;
    case cpu::Act::Elu:
      return cuda::T2wAct::Elu;
    case cpu::Act::Silu:
      return cuda::T2wAct::Silu;
    case cpu::Act::Mish:
      return cuda::T2wAct::Mish;
    case cpu::Act::Tanh:
      return cuda::T2wAct::Tanh;
    case cpu::Act::GeluTanh:
      return cuda::T2wAct::GeluTanh;
    case cpu::Act::Exp:
      return cuda::T2wAct::Exp;
    case cpu::Act::Sin:
      return cuda::T2wAct::Sin;
    case cpu::Act::Scale:
      return cuda::T2wAct::Scale;
  }
  fail("activation: unknown kind {}", static_cast<int>(a));
}
#endif

void run(const char* op, Tensor& x, cpu::Act act, float p = 0.f) {
  need_f32(x, op, "x");
  if (on_cuda(op, {&x})) CUDA_OP(t2w_act_(x, cuda_act(act), p));
  cpu::activation(act, x.data<float>(), x.numel(), p);
}

}  // namespace

void leaky_relu_(Tensor& x, float slope) { run("leaky_relu", x, cpu::Act::LeakyRelu, slope); }
void elu_(Tensor& x, float alpha) { run("elu", x, cpu::Act::Elu, alpha); }
void silu_(Tensor& x) { run("silu", x, cpu::Act::Silu); }
void mish_(Tensor& x) { run("mish", x, cpu::Act::Mish); }
void tanh_(Tensor& x) { run("tanh", x, cpu::Act::Tanh); }
void gelu_tanh_(Tensor& x) { run("gelu_tanh", x, cpu::Act::GeluTanh); }
void exp_(Tensor& x) { run("exp", x, cpu::Act::Exp); }
void sin_(Tensor& x) { run("sin", x, cpu::Act::Sin); }
void scale_(Tensor& x, float s) { run("scale", x, cpu::Act::Scale, s); }

void mul_(Tensor& a, const Tensor& b) {
  need_f32(a, "mul", "a");
  need_f32(b, "mul", "b");
  need(a.shape() == b.shape(), "mul",
       fmt::format("a {} and b {} must have the same shape", a.desc(), b.desc()));
  if (on_cuda("mul", {&a, &b})) CUDA_OP(t2w_mul_(a, b));
  cpu::mul(a.data<float>(), b.data<float>(), a.numel());
}

void snake_(Tensor& x, const Tensor& alpha) {
  need_f32(x, "snake", "x");
  need_f32(alpha, "snake", "alpha");
  need(x.ndim() == 3 && alpha.numel() == x.dim(1) && alpha.ndim() >= 1, "snake",
       fmt::format("expected x [B, C, T] and alpha [C]; got x {}, alpha {}", x.desc(),
                   alpha.desc()));
  if (on_cuda("snake", {&x, &alpha})) CUDA_OP(t2w_snake_(x, alpha));
  cpu::snake(x.data<float>(), alpha.data<float>(), x.dim(0), x.dim(1), x.dim(2));
}

}  // namespace stepaudio::ops
