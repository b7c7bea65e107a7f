"""The ViMaR value-model workflow: `run` (sampling, CLIP rewards, TD(0) training with Ray Train), `config`."""
