"""Training drivers of the shipped ShapesWorld models (detector, VLM, CLIP):
`python -m recipes.worlds.train_vlm ...`, as `scripts/rebuild_models.sh` runs them."""
