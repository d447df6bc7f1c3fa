"""`selfhost tune`: LoRA fine-tuning and a measured base-vs-tuned comparison."""
