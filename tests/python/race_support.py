"""What the randomized race tests share: their knobs, the seed, a budget of
attempts and time, and a report of violations that prints the seed to replay.

  BATON_RACE_ITERS    attempts per race test (default 10000)
  BATON_RACE_SECONDS  soft time budget per race test (default 6)
  BATON_RACE_SEED     the seed; random (and printed) when unset
"""

import collections
import os
import random
import time

ITERS = int(os.environ.get("BATON_RACE_ITERS", "10000"))
BUDGET_S = float(os.environ.get("BATON_RACE_SECONDS", "6"))
SEED = int(os.environ.get("BATON_RACE_SEED", str(random.SystemRandom().randrange(1 << 30))))


def rng_for(test_name: str) -> random.Random:
    return random.Random(f"{SEED}:{test_name}")


class Budget:
    """Shared attempt counter plus a soft wall-clock limit."""

    def __init__(self, attempts: int, seconds: float = BUDGET_S):
        self.left = attempts
        self.deadline = time.monotonic() + seconds
        self.used = 0

    def take(self) -> bool:
        if self.left <= 0 or time.monotonic() >= self.deadline:
            return False
        self.left -= 1
        self.used += 1
        return True


class Report:
    def __init__(self, test: str):
        self.test = test
        self.violations: list[str] = []
        self.stats = collections.Counter()

    def violation(self, msg: str) -> None:
        self.violations.append(msg)

    def check(self) -> None:
        summary = f"[{self.test}] seed={SEED} stats={dict(sorted(self.stats.items()))}"
        print(summary)
        if self.violations:
            shown = "\n  ".join(self.violations[:15])
            more = f"\n  ... and {len(self.violations) - 15} more" if len(self.violations) > 15 else ""
            raise AssertionError(f"{summary}\n{len(self.violations)} violation(s):\n  {shown}{more}")


def pick(rng: random.Random, weights: dict):
    return rng.choices(list(weights), list(weights.values()))[0]
