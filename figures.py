"""The spectrogram figure: mix, mask and vocals panels, for inference.py and TensorBoard.

One convention for every magnitude panel: dB relative to the mix's loudest
bin (0 dB), shown from -80 to 0, so the same colour means the same level in
separation.png and in the TensorBoard figure; masks are shown from 0 to 1.
"""

import torch

DB_RANGE = 80  # dB below the mix's loudest bin shown on the colour scale


def relative_db(magnitude, reference):
    """20 log10(magnitude / reference): 0 dB at `reference`, -200 dB for silence."""
    return 20 * torch.log10(magnitude / reference + 1e-10)


def spectrogram_figure(mix, panels, seconds, max_hz, columns=False, title=None, interactive=False):
    """A matplotlib figure of spectrogram panels sharing their time and frequency axes.

    Args:
        mix: the mix magnitude (freq_bins, frames); its loudest bin is the 0 dB
            of every magnitude panel.
        panels: [(title, tensor (freq_bins, frames), "magnitude" or "mask")].
        seconds, max_hz: the extent of the time and frequency axes.
        columns: panels side by side (TensorBoard) instead of stacked (a report page).
        interactive: keep matplotlib's window backend, for plt.show().
    """
    import matplotlib
    if not interactive:
        matplotlib.use("Agg")  # files only: works without a display
    import matplotlib.pyplot as plt

    reference = float(mix.max()) or 1.0
    shape = (1, len(panels)) if columns else (len(panels), 1)
    size = (4.5 * len(panels), 4) if columns else (12, 3 * len(panels))
    fig, axes = plt.subplots(*shape, figsize=size, sharex=True, sharey=True, squeeze=False)
    for ax, (name, image, kind) in zip(axes.flat, panels):
        if kind == "mask":
            data, style, unit = image, dict(vmin=0, vmax=1, cmap="magma"), "mask"
        else:
            data, style = relative_db(image, reference), dict(vmin=-DB_RANGE, vmax=0, cmap="viridis")
            unit = "dB re loudest mix bin"
        im = ax.imshow(data.numpy(), origin="lower", aspect="auto", extent=[0, seconds, 0, max_hz], **style)
        ax.set_title(name)
        fig.colorbar(im, ax=ax, label=unit, pad=0.01)
    for ax in axes[:, 0]:
        ax.set_ylabel("frequency (Hz)")
    for ax in axes[-1, :]:
        ax.set_xlabel("time (s)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
