"""Self-training from the ViMaR endpoint: `run` (captions from Serve, LoRA with Ray Train), `config`."""
