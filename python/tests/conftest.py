import os
import random

import numpy as np
import pytest


@pytest.fixture
def rng(request):
    """A fresh seed per test, printed (pytest shows it on failure); STILE_TEST_SEED repeats one."""
    seed = int(os.environ.get("STILE_TEST_SEED", random.SystemRandom().randrange(2**32)))
    print(f"seed {seed} ({request.node.name})")
    return np.random.default_rng(seed)
