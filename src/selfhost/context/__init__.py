"""`selfhost context`: real-tokenizer counts, budgets, packing that never overflows, truncation probes."""
