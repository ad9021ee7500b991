"""The project's figures: spectrograms (inference.py, TensorBoard) and the loss curve (train.py).

One convention for every magnitude panel: dB relative to the mix's loudest
bin (0 dB), shown from -80 to 0, so the same colour means the same level in
separation.png and in the TensorBoard figure; masks are shown from 0 to 1.

matplotlib is imported inside the functions, not at the top: importing pyplot
takes 0.6-0.7 s (AVX2), which `python inference.py --no-plot` and evaluate.py
never need, and the backend (Agg for files) must be chosen before pyplot loads.
"""

import torch

DB_RANGE = 80  # dB below the mix's loudest bin shown on the colour scale


def relative_db(magnitude, reference):
    """20 log10(magnitude / reference): 0 dB at `reference`, -200 dB for silence."""
    return 20 * torch.log10(magnitude / reference + 1e-10)


def spectrogram_figure(mix, panels, seconds, max_hz, grid=False, title=None, interactive=False):
    """A matplotlib figure of spectrogram panels sharing their time and frequency axes.

    Args:
        mix: the mix magnitude (freq_bins, frames); its loudest bin is the 0 dB
            of every magnitude panel.
        panels: [(title, tensor (freq_bins, frames), "magnitude" or "mask")].
        seconds, max_hz: the extent of the time and frequency axes.
        grid: panels on a 2-column grid, wide enough to read where TensorBoard
            shows it at its card's width, instead of stacked (a report page).
        interactive: keep matplotlib's window backend, for plt.show().
    """
    import matplotlib
    if not interactive:
        matplotlib.use("Agg")  # files only: works without a display
    import matplotlib.pyplot as plt

    reference = float(mix.max()) or 1.0
    rows = -(-len(panels) // 2) if grid else len(panels)
    shape = (rows, 2) if grid else (rows, 1)
    # On the grid: a small figure, so that its text stays legible scaled down to a card's ~350 pixels.
    size = (6.4, 2.7 * rows) if grid else (12, 3 * rows)
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
    for ax in axes.flat[len(panels):]:  # an odd number of panels on the grid
        ax.remove()
    for ax in axes[:, 0]:
        ax.set_ylabel("frequency (Hz)")
    for ax in axes[-1, :]:
        ax.set_xlabel("time (s)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def close_figure(fig):
    """Let pyplot forget a figure it would otherwise keep alive until the process ends."""
    import matplotlib.pyplot as plt

    plt.close(fig)


def show_figures():
    """Open the figures drawn with interactive=True in windows, until they are closed."""
    import matplotlib.pyplot as plt

    plt.show()


def loss_curve_figure(history):
    """Training and validation loss per epoch, the constant-mask baseline, the best epoch marked.

    Args:
        history: train.py's rows, dicts with epoch, train_loss, valid_loss, constant_mask_loss.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    valid = [h["valid_loss"] for h in history]
    best = min(range(len(valid)), key=valid.__getitem__)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    ax.plot(epochs, valid, "s-", label="validation")
    ax.plot(epochs[best], valid[best], "*", markersize=16, color="tab:red",
            label=f"best epoch ({epochs[best]}): best_model.pth")
    ax.axhline(history[0]["constant_mask_loss"], color="gray", linestyle="--",
               label="best constant mask (validation)")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("masked L1 loss")
    ax.set_title("U-Net training")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig
