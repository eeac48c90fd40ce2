// OpenSSL's large allocations (TLS record buffers) through a small cache per
// thread.
//
// A TLS stream gives its ~17 KB read buffer back whenever a read waits
// (SSL_MODE_RELEASE_BUFFERS and SSL_free_buffers in byte_stream.cc), so
// that a waiting connection holds a few KB. The next read allocates it
// again: on a kept-alive mTLS connection that is a malloc and a free of a
// block far above glibc's per-thread cache for every request, served from
// the arena's bins with their coalescing (about 2 % of a sidecar's CPU in
// the pair benchmark, docs/benchmarks.md "Session 9"). Kept here instead,
// the few blocks a worker cycles through are reused as they are; memory a
// waiting connection holds stays as small as before, and a thread keeps no
// more than kSlots blocks (0.5 MB).
#pragma once

#include <cstddef>

namespace weft::proxy {

// Routes OpenSSL's allocations through the cache. Must run before OpenSSL
// allocates anything (first thing in main); false when that was too late,
// in which case OpenSSL keeps using malloc directly.
bool InstallOpenSslMemoryCache();

// The cache's allocation functions, as OpenSSL calls them (public for
// tests). Blocks of kMinCachedSize..kMaxCachedSize bytes are kept on free
// (the oldest one freed when kSlots are kept) and handed out again for
// requests they fit without wasting more than a quarter, newest first; the
// rest is malloc and free. A thread's blocks are freed when it exits.
namespace openssl_memory {
inline constexpr size_t kMinCachedSize = 4 * 1024;
inline constexpr size_t kMaxCachedSize = 64 * 1024;
inline constexpr int kSlots = 8;
void* Allocate(size_t size, const char* file, int line);
void* Reallocate(void* block, size_t size, const char* file, int line);
void Free(void* block, const char* file, int line);
// Blocks this thread holds (tests).
int CachedBlocks();
}  // namespace openssl_memory

}  // namespace weft::proxy
