// Python bindings for the FFT: rfft / irfft / fft / ifft over the last axis, batched over all
// leading axes (one transform object per call, reused for every row, GIL released), plus
// next_fast_len and fft_size_supported. No algorithm here: see cpp/src/fft.cpp.
#include <pybind11/complex.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <complex>
#include <cstddef>
#include <string>
#include <vector>

#include "edgefault/fft.hpp"

namespace py = pybind11;
using edgefault::cfloat;

namespace {

using FArr = py::array_t<float, py::array::c_style | py::array::forcecast>;
using CArr = py::array_t<cfloat, py::array::c_style | py::array::forcecast>;

std::string dtype_name(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// Converts `x` to a C-contiguous array of T, rejecting dtypes outside `kinds` with ValueError.
template <class Arr>
Arr as_array(const py::handle& x, const char* fn, const char* arg, const std::string& kinds,
             const char* expected) {
  py::array a = py::array::ensure(x);
  if (!a) throw py::value_error(std::string(fn) + ": " + arg + " must be array-like, got " +
                                py::str(py::type::of(x)).cast<std::string>());
  const char kind = a.dtype().kind();
  if (kinds.find(kind) == std::string::npos) {
    std::string msg = std::string(fn) + ": " + arg + " must be " + expected + ", got dtype " +
                      dtype_name(a);
    if (kind == 'c') msg += " (use fft for complex input)";
    throw py::value_error(msg);
  }
  if (a.ndim() < 1)
    throw py::value_error(std::string(fn) + ": " + arg +
                          " must have at least 1 dimension (transform runs over the last axis)");
  return Arr::ensure(a);
}

std::vector<py::ssize_t> shape_with_last(const py::array& a, py::ssize_t last) {
  std::vector<py::ssize_t> shape(a.shape(), a.shape() + a.ndim());
  shape.back() = last;
  return shape;
}

std::size_t rows_of(const py::array& a) {
  std::size_t rows = 1;
  for (py::ssize_t i = 0; i + 1 < a.ndim(); ++i) rows *= static_cast<std::size_t>(a.shape(i));
  return rows;
}

void check_size(const char* fn, const char* what, py::ssize_t n) {
  if (n < 1 || !edgefault::fft_size_supported(static_cast<std::size_t>(n)))
    throw py::value_error(std::string(fn) + ": unsupported transform length " + what + "=" +
                          std::to_string(n) +
                          "; expected n >= 1 of the form 2^a * 3^b * 5^c (see next_fast_len)");
}

py::array rfft(const py::object& x_in) {
  FArr x = as_array<FArr>(x_in, "rfft", "x", "biuf", "a real (integer or floating) array");
  const py::ssize_t n = x.shape(x.ndim() - 1);
  check_size("rfft", "x.shape[-1]", n);
  const std::size_t nz = static_cast<std::size_t>(n);
  const std::size_t nb = nz / 2 + 1;
  edgefault::RealFFT f(nz);
  py::array_t<cfloat> out(shape_with_last(x, static_cast<py::ssize_t>(nb)));
  const float* src = x.data();
  cfloat* dst = out.mutable_data();
  const std::size_t rows = rows_of(x);
  {
    py::gil_scoped_release release;
    for (std::size_t r = 0; r < rows; ++r) f.forward(src + r * nz, dst + r * nb);
  }
  return std::move(out);
}

py::array irfft(const py::object& X_in, const py::object& n_obj) {
  CArr X = as_array<CArr>(X_in, "irfft", "X", "biufc", "a numeric (complex) array");
  const py::ssize_t m = X.shape(X.ndim() - 1);
  if (m < 1) throw py::value_error("irfft: X.shape[-1] must be >= 1, got 0");
  if (!n_obj.is_none() && !py::hasattr(n_obj, "__index__"))
    throw py::value_error("irfft: n must be an integer or None, got " +
                          py::str(py::type::of(n_obj)).cast<std::string>());
  const py::ssize_t n =
      n_obj.is_none() ? 2 * (m - 1) : n_obj.attr("__index__")().cast<py::ssize_t>();
  check_size("irfft", "n", n);
  if (m != n / 2 + 1)
    throw py::value_error("irfft: expected X.shape[-1] == n//2+1 == " + std::to_string(n / 2 + 1) +
                          " for n=" + std::to_string(n) + ", got " + std::to_string(m));
  const std::size_t nz = static_cast<std::size_t>(n);
  const std::size_t nb = static_cast<std::size_t>(m);
  edgefault::RealFFT f(nz);
  py::array_t<float> out(shape_with_last(X, n));
  const cfloat* src = X.data();
  float* dst = out.mutable_data();
  const std::size_t rows = rows_of(X);
  {
    py::gil_scoped_release release;
    for (std::size_t r = 0; r < rows; ++r) f.inverse(src + r * nb, dst + r * nz);
  }
  return std::move(out);
}

py::array cfft(const py::object& x_in, bool inverse) {
  const char* fn = inverse ? "ifft" : "fft";
  CArr x = as_array<CArr>(x_in, fn, "x", "biufc", "a numeric (complex or real) array");
  const py::ssize_t n = x.shape(x.ndim() - 1);
  check_size(fn, "x.shape[-1]", n);
  const std::size_t nz = static_cast<std::size_t>(n);
  edgefault::ComplexFFT f(nz);
  py::array_t<cfloat> out(shape_with_last(x, n));
  const cfloat* src = x.data();
  cfloat* dst = out.mutable_data();
  const std::size_t rows = rows_of(x);
  {
    py::gil_scoped_release release;
    if (inverse)
      for (std::size_t r = 0; r < rows; ++r) f.inverse(src + r * nz, dst + r * nz);
    else
      for (std::size_t r = 0; r < rows; ++r) f.forward(src + r * nz, dst + r * nz);
  }
  return std::move(out);
}

}  // namespace

void register_fft(py::module_& m) {
  m.def("rfft", &rfft, py::arg("x"),
        "Real FFT over the last axis: float32 (..., n) -> complex64 (..., n//2+1), unnormalised "
        "(numpy.fft.rfft convention). n must be 2^a 3^b 5^c. Other real dtypes are cast to "
        "float32; complex input raises ValueError.");
  m.def("irfft", &irfft, py::arg("X"), py::arg("n") = py::none(),
        "Inverse real FFT over the last axis: complex64 (..., n//2+1) -> float32 (..., n), "
        "scaled by 1/n (numpy.fft.irfft). n defaults to 2*(X.shape[-1]-1). Imaginary parts of "
        "the DC and Nyquist bins are ignored.");
  m.def(
      "fft", [](const py::object& x) { return cfft(x, false); }, py::arg("x"),
      "Complex FFT over the last axis: complex64 (..., n) -> complex64 (..., n), unnormalised.");
  m.def(
      "ifft", [](const py::object& x) { return cfft(x, true); }, py::arg("x"),
      "Inverse complex FFT over the last axis, scaled by 1/n (numpy.fft.ifft).");
  m.def(
      "next_fast_len",
      [](py::ssize_t n) {
        if (n < 0) throw py::value_error("next_fast_len: n must be >= 0, got " + std::to_string(n));
        return edgefault::next_fast_fft_size(static_cast<std::size_t>(n));
      },
      py::arg("n"), "Smallest supported FFT length (2^a 3^b 5^c) >= n.");
  m.def(
      "fft_size_supported",
      [](py::ssize_t n) {
        return n >= 1 && edgefault::fft_size_supported(static_cast<std::size_t>(n));
      },
      py::arg("n"), "True if n is a supported FFT length (n >= 1 and 2^a 3^b 5^c).");
}
