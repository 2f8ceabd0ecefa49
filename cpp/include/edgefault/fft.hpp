// Real and complex FFT, our own implementation (no downloaded code).
// Sizes: any n = 2^a * 3^b * 5^c (n >= 1). Twiddle tables are cached per size and shared;
// each RealFFT / ComplexFFT object owns its scratch, so one object must not be used from two
// threads at once (make one per thread instead; construction after the first is cheap).
#pragma once
#include <complex>
#include <cstddef>
#include <memory>

namespace edgefault {

using cfloat = std::complex<float>;

// True if n is a supported size (2^a 3^b 5^c, n >= 1).
bool fft_size_supported(std::size_t n) noexcept;
// Smallest supported size >= n.
std::size_t next_fast_fft_size(std::size_t n);
// Kernel build in use: "avx" (x86 CPU with AVX; same results, VEX-encoded) or "base".
// EDGEFAULT_FFT_ISA=base in the environment (read once) forces "base".
const char* fft_isa() noexcept;

class ComplexFFT {
 public:
  // Throws std::invalid_argument for unsupported sizes.
  explicit ComplexFFT(std::size_t n);
  ~ComplexFFT();
  ComplexFFT(ComplexFFT&&) noexcept;
  ComplexFFT& operator=(ComplexFFT&&) noexcept;
  std::size_t size() const noexcept;
  // out[k] = sum_j in[j] exp(-2 pi i j k / n). in and out may alias.
  void forward(const cfloat* in, cfloat* out);
  // out[j] = (1/n) sum_k in[k] exp(+2 pi i j k / n). in and out may alias.
  void inverse(const cfloat* in, cfloat* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class RealFFT {
 public:
  // Throws std::invalid_argument for unsupported sizes.
  explicit RealFFT(std::size_t n);
  ~RealFFT();
  RealFFT(RealFFT&&) noexcept;
  RealFFT& operator=(RealFFT&&) noexcept;
  std::size_t size() const noexcept;
  // n real samples -> n/2+1 bins, unnormalised (same convention as numpy.fft.rfft).
  void forward(const float* in, cfloat* out);
  // n/2+1 bins -> n real samples, scaled by 1/n (numpy.fft.irfft). Imaginary parts of the DC
  // (and, for even n, Nyquist) bins are ignored.
  void inverse(const cfloat* in, float* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgefault
