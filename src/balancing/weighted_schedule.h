// Weighted turns for the pickers: a smooth weighted round-robin schedule (each candidate as
// often as its weight, a heavy one's turns spread out rather than bunched) and a draw in
// proportion to weight. Built once per picker from its candidates; read-only afterwards, so any
// thread may use them.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "balancing/candidate.h"

namespace podlb::balancing {

// Whether every candidate has the same weight (a weight of 0 counts as 1).
bool EqualWeights(std::span<const Candidate> candidates);

// Positions in `candidates`, each as often as its weight divided by the weights' common divisor,
// interleaved (nginx's smooth weighted round robin). Equal weights give 0, 1, ..., n-1. Weight
// sums above 65,536 are scaled down to that length (each candidate keeps at least one turn).
std::vector<uint32_t> WeightedSchedule(std::span<const Candidate> candidates);

// A position drawn in proportion to weight from a uniform 64-bit `random`.
class WeightedDraw {
 public:
  explicit WeightedDraw(std::span<const Candidate> candidates);
  uint32_t Draw(uint64_t random) const;

 private:
  std::vector<uint64_t> cumulative_;  // running sums of the weights
};

}  // namespace podlb::balancing
