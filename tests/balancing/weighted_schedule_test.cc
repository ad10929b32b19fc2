// The pickers' weighted turns and draws, without a balancer.
#include "balancing/weighted_schedule.h"

#include <map>
#include <random>

#include "gtest/gtest.h"

namespace podlb::balancing {
namespace {

std::vector<Candidate> WithWeights(std::vector<uint32_t> weights) {
  std::vector<Candidate> out;
  for (uint32_t i = 0; i < weights.size(); ++i) out.push_back({.index = i, .weight = weights[i]});
  return out;
}

TEST(WeightedScheduleTest, EqualWeightsArePlainRotation) {
  auto candidates = WithWeights({5, 5, 5});
  EXPECT_TRUE(EqualWeights(candidates));
  EXPECT_EQ(WeightedSchedule(candidates), (std::vector<uint32_t>{0, 1, 2}));
  // A weight of 0 counts as 1.
  EXPECT_TRUE(EqualWeights(WithWeights({0, 1})));
}

TEST(WeightedScheduleTest, EachAsOftenAsItsWeightAndSpreadOut) {
  auto schedule = WeightedSchedule(WithWeights({2, 6, 4}));  // common divisor 2: 1, 3, 2
  ASSERT_EQ(schedule.size(), 6u);
  std::map<uint32_t, int> turns;
  for (uint32_t position : schedule) ++turns[position];
  EXPECT_EQ(turns, (std::map<uint32_t, int>{{0, 1}, {1, 3}, {2, 2}}));
  for (size_t i = 0; i + 1 < schedule.size(); ++i) {
    EXPECT_FALSE(schedule[i] == 1 && schedule[i + 1] == 1 && i + 2 < schedule.size() &&
                 schedule[i + 2] == 1)
        << "the heavy candidate's turns are bunched";
  }
}

TEST(WeightedScheduleTest, HugeWeightSumsAreScaledAndEveryoneKeepsATurn) {
  auto schedule = WeightedSchedule(WithWeights({1, 1'000'000'000, 3}));
  EXPECT_LE(schedule.size(), 70'000u);
  std::map<uint32_t, int> turns;
  for (uint32_t position : schedule) ++turns[position];
  EXPECT_GE(turns[0], 1);
  EXPECT_GE(turns[2], 1);
  EXPECT_GT(turns[1], 60'000);
}

TEST(WeightedDrawTest, DrawsInProportionToWeight) {
  WeightedDraw draw(WithWeights({1, 3, 6}));
  std::mt19937_64 rng(7);
  std::map<uint32_t, int> hits;
  for (int i = 0; i < 100'000; ++i) ++hits[draw.Draw(rng())];
  EXPECT_NEAR(hits[0], 10'000, 600);
  EXPECT_NEAR(hits[1], 30'000, 900);
  EXPECT_NEAR(hits[2], 60'000, 1'000);
}

}  // namespace
}  // namespace podlb::balancing
