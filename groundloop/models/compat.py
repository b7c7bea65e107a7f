"""Loading image-only VLM processors where torchvision is not installed.

The Qwen2-VL, Qwen2.5-VL, LLaVA-OneVision and SmolVLM processors carry a video processor, and
in transformers 5 every video processor needs torchvision; with no CPU torchvision build on
a machine, `AutoProcessor` cannot load those families at all, though images need no video
processor. `allow_processors_without_torchvision` lets them load without one (a no-op where
torchvision is installed).
"""

from __future__ import annotations

from typing import Any


def allow_processors_without_torchvision() -> None:
    """Let the four processors that take a video processor be built and loaded without torchvision (idempotent)."""
    from transformers import is_torchvision_available

    if is_torchvision_available():
        return
    from transformers import (
        LlavaOnevisionProcessor,
        ProcessorMixin,
        Qwen2_5_VLProcessor,
        Qwen2VLProcessor,
        SmolVLMProcessor,
    )

    # Any: the classes are patched in place, which their declared types do not allow.
    patched: tuple[Any, ...] = (Qwen2VLProcessor, Qwen2_5_VLProcessor, LlavaOnevisionProcessor, SmolVLMProcessor)
    for cls in patched:
        if cls.__dict__.get("_video_free", False):
            continue
        base = cls.get_attributes.__func__

        def get_attributes(klass: Any, _base: Any = base) -> list[str]:
            return [a for a in _base(klass) if a != "video_processor"]

        cls.get_attributes = classmethod(get_attributes)
        cls._video_free = True

    # SmolVLMProcessor.apply_chat_template reads video_processor.num_frames/fps even for image-only chats.
    smol: Any = SmolVLMProcessor
    if not smol.__dict__.get("_video_free_chat", False):
        original = smol.apply_chat_template

        def apply_chat_template(self: Any, conversation: Any, chat_template: Any = None, **kwargs: Any) -> Any:
            if getattr(self, "video_processor", None) is None:
                return ProcessorMixin.apply_chat_template(self, conversation, chat_template, **kwargs)
            return original(self, conversation, chat_template, **kwargs)

        smol.apply_chat_template = apply_chat_template
        smol._video_free_chat = True
