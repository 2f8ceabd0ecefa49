// Internal interface between the public FFT classes (fft.cpp) and the kernels, which are built
// twice on x86: baseline (fft.cpp) and AVX (fft_avx.cpp, the same source), picked at run time.
#pragma once
#include <cstddef>
#include <memory>

#include "edgefault/fft.hpp"

namespace edgefault {
namespace fft_detail {

struct ComplexEngine {
  virtual ~ComplexEngine() = default;
  virtual void forward(const cfloat* in, cfloat* out) = 0;
  virtual void inverse(const cfloat* in, cfloat* out) = 0;
};

struct RealEngine {
  virtual ~RealEngine() = default;
  virtual void forward(const float* in, cfloat* out) = 0;
  virtual void inverse(const cfloat* in, float* out) = 0;
};

bool avx_built() noexcept;  // fft_avx.cpp was compiled with AVX
// n must be supported. The _avx makers return nullptr when fft_avx.cpp was built without AVX.
std::unique_ptr<ComplexEngine> make_complex_base(std::size_t n);
std::unique_ptr<RealEngine> make_real_base(std::size_t n);
std::unique_ptr<ComplexEngine> make_complex_avx(std::size_t n);
std::unique_ptr<RealEngine> make_real_avx(std::size_t n);

}  // namespace fft_detail
}  // namespace edgefault
