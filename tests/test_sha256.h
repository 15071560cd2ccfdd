// The production SHA-256 (steritrack_crypto) for tests that build core services. Stateless.
#ifndef STERITRACK_TESTS_TEST_SHA256_H_
#define STERITRACK_TESTS_TEST_SHA256_H_

#include <memory>

#include "steritrack/sha256.h"

namespace steritrack {

inline const Sha256* TestSha256() {
  static const Sha256* const sha256 = NewSha256().release();
  return sha256;
}

}  // namespace steritrack

#endif  // STERITRACK_TESTS_TEST_SHA256_H_
