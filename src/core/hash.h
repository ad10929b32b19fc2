// Non-cryptographic hashes shared by every module: FNV-1a over bytes (content versions, ring
// positions, header keys) and a 64-bit finalizer that spreads FNV's weak low bits. Pure.
#pragma once

#include <cstdint>
#include <string_view>

namespace podlb {

constexpr uint64_t kFnv1a64Offset = 0xcbf29ce484222325ULL;

// FNV-1a, 64 bit; `seed` chains several fields into one hash.
constexpr uint64_t Fnv1a64(std::string_view bytes, uint64_t seed = kFnv1a64Offset) {
  uint64_t h = seed;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// MurmurHash3's fmix64: every input bit affects every output bit.
constexpr uint64_t Mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

// Well-spread 64-bit hash of a short key (ring hash, header values).
constexpr uint64_t HashKey(std::string_view bytes) { return Mix64(Fnv1a64(bytes)); }

}  // namespace podlb
