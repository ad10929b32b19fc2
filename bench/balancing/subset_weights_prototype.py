#!/usr/bin/env python3
"""Prototype, not the product: would per-client call weights meet issue #12's subsetting targets?

podlb's subsetting (src/balancing/subset.cc) deals clients into rounds of S = pods / subset_size
slots, each pod hashed into one slot per round, and corrects overfull slots by moving pods to
alternative slots; more correction balances calls better and opens more connections when a pod
is replaced (BENCHMARKS.md, "Subsetting: the fleet"). This models the slots with a uniform random
home per pod and round (as the hash gives), the correction as "keep subset_size + 1, move the
lowest-priority extras to the emptiest of ALTS random alternatives if it is short", and then the
idea under test: each client water-fills its one unit of calls over its slot, given the loads
that the clients of the earlier rounds left (which every client can compute: clients are numbered
0..N-1, so every earlier round is complete). Weights never change which pods a client connects
to, so the churn of a replacement stays that of the correction alone.

  /usr/bin/python3 bench/balancing/subset_weights_prototype.py --seeds 5
"""
import argparse
import random


def water_fill(members, load):
    """Raises the lowest loads in `members` to a common level with one unit of calls."""
    levels = sorted(load[p] for p in members)
    prefix = 0.0
    for i, level in enumerate(levels):
        prefix += level
        following = levels[i + 1] if i + 1 < len(levels) else float("inf")
        target = (1.0 + prefix) / (i + 1)
        if target <= following:
            break
    for p in members:
        load[p] = max(load[p], target)


def calls_max_min(pods, clients, subset, seed, alternatives, weighted):
    rng = random.Random(seed)
    slots = round(pods / subset)
    rounds = (clients + slots - 1) // slots
    load = [0.0] * pods
    for r in range(rounds):
        home = [rng.randrange(slots) for _ in range(pods)]
        priority = [rng.random() for _ in range(pods)]
        alts = [[rng.randrange(slots) for _ in range(alternatives)] for _ in range(pods)]
        count = [0] * slots
        by_slot = [[] for _ in range(slots)]
        for p in range(pods):
            count[home[p]] += 1
            by_slot[home[p]].append(p)
        final = home[:]
        for s in range(slots):
            if count[s] <= subset + 1:
                continue
            for p in sorted(by_slot[s], key=lambda q: priority[q])[subset + 1:]:
                best = min(alts[p], key=lambda a: count[a], default=None)
                if best is not None and count[best] < subset:
                    final[p] = best
        members = [[] for _ in range(slots)]
        for p in range(pods):
            members[final[p]].append(p)
        for s in range(min(slots, clients - r * slots)):
            if not members[s]:
                continue
            if weighted:
                water_fill(members[s], load)
            else:
                for p in members[s]:
                    load[p] += 1.0 / len(members[s])
    return max(load) / min(load)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--subset", type=int, default=25)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    print("calls per pod, max/min   (seed: no correction + weights | 1 alternative | "
          "1 alternative + weights)")
    for seed in range(1, args.seeds + 1):
        row = [calls_max_min(args.pods, args.clients, args.subset, seed, alts, weighted)
               for alts, weighted in ((0, True), (1, False), (1, True))]
        print(f"seed {seed}: " + "  ".join(f"{v:.2f}" for v in row))


if __name__ == "__main__":
    main()
