// Four-float vectors for the per-window kernels (features.cpp, health.cpp); private to cpp/src.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#if (defined(__GNUC__) || defined(__clang__)) && defined(__SSE__)
#include <xmmintrin.h>
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace edgefault {
namespace detail {
// Sums run in blocks of kBlock samples over 8 independent float lanes (two 4-float vectors);
// each block's lane sums are folded into double, so the float part only ever adds 16 values per
// lane. GCC/Clang vector extensions give SSE/NEON code without fast-math flags; other compilers
// get the same arithmetic element-wise.
constexpr std::size_t kBlock = 64;

#if (defined(__GNUC__) || defined(__clang__)) && !defined(EDGEFAULT_NO_VECTOR_EXT)
typedef float vf4 __attribute__((vector_size(16)));
typedef int vi4 __attribute__((vector_size(16)));
inline vf4 load4(const float* p) {
  vf4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline vf4 splat(float f) { return vf4{f, f, f, f}; }
// vmax(a, b) = a > b ? a : b and vmin(a, b) = a < b ? a : b, lane-wise (b where a is NaN). SSE's
// maxps / minps have exactly these semantics (the second operand when either is NaN): one
// instruction instead of a compare and three logic operations.
#if defined(__SSE__)
inline vf4 vmax(vf4 a, vf4 b) { return reinterpret_cast<vf4>(_mm_max_ps(reinterpret_cast<__m128>(a), reinterpret_cast<__m128>(b))); }
inline vf4 vmin(vf4 a, vf4 b) { return reinterpret_cast<vf4>(_mm_min_ps(reinterpret_cast<__m128>(a), reinterpret_cast<__m128>(b))); }
#else
inline vf4 vmax(vf4 a, vf4 b) {
  const vi4 m = a > b;
  return reinterpret_cast<vf4>((reinterpret_cast<vi4>(a) & m) | (reinterpret_cast<vi4>(b) & ~m));
}
inline vf4 vmin(vf4 a, vf4 b) {
  const vi4 m = a < b;
  return reinterpret_cast<vf4>((reinterpret_cast<vi4>(a) & m) | (reinterpret_cast<vi4>(b) & ~m));
}
#endif
inline vf4 vabs(vf4 a) { return reinterpret_cast<vf4>(reinterpret_cast<vi4>(a) & vi4{0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff}); }
inline double hsum(vf4 a) { return (static_cast<double>(a[0]) + a[1]) + (static_cast<double>(a[2]) + a[3]); }
inline float hmax(vf4 a) { return std::max(std::max(a[0], a[1]), std::max(a[2], a[3])); }
inline float hmin(vf4 a) { return std::min(std::min(a[0], a[1]), std::min(a[2], a[3])); }
#if defined(__SSE__)
inline vf4 vsqrt(vf4 a) { return reinterpret_cast<vf4>(_mm_sqrt_ps(reinterpret_cast<__m128>(a))); }
#elif defined(__aarch64__)
inline vf4 vsqrt(vf4 a) { return reinterpret_cast<vf4>(vsqrtq_f32(reinterpret_cast<float32x4_t>(a))); }
#else
inline vf4 vsqrt(vf4 a) { return vf4{std::sqrt(a[0]), std::sqrt(a[1]), std::sqrt(a[2]), std::sqrt(a[3])}; }
#endif
// Comparison masks (-1 where true, 0 elsewhere): subtracting one from an integer lane counter
// counts the lanes where the comparison held. NaN compares false.
inline vi4 cmp_ge(vf4 a, vf4 b) { return a >= b; }
inline vi4 cmp_le(vf4 a, vf4 b) { return a <= b; }
inline vi4 cmp_eq(vf4 a, vf4 b) { return a == b; }
inline vi4 isplat(int i) { return vi4{i, i, i, i}; }
inline long hsumi(vi4 a) { return static_cast<long>(a[0]) + a[1] + a[2] + a[3]; }
#else
struct vf4 {
  float v[4];
  float operator[](int i) const { return v[i]; }
};
inline vf4 load4(const float* p) { return vf4{{p[0], p[1], p[2], p[3]}}; }
inline vf4 splat(float f) { return vf4{{f, f, f, f}}; }
#define EF_ELEMWISE(name, expr) \
  inline vf4 name(vf4 a, vf4 b) { vf4 r; for (int i = 0; i < 4; ++i) { const float x = a.v[i], y = b.v[i]; r.v[i] = (expr); } return r; }
EF_ELEMWISE(operator+, x + y)
EF_ELEMWISE(operator-, x - y)
EF_ELEMWISE(operator*, x * y)
EF_ELEMWISE(vmax, x > y ? x : y)
EF_ELEMWISE(vmin, x < y ? x : y)
#undef EF_ELEMWISE
inline vf4& operator+=(vf4& a, vf4 b) { return a = a + b; }
inline vf4 vabs(vf4 a) { for (float& f : a.v) f = std::fabs(f); return a; }
inline vf4 vsqrt(vf4 a) { for (float& f : a.v) f = std::sqrt(f); return a; }
inline double hsum(vf4 a) { return (static_cast<double>(a.v[0]) + a.v[1]) + (static_cast<double>(a.v[2]) + a.v[3]); }
inline float hmax(vf4 a) { return std::max(std::max(a.v[0], a.v[1]), std::max(a.v[2], a.v[3])); }
inline float hmin(vf4 a) { return std::min(std::min(a.v[0], a.v[1]), std::min(a.v[2], a.v[3])); }
struct vi4 {
  int v[4];
  int operator[](int i) const { return v[i]; }
};
#define EF_CMP(name, op) \
  inline vi4 name(vf4 a, vf4 b) { vi4 r; for (int i = 0; i < 4; ++i) r.v[i] = a.v[i] op b.v[i] ? -1 : 0; return r; }
EF_CMP(cmp_ge, >=)
EF_CMP(cmp_le, <=)
EF_CMP(cmp_eq, ==)
#undef EF_CMP
inline vi4 operator-(vi4 a, vi4 b) { for (int i = 0; i < 4; ++i) a.v[i] -= b.v[i]; return a; }
inline vi4& operator-=(vi4& a, vi4 b) { return a = a - b; }
inline vi4 isplat(int i) { return vi4{{i, i, i, i}}; }
inline long hsumi(vi4 a) { return static_cast<long>(a.v[0]) + a.v[1] + a.v[2] + a.v[3]; }
#endif
}  // namespace detail
}  // namespace edgefault
