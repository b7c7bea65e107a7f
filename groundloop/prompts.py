"""The prompts of SVP and the chat messages built from them."""

from __future__ import annotations

from typing import Any

SYSTEM_PROMPT = "You are a careful assistant. Describe only what is in the image."
BASE_PROMPT = "Please generate a detailed and comprehensive description for the content of this image. Be precise."


def grounded_prompt(grounding: str, base: str = BASE_PROMPT) -> str:
    """SVP's guided prompt: the grounding text inside <context>, then the base prompt."""
    return f"<context> {grounding} </context> {base}"


def yes_no_question(label: str) -> str:
    return f"Is there a {label} in the image?"


def messages(text: str) -> list[dict[str, Any]]:
    """A single user turn with one image, in the chat-template format processors expect."""
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
