"""Plumbing every workflow shares: the command line and config loader (`cli`), resumable stages
(`stages`), the streaming parquet sink (`sink`) and the Ray Train helpers (`training`)."""
