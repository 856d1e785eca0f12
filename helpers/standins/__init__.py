"""Stand-in models with the real architecture, made by this project.

They let every lesson, test and benchmark run where the real weights cannot be had (no GPU, no Hub):
:mod:`helpers.standins.world` draws a small world of captioned 64 x 64 pictures, and judges a picture of it;
:mod:`helpers.standins.tiny` finds the tiny models of the ``tiny`` profile, trained on that world by
``make train-tiny`` and shipped in ``helpers/standins/models/``;
:mod:`helpers.standins.replica` builds Stable Diffusion 1.5 at its exact size with random weights (the ``replica``
profile), and on the meta device for counting parameters and FLOPs without allocating;
:mod:`tools.local_hub` writes stand-in repositories in the Hub's layout and serves them over HTTP (olah),
a local Hub for the user's download and loading code.
:mod:`helpers.standins.tiny_autoencoder` builds a random-weight TAESD (``AutoencoderTiny``) for previews.

Who may import this: the lesson modules (``helpers.loading`` finds the stand-ins here), the tools and the tests.
It imports only the runtime pins (torch, diffusers, transformers), never :mod:`tools`.
"""
