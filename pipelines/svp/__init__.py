"""The SVP workflow: `run` (the Ray job), `config`, `train` (LoRA with Ray Train), `report`."""
