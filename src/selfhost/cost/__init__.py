"""`selfhost cost`: dollars per million tokens from measured throughput, and break-even against an API."""
