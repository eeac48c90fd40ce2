#include "proxy/openssl_memory.h"

#include <malloc.h>
#include <openssl/crypto.h>

#include <cstdlib>
#include <cstring>

namespace weft::proxy {
namespace openssl_memory {
namespace {

// Trivially destructible, so that it stays usable while other thread-local
// destructors (OpenSSL's own thread clean-up) still free memory; `Reaper`
// empties it and marks it closed at thread exit.
struct Cache {
  void* blocks[kSlots];
  size_t sizes[kSlots];  // malloc_usable_size of each
  int count;
  bool closed;
};
thread_local Cache cache{};

struct Reaper {
  bool armed = false;  // written on first use: constructs the reaper in this thread
  ~Reaper() {
    for (int i = 0; i < cache.count; ++i) std::free(cache.blocks[i]);
    cache.count = 0;
    cache.closed = true;
  }
};
thread_local Reaper reaper;

bool Cacheable(size_t size) { return size >= kMinCachedSize && size <= kMaxCachedSize; }

}  // namespace

void* Allocate(size_t size, const char*, int) {
  if (Cacheable(size) && !cache.closed) {
    // The newest block that fits; the rest keep their order (oldest first).
    for (int i = cache.count - 1; i >= 0; --i) {
      if (cache.sizes[i] >= size && cache.sizes[i] - size <= size / 4) {
        void* block = cache.blocks[i];
        const int after = cache.count - i - 1;
        std::memmove(cache.blocks + i, cache.blocks + i + 1, after * sizeof(cache.blocks[0]));
        std::memmove(cache.sizes + i, cache.sizes + i + 1, after * sizeof(cache.sizes[0]));
        --cache.count;
        return block;
      }
    }
  }
  return std::malloc(size);
}

void* Reallocate(void* block, size_t size, const char*, int) { return std::realloc(block, size); }

void Free(void* block, const char*, int) {
  if (block == nullptr) return;
  if (!cache.closed) {
    const size_t size = malloc_usable_size(block);
    if (Cacheable(size)) {
      reaper.armed = true;  // this thread's reaper empties the cache at exit
      if (cache.count == kSlots) {
        // Full: the oldest block goes, so that blocks of a size nobody asks
        // for again (from a handshake) cannot crowd out the record buffers.
        std::free(cache.blocks[0]);
        std::memmove(cache.blocks, cache.blocks + 1, (kSlots - 1) * sizeof(cache.blocks[0]));
        std::memmove(cache.sizes, cache.sizes + 1, (kSlots - 1) * sizeof(cache.sizes[0]));
        --cache.count;
      }
      cache.blocks[cache.count] = block;
      cache.sizes[cache.count] = size;
      ++cache.count;
      return;
    }
  }
  std::free(block);
}

int CachedBlocks() { return cache.count; }

}  // namespace openssl_memory

bool InstallOpenSslMemoryCache() {
  return CRYPTO_set_mem_functions(openssl_memory::Allocate, openssl_memory::Reallocate,
                                  openssl_memory::Free) == 1;
}

}  // namespace weft::proxy
