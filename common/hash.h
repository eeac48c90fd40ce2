// Stable (process- and run-independent) 64-bit FNV-1a hashing, for resource
// versions that stay the same across restarts of weftd.
#pragma once

#include <cstdint>
#include <cstring>
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
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out(16, '0');
    for (int i = 15, shift = 0; i >= 0; --i, shift += 4) out[i] = kDigits[(state_ >> shift) & 0xf];
    return out;
  }

 private:
  uint64_t state_ = 0xcbf29ce484222325ULL;
};

// A fast 64-bit hash of bytes (16 bytes per multiply, two lanes), for
// fingerprints inside one process where speed matters: weftd hashes the
// resource names of every state-of-the-world ACK, 50 KB each at 1,000
// services. Not for anything an adversary may want to collide with others:
// a collision only makes weftd skip re-reading the subscription of the
// client that sent it.
inline uint64_t FastHash64(std::string_view bytes, uint64_t seed = 0) {
  constexpr uint64_t k0 = 0x9e3779b97f4a7c15ULL, k1 = 0xc2b2ae3d27d4eb4fULL, k2 = 0x165667b19e3779f9ULL;
  auto mix = [](uint64_t a, uint64_t b) {
    const __uint128_t p = static_cast<__uint128_t>(a) * b;
    return static_cast<uint64_t>(p) ^ static_cast<uint64_t>(p >> 64);
  };
  auto load = [](const char* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  };
  const char* p = bytes.data();
  size_t n = bytes.size();
  uint64_t a = seed ^ k0, b = seed ^ k1;
  for (; n >= 32; p += 32, n -= 32) {
    a = mix(load(p) ^ k0, load(p + 8) ^ a);
    b = mix(load(p + 16) ^ k1, load(p + 24) ^ b);
  }
  for (; n >= 8; p += 8, n -= 8) a = mix(load(p) ^ k2, a ^ k1);
  uint64_t tail = 0;
  std::memcpy(&tail, p, n);
  a = mix(tail ^ k0, a ^ (n + 1));
  return mix(a ^ bytes.size(), b ^ k2);
}

}  // namespace weft::common
