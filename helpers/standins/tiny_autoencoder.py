"""A stand-in for TAESD, the tiny autoencoder that decodes Stable Diffusion's latents into quick previews.

The real weights are ``madebyollin/taesd`` on the Hub. Where they cannot be had (the tiny and replica profiles)
this builds diffusers' ``AutoencoderTiny`` with TAESD's architecture (diffusers' defaults: 2,445,063 parameters)
and seeded random weights. Its previews are noise, but its size and speed are the real one's.

Example:
    >>> vae = random_tiny_autoencoder()
    >>> type(vae).__name__, sum(p.numel() for p in vae.parameters())
    ('AutoencoderTiny', 2445063)
"""

from __future__ import annotations

import torch

HUB_ID = "madebyollin/taesd"


def random_tiny_autoencoder(
    seed: int = 0, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, *, levels: int = 4
):
    """``AutoencoderTiny`` with TAESD's architecture and random weights, the same for a given seed and device.

    Args:
        levels: resolution levels, as many as the VAE it stands beside has blocks: 4 for SD1.5 (8x smaller
            latents; exactly TAESD; the tiny test model's VAE has four blocks too), fewer for a VAE with fewer blocks.
    """
    from diffusers import AutoencoderTiny

    if levels < 1:
        raise ValueError(f"levels must be 1 or more (4 for SD1.5's VAE), got levels={levels}")
    config = {}
    if levels != 4:  # TAESD's pattern of blocks, with one level per VAE block
        config = {
            "encoder_block_out_channels": (64,) * levels,
            "decoder_block_out_channels": (64,) * levels,
            "num_encoder_blocks": (1,) + (3,) * (levels - 1),
            "num_decoder_blocks": (3,) * (levels - 1) + (1,),
        }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = AutoencoderTiny(**config)
    # Cast only when asked: diffusers warns on every cast with .to(dtype=...), even to the dtype it already has.
    return (vae.to(device=device) if dtype == torch.float32 else vae.to(device=device, dtype=dtype)).eval()
