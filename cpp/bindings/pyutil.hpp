// Helpers shared by the binding files (private to cpp/bindings): the GIL-aware lock of a core
// object, and the strict dict-schema readers (unknown keys and wrong types raise ValueError
// naming the key).
#pragma once
#include <pybind11/pybind11.h>

#include <cmath>
#include <mutex>
#include <set>
#include <string>

#include "edgefault/lock.hpp"

namespace efpy {

namespace py = pybind11;

// Locks a core object's mutex from a thread that holds the GIL. It never waits with the GIL held:
// a thread holding the mutex may need the GIL before it lets go (a push re-acquires it when its
// computation ends), so waiting with the GIL would deadlock. Uncontended it is one try_lock.
// The rule for every binding: wait for a core lock only with the GIL released (this helper, or
// py::gil_scoped_release before calling a locking member).
inline edgefault::Lock lock_with_gil(std::mutex& m) {
  edgefault::Lock l(m, std::try_to_lock);
  if (!l.owns_lock()) {
    py::gil_scoped_release release;
    l.lock();
  }
  return l;
}

inline std::string join(const std::set<std::string>& s) {
  std::string out;
  for (const auto& v : s) out += (out.empty() ? "" : ", ") + v;
  return out;
}

inline std::string pyrepr(const py::handle& h) { return py::repr(h).cast<std::string>(); }

inline bool is_number(const py::handle& h) {
  return !py::isinstance<py::bool_>(h) && !py::isinstance<py::str>(h) && PyNumber_Check(h.ptr()) &&
         (py::isinstance<py::int_>(h) || py::isinstance<py::float_>(h) || py::hasattr(h, "__float__"));
}

inline double get_number(const py::handle& h, const std::string& where) {
  if (!is_number(h)) throw py::value_error(where + ": expected a number, got " + pyrepr(h));
  const double v = py::float_(py::reinterpret_borrow<py::object>(h)).cast<double>();
  if (!std::isfinite(v)) throw py::value_error(where + ": expected a finite number, got " + pyrepr(h));
  return v;
}

inline std::size_t get_count(const py::handle& h, const std::string& where, long long lo) {
  const double v = get_number(h, where);
  if (v != std::floor(v) || v < static_cast<double>(lo) || v > 1e9)
    throw py::value_error(where + ": expected an integer >= " + std::to_string(lo) + ", got " + pyrepr(h));
  return static_cast<std::size_t>(v);
}

inline bool get_bool(const py::handle& h, const std::string& where) {
  if (!py::isinstance<py::bool_>(h)) throw py::value_error(where + ": expected true or false, got " + pyrepr(h));
  return h.cast<bool>();
}

inline std::string get_str(const py::handle& h, const std::string& where) {
  if (!py::isinstance<py::str>(h)) throw py::value_error(where + ": expected a string, got " + pyrepr(h));
  return h.cast<std::string>();
}

inline void get_band(const py::handle& h, const std::string& where, double& lo, double& hi) {
  if (!h || h.is_none()) return;
  if (!(py::isinstance<py::list>(h) || py::isinstance<py::tuple>(h)) || py::len(h) != 2)
    throw py::value_error(where + ": expected [lo, hi] in Hz, got " + pyrepr(h));
  auto seq = py::reinterpret_borrow<py::sequence>(h);
  lo = get_number(seq[0], where + "[0]");
  hi = get_number(seq[1], where + "[1]");
}

inline void check_keys(const py::dict& d, const std::set<std::string>& allowed, const std::string& where) {
  for (auto item : d) {
    if (!py::isinstance<py::str>(item.first))
      throw py::value_error(where + ": keys must be strings, got " + pyrepr(item.first));
    const auto k = item.first.cast<std::string>();
    if (!allowed.count(k))
      throw py::value_error(where + ": unknown key '" + k + "'; allowed keys: " + join(allowed));
  }
}

// Optional key: returns a null handle if absent or None.
inline py::handle opt(const py::dict& d, const char* key) {
  if (!d.contains(key)) return py::handle();
  py::handle h = d[key];
  return h.is_none() ? py::handle() : h;
}

}  // namespace efpy
