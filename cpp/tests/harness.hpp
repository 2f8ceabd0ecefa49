// Minimal in-tree test harness (no network at configure time, so no doctest/Catch2 download).
#pragma once
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <string>
#include <vector>

namespace eftest {
struct Case { const char* name; std::function<void()> fn; };
inline std::vector<Case>& registry() { static std::vector<Case> r; return r; }
inline int& failures() { static int f = 0; return f; }
struct Register { Register(const char* n, std::function<void()> f) { registry().push_back({n, std::move(f)}); } };

inline int run_all() {
  int failed_cases = 0;
  for (auto& c : registry()) {
    int before = failures();
    try { c.fn(); } catch (const std::exception& e) {
      std::printf("  %s: unexpected exception: %s\n", c.name, e.what()); ++failures();
    }
    bool ok = failures() == before;
    if (!ok) ++failed_cases;
    std::printf("%s %s\n", ok ? "PASS" : "FAIL", c.name);
  }
  std::printf("%d passed, %d failed\n", static_cast<int>(registry().size()) - failed_cases, failed_cases);
  return failed_cases == 0 ? 0 : 1;
}
}  // namespace eftest

#define EF_CAT2(a, b) a##b
#define EF_CAT(a, b) EF_CAT2(a, b)
#define TEST_CASE(name)                                                     \
  static void EF_CAT(ef_test_, __LINE__)();                                 \
  static eftest::Register EF_CAT(ef_reg_, __LINE__)(name, EF_CAT(ef_test_, __LINE__)); \
  static void EF_CAT(ef_test_, __LINE__)()
#define CHECK(cond)                                                                       \
  do { if (!(cond)) { std::printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
       ++eftest::failures(); } } while (0)
#define CHECK_CLOSE(a, b, tol)                                                              \
  do { double ef_a = (a), ef_b = (b);                                                       \
       if (!(std::fabs(ef_a - ef_b) <= (tol))) {                                            \
         std::printf("  %s:%d: %s=%g vs %s=%g (tol %g)\n", __FILE__, __LINE__, #a, ef_a, #b, ef_b, (double)(tol)); \
         ++eftest::failures(); } } while (0)
#define CHECK_THROWS(expr)                                                                 \
  do { bool ef_thrown = false; try { (void)(expr); } catch (const std::exception&) { ef_thrown = true; } \
       if (!ef_thrown) { std::printf("  %s:%d: %s did not throw\n", __FILE__, __LINE__, #expr); \
         ++eftest::failures(); } } while (0)
#define TEST_MAIN() int main() { return eftest::run_all(); }
