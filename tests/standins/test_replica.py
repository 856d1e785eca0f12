"""The SD1.5 replica: exact sizes checked on the meta device (nothing allocated), and the replica profile."""

import resource

import pytest
import torch

from helpers import profiles
from helpers.loading import resolve_model
from helpers.profiles import PROFILES, REPLICA_CPU, resolve_profile
from helpers.standins import replica


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_parameter_counts_equal_the_real_model_on_the_meta_device():
    before = _rss_mib()
    counts = replica.parameter_counts()
    assert counts == {
        "unet": 859_520_964,
        "vae": 83_653_863,
        "text_encoder": 123_060_480,
        "safety_checker": 303_981_588,
    }
    assert counts == replica.PARAMETER_COUNTS
    # 1.37 billion fp32 parameters would be 5.1 GiB; on the meta device the peak grows by far less than that.
    assert _rss_mib() - before < 300


@pytest.mark.parametrize("name", sorted(replica.BUILDERS))
def test_meta_builders_allocate_nothing(name):
    module = replica.BUILDERS[name]()
    devices = {p.device.type for p in module.parameters()}
    assert devices == {"meta"}
    assert {p.dtype for p in module.parameters()} == {torch.float32}


def test_the_configs_are_sd15s():
    unet = replica.replica_unet()
    assert list(unet.config.block_out_channels) == [320, 640, 1280, 1280]
    assert unet.config.cross_attention_dim == 768 and unet.config.sample_size == 64
    vae = replica.replica_vae()
    assert list(vae.config.block_out_channels) == [128, 256, 512, 512] and vae.config.scaling_factor == 0.18215
    text = replica.replica_text_encoder().config
    assert (text.hidden_size, text.num_hidden_layers, text.vocab_size, text.max_position_embeddings) == (
        768,
        12,
        49408,
        77,
    )
    checker = replica.replica_safety_checker()
    vision = checker.config.vision_config
    assert (vision.hidden_size, vision.num_hidden_layers, vision.patch_size, vision.image_size) == (1024, 24, 14, 224)
    assert checker.visual_projection.out_features == 768
    assert replica.replica_scheduler().config.steps_offset == 1


def test_the_meta_unet_counts_flops_of_one_guided_step():
    from torch.utils.flop_counter import FlopCounterMode

    unet = replica.replica_unet()
    latents = torch.empty(2, 4, 64, 64, device="meta")
    text = torch.empty(2, 77, 768, device="meta")
    with FlopCounterMode(display=False) as counter:
        unet(latents, torch.tensor([10, 10], device="meta"), encoder_hidden_states=text)
    assert counter.get_total_flops() / 1e12 == pytest.approx(1.607, abs=0.002)


def test_the_tokenizer_has_clips_size_and_special_ids():
    tokenizer = replica.replica_tokenizer()
    assert len(tokenizer) == 49408
    assert tokenizer.model_max_length == 77
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id) == (49406, 49407)
    ids = tokenizer("a photo", padding="max_length", max_length=77).input_ids
    assert len(ids) == 77 and ids[0] == 49406 and ids[-1] == 49407
    # The merges work: "photo" needs fewer tokens than its five letters.
    assert len(tokenizer.tokenize("photo")) < 5


def test_unknown_kind_and_dtype_say_what_works(tmp_path):
    with pytest.raises(ValueError, match=r"kind='sdxl'.*\['base', 'finetuned'\]"):
        replica.replica_model_path("sdxl", root=tmp_path)
    with pytest.raises(ValueError, match=r"dtype=torch.int8.*torch.float16"):
        replica.replica_model_path("base", torch.int8, root=tmp_path)
    with pytest.raises(ValueError, match=r"model_id='replica:xl'.*replica:base"):
        resolve_model("replica:xl", REPLICA_CPU)


def test_the_replica_profile_is_the_gpu_profile_on_cuda_and_small_on_a_cpu(monkeypatch):
    gpu, rep = PROFILES["gpu"], PROFILES["replica"]
    same = ("device", "dtype", "height", "width", "num_inference_steps", "fast_steps", "batch_sizes")
    assert [getattr(rep, f) for f in same] == [getattr(gpu, f) for f in same]
    assert (rep.base_model, rep.finetuned_model, rep.real_weights) == ("replica:base", "replica:finetuned", False)
    monkeypatch.setattr(profiles, "detect_device", lambda: "cuda")
    assert resolve_profile("replica") is rep
    monkeypatch.setattr(profiles, "detect_device", lambda: "cpu")
    cpu = resolve_profile("replica")
    assert (cpu.name, cpu.device, cpu.dtype, cpu.height) == ("replica", "cpu", torch.float32, 64)
    assert cpu.batch_sizes == PROFILES["cpu"].batch_sizes == (2, 4)  # the cost is per picture: the CPU's batches
    monkeypatch.setenv("SD_PROFILE", "replica")
    assert resolve_profile().name == "replica"
