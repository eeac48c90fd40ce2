// Stable (process- and run-independent) 64-bit FNV-1a hashing, for resource
// versions that stay the same across restarts of weftd.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace weft::common {

class StableHasher {
 public:
  StableHasher& Add(std::string_view bytes) {
    for (unsigned char c : bytes) {
      state_ ^= c;
      state_ *= 0x100000001b3ULL;
    }
    // Length-delimit so ("ab","c") and ("a","bc") differ.
    uint64_t n = bytes.size();
    for (int i = 0; i < 8; ++i) {
      state_ ^= static_cast<unsigned char>(n >> (8 * i));
      state_ *= 0x100000001b3ULL;
    }
    return *this;
  }
  uint64_t Value() const { return state_; }
  // 16 lowercase hex digits.
  std::string Hex() const {
    char buf[17];
    std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(state_));
    return buf;
  }

 private:
  uint64_t state_ = 0xcbf29ce484222325ULL;
};

}  // namespace weft::common
