"""Evaluation tools: `run` (captioning decoders, CHAIR / POPE), `rm` (reward-model bench), `caption` (one image)."""
