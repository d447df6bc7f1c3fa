"""`selfhost serve`: start a real engine with the command `fit` recommends, and check its memory against the plan."""
