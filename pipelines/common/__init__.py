"""Plumbing every workflow shares: the command line and config loader (`cli`), the config
sections every recipe has (`config`: run, LoRA, Train workers, actor-pool resources), the Ray
Data actor stage (`pools`), resumable stages (`stages`), the streaming parquet sink (`sink`)
and the Ray Train helpers (`training`)."""
