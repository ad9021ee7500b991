"""Shape, range and wiring tests for the U-Net, on tiny channel counts."""

import pytest
import torch

from unet_model import UNet, UNetConfig, count_parameters, expected_parameters


@pytest.fixture(params=[(513, 128), (257, 64), (100, 37), (33, 8), (1, 1)], ids=str)
def size(request):
    return request.param


@pytest.mark.parametrize("channels", [(4, 8), (4, 8, 16), (4, 6, 8, 10)])
@pytest.mark.parametrize("kernel_size", [3, 5])
def test_output_has_input_shape_and_mask_range(size, channels, kernel_size):
    torch.manual_seed(0)
    model = UNet(UNetConfig(channels=channels, kernel_size=kernel_size)).eval()
    mix = torch.rand(2, *size) * 5
    mask = model(mix)
    assert mask.shape == mix.shape
    assert mask.min() >= 0 and mask.max() <= 1


def test_lab_parameter_count():
    # Worked out by hand from the lab's layer list (5x5 kernels):
    # encoder 832 + 51,264 + 204,928 + 819,456, decoder 819,328 + 409,664 + 102,432 + 1,601.
    plain = UNet(UNetConfig(batch_norm=False))
    assert count_parameters(plain) == 2_409_505
    # BatchNorm adds a scale and a shift per channel of the 7 normalised layers.
    with_bn = UNet(UNetConfig(batch_norm=True))
    assert count_parameters(with_bn) == 2_409_505 + 2 * (32 + 64 + 128 + 256 + 128 + 64 + 32)
    assert expected_parameters(with_bn.config) == count_parameters(with_bn)


def test_lab_channel_widths():
    model = UNet(UNetConfig())
    enc = [(b.conv.in_channels, b.conv.out_channels) for b in model.encoder]
    dec = [(b.deconv.in_channels, b.deconv.out_channels) for b in model.decoder]
    assert enc == [(1, 32), (32, 64), (64, 128), (128, 256)]
    assert dec == [(256, 128), (256, 64), (128, 32)]
    assert (model.head.in_channels, model.head.out_channels) == (64, 1)


def test_every_decoder_input_concatenates_its_encoder_skip():
    """The input of each decoder block after the first (and of the head) must be
    [previous decoder output, encoder output of the same level] along dim 1."""
    torch.manual_seed(0)
    model = UNet(UNetConfig(channels=(4, 6, 8, 10))).eval()
    enc_out, dec_out, dec_in = [], [], []
    for block in model.encoder:
        block.register_forward_hook(lambda m, i, o: enc_out.append(o))
    for block in list(model.decoder)[1:] + [model.head]:
        block.register_forward_pre_hook(lambda m, args, kwargs: dec_in.append(args[0]), with_kwargs=True)
    for block in model.decoder:
        block.register_forward_hook(lambda m, i, o: dec_out.append(o))
    model(torch.rand(1, 65, 20))

    for j, x in enumerate(dec_in):
        skip = enc_out[len(enc_out) - 2 - j]  # level matching decoder block j's output
        assert x.shape[1] == dec_out[j].shape[1] + skip.shape[1]
        assert torch.equal(x[:, : dec_out[j].shape[1]], dec_out[j])
        assert torch.equal(x[:, dec_out[j].shape[1]:], skip)


def test_output_depends_on_every_skip():
    """Removing the information of any encoder level changes the mask."""
    torch.manual_seed(0)
    model = UNet(UNetConfig(channels=(4, 6, 8))).eval()
    mix = torch.rand(1, 40, 16)
    reference = model(mix)
    for level in range(len(model.encoder) - 1):
        handle = model.encoder[level].register_forward_hook(lambda m, i, o: torch.zeros_like(o))
        assert not torch.allclose(model(mix), reference), f"level {level} skip has no effect"
        handle.remove()


@pytest.mark.parametrize("options", [
    {"decoder_activation": "relu"}, {"batch_norm": False}, {"dropout": 0.5}, {"leaky_slope": 0.01},
])
def test_variants_build_and_keep_shape(options):
    model = UNet(UNetConfig(channels=(4, 8), **options))
    model.train()
    mask = model(torch.rand(2, 31, 12))
    assert mask.shape == (2, 31, 12)


@pytest.mark.parametrize("bad", [{"kernel_size": 4}, {"channels": ()}, {"dropout": 1.0},
                                 {"decoder_activation": "tanh"}])
def test_bad_config_is_refused(bad):
    with pytest.raises(ValueError):
        UNetConfig(**bad)


def test_wrong_input_rank_names_the_shape():
    model = UNet(UNetConfig(channels=(4, 8)))
    with pytest.raises(ValueError, match=r"\(batch, freq_bins, frames\)"):
        model(torch.rand(513, 128))


def test_config_round_trips_through_a_dict():
    config = UNetConfig(channels=(4, 8), dropout=0.5)
    assert UNetConfig(**config.to_dict()) == config


def test_lab_self_check_runs(capsys):
    from unet_model import test_unet

    test_unet()
    out = capsys.readouterr().out
    assert "2,410,913" in out and "(2, 513, 128)" in out


def test_print_shows_the_labs_layers_in_order_ending_with_the_sigmoid():
    """What a student sees with print(model): the 4 encoder blocks, the 3 decoder blocks, the head (the lab's
    fourth transposed convolution) and the sigmoid, last."""
    text = str(UNet())
    assert text.count("EncoderBlock") == 4 and text.count("DecoderBlock") == 3
    assert text.count("ConvTranspose2d") == 4 and text.rindex("ConvTranspose2d") < text.rindex("Sigmoid()")
    assert text.rstrip().splitlines()[-2].strip() == "(mask): Sigmoid()"
