"""Test configuration: offline, quiet torch threads, shared fixtures."""

import os

# Before torch is imported anywhere: idle OpenMP threads must sleep, not spin (shared 2-core machines).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
