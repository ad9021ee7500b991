"""The singing-voice U-Net of the lab (TP) and of Jansson et al., ISMIR 2017.

The network reads a mix magnitude spectrogram and predicts a soft mask in
[0, 1]; the estimated vocals are `mask * mix`. Check the model with:

    python unet_model.py

which runs `test_unet()`: parameter count, input/output shapes, mask range.

Lab versus paper (every difference is a field of `UNetConfig`):

    choice                 lab (TP)          paper              default here
    encoder                Conv2d s2 +LReLU  same, + BatchNorm  Conv2d s2 + BatchNorm + LReLU
    widths                 32-64-128-256     16-...-512 (6)     32-64-128-256 (4 levels)
    kernel                 not fixed         5x5                5x5
    LeakyReLU slope        not fixed         0.2                0.2
    decoder activation     LeakyReLU         ReLU               see UNetConfig
    decoder dropout        none              50 % in first 3    see UNetConfig
    output                 Sigmoid mask      Sigmoid mask       Sigmoid mask

Names used in every file of the project (shape comments use the letters):

    B, C, F, T     batch, channels (of audio or of feature maps), freq_bins, frames
    P              patch_frames: the T of one network input (128)
    waveform       audio samples: numpy (samples, channels) or torch (channels, samples)
    spec           a complex STFT, (..., F, T)
    magnitude      |spec|; mix_mag and vocals_mag are the lab's X and Y
    mask           in [0, 1], (..., F, T); the vocals estimate is mask * mix_mag
    signal_config  a SignalConfig (spectral.py): sample rate, STFT, patch size
    model_config   a UNetConfig (this file)

This file is the model alone: it reads and writes no files (checkpoints.py does).
"""

import cli  # noqa: F401 (first: says in one line how to install what is missing; see cli.require_installed)

import argparse
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn


