"""The image encoders and decoders a config names (`model.encoder`, `model.decoder`).

Each entry builds a Keras layer from the config's `model` section and the image shape
(H, W, C); adding a network is one `register_encoder` / `register_decoder` call beside its
module. `config.validate` checks names against these tables.
"""

from collections.abc import Callable

import ml_collections

from skip_vae_tf.models import decoders
from skip_vae_tf.models import encoders
from skip_vae_tf.models import official

Builder = Callable[[ml_collections.ConfigDict, tuple[int, int, int]], object]
ENCODERS: dict[str, Builder] = {}
DECODERS: dict[str, Builder] = {}


def register_encoder(name: str, builder: Builder) -> None:
  """`builder(model_config, image_shape)` -> an encoder layer named 'encoder'."""
  ENCODERS[name] = builder


def register_decoder(name: str, builder: Builder) -> None:
  """`builder(model_config, image_shape)` -> a decoder layer named 'decoder' (it reads
  `model_config.skip`)."""
  DECODERS[name] = builder


def build(table: dict[str, Builder], kind: str, model_config: ml_collections.ConfigDict,
          image_shape: tuple[int, int, int]):
  name = model_config[kind]
  if name not in table:
    raise KeyError(f"unknown model.{kind} {name!r}; choose one of {tuple(table)}")
  return table[name](model_config, image_shape)


register_encoder("resnet_official", lambda m, shape: official.OfficialResNetEncoder(
    m.latent_dim, m.encoder_channels, shape, name="encoder"))
register_encoder("resnet", lambda m, shape: encoders.ResNetEncoder(
    m.latent_dim, m.encoder_channels, name="encoder"))
register_encoder("mlp", lambda m, shape: encoders.MLPEncoder(
    m.latent_dim, m.encoder_hidden, name="encoder"))
register_decoder("pixelcnn_official", lambda m, shape: official.OfficialPixelCNNDecoder(
    shape, m.decoder_channels, m.decoder_kernel_sizes, m.latent_feature_maps, m.latent_dim,
    m.skip, name="decoder"))
register_decoder("pixelcnn", lambda m, shape: decoders.PixelCNNDecoder(
    shape, m.decoder_channels, m.decoder_kernel_sizes, m.latent_feature_maps, m.skip,
    name="decoder"))
register_decoder("mlp", lambda m, shape: decoders.MLPDecoder(
    shape, m.decoder_hidden, m.skip, name="decoder"))
