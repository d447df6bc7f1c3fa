"""`selfhost data`: find the defects in fine-tuning data before they become a confidently wrong model."""
