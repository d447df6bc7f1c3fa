"""`selfhost bench`: load generation and latency/throughput metrics defined in DESIGN.md §3."""
