// Mixed-radix (4, 2, 3, 5) Stockham FFT, float32, our own implementation.
//
// Design
// - Complex transforms run on split arrays (re[], im[]) in a self-sorting Stockham DIF: stage k
//   with radix P, stride s (product of the earlier radices) and m = n / (s * P) reads
//   x[q + s*(p + j*m)] and writes y[q + s*(P*p + r)] * w^(r*p), ping-ponging between two
//   buffers; no bit reversal. Radix 4 first (as many as fit), then at most one 2, then 3s and 5s.
// - Vector path: GCC/Clang vector extensions with 4 float lanes (SSE2 on x86_64, NEON on
//   aarch64; on other targets the compiler lowers them). Stages with s % 4 == 0 vectorise over
//   q (contiguous), with twiddles replicated per lane. The first stage (s == 1, radix 4,
//   n % 16 == 0) vectorises over p, reads the caller's interleaved input directly
//   (deinterleave fused) and transposes 4x4 on the way out (scalar tail when n/4 % 4 != 0).
//   Stages with s % 4 != 0 (odd / 2*odd sizes) vectorise over the flat index q + s*p with
//   per-element twiddles and scatter their outputs. The same templates instantiated for plain
//   float are the fallback for other compilers (or -DEDGEFAULT_FFT_SCALAR).
// - Checked: x86_64 (GCC 12, baseline SSE2), aarch64 and armv7 (cross GCC 12 under qemu), ASan/UBSan.
// - On x86 this file is compiled twice: as itself (baseline) and through fft_avx.cpp with -mavx
//   (EF_FFT_AVX_VARIANT: kernels and engines only). The public classes below pick the AVX
//   engines when the CPU has AVX: the same operations in the same order, VEX-encoded (no FMA),
//   so the results are bit-identical and only register copies go away (callgrind: about a
//   quarter fewer instructions; wall time a few per cent).
// - Inverse complex transforms use swap(re, im) . DFT . swap(re, im), so one table serves both.
// - RealFFT for even n packs z[j] = x[2j] + i x[2j+1], runs a complex FFT of n/2 and applies the
//   standard post-processing twiddles (vectorised, reading Z[h-k] with a reversed load; Z[h] is
//   padded with Z[0] so k = 0 needs no special case). Odd n (3^b 5^c) runs real-input DIT
//   passes that keep only half spectra (about half the work of a complex transform; see
//   real_stage); its inverse still runs a full complex transform of the Hermitian spectrum.
//   The forward transform of n = 2 m, 4 m (m odd, n >= 60) runs the same passes and a last
//   radix-2 / radix-4 real pass (no flat complex stages, which scatter their outputs).
// - Tables (stage list + twiddles computed in double) are built once per size and shared via
//   std::shared_ptr<const ...> in a mutex-guarded cache; each object owns aligned scratch, so
//   forward()/inverse() never allocate.
#include "edgefault/fft.hpp"
#include "fft_engine.hpp"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace edgefault {
namespace {

// ---------------------------------------------------------------------------------------------
// Lane abstraction: Ops<float> (scalar) and Ops<v4> (4 lanes, vector extensions).
// ---------------------------------------------------------------------------------------------
#if (defined(__GNUC__) || defined(__clang__)) && !defined(EDGEFAULT_FFT_SCALAR)
#define EF_FFT_VEC 1
typedef float v4 __attribute__((vector_size(16)));
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define EF_SHUF(a, b, i0, i1, i2, i3) __builtin_shufflevector(a, b, i0, i1, i2, i3)
#else
typedef int v4i __attribute__((vector_size(16)));
#define EF_SHUF(a, b, i0, i1, i2, i3) __builtin_shuffle(a, b, v4i{i0, i1, i2, i3})
#endif
#else
#define EF_FFT_VEC 0
#endif

template <class V>
struct Ops;

template <>
struct Ops<float> {
  static constexpr std::size_t W = 1;
  static inline float ld(const float* p) { return *p; }
  static inline void st(float* p, float v) { *p = v; }
};

#if EF_FFT_VEC
template <>
struct Ops<v4> {
  static constexpr std::size_t W = 4;
  // memcpy keeps this free of aliasing/alignment assumptions; compilers emit one vector move.
  static inline v4 ld(const float* p) {
    v4 r;
    std::memcpy(&r, p, sizeof r);
    return r;
  }
  static inline void st(float* p, v4 v) { std::memcpy(p, &v, sizeof v); }
};
#endif

// ---------------------------------------------------------------------------------------------
// Butterflies (forward sign, unnormalised): b_r = sum_j a_j exp(-2 pi i j r / P).
// ---------------------------------------------------------------------------------------------
template <class V, int P>
struct Bfly;

template <class V>
struct Bfly<V, 2> {
  static inline void run(const V* ar, const V* ai, V* br, V* bi) {
    br[0] = ar[0] + ar[1];
    bi[0] = ai[0] + ai[1];
    br[1] = ar[0] - ar[1];
    bi[1] = ai[0] - ai[1];
  }
};

template <class V>
struct Bfly<V, 3> {
  static inline void run(const V* ar, const V* ai, V* br, V* bi) {
    const float h = 0.866025403784438646763723170752936f;  // sin(2 pi / 3)
    V tr = ar[1] + ar[2], ti = ai[1] + ai[2];
    br[0] = ar[0] + tr;
    bi[0] = ai[0] + ti;
    V ur = ar[0] - 0.5f * tr, ui = ai[0] - 0.5f * ti;
    V vr = h * (ai[1] - ai[2]), vi = h * (ar[2] - ar[1]);
    br[1] = ur + vr;
    bi[1] = ui + vi;
    br[2] = ur - vr;
    bi[2] = ui - vi;
  }
};

template <class V>
struct Bfly<V, 4> {
  static inline void run(const V* ar, const V* ai, V* br, V* bi) {
    V t0r = ar[0] + ar[2], t0i = ai[0] + ai[2];
    V t1r = ar[0] - ar[2], t1i = ai[0] - ai[2];
    V t2r = ar[1] + ar[3], t2i = ai[1] + ai[3];
    V t3r = ar[1] - ar[3], t3i = ai[1] - ai[3];
    br[0] = t0r + t2r;
    bi[0] = t0i + t2i;
    br[2] = t0r - t2r;
    bi[2] = t0i - t2i;
    br[1] = t1r + t3i;
    bi[1] = t1i - t3r;
    br[3] = t1r - t3i;
    bi[3] = t1i + t3r;
  }
};

template <class V>
struct Bfly<V, 5> {
  static inline void run(const V* ar, const V* ai, V* br, V* bi) {
    const float c1 = 0.309016994374947424102293417182819f;   // cos(2 pi / 5)
    const float c2 = -0.809016994374947424102293417182819f;  // cos(4 pi / 5)
    const float s1 = 0.951056516295153572116439333379382f;   // sin(2 pi / 5)
    const float s2 = 0.587785252292473129168705954639073f;   // sin(4 pi / 5)
    V t1r = ar[1] + ar[4], t1i = ai[1] + ai[4];
    V t2r = ar[2] + ar[3], t2i = ai[2] + ai[3];
    V t3r = ar[1] - ar[4], t3i = ai[1] - ai[4];
    V t4r = ar[2] - ar[3], t4i = ai[2] - ai[3];
    br[0] = ar[0] + t1r + t2r;
    bi[0] = ai[0] + t1i + t2i;
    V m1r = ar[0] + c1 * t1r + c2 * t2r, m1i = ai[0] + c1 * t1i + c2 * t2i;
    V m2r = ar[0] + c2 * t1r + c1 * t2r, m2i = ai[0] + c2 * t1i + c1 * t2i;
    V n1r = s1 * t3r + s2 * t4r, n1i = s1 * t3i + s2 * t4i;
    V n2r = s2 * t3r - s1 * t4r, n2i = s2 * t3i - s1 * t4i;
    br[1] = m1r + n1i;  // m1 - i n1
    bi[1] = m1i - n1r;
    br[4] = m1r - n1i;  // m1 + i n1
    bi[4] = m1i + n1r;
    br[2] = m2r + n2i;
    bi[2] = m2i - n2r;
    br[3] = m2r - n2i;
    bi[3] = m2i + n2r;
  }
};

// ---------------------------------------------------------------------------------------------
// Stages.
// ---------------------------------------------------------------------------------------------
using StageFn = void (*)(std::size_t s, std::size_t m, const float* tw, const float* xr,
                         const float* xi, float* yr, float* yi);

// Generic Stockham stage, vectorised over q (requires s % W == 0). Twiddle layout per p:
// for r = 1..P-1: W copies of Re w^(r p), then W copies of Im w^(r p).
// One radix-P butterfly on W lanes: inputs x[j * sm], outputs y[r * s], twiddles at t.
template <class V, int P, bool TW>
inline void bfly_at(const float* xr, const float* xi, std::size_t sm, float* yr, float* yi,
                    std::size_t s, const float* t) {
  using O = Ops<V>;
  constexpr std::size_t W = O::W;
  V ar[P], ai[P], br[P], bi[P];
  for (int j = 0; j < P; ++j) {
    ar[j] = O::ld(xr + static_cast<std::size_t>(j) * sm);
    ai[j] = O::ld(xi + static_cast<std::size_t>(j) * sm);
  }
  Bfly<V, P>::run(ar, ai, br, bi);
  O::st(yr, br[0]);
  O::st(yi, bi[0]);
  for (int r = 1; r < P; ++r) {
    V zr = br[r], zi = bi[r];
    if (TW) {
      const V wr = O::ld(t + static_cast<std::size_t>(r - 1) * 2 * W);
      const V wi = O::ld(t + static_cast<std::size_t>(r - 1) * 2 * W + W);
      V tr = zr * wr - zi * wi;
      zi = zr * wi + zi * wr;
      zr = tr;
    }
    O::st(yr + static_cast<std::size_t>(r) * s, zr);
    O::st(yi + static_cast<std::size_t>(r) * s, zi);
  }
}

// Generic Stockham stage, vectorised over q (requires s % W == 0). Twiddle layout per p:
// for r = 1..P-1: W copies of Re w^(r p), then W copies of Im w^(r p).
template <class V, int P, bool TW>
void stage_q(std::size_t s, std::size_t m, const float* tw, const float* xr, const float* xi,
             float* yr, float* yi) {
  constexpr std::size_t W = Ops<V>::W;
  constexpr std::size_t TS = (P - 1) * 2 * W;  // twiddle floats per p
  const std::size_t sm = s * m;
  if (s == W) {  // one butterfly per p: flat loop, no inner-loop overhead
    for (std::size_t p = 0; p < m; ++p)
      bfly_at<V, P, TW>(xr + W * p, xi + W * p, sm, yr + W * P * p, yi + W * P * p, W,
                        tw + TS * p);
    return;
  }
  for (std::size_t p = 0; p < m; ++p) {
    const float* t = tw + TS * p;
    const float* xr0 = xr + s * p;
    const float* xi0 = xi + s * p;
    float* yr0 = yr + s * P * p;
    float* yi0 = yi + s * P * p;
    for (std::size_t q = 0; q < s; q += W)
      bfly_at<V, P, TW>(xr0 + q, xi0 + q, sm, yr0 + q, yi0 + q, s, t);
  }
}

#if EF_FFT_VEC
inline void transpose4(v4& a, v4& b, v4& c, v4& d) {
  v4 t0 = EF_SHUF(a, b, 0, 4, 1, 5);
  v4 t1 = EF_SHUF(a, b, 2, 6, 3, 7);
  v4 t2 = EF_SHUF(c, d, 0, 4, 1, 5);
  v4 t3 = EF_SHUF(c, d, 2, 6, 3, 7);
  a = EF_SHUF(t0, t2, 0, 1, 4, 5);
  b = EF_SHUF(t0, t2, 2, 3, 6, 7);
  c = EF_SHUF(t1, t3, 0, 1, 4, 5);
  d = EF_SHUF(t1, t3, 2, 3, 6, 7);
}

// First stage (s == 1), radix 4, vectorised over p (scalar tail if m % 4 != 0), reading interleaved complex
// input. SWAP puts the imaginary parts in the real lanes (used for inverse transforms).
// Twiddle layout: for r = 1..3: m values Re w^(r p), then m values Im w^(r p).
template <bool SWAP>
void stage4_first(std::size_t m, const float* tw, const float* in, float* yr, float* yi) {
  using O = Ops<v4>;
  const std::size_t m4 = m & ~static_cast<std::size_t>(3);
  for (std::size_t p = 0; p < m4; p += 4) {
    v4 ar[4], ai[4], br[4], bi[4];
    for (std::size_t j = 0; j < 4; ++j) {
      const float* src = in + 2 * (p + j * m);
      v4 u = O::ld(src), v = O::ld(src + 4);
      v4 ev = EF_SHUF(u, v, 0, 2, 4, 6), od = EF_SHUF(u, v, 1, 3, 5, 7);
      ar[j] = SWAP ? od : ev;
      ai[j] = SWAP ? ev : od;
    }
    Bfly<v4, 4>::run(ar, ai, br, bi);
    for (std::size_t r = 1; r < 4; ++r) {
      v4 wr = O::ld(tw + (r - 1) * 2 * m + p), wi = O::ld(tw + (r - 1) * 2 * m + m + p);
      v4 tr = br[r] * wr - bi[r] * wi;
      bi[r] = br[r] * wi + bi[r] * wr;
      br[r] = tr;
    }
    transpose4(br[0], br[1], br[2], br[3]);
    transpose4(bi[0], bi[1], bi[2], bi[3]);
    for (std::size_t k = 0; k < 4; ++k) {
      O::st(yr + 4 * (p + k), br[k]);
      O::st(yi + 4 * (p + k), bi[k]);
    }
  }
  for (std::size_t p = m4; p < m; ++p) {  // scalar tail when m % 4 != 0
    float ar[4], ai[4], br[4], bi[4];
    for (std::size_t j = 0; j < 4; ++j) {
      const float* src = in + 2 * (p + j * m);
      ar[j] = src[SWAP ? 1 : 0];
      ai[j] = src[SWAP ? 0 : 1];
    }
    Bfly<float, 4>::run(ar, ai, br, bi);
    yr[4 * p] = br[0];
    yi[4 * p] = bi[0];
    for (std::size_t r = 1; r < 4; ++r) {
      const float wr = tw[(r - 1) * 2 * m + p], wi = tw[(r - 1) * 2 * m + m + p];
      yr[4 * p + r] = br[r] * wr - bi[r] * wi;
      yi[4 * p + r] = br[r] * wi + bi[r] * wr;
    }
  }
}
#endif

#if EF_FFT_VEC
// Stage with s % 4 != 0 (odd and 2*odd sizes), vectorised over the flat index f = q + s*p,
// along which the inputs x[f + j*s*m] are contiguous. Twiddles are expanded per f:
// for r = 1..P-1: s*m values Re w^(r p(f)), then s*m values Im. Outputs y[q + s*(P*p + r)]
// are not contiguous across p, so they are scattered lane by lane; the tail f (s*m % 4) is
// scalar.
template <int P, bool TW>
void stage_flat(std::size_t s, std::size_t m, const float* tw, const float* xr, const float* xi,
                float* yr, float* yi) {
  using O = Ops<v4>;
  const std::size_t sm = s * m;
  const std::size_t f4 = sm & ~static_cast<std::size_t>(3);
  std::size_t p = 0, q = 0;  // (p, q) of the current f
  auto put = [&](const float* zr, const float* zi) {
    const std::size_t o = q + s * P * p;
    for (int r = 0; r < P; ++r) {
      yr[o + static_cast<std::size_t>(r) * s] = zr[r];
      yi[o + static_cast<std::size_t>(r) * s] = zi[r];
    }
    if (++q == s) {
      q = 0;
      ++p;
    }
  };
  for (std::size_t f = 0; f < f4; f += 4) {
    v4 ar[P], ai[P], br[P], bi[P];
    for (int j = 0; j < P; ++j) {
      ar[j] = O::ld(xr + f + static_cast<std::size_t>(j) * sm);
      ai[j] = O::ld(xi + f + static_cast<std::size_t>(j) * sm);
    }
    Bfly<v4, P>::run(ar, ai, br, bi);
    if (TW)
      for (int r = 1; r < P; ++r) {
        const float* t = tw + static_cast<std::size_t>(r - 1) * 2 * sm + f;
        const v4 wr = O::ld(t), wi = O::ld(t + sm);
        v4 tr = br[r] * wr - bi[r] * wi;
        bi[r] = br[r] * wi + bi[r] * wr;
        br[r] = tr;
      }
    float lr[4][P], li[4][P];  // [lane][r]
    for (int r = 0; r < P; ++r)
      for (int l = 0; l < 4; ++l) {
        lr[l][r] = br[r][l];
        li[l][r] = bi[r][l];
      }
    for (int l = 0; l < 4; ++l) put(lr[l], li[l]);
  }
  for (std::size_t f = f4; f < sm; ++f) {
    float ar[P], ai[P], br[P], bi[P];
    for (int j = 0; j < P; ++j) {
      ar[j] = xr[f + static_cast<std::size_t>(j) * sm];
      ai[j] = xi[f + static_cast<std::size_t>(j) * sm];
    }
    Bfly<float, P>::run(ar, ai, br, bi);
    if (TW)
      for (int r = 1; r < P; ++r) {
        const float* t = tw + static_cast<std::size_t>(r - 1) * 2 * sm + f;
        const float tr = br[r] * t[0] - bi[r] * t[sm];
        bi[r] = br[r] * t[sm] + bi[r] * t[0];
        br[r] = tr;
      }
    put(br, bi);
  }
}

template <int P>
StageFn pick_flat_fn(bool tw) {
  return tw ? &stage_flat<P, true> : &stage_flat<P, false>;
}

StageFn pick_flat(int radix, bool tw) {
  switch (radix) {
    case 2: return pick_flat_fn<2>(tw);
    case 3: return pick_flat_fn<3>(tw);
    case 4: return pick_flat_fn<4>(tw);
    default: return pick_flat_fn<5>(tw);
  }
}
#endif

// ---------------------------------------------------------------------------------------------
// Real-input DIT passes for odd n (3^b 5^c): every pass works on half spectra only.
// ---------------------------------------------------------------------------------------------
// After a pass of length L (odd), sub-transform t (t = 0..S-1, S = n / L) is the DFT of the real
// subsequence x[S j + t], j = 0..L-1; only its bins k = 0..H-1, H = (L+1)/2, are kept (the rest
// are conjugates), stored split at [t * H + k]. The raw input is that layout for L = 1.
// A radix-P pass (Lp -> L = P*Lp, S = P*S') combines sub-transforms t = S' r + t' (r = 0..P-1):
// a_r = W_L^(r k) Y_r[k] and X[k + Lp q] = sum_r a_r W_P^(r q), k = 0..(Lp-1)/2. With c = (P-1)/2,
// the outputs q <= c land in the kept half directly (index Lp q + k), those with q > c are
// stored conjugated at index Lp (P-q) - k. For k = 0 the inputs are real and q > c repeats
// q' = P-q. So a pass does about half the butterflies of a complex pass of the same length.
// Twiddles per pass: for r = 1..P-1: K values Re W_L^(r k), then K values Im, k = 1..K,
// K = (Lp-1)/2.
using RealStageFn = void (*)(std::size_t sp, std::size_t lp, const float* tw, const float* xr,
                             const float* xi, float* yr, float* yi);

inline float rev_lanes(float v) { return v; }
#if EF_FFT_VEC
inline v4 rev_lanes(v4 v) { return EF_SHUF(v, v, 3, 2, 1, 0); }
#endif

// k = 0 butterflies of one pass for t' in [t0, t1): real inputs at xr[(sp r + t') * hp] (xi is
// not read: the imaginary part of a bin 0 is 0), outputs q = 0..c at y[t' * h + lp q].
template <class V, int P>
inline void real_k0(std::size_t t0, std::size_t t1, std::size_t sp, std::size_t lp,
                    const float* xr, float* yr, float* yi) {
  using O = Ops<V>;
  constexpr std::size_t W = O::W;
  constexpr int C = P / 2;  // bin 0 outputs kept: q = 0..P/2 (q = P/2 is the Nyquist bin if P is even)
  const std::size_t hp = (lp + 1) / 2, h = P * lp / 2 + 1;
  for (std::size_t t = t0; t + W <= t1; t += W) {
    V ar[P], ai[P], br[P], bi[P];
    for (int r = 0; r < P; ++r) {
      const float* src = xr + (sp * static_cast<std::size_t>(r) + t) * hp;
      if (hp == 1) {
        ar[r] = O::ld(src);
      } else {
        float g[W];
        for (std::size_t l = 0; l < W; ++l) g[l] = src[l * hp];
        ar[r] = O::ld(g);
      }
      ai[r] = V{} * 0.0f;
    }
    Bfly<V, P>::run(ar, ai, br, bi);
    float sr[C + 1][W], si[C + 1][W];
    for (int q = 0; q <= C; ++q) {
      O::st(sr[q], br[q]);
      O::st(si[q], bi[q]);
    }
    for (std::size_t l = 0; l < W; ++l) {
      float* dr = yr + (t + l) * h;
      float* di = yi + (t + l) * h;
      dr[0] = sr[0][l];
      di[0] = 0.0f;
      for (int q = 1; q <= C; ++q) {
        dr[lp * static_cast<std::size_t>(q)] = sr[q][l];
        di[lp * static_cast<std::size_t>(q)] = si[q][l];
      }
    }
  }
}

// k = 1..K butterflies of one pass for one t', k in [k0, k1) stepping by the lane count.
template <class V, int P>
inline void real_kv(std::size_t k0, std::size_t k1, std::size_t t, std::size_t sp,
                    std::size_t lp, const float* tw, const float* xr, const float* xi, float* yr,
                    float* yi) {
  using O = Ops<V>;
  constexpr std::size_t W = O::W;
  constexpr int C = (P - 1) / 2;
  const std::size_t hp = (lp + 1) / 2, h = P * lp / 2 + 1, kk = (lp - 1) / 2;
  float* dr = yr + t * h;
  float* di = yi + t * h;
  for (std::size_t k = k0; k + W <= k1; k += W) {
    V ar[P], ai[P], br[P], bi[P];
    for (int r = 0; r < P; ++r) {
      const std::size_t o = (sp * static_cast<std::size_t>(r) + t) * hp + k;
      V vr = O::ld(xr + o), vi = O::ld(xi + o);
      if (r > 0) {
        const float* w = tw + static_cast<std::size_t>(r - 1) * 2 * kk + (k - 1);
        const V wr = O::ld(w), wi = O::ld(w + kk);
        V tr = vr * wr - vi * wi;
        vi = vr * wi + vi * wr;
        vr = tr;
      }
      ar[r] = vr;
      ai[r] = vi;
    }
    Bfly<V, P>::run(ar, ai, br, bi);
    for (int q = 0; q <= C; ++q) {
      const std::size_t o = lp * static_cast<std::size_t>(q) + k;
      O::st(dr + o, br[q]);
      O::st(di + o, bi[q]);
    }
    for (int q = C + 1; q < P; ++q) {  // conj, at lp (P-q) - k - (W-1) .. lp (P-q) - k
      const std::size_t o = lp * static_cast<std::size_t>(P - q) - k - (W - 1);
      O::st(dr + o, rev_lanes(br[q]));
      O::st(di + o, rev_lanes(-bi[q]));
    }
  }
}

template <int P>
void real_stage(std::size_t sp, std::size_t lp, const float* tw, const float* xr,
                const float* xi, float* yr, float* yi) {
  const std::size_t kk = (lp - 1) / 2;
#if EF_FFT_VEC
  const std::size_t t4 = sp & ~static_cast<std::size_t>(3);
  real_k0<v4, P>(0, t4, sp, lp, xr, yr, yi);
  real_k0<float, P>(t4, sp, sp, lp, xr, yr, yi);
  // k = 1..kk in blocks of 4; a partial last block is redone as the overlapping block
  // kk-3..kk (same values written twice: input and output are different buffers).
  const std::size_t k4 = 1 + (kk & ~static_cast<std::size_t>(3));
  for (std::size_t t = 0; t < sp; ++t) {
    real_kv<v4, P>(1, k4, t, sp, lp, tw, xr, xi, yr, yi);
    if (k4 <= kk) {
      if (kk >= 4)
        real_kv<v4, P>(kk - 3, kk + 1, t, sp, lp, tw, xr, xi, yr, yi);
      else
        real_kv<float, P>(k4, kk + 1, t, sp, lp, tw, xr, xi, yr, yi);
    }
  }
#else
  real_k0<float, P>(0, sp, sp, lp, xr, yr, yi);
  for (std::size_t t = 0; t < sp; ++t)
    real_kv<float, P>(1, kk + 1, t, sp, lp, tw, xr, xi, yr, yi);
#endif
}

// The same pass vectorised over t' instead of k, for passes with many sub-transforms (sp >= 4):
// input in layout A, bin k of sub-transform t at [k * S + t] (S = P sp; contiguous over t), so
// lanes t'..t'+3 load contiguously for every r and k; output in layout A ([m * sp + t']) or, when
// OB (the next pass runs over k), in layout B ([t' * h + m], scattered lane by lane). Mirrored
// outputs need no lane reversal here. Twiddles depend on k only and are broadcast.
template <class V, int P, bool OB>
inline void real_t_block(std::size_t t, std::size_t sp, std::size_t lp, const float* tw,
                         const float* xr, const float* xi, float* yr, float* yi) {
  using O = Ops<V>;
  constexpr std::size_t W = O::W;
  constexpr int C = (P - 1) / 2;
  const std::size_t S = static_cast<std::size_t>(P) * sp;
  const std::size_t h = P * lp / 2 + 1, kk = (lp - 1) / 2;
  auto store = [&](std::size_t m, V vr, V vi) {
    if (!OB) {
      O::st(yr + m * sp + t, vr);
      O::st(yi + m * sp + t, vi);
    } else {
      float a[W], b[W];
      O::st(a, vr);
      O::st(b, vi);
      for (std::size_t l = 0; l < W; ++l) {
        yr[(t + l) * h + m] = a[l];
        yi[(t + l) * h + m] = b[l];
      }
    }
  };
  {
    V ar[P], ai[P], br[P], bi[P];
    for (int r = 0; r < P; ++r) {
      ar[r] = O::ld(xr + sp * static_cast<std::size_t>(r) + t);
      ai[r] = V{};
    }
    Bfly<V, P>::run(ar, ai, br, bi);
    store(0, br[0], V{});
    for (int q = 1; q <= P / 2; ++q) store(lp * static_cast<std::size_t>(q), br[q], bi[q]);
  }
  for (std::size_t k = 1; k <= kk; ++k) {
    V ar[P], ai[P], br[P], bi[P];
    const float* xrk = xr + k * S + t;
    const float* xik = xi + k * S + t;
    ar[0] = O::ld(xrk);
    ai[0] = O::ld(xik);
    for (int r = 1; r < P; ++r) {
      const std::size_t o = sp * static_cast<std::size_t>(r);
      const V vr = O::ld(xrk + o), vi = O::ld(xik + o);
      const float* w = tw + static_cast<std::size_t>(r - 1) * 2 * kk + (k - 1);
      const float wr = w[0], wi = w[kk];
      ar[r] = vr * wr - vi * wi;
      ai[r] = vr * wi + vi * wr;
    }
    Bfly<V, P>::run(ar, ai, br, bi);
    for (int q = 0; q <= C; ++q) store(lp * static_cast<std::size_t>(q) + k, br[q], bi[q]);
    for (int q = C + 1; q < P; ++q) store(lp * static_cast<std::size_t>(P - q) - k, br[q], -bi[q]);
  }
}

template <int P, bool OB>
void real_stage_t(std::size_t sp, std::size_t lp, const float* tw, const float* xr,
                  const float* xi, float* yr, float* yi) {
  std::size_t t = 0;
#if EF_FFT_VEC
  for (; t + 4 <= sp; t += 4) real_t_block<v4, P, OB>(t, sp, lp, tw, xr, xi, yr, yi);
  // A partial last block is redone as the overlapping block sp-4..sp-1 (same values written
  // twice: input and output are different buffers).
  if (t < sp && sp >= 4) {
    real_t_block<v4, P, OB>(sp - 4, sp, lp, tw, xr, xi, yr, yi);
    t = sp;
  }
#endif
  for (; t < sp; ++t) real_t_block<float, P, OB>(t, sp, lp, tw, xr, xi, yr, yi);
}

// ---------------------------------------------------------------------------------------------
// Aligned scratch.
// ---------------------------------------------------------------------------------------------
constexpr std::size_t kAlign = 64;

struct AlignedFree {
  void operator()(float* p) const noexcept { ::operator delete[](p, std::align_val_t(kAlign)); }
};
using AlignedBuf = std::unique_ptr<float[], AlignedFree>;

AlignedBuf make_buf(std::size_t count) {
  if (count == 0) count = 1;
  void* p = ::operator new[](count * sizeof(float), std::align_val_t(kAlign));
  std::memset(p, 0, count * sizeof(float));
  return AlignedBuf(static_cast<float*>(p));
}

inline std::size_t round_up4(std::size_t v) { return (v + 3) & ~static_cast<std::size_t>(3); }

// ---------------------------------------------------------------------------------------------
// Plans (immutable, shared).
// ---------------------------------------------------------------------------------------------
constexpr double kPi = 3.14159265358979323846264338327950288;
// Keeps every index computation (a few multiples of n) far from overflow on 32-bit targets.
constexpr std::size_t kMaxSize = std::numeric_limits<std::size_t>::max() / 64;
constexpr std::size_t kMaxFlat = std::size_t{1} << 16;

enum class Kind { First4, Lanes };

struct Stage {
  int radix;
  Kind kind;
  std::size_t s, m;
  std::size_t tw_off;  // offset into Tables::tw
  StageFn fn;          // used for Kind::Lanes
};

struct ComplexTables {
  std::size_t n = 0;
  std::vector<Stage> stages;
  std::vector<float> tw;  // std::vector of float: 16-byte alignment not required (memcpy loads)
};

struct RealTables {
  std::size_t n = 0;                       // real length
  std::shared_ptr<const ComplexTables> c;  // size n/2 (even n) or n (odd n)
  std::vector<float> fr, fi;               // forward post: 0.5 * W^k, W = exp(-2 pi i / n)
  std::vector<float> gr, gi;               // inverse pre:  W^k / n
  bool fuse_last2 = false;                 // forward: fuse the final radix-2 stage into post
  // Odd n > 1, forward: real-input passes (see real_stage); c is kept for the inverse.
  struct OddStage {
    std::size_t sp, lp, tw_off;
    RealStageFn fn;
  };
  std::vector<OddStage> odd;
  std::vector<float> otw;
};

[[maybe_unused]] bool supported(std::size_t n) noexcept {
  if (n == 0 || n > kMaxSize) return false;
  for (std::size_t f : {std::size_t{2}, std::size_t{3}, std::size_t{5}})
    while (n % f == 0) n /= f;
  return n == 1;
}

[[noreturn, maybe_unused]] void throw_unsupported(const char* who, std::size_t n) {
  throw std::invalid_argument(std::string(who) + ": unsupported size n=" + std::to_string(n) +
                              "; expected n >= 1 of the form 2^a * 3^b * 5^c (use "
                              "next_fast_fft_size / next_fast_len to pick one)");
}

template <class V, int P>
StageFn pick_lanes_fn(bool tw) {
  return tw ? &stage_q<V, P, true> : &stage_q<V, P, false>;
}

template <class V>
StageFn pick_fn(int radix, bool tw) {
  switch (radix) {
    case 2: return pick_lanes_fn<V, 2>(tw);
    case 3: return pick_lanes_fn<V, 3>(tw);
    case 4: return pick_lanes_fn<V, 4>(tw);
    default: return pick_lanes_fn<V, 5>(tw);
  }
}

std::shared_ptr<const ComplexTables> build_complex(std::size_t n) {
  auto t = std::make_shared<ComplexTables>();
  t->n = n;
  std::vector<int> radices;
  std::size_t v = n;
  while (v % 4 == 0) { radices.push_back(4); v /= 4; }
  if (v % 2 == 0) { radices.push_back(2); v /= 2; }
  while (v % 3 == 0) { radices.push_back(3); v /= 3; }
  while (v % 5 == 0) { radices.push_back(5); v /= 5; }

  std::size_t s = 1;
  for (int P : radices) {
    const std::size_t Pz = static_cast<std::size_t>(P);
    const std::size_t nk = n / s;
    const std::size_t m = nk / Pz;
    Stage st{P, Kind::Lanes, s, m, t->tw.size(), nullptr};
    const bool tw = m > 1;
    auto w = [nk](std::size_t e, double& re, double& im) {
      const double a = -2.0 * kPi * static_cast<double>(e % nk) / static_cast<double>(nk);
      re = std::cos(a);
      im = std::sin(a);
    };
    std::size_t lanes = 1;
#if EF_FFT_VEC
    if (s == 1 && P == 4 && m >= 4) {
      st.kind = Kind::First4;
      for (std::size_t r = 1; r < 4; ++r) {
        std::vector<float> re(m), im(m);
        for (std::size_t p = 0; p < m; ++p) {
          double c, sn;
          w(r * p, c, sn);
          re[p] = static_cast<float>(c);
          im[p] = static_cast<float>(sn);
        }
        t->tw.insert(t->tw.end(), re.begin(), re.end());
        t->tw.insert(t->tw.end(), im.begin(), im.end());
      }
      t->stages.push_back(st);
      s *= Pz;
      continue;
    }
    // Flat stages expand twiddles per element (about 2n floats per stage): only up to kMaxFlat.
    if (s % 4 != 0 && s * m >= 4 && n <= kMaxFlat) {
      st.fn = pick_flat(P, tw);
      if (tw) {
        const std::size_t sm = s * m;
        for (std::size_t r = 1; r < Pz; ++r) {
          std::vector<float> re(sm), im(sm);
          for (std::size_t f = 0; f < sm; ++f) {
            double c, sn;
            w(r * (f / s), c, sn);
            re[f] = static_cast<float>(c);
            im[f] = static_cast<float>(sn);
          }
          t->tw.insert(t->tw.end(), re.begin(), re.end());
          t->tw.insert(t->tw.end(), im.begin(), im.end());
        }
      }
      t->stages.push_back(st);
      s *= Pz;
      continue;
    }
    if (s % 4 == 0) lanes = 4;
    st.fn = lanes == 4 ? pick_fn<v4>(P, tw) : pick_fn<float>(P, tw);
#else
    st.fn = pick_fn<float>(P, tw);
#endif
    if (tw) {
      for (std::size_t p = 0; p < m; ++p)
        for (std::size_t r = 1; r < Pz; ++r) {
          double c, sn;
          w(r * p, c, sn);
          t->tw.insert(t->tw.end(), lanes, static_cast<float>(c));
          t->tw.insert(t->tw.end(), lanes, static_cast<float>(sn));
        }
    }
    t->stages.push_back(st);
    s *= Pz;
  }
  return t;
}

std::shared_ptr<const RealTables> build_real(std::size_t n);

template <class T>
std::shared_ptr<const T> cached(std::size_t n, std::shared_ptr<const T> (*build)(std::size_t)) {
  static std::mutex mu;
  static std::map<std::size_t, std::shared_ptr<const T>> cache;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(n);
    if (it != cache.end()) return it->second;
  }
  // Build outside the lock (large sizes take a while); first insert wins.
  std::shared_ptr<const T> t = build(n);
  std::lock_guard<std::mutex> lock(mu);
  auto ins = cache.emplace(n, std::move(t));
  return ins.first->second;
}

