"""The vLLM sampler's request construction and engine selection (CPU), and the engine itself
on a GPU (marked `gpu`)."""

import pytest
from PIL import Image

from groundloop import vllm_sampler as vs


def test_chat_messages_put_the_image_in_the_user_turn_and_a_prefix_in_the_assistants():
    image = Image.new("RGB", (8, 8))
    (user,) = vs.chat_messages("Describe.", image)
    assert user["role"] == "user" and user["content"][0] == {"type": "image_pil", "image_pil": image}
    assert user["content"][1] == {"type": "text", "text": "Describe."}
    assert vs.chat_messages("Describe.", image, "A red")[1] == {"role": "assistant", "content": "A red"}


def test_sampling_kwargs_greedy_sampled_and_one_sentence():
    assert vs.sampling_kwargs(4, 0.0, 0.9, 32, 7) == {
        "n": 1,
        "temperature": 0.0,
        "top_p": 1.0,
        "max_tokens": 32,
        "seed": 7,
    }
    assert vs.sampling_kwargs(4, 0.7, 0.9, 32, None) == {"n": 4, "temperature": 0.7, "top_p": 0.9, "max_tokens": 32}
    one = vs.sampling_kwargs(1, 0.7, 1.0, 32, None, one_sentence=True)
    assert one["stop"] == [". ", "! ", "? "] and one["include_stop_str_in_output"]
    with pytest.raises(ValueError, match="max_tokens"):
        vs.sampling_kwargs(1, 0.7, 1.0, 0, None)


def test_each_adapter_folder_and_each_rewrite_of_it_gets_its_own_name(tmp_path):
    a, b = tmp_path / "iter_1" / "adapter", tmp_path / "iter_2" / "adapter"
    for folder in (a, b):
        folder.mkdir(parents=True)
        (folder / "adapter_config.json").write_text("{}")
    assert vs.adapter_name(a) != vs.adapter_name(b) and vs.adapter_name(a) == vs.adapter_name(a)
    before = vs.adapter_name(a)
    import os

    os.utime(a / "adapter_config.json", ns=(1, 1))
    assert vs.adapter_name(a) != before


def test_engine_selection():
    from groundloop.sampling import HFSampler

    assert isinstance(vs.load_sampler("hf", "shapesworld/vlm", max_new_tokens=4), HFSampler)
    with pytest.raises(ValueError, match="unknown sampling engine"):
        vs.load_sampler("tgi", "shapesworld/vlm")
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="vllm extra"):
            vs.load_sampler("vllm", "shapesworld/vlm")


def test_svp_config_takes_the_engine_and_refuses_others():
    from groundloop.config import ConfigError, load
    from pipelines.svp.config import SVPConfig

    assert load(SVPConfig, None, ["model.engine=vllm"]).model.engine == "vllm"
    with pytest.raises(ConfigError, match="model.engine"):
        load(SVPConfig, None, ["model.engine=tgi"])


@pytest.mark.gpu
def test_vllm_samples_n_captions_per_image_with_per_row_temperatures():
    torch = pytest.importorskip("torch")
    pytest.importorskip("vllm")
    if not torch.cuda.is_available():
        pytest.skip("needs a GPU")
    sampler = vs.VLLMSampler("llava-hf/llava-1.5-7b-hf", max_new_tokens=24, seed=0)
    image = Image.new("RGB", (336, 336), (200, 30, 30))
    out = sampler.generate([image, image], ["Describe the image.", "What colour is it?"], n=3, temperature=0.8)
    assert [len(o) for o in out] == [3, 3]
    rows = sampler.sample([image] * 2, ["Describe the image."] * 2, ["", "The image"], [0.0, 0.9], one_sentence=True)
    assert len(rows) == 2
