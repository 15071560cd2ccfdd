// The fuzz targets' oracle: a failed check prints what failed and aborts, which libFuzzer reports
// as a crash (saving the input) and the replay runner as a failed test.
#ifndef STERITRACK_TESTS_FUZZ_FUZZ_CHECK_H_
#define STERITRACK_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond, ...)                                                        \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "%s:%d: oracle failed: %s\n", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                             \
      std::fprintf(stderr, "\n");                                                    \
      std::abort();                                                                  \
    }                                                                                \
  } while (0)

#endif  // STERITRACK_TESTS_FUZZ_FUZZ_CHECK_H_
