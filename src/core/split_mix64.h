// SplitMix64: a small, fast, non-cryptographic random sequence (Steele et al.), for picks that
// only need to be spread (power-of-two choices, random tie breaks). One per thread; not
// thread-safe.
#pragma once

#include <cstdint>

namespace podlb {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    state_ += 0x9e3779b97f4a7c15ULL;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

}  // namespace podlb