@dataclass
class UNetConfig:
    """Everything needed to rebuild a UNet; stored as a dict in every checkpoint.

    Args:
        channels: encoder widths, one per level; the decoder mirrors them.
            The lab uses (32, 64, 128, 256); tests use tiny ones like (4, 8).
        kernel_size: square kernel of every (transposed) convolution (paper: 5).
        leaky_slope: negative slope of the encoder's LeakyReLU (paper: 0.2).
        decoder_activation: "leaky_relu" (lab) or "relu" (paper).
        batch_norm: BatchNorm after every convolution but the last (paper: yes).
        dropout: dropout probability in the first `dropout_layers` decoder
            blocks (paper: 0.5 in the first 3; 0 disables it).
        dropout_layers: how many decoder blocks, from the bottom, get dropout.
    """

    channels: tuple = (32, 64, 128, 256)
    kernel_size: int = 5
    leaky_slope: float = 0.2
    decoder_activation: str = "leaky_relu"
    batch_norm: bool = True
    dropout: float = 0.0
    dropout_layers: int = 3

    def __post_init__(self):
        # A checkpoint stores the config as JSON-like data, where tuples become lists.
        self.channels = tuple(int(c) for c in self.channels)
        if len(self.channels) < 1 or min(self.channels) < 1:
            raise ValueError(f"channels must be positive widths, got {self.channels}")
        # An odd kernel centred with (k-1)/2 padding maps size n to ceil(n/2), so
        # every level's size is known and the decoder can land on it exactly.
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")
        if self.decoder_activation not in ("leaky_relu", "relu"):
            raise ValueError(
                f"decoder_activation must be 'leaky_relu' or 'relu', got {self.decoder_activation!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self):
        return asdict(self)


class EncoderBlock(nn.Module):
    """Conv2d (stride 2) -> [BatchNorm] -> LeakyReLU: halves height and width."""

    def __init__(self, in_channels, out_channels, config):
        super().__init__()
        k = config.kernel_size
        self.conv = nn.Conv2d(in_channels, out_channels, k, stride=2, padding=(k - 1) // 2)
        self.norm = nn.BatchNorm2d(out_channels) if config.batch_norm else nn.Identity()
        self.act = nn.LeakyReLU(config.leaky_slope)

    def forward(self, x):
        return self.act(self.norm(self.conv(x)))


class DecoderBlock(nn.Module):
    """ConvTranspose2d (stride 2) -> [BatchNorm] -> activation -> [Dropout]: doubles the size.

    The output size is passed explicitly (the size of the matching encoder
    input), so odd sizes such as 513 come back exactly: a stride-2 transposed
    convolution alone cannot tell whether 257 came from 513 or from 514.
    """

    def __init__(self, in_channels, out_channels, config, dropout):
        super().__init__()
        k = config.kernel_size
        self.deconv = nn.ConvTranspose2d(in_channels, out_channels, k, stride=2, padding=(k - 1) // 2)
        self.norm = nn.BatchNorm2d(out_channels) if config.batch_norm else nn.Identity()
        if config.decoder_activation == "relu":
            self.act = nn.ReLU()
        else:
            self.act = nn.LeakyReLU(config.leaky_slope)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x, output_size):
        x = self.deconv(x, output_size=output_size)
        return self.drop(self.act(self.norm(x)))


class UNet(nn.Module):
    """Spectrogram U-Net that predicts a soft vocal mask.

    Encoder: len(channels) stride-2 convolutions, 1 -> 32 -> 64 -> 128 -> 256
    with the lab's widths. Decoder: transposed convolutions back up; the input
    of every decoder block but the first is the previous block's output
    concatenated (dim=1) with the encoder output of the same size, so with
    the lab's widths: 256 -> 128 (+128), 256 -> 64 (+64), 128 -> 32 (+32),
    64 -> 1, then a sigmoid.

    Args:
        config: a UNetConfig; the model takes nothing else.
    """

    def __init__(self, config=None):
        super().__init__()
        self.config = config if config is not None else UNetConfig()
        widths = self.config.channels
        depth = len(widths)

        in_widths = (1,) + widths[:-1]
        self.encoder = nn.ModuleList(
            EncoderBlock(c_in, c_out, self.config) for c_in, c_out in zip(in_widths, widths)
        )

        # Decoder block i (from the bottom) outputs the width of encoder level
        # depth-2-i; all but the first read a concatenation, hence twice the width.
        self.decoder = nn.ModuleList()
        for i in range(depth - 1):
            c_in = widths[-1] if i == 0 else 2 * widths[depth - 1 - i]
            c_out = widths[depth - 2 - i]
            dropout = self.config.dropout if i < self.config.dropout_layers else 0.0
            self.decoder.append(DecoderBlock(c_in, c_out, self.config, dropout))
        # The last block maps back to one channel: a plain transposed convolution
        # followed by the sigmoid, no normalisation that would shift the mask.
        # Registered last, the sigmoid is the last layer `print(model)` shows, as
        # in the lab's drawing (it has no weights: older checkpoints load as they are).
        k = self.config.kernel_size
        c_in = widths[-1] if depth == 1 else 2 * widths[0]
        self.head = nn.ConvTranspose2d(c_in, 1, k, stride=2, padding=(k - 1) // 2)
        self.mask = nn.Sigmoid()

    def forward(self, mix_mag):
        """Predict the vocal mask.

        Args:
            mix_mag: scaled mix magnitude, (B, F, T), e.g. (B, 513, 128).
        Returns:
            mask in [0, 1], (B, F, T); the vocals estimate is `mask * mix_mag`.
        """
        if mix_mag.dim() != 3:
            raise ValueError(
                f"UNet expects a (batch, freq_bins, frames) magnitude, got shape {tuple(mix_mag.shape)}"
            )
        x = mix_mag.unsqueeze(1)  # (B, 1, F, T)

        # Encoder: remember every level's input size and output for the way back.
        sizes, skips = [], []
        for block in self.encoder:
            sizes.append(x.shape[-2:])
            x = block(x)  # (B, C_i, ceil(F/2^i), ceil(T/2^i))
            skips.append(x)

        # Decoder: upsample to the size of the matching encoder level, then
        # concatenate that level's output along the channels.
        skips.pop()  # the bottom output is x itself, not a skip
        for block in self.decoder:
            skip = skips.pop()
            x = block(x, output_size=skip.shape[-2:])  # (B, C_skip, F_skip, T_skip)
            x = torch.cat([x, skip], dim=1)  # (B, 2*C_skip, F_skip, T_skip)
        x = self.head(x, output_size=sizes[0])  # (B, 1, F, T)
        return self.mask(x).squeeze(1)  # (B, F, T), in [0, 1]


def count_parameters(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def expected_parameters(config):
    """Parameter count worked out by hand from the layer list (for test_unet).

    Each k x k (transposed) convolution has c_in*c_out*k*k weights plus c_out
    biases; each BatchNorm adds 2*c_out (scale and shift).
    """
    k2 = config.kernel_size**2
    widths = config.channels
    depth = len(widths)
    bn = 2 if config.batch_norm else 0
    total = 0
    for c_in, c_out in zip((1,) + widths[:-1], widths):
        total += c_in * c_out * k2 + c_out + bn * c_out
    for i in range(depth - 1):
        c_in = widths[-1] if i == 0 else 2 * widths[depth - 1 - i]
        c_out = widths[depth - 2 - i]
        total += c_in * c_out * k2 + c_out + bn * c_out
    c_in = widths[-1] if depth == 1 else 2 * widths[0]
    return total + c_in * k2 + 1


def test_unet():
    """The lab's check: parameter count, input/output shape, mask range.

    Raises AssertionError (so the command exits non-zero) if any is wrong.
    """
    config = UNetConfig()
    model = UNet(config).eval()
    n_params = count_parameters(model)
    print(f"UNet config: {config}")
    print(f"Parameters: {n_params:,} ({n_params / 1e6:.2f} M)")
    assert n_params == expected_parameters(config), (
        f"parameter count {n_params} differs from the layer list's {expected_parameters(config)}"
    )

    torch.manual_seed(0)
    mix = torch.rand(2, 513, 128)
    with torch.no_grad():
        mask = model(mix)
    print(f"Input shape:  {tuple(mix.shape)}")
    print(f"Output shape: {tuple(mask.shape)}")
    print(f"Mask range:   [{mask.min().item():.4f}, {mask.max().item():.4f}]")
    assert mask.shape == mix.shape, f"output shape {tuple(mask.shape)} != input {tuple(mix.shape)}"
    assert mask.min() >= 0 and mask.max() <= 1, "mask outside [0, 1]"
    assert torch.isfinite(mask).all(), "mask has NaN or inf"
    print("test_unet: OK")


if __name__ == "__main__":
    argparse.ArgumentParser(description="The lab's check of the default U-Net: parameter count, shapes, "
                                        "mask range (exit status 1 if any is wrong).").parse_args()
    test_unet()
