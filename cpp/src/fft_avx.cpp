// The FFT kernels of fft.cpp compiled once more with -mavx (set for this file in
// cpp/CMakeLists.txt on x86): the same source and the same arithmetic in the same order, VEX
// encoded (three-operand 128-bit instructions, no FMA), so results are bit-identical to the
// baseline build with fewer register copies. fft.cpp uses these engines when the CPU supports
// AVX (EDGEFAULT_FFT_ISA=base forces the baseline). Without AVX flags this file only provides
// makers that return nullptr.
#if defined(__AVX__) && !defined(__FMA__)
#define EF_FFT_AVX_VARIANT 1
#include "fft.cpp"  // NOLINT(bugprone-suspicious-include): deliberate second build of the kernels
#else
#include "fft_engine.hpp"

namespace edgefault {
namespace fft_detail {
bool avx_built() noexcept { return false; }
std::unique_ptr<ComplexEngine> make_complex_avx(std::size_t) { return nullptr; }
std::unique_ptr<RealEngine> make_real_avx(std::size_t) { return nullptr; }
}  // namespace fft_detail
}  // namespace edgefault
#endif
