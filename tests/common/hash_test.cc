#include "common/hash.h"

#include <catch2/catch.hpp>

#include <set>
#include <string>

namespace weft::common {
namespace {

TEST_CASE("FastHash64 tells apart lengths, single bit flips and seeds", "[hash]") {
  std::set<uint64_t> seen;
  std::string s;
  for (int len = 0; len <= 130; ++len) {
    CHECK(seen.insert(FastHash64(s)).second);  // every prefix length differs
    s.push_back(static_cast<char>('a' + len % 26));
  }
  // Every single-bit flip of a 100-byte input changes its hash.
  const std::string base(100, 'x');
  const uint64_t h = FastHash64(base);
  for (size_t byte = 0; byte < base.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string flipped = base;
      flipped[byte] = static_cast<char>(flipped[byte] ^ (1 << bit));
      INFO("byte " << byte << " bit " << bit);
      CHECK(FastHash64(flipped) != h);
    }
  }
  CHECK(FastHash64(base, 1) != FastHash64(base, 2));
  CHECK(FastHash64(base) == FastHash64(std::string(100, 'x')));  // deterministic
  // Zero bytes count (a run of names may contain them).
  CHECK(FastHash64(std::string(40, '\0')) != FastHash64(std::string(41, '\0')));
  CHECK(FastHash64(std::string(40, '\0')) != FastHash64(std::string(39, '\0') + '\1'));
}

}  // namespace
}  // namespace weft::common
