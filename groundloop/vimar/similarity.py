"""Image-text similarity with a CLIP model (the `ImageTextScorer` of ViMaR's reward)."""

from __future__ import annotations

from typing import Any, Protocol

import torch
import torch.nn.functional as F
from PIL import Image


class ImageTextScorer(Protocol):
    def score(self, images: list[Image.Image], texts: list[str]) -> list[float]:
        """Similarity of each (image, text) pair."""
        ...


class ClipScorer:
    """Cosine similarity of CLIP image and text embeddings."""

    def __init__(self, model: Any, processor: Any) -> None:
        self.model = model.eval()
        self.processor = processor
        # a tokenizer saved without model_max_length says 1e30: the text model's positions bound it
        positions = model.config.text_config.max_position_embeddings
        self.max_text_tokens = min(positions, getattr(processor.tokenizer, "model_max_length", positions))

    @torch.no_grad()
    def embed_images(self, images: list[Image.Image]) -> torch.Tensor:
        """(N, D) unit-norm image embeddings."""
        px = self.processor.image_processor(images=images, return_tensors="pt")["pixel_values"]
        return F.normalize(self.model.get_image_features(pixel_values=px).pooler_output, dim=-1)

    @torch.no_grad()
    def embed_texts(self, texts: list[str]) -> torch.Tensor:
        """(M, D) unit-norm text embeddings."""
        enc = self.processor.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_text_tokens, return_tensors="pt"
        )
        return F.normalize(self.model.get_text_features(**enc).pooler_output, dim=-1)

    def similarity(self, images: list[Image.Image], texts: list[str]) -> torch.Tensor:
        """(N, M) cosine similarities of every image with every text."""
        return self.embed_images(images) @ self.embed_texts(texts).T

    def score(self, images: list[Image.Image], texts: list[str]) -> list[float]:
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} texts")
        return (self.embed_images(images) * self.embed_texts(texts)).sum(-1).tolist()
