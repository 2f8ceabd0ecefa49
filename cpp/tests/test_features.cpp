#include "harness.hpp"
TEST_MAIN()