std::shared_ptr<const RealTables> build_real(std::size_t n) {
  auto t = std::make_shared<RealTables>();
  t->n = n;
  if (n % 2 == 0) {
    const std::size_t h = n / 2;
    t->c = cached<ComplexTables>(h, &build_complex);
#if EF_FFT_VEC
    const auto& st = t->c->stages;
    t->fuse_last2 = h % 8 == 0 && st.size() >= 2 && st.back().radix == 2 &&
                    st.back().kind == Kind::Lanes && st.back().s == h / 2;
#endif
    const std::size_t len = round_up4(h);
    t->fr.assign(len, 0.0f);
    t->fi.assign(len, 0.0f);
    t->gr.assign(len, 0.0f);
    t->gi.assign(len, 0.0f);
    for (std::size_t k = 0; k < h; ++k) {
      const double a = -2.0 * kPi * static_cast<double>(k) / static_cast<double>(n);
      const double c = std::cos(a), sn = std::sin(a);
      t->fr[k] = static_cast<float>(0.5 * c);
      t->fi[k] = static_cast<float>(0.5 * sn);
      t->gr[k] = static_cast<float>(c / static_cast<double>(n));
      t->gi[k] = static_cast<float>(sn / static_cast<double>(n));
    }
  } else {
    t->c = cached<ComplexTables>(n, &build_complex);
  }
  // Real-input passes for the forward transform: odd n, and n = 2 m or 4 m with m > 1 odd and
  // n >= 60 (the odd passes, then one radix-2 or radix-4 pass from the odd length; below 60 the
  // half-length complex transform took fewer instructions). The inverse of even n keeps the
  // half-length complex transform.
  std::size_t odd = n, two = 1;
  while (odd % 2 == 0) {
    odd /= 2;
    two *= 2;
  }
  if (n > 1 && (two == 1 || (odd > 1 && two <= 4 && n >= 60))) {
    std::vector<int> radices;
    std::size_t v = odd;
    while (v % 5 == 0) { radices.push_back(5); v /= 5; }
    while (v % 3 == 0) { radices.push_back(3); v /= 3; }
    if (two > 1) radices.push_back(static_cast<int>(two));
    // Early passes (many sub-transforms, few bins) run over t' (layout A), later ones over k
    // (layout B): a pass runs over k from the first one where that takes no more butterfly
    // blocks than running over t' (rough cost, scalar and vector blocks counted alike). The
    // last pass over t' writes layout B. Both layouts coincide for the raw input.
    auto over_k = [](std::size_t sp_, std::size_t kk_) {
      if (sp_ < 4) return true;
      const std::size_t t_cost = (sp_ + 3) / 4 * (kk_ + 1);
      const std::size_t k_cost = sp_ * ((kk_ >= 4 ? (kk_ + 3) / 4 : kk_) + 1);
      return k_cost <= t_cost;
    };
    std::vector<bool> by_k(radices.size());
    {
      std::size_t l2 = 1, s2 = n;
      bool k_mode = false;
      for (std::size_t i = 0; i < radices.size(); ++i) {
        s2 /= static_cast<std::size_t>(radices[i]);
        k_mode = k_mode || over_k(s2, (l2 - 1) / 2);
        by_k[i] = k_mode;
        l2 *= static_cast<std::size_t>(radices[i]);
      }
    }
    std::size_t lp = 1, sp = n;
    for (std::size_t i = 0; i < radices.size(); ++i) {
      const int P = radices[i];
      const std::size_t Pz = static_cast<std::size_t>(P);
      sp /= Pz;
      const std::size_t l = lp * Pz, kk = (lp - 1) / 2;
      RealStageFn fn;
      if (!by_k[i]) {
        const bool ob = i + 1 < radices.size() && by_k[i + 1];
        fn = P == 5 ? (ob ? &real_stage_t<5, true> : &real_stage_t<5, false>)
                    : (ob ? &real_stage_t<3, true> : &real_stage_t<3, false>);
      } else {
        fn = P == 5 ? &real_stage<5> : P == 3 ? &real_stage<3> : P == 4 ? &real_stage<4>
                                                                   : &real_stage<2>;
      }
      RealTables::OddStage st{sp, lp, t->otw.size(), fn};
      for (std::size_t r = 1; r < Pz; ++r) {
        for (std::size_t k = 1; k <= kk; ++k)
          t->otw.push_back(static_cast<float>(
              std::cos(-2.0 * kPi * static_cast<double>((r * k) % l) / static_cast<double>(l))));
        for (std::size_t k = 1; k <= kk; ++k)
          t->otw.push_back(static_cast<float>(
              std::sin(-2.0 * kPi * static_cast<double>((r * k) % l) / static_cast<double>(l))));
      }
      t->odd.push_back(st);
      lp = l;
    }
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// Execution.
// ---------------------------------------------------------------------------------------------
// Scratch for a complex transform of length n: two split buffers (re, im), each padded to
// round_up4(n + 1) so RealFFT can store Z[n] = Z[0] and read 4-lane chunks safely.
struct Scratch {
  std::size_t stride = 0;
  AlignedBuf mem;
  float* b[4] = {nullptr, nullptr, nullptr, nullptr};
  explicit Scratch(std::size_t n) : stride(round_up4(n + 1)), mem(make_buf(4 * round_up4(n + 1))) {
    for (std::size_t i = 0; i < 4; ++i) b[i] = mem.get() + i * stride;
  }
};

// Unnormalised forward DFT of `in` (n interleaved complex values) when swap == false; with
// swap == true, re/im of the input are exchanged on load (the caller exchanges them back on
// output to get the unnormalised inverse). Result: split arrays *outr, *outi inside scratch.
void execute(const ComplexTables& T, const float* in, bool swap, Scratch& sc, float** outr,
             float** outi, std::size_t skip_last = 0) {
  float* xr = sc.b[0];
  float* xi = sc.b[1];
  float* yr = sc.b[2];
  float* yi = sc.b[3];
  const std::size_t n = T.n;
  std::size_t first = 0;
#if EF_FFT_VEC
  if (!T.stages.empty() && T.stages[0].kind == Kind::First4) {
    const Stage& st = T.stages[0];
    if (swap)
      stage4_first<true>(st.m, T.tw.data() + st.tw_off, in, xr, xi);
    else
      stage4_first<false>(st.m, T.tw.data() + st.tw_off, in, xr, xi);
    first = 1;
  } else
#endif
  {
    float* dr = swap ? xi : xr;
    float* di = swap ? xr : xi;
    for (std::size_t j = 0; j < n; ++j) {
      dr[j] = in[2 * j];
      di[j] = in[2 * j + 1];
    }
  }
  for (std::size_t k = first; k + skip_last < T.stages.size(); ++k) {
    const Stage& st = T.stages[k];
    st.fn(st.s, st.m, T.tw.data() + st.tw_off, xr, xi, yr, yi);
    std::swap(xr, yr);
    std::swap(xi, yi);
  }
  *outr = xr;
  *outi = xi;
}

// X[k] = (Z[k] + conj Z[h-k]) / 2 - i/2 W^k (Z[k] - conj Z[h-k]), k = 0..h. With
// E = (Z[k] + conj Z[h-k]) / 2 and O = -i/2 (Z[k] - conj Z[h-k]), and W^(h-k) = -conj(W^k):
// X[k] = E + W^k O and X[h-k] = conj(E - W^k O), so each k < h/2 also yields its mirror.
// Requires Z[h] == Z[0] (padding).
#if EF_FFT_VEC
inline v4 rev4(v4 v) { return EF_SHUF(v, v, 3, 2, 1, 0); }

// One paired block: A = Z[k..k+3], R = Z[h-k-3..h-k] (natural order). Writes X[k..k+3] and
// X[h-k-3..h-k].
inline void post_block(std::size_t h, std::size_t k, v4 ar, v4 ai, v4 rr, v4 ri, const float* fr,
                       const float* fi, float* out) {
  using O = Ops<v4>;
  v4 br = rev4(rr), bi = -rev4(ri);
  v4 dr = ar - br, di = ai - bi;
  v4 er = 0.5f * (ar + br), ei = 0.5f * (ai + bi);
  v4 wr = O::ld(fr + k), wi = O::ld(fi + k);
  v4 tr = wr * di + wi * dr;  // W^k O
  v4 ti = wi * di - wr * dr;
  v4 xr = er + tr, xi = ei + ti;
  v4 yr = rev4(er - tr), yi = rev4(ti - ei);  // conj(E - W^k O), back in natural order
  O::st(out + 2 * k, EF_SHUF(xr, xi, 0, 4, 1, 5));
  O::st(out + 2 * k + 4, EF_SHUF(xr, xi, 2, 6, 3, 7));
  float* o2 = out + 2 * (h - k - 3);
  O::st(o2, EF_SHUF(yr, yi, 0, 4, 1, 5));
  O::st(o2 + 4, EF_SHUF(yr, yi, 2, 6, 3, 7));
}
#endif

// Post-processing from the complete half-length spectrum Z (zr/zi have room for Z[h]).
// Paired vector blocks cover X[0..kv) and X(h-kv..h]; the scalar loop does the middle.
void real_post(std::size_t h, float* zr, float* zi, const float* fr, const float* fi,
               float* out) {
  zr[h] = zr[0];
  zi[h] = zi[0];
  std::size_t kv = 0;
#if EF_FFT_VEC
  using O = Ops<v4>;
  for (; kv + 4 <= h / 2; kv += 4)
    post_block(h, kv, O::ld(zr + kv), O::ld(zi + kv), O::ld(zr + h - kv - 3),
               O::ld(zi + h - kv - 3), fr, fi, out);
#endif
  for (std::size_t k = kv; k <= h - kv && k < h; ++k) {
    const float ar = zr[k], ai = zi[k], br = zr[h - k], bi = -zi[h - k];
    const float dr = ar - br, di = ai - bi;
    out[2 * k] = 0.5f * (ar + br) + fr[k] * di + fi[k] * dr;
    out[2 * k + 1] = 0.5f * (ai + bi) - fr[k] * dr + fi[k] * di;
  }
  if (kv == 0) {
    out[2 * h] = zr[0] - zi[0];
    out[2 * h + 1] = 0.0f;
  }
}

#if EF_FFT_VEC
// Post-processing fused with the final radix-2 Stockham stage (s = h/2, no twiddles): the input
// of that stage is a = x[0..u), b = x[u..h) and Z[k] = a[k] + b[k], Z[k + u] = a[k] - b[k].
// Requires u % 4 == 0; x[h] is overwritten with -x[0] so that a[u] - b[u] == Z[h] == Z[0].
void real_post_fused2(std::size_t h, float* xr, float* xi, const float* fr, const float* fi,
                      float* out) {
  using O = Ops<v4>;
  const std::size_t u = h / 2;
  xr[h] = -xr[0];
  xi[h] = -xi[0];
  for (std::size_t k = 0; k < u; k += 4) {
    v4 ar = O::ld(xr + k) + O::ld(xr + u + k);
    v4 ai = O::ld(xi + k) + O::ld(xi + u + k);
    const std::size_t j = u - k - 3;  // Z[h-k-3..h-k] = a[j..j+3] - b[j..j+3]
    v4 rr = O::ld(xr + j) - O::ld(xr + u + j);
    v4 ri = O::ld(xi + j) - O::ld(xi + u + j);
    post_block(h, k, ar, ai, rr, ri, fr, fi, out);
  }
  out[2 * u] = xr[0] - xr[u];  // X[h/2] = conj Z[h/2], Z[h/2] = a[0] - b[0]
  out[2 * u + 1] = -(xi[0] - xi[u]);
}
#endif

// Inverse of real_post, scaled by 2/n (so the unnormalised inverse of size h yields x):
// Z[k] = g S + T with S = X[k] + conj X[h-k], D = X[k] - conj X[h-k], T = i D conj(W^k) / n,
// g = 1/n, written interleaved. As in real_post, Z[h-k] = conj(g S - T), so vector blocks do
// k and h-k together. Imaginary parts of X[0] and X[h] are ignored (Z[0] is set last; the
// mirror of k = 0 lands in z[h], which is scratch padding).
void real_pre(std::size_t h, const float* in, const float* gr, const float* gi, float g,
              float* z) {
  std::size_t kv = 0;
#if EF_FFT_VEC
  using O = Ops<v4>;
  for (; kv + 4 <= h / 2; kv += 4) {
    const std::size_t k = kv;
    v4 u = O::ld(in + 2 * k), v = O::ld(in + 2 * k + 4);
    v4 ar = EF_SHUF(u, v, 0, 2, 4, 6), ai = EF_SHUF(u, v, 1, 3, 5, 7);
    v4 ru = O::ld(in + 2 * (h - k - 3)), rv = O::ld(in + 2 * (h - k - 3) + 4);
    v4 br = EF_SHUF(ru, rv, 6, 4, 2, 0);
    v4 bi = -EF_SHUF(ru, rv, 7, 5, 3, 1);
    v4 sr = g * (ar + br), si = g * (ai + bi), dr = ar - br, di = ai - bi;
    v4 wr = O::ld(gr + k), wi = O::ld(gi + k);
    v4 tr = dr * wi - di * wr;
    v4 ti = dr * wr + di * wi;
    v4 zr = sr + tr, zi = si + ti;
    v4 yr = rev4(sr - tr), yi = rev4(ti - si);
    O::st(z + 2 * k, EF_SHUF(zr, zi, 0, 4, 1, 5));
    O::st(z + 2 * k + 4, EF_SHUF(zr, zi, 2, 6, 3, 7));
    float* z2 = z + 2 * (h - k - 3);
    O::st(z2, EF_SHUF(yr, yi, 0, 4, 1, 5));
    O::st(z2 + 4, EF_SHUF(yr, yi, 2, 6, 3, 7));
  }
#endif
  for (std::size_t k = kv; k <= h - kv && k < h; ++k) {
    const float ar = in[2 * k], ai = in[2 * k + 1];
    const float br = in[2 * (h - k)], bi = -in[2 * (h - k) + 1];
    const float sr = ar + br, si = ai + bi, dr = ar - br, di = ai - bi;
    z[2 * k] = g * sr - di * gr[k] + dr * gi[k];
    z[2 * k + 1] = g * si + dr * gr[k] + di * gi[k];
  }
  z[0] = g * (in[0] + in[2 * h]);
  z[1] = g * (in[0] - in[2 * h]);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Engines: this translation unit's kernels behind the interface of fft_engine.hpp. fft_avx.cpp
// includes this file again (EF_FFT_AVX_VARIANT) to build the same engines for AVX.
// ---------------------------------------------------------------------------------------------
namespace fft_detail {
namespace {

struct ComplexEng final : ComplexEngine {
  std::shared_ptr<const ComplexTables> t;
  Scratch sc;
  explicit ComplexEng(std::size_t n) : t(cached<ComplexTables>(n, &build_complex)), sc(n) {}

  void forward(const cfloat* in, cfloat* out) override {
    float* vr;
    float* vi;
    const std::size_t n = t->n;
    execute(*t, reinterpret_cast<const float*>(in), false, sc, &vr, &vi);
    float* o = reinterpret_cast<float*>(out);
    for (std::size_t j = 0; j < n; ++j) {
      o[2 * j] = vr[j];
      o[2 * j + 1] = vi[j];
    }
  }

  void inverse(const cfloat* in, cfloat* out) override {
    float* vr;
    float* vi;
    const std::size_t n = t->n;
    execute(*t, reinterpret_cast<const float*>(in), true, sc, &vr, &vi);
    const float g = static_cast<float>(1.0 / static_cast<double>(n));
    float* o = reinterpret_cast<float*>(out);
    for (std::size_t j = 0; j < n; ++j) {
      o[2 * j] = vi[j] * g;
      o[2 * j + 1] = vr[j] * g;
    }
  }
};

// out[2k] = a[k], out[2k + 1] = b[k] for k < count.
inline void interleave(const float* a, const float* b, std::size_t count, float* out) {
  std::size_t k = 0;
#if EF_FFT_VEC
  for (; k + 4 <= count; k += 4) {
    const v4 va = Ops<v4>::ld(a + k), vb = Ops<v4>::ld(b + k);
    Ops<v4>::st(out + 2 * k, EF_SHUF(va, vb, 0, 4, 1, 5));
    Ops<v4>::st(out + 2 * k + 4, EF_SHUF(va, vb, 2, 6, 3, 7));
  }
#endif
  for (; k < count; ++k) {
    out[2 * k] = a[k];
    out[2 * k + 1] = b[k];
  }
}

struct RealEng final : RealEngine {
  std::shared_ptr<const RealTables> t;
  Scratch sc;
  AlignedBuf z;  // interleaved complex staging: 2 * (n/2 or n) floats
  explicit RealEng(std::size_t n)
      : t(cached<RealTables>(n, &build_real)),
        sc(t->odd.empty() ? t->c->n : t->n),  // real passes: up to n/2 + n/3 floats per buffer
        z(make_buf(2 * t->c->n + 8)) {}

  void forward(const float* in, cfloat* out) override {
    const RealTables& T = *t;
    const std::size_t n = T.n;
    float* o = reinterpret_cast<float*>(out);
    float* vr;
    float* vi;
    if (n % 2 == 0 && T.odd.empty()) {
      const std::size_t h = n / 2;
  #if EF_FFT_VEC
      if (T.fuse_last2) {
        execute(*T.c, in, false, sc, &vr, &vi, 1);
        real_post_fused2(h, vr, vi, T.fr.data(), T.fi.data(), o);
        return;
      }
  #endif
      execute(*T.c, in, false, sc, &vr, &vi);
      real_post(h, vr, vi, T.fr.data(), T.fi.data(), o);
      return;
    }
    // Odd n, 2 odd, 4 odd: real-input passes; the input itself is the layout of the first pass.
    const float* xr = in;
    const float* xi = in;  // not read by the first pass (its bins 0 are real)
    std::size_t buf = 0;
    for (const auto& st : T.odd) {
      float* yr = sc.b[buf];
      float* yi = sc.b[buf + 1];
      st.fn(st.sp, st.lp, T.otw.data() + st.tw_off, xr, xi, yr, yi);
      xr = yr;
      xi = yi;
      buf ^= 2;
    }
    interleave(xr, xi, n / 2 + 1, o);  // n = 1 (no pass): xi is the input, o[1] is set below
    o[1] = 0.0f;
  }

  void inverse(const cfloat* in, float* out) override {
    const RealTables& T = *t;
    const std::size_t n = T.n;
    const float* x = reinterpret_cast<const float*>(in);
    float* zs = z.get();
    float* vr;
    float* vi;
    const float g = static_cast<float>(1.0 / static_cast<double>(n));
    if (n % 2 == 0) {
      const std::size_t h = n / 2;
      real_pre(h, x, T.gr.data(), T.gi.data(), g, zs);
      execute(*T.c, zs, true, sc, &vr, &vi);
      interleave(vi, vr, h, out);
      return;
    }
    // Odd n: rebuild the full Hermitian spectrum and run a complex inverse.
    zs[0] = x[0];
    zs[1] = 0.0f;
    for (std::size_t k = 1; k <= n / 2; ++k) {
      zs[2 * k] = x[2 * k];
      zs[2 * k + 1] = x[2 * k + 1];
      zs[2 * (n - k)] = x[2 * k];
      zs[2 * (n - k) + 1] = -x[2 * k + 1];
    }
    execute(*T.c, zs, true, sc, &vr, &vi);
    for (std::size_t j = 0; j < n; ++j) out[j] = vi[j] * g;
  }
};

}  // namespace

#if defined(EF_FFT_AVX_VARIANT)
bool avx_built() noexcept { return true; }
std::unique_ptr<ComplexEngine> make_complex_avx(std::size_t n) {
  return std::make_unique<ComplexEng>(n);
}
std::unique_ptr<RealEngine> make_real_avx(std::size_t n) { return std::make_unique<RealEng>(n); }
#else
std::unique_ptr<ComplexEngine> make_complex_base(std::size_t n) {
  return std::make_unique<ComplexEng>(n);
}
std::unique_ptr<RealEngine> make_real_base(std::size_t n) { return std::make_unique<RealEng>(n); }
#endif

}  // namespace fft_detail

#if !defined(EF_FFT_AVX_VARIANT)
// ---------------------------------------------------------------------------------------------
// Public API.
// ---------------------------------------------------------------------------------------------
bool fft_size_supported(std::size_t n) noexcept { return supported(n); }

std::size_t next_fast_fft_size(std::size_t n) {
  if (n <= 1) return 1;
  if (n > kMaxSize)
    throw std::invalid_argument("next_fast_fft_size: n=" + std::to_string(n) +
                                " is too large; expected n <= " + std::to_string(kMaxSize));
  std::size_t best = std::numeric_limits<std::size_t>::max();
  for (std::size_t p5 = 1;; p5 *= 5) {
    for (std::size_t p35 = p5;; p35 *= 3) {
      std::size_t v = p35;
      while (v < n) v *= 2;
      if (v < best) best = v;
      if (p35 >= n) break;
    }
    if (p5 >= n) break;
  }
  return best;
}

namespace {

// The AVX build of the kernels (fft_avx.cpp) when the CPU and OS support AVX, unless
// EDGEFAULT_FFT_ISA=base. Same arithmetic in the same order (VEX-encoded 128-bit operations, no
// FMA), so results are bit-identical; what changes is fewer register copies.
bool use_avx() {
  static const bool v = [] {
    const char* e = std::getenv("EDGEFAULT_FFT_ISA");
    if (e != nullptr && std::strcmp(e, "base") == 0) return false;
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx") != 0;
#else
    return false;
#endif
  }();
  return v;
}

}  // namespace

const char* fft_isa() noexcept { return use_avx() && fft_detail::avx_built() ? "avx" : "base"; }

struct ComplexFFT::Impl {
  std::size_t n;
  std::unique_ptr<fft_detail::ComplexEngine> e;
  explicit Impl(std::size_t size) : n(size) {
    if (use_avx()) e = fft_detail::make_complex_avx(n);
    if (!e) e = fft_detail::make_complex_base(n);
  }
};

ComplexFFT::ComplexFFT(std::size_t n) {
  if (!supported(n)) throw_unsupported("ComplexFFT", n);
  impl_ = std::make_unique<Impl>(n);
}
ComplexFFT::~ComplexFFT() = default;
ComplexFFT::ComplexFFT(ComplexFFT&&) noexcept = default;
ComplexFFT& ComplexFFT::operator=(ComplexFFT&&) noexcept = default;
std::size_t ComplexFFT::size() const noexcept { return impl_ ? impl_->n : 0; }
void ComplexFFT::forward(const cfloat* in, cfloat* out) { impl_->e->forward(in, out); }
void ComplexFFT::inverse(const cfloat* in, cfloat* out) { impl_->e->inverse(in, out); }

struct RealFFT::Impl {
  std::size_t n;
  std::unique_ptr<fft_detail::RealEngine> e;
  explicit Impl(std::size_t size) : n(size) {
    if (use_avx()) e = fft_detail::make_real_avx(n);
    if (!e) e = fft_detail::make_real_base(n);
  }
};

RealFFT::RealFFT(std::size_t n) {
  if (!supported(n)) throw_unsupported("RealFFT", n);
  impl_ = std::make_unique<Impl>(n);
}
RealFFT::~RealFFT() = default;
RealFFT::RealFFT(RealFFT&&) noexcept = default;
RealFFT& RealFFT::operator=(RealFFT&&) noexcept = default;
std::size_t RealFFT::size() const noexcept { return impl_ ? impl_->n : 0; }
void RealFFT::forward(const float* in, cfloat* out) { impl_->e->forward(in, out); }
void RealFFT::inverse(const cfloat* in, float* out) { impl_->e->inverse(in, out); }
#endif  // !EF_FFT_AVX_VARIANT

}  // namespace edgefault
